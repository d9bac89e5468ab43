//! Decodes the OTLP/HTTP JSON log exports a [`Collector`](crate::collector::Collector) received
//! with the official OpenTelemetry protobuf definitions, not with a schema of our own: a test
//! then fails when the audit filter sends something a real OTLP receiver would refuse.
//!
//! The definitions are the PyPI package `opentelemetry-proto` in the project virtualenv
//! (`make otel-proto`), driven by `envoy/scripts/otlp_decode.py`; that script documents the
//! strictness (unknown fields refused, hex `traceId`/`spanId` checked, lowerCamelCase keys) and the
//! one-JSON-line-per-record output read here. Nothing here touches the filters.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::{BedError, workspace_root};

/// The `InstrumentationScope` of a record's `ScopeLogs` (empty strings when unset).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Scope {
    pub name: String,
    pub version: String,
}

/// One `LogRecord` as the official definitions parsed it, with its resource and scope.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodedLogRecord {
    /// The resource's attributes, key to value.
    pub resource: Map<String, Value>,
    pub scope: Scope,
    /// 0 when unset (proto3 default).
    pub time_unix_nano: u64,
    /// 0 when unset (proto3 default).
    pub observed_time_unix_nano: u64,
    /// The `SeverityNumber` enum's value (0: unspecified).
    pub severity_number: i32,
    pub severity_text: String,
    /// The body `AnyValue` as plain JSON: a string body is a JSON string; `null` when unset.
    pub body: Value,
    /// AnyValue as plain JSON: string, integer, float, bool, array, object, bytes as base64.
    pub attributes: Map<String, Value>,
    /// Lowercase hex (32 digits), `None` when absent.
    pub trace_id: Option<String>,
    /// Lowercase hex (16 digits), `None` when absent.
    pub span_id: Option<String>,
}

impl DecodedLogRecord {
    pub fn attribute(&self, key: &str) -> Option<&Value> {
        self.attributes.get(key)
    }

    /// The body when it is a string.
    pub fn body_str(&self) -> Option<&str> {
        self.body.as_str()
    }

    /// One line of `otlp_decode.py`'s output.
    fn from_line(line: &str) -> Result<Self, String> {
        let value: Value = serde_json::from_str(line).map_err(|e| format!("not JSON ({e}): {line}"))?;
        let object = value.as_object().ok_or_else(|| format!("not a JSON object: {line}"))?;
        let field = |name: &str| object.get(name).ok_or_else(|| format!("no {name:?} in {line}"));
        let map = |name: &str| field(name)?.as_object().cloned().ok_or_else(|| format!("{name} is not an object"));
        let string = |value: &Value, name: &str| {
            value.as_str().map(str::to_owned).ok_or_else(|| format!("{name} is not a string"))
        };
        let unsigned = |name: &str| field(name)?.as_u64().ok_or_else(|| format!("{name} is not a u64"));
        let id = |name: &str| match field(name)? {
            Value::Null => Ok(None),
            value => string(value, name).map(Some),
        };
        let scope = field("scope")?;
        let scope_field = |name: &str| scope.get(name).ok_or_else(|| format!("no scope.{name}"));
        let severity_number = field("severity_number")?
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .ok_or("severity_number is not an i32")?;
        Ok(DecodedLogRecord {
            resource: map("resource")?,
            scope: Scope {
                name: string(scope_field("name")?, "scope.name")?,
                version: string(scope_field("version")?, "scope.version")?,
            },
            time_unix_nano: unsigned("time_unix_nano")?,
            observed_time_unix_nano: unsigned("observed_time_unix_nano")?,
            severity_number,
            severity_text: string(field("severity_text")?, "severity_text")?,
            body: field("body")?.clone(),
            attributes: map("attributes")?,
            trace_id: id("trace_id")?,
            span_id: id("span_id")?,
        })
    }
}

/// `envoy/scripts/otlp_decode.py`.
pub fn decode_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/otlp_decode.py")
}

/// Parses each body (an OTLP/HTTP JSON `ExportLogsServiceRequest`, as POSTed to `/v1/logs`) with
/// the official protobuf definitions and returns every log record, in order.
///
/// Errors: `Missing` without the virtualenv's Python; `Io` of kind `NotFound` without the
/// definitions (`make otel-proto`); `Io` of kind `InvalidData` when a body is rejected, the
/// script's message (which body, which field, why) as the source.
pub fn decode_with_official_proto(bodies: &[Vec<u8>]) -> Result<Vec<DecodedLogRecord>, BedError> {
    if bodies.is_empty() {
        return Ok(Vec::new());
    }
    let python = workspace_root().join(".venv/bin/python3");
    if !python.is_file() {
        return Err(BedError::Missing { path: python, hint: "make the virtualenv first: make envoy otel-proto" });
    }
    let dir = TempDir::new()?;
    let mut files = Vec::with_capacity(bodies.len());
    for (i, body) in bodies.iter().enumerate() {
        let file = dir.0.join(format!("body-{i}.json"));
        std::fs::write(&file, body).map_err(BedError::io(format!("write {}", file.display())))?;
        files.push(file);
    }
    let script = decode_script();
    let output = Command::new(&python).arg(&script).args(&files).output().map_err(BedError::io(format!(
        "run {} {}",
        python.display(),
        script.display()
    )))?;
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    if !output.status.success() {
        let (kind, what) = match output.status.code() {
            Some(3) => (ErrorKind::NotFound, "OpenTelemetry protobuf definitions (make otel-proto)"),
            _ => (ErrorKind::InvalidData, "OTLP body rejected by the official protobuf definitions"),
        };
        let source = std::io::Error::new(kind, format!("{} ({}): {stderr}", script.display(), output.status));
        return Err(BedError::Io { what: what.to_owned(), source });
    }
    let stdout = String::from_utf8(output.stdout).map_err(|e| BedError::Io {
        what: "otlp_decode.py output".to_owned(),
        source: std::io::Error::new(ErrorKind::InvalidData, e),
    })?;
    stdout
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            DecodedLogRecord::from_line(line).map_err(|why| BedError::Io {
                what: "otlp_decode.py output".to_owned(),
                source: std::io::Error::new(ErrorKind::InvalidData, why),
            })
        })
        .collect()
}

/// A fresh directory under the system temp dir, removed (with its files) on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<Self, BedError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or_default();
        let name = format!("zt-otlp-{}-{}-{nanos}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
        let path = std::env::temp_dir().join(name);
        // `create_dir`, not `create_dir_all`: never reuse (and later delete) a directory we did not make.
        std::fs::create_dir(&path).map_err(BedError::io(format!("create {}", path.display())))?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Two records as an OTLP/HTTP JSON exporter writes them: 64-bit integers as strings (proto3
    /// JSON mapping), ids in hex (OTLP/JSON).
    const VALID: &str = r#"{
      "resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "zt-audit"}}]},
        "scopeLogs": [{
          "scope": {"name": "zt-audit", "version": "0.1.0"},
          "logRecords": [
            {
              "timeUnixNano": "1700000000123456789",
              "observedTimeUnixNano": "1700000000123456790",
              "severityNumber": 9,
              "severityText": "INFO",
              "body": {"stringValue": "request allowed"},
              "attributes": [
                {"key": "http.request.method", "value": {"stringValue": "GET"}},
                {"key": "http.response.status_code", "value": {"intValue": "42"}}
              ],
              "traceId": "5b8efff798038103d269b633813fc60c",
              "spanId": "eee19b7ec3c1b174"
            },
            {
              "timeUnixNano": "1700000000223456789",
              "severityNumber": 13,
              "severityText": "WARN",
              "body": {"stringValue": "request denied"},
              "attributes": [{"key": "zt.decision", "value": {"stringValue": "deny"}}]
            }
          ]
        }]
      }]
    }"#;

    fn rejection(body: &str) -> String {
        match decode_with_official_proto(&[body.as_bytes().to_vec()]) {
            Err(BedError::Io { source, .. }) if source.kind() == ErrorKind::InvalidData => source.to_string(),
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn decodes_a_valid_export_with_the_official_definitions() {
        let records = decode_with_official_proto(&[VALID.as_bytes().to_vec()]).unwrap();
        assert_eq!(records.len(), 2);
        let (first, second) = (&records[0], &records[1]);
        let resource = json!({"service.name": "zt-audit"});
        assert_eq!(Value::Object(first.resource.clone()), resource);
        assert_eq!(first.scope, Scope { name: "zt-audit".to_owned(), version: "0.1.0".to_owned() });
        assert_eq!(first.time_unix_nano, 1_700_000_000_123_456_789);
        assert_eq!(first.observed_time_unix_nano, 1_700_000_000_123_456_790);
        assert_eq!((first.severity_number, first.severity_text.as_str()), (9, "INFO"));
        assert_eq!(first.body_str(), Some("request allowed"));
        assert_eq!(first.attribute("http.request.method"), Some(&json!("GET")));
        // Parsed as an int64, not left as the JSON string "42".
        assert_eq!(first.attribute("http.response.status_code"), Some(&json!(42)));
        assert_eq!(first.trace_id.as_deref(), Some("5b8efff798038103d269b633813fc60c"));
        assert_eq!(first.span_id.as_deref(), Some("eee19b7ec3c1b174"));

        assert_eq!(Value::Object(second.resource.clone()), resource);
        assert_eq!(second.time_unix_nano, 1_700_000_000_223_456_789);
        assert_eq!(second.observed_time_unix_nano, 0);
        assert_eq!((second.severity_number, second.severity_text.as_str()), (13, "WARN"));
        assert_eq!(second.body, json!("request denied"));
        assert_eq!(Value::Object(second.attributes.clone()), json!({"zt.decision": "deny"}));
        assert_eq!((second.trace_id.as_deref(), second.span_id.as_deref()), (None, None));
    }

    #[test]
    fn decodes_several_bodies_in_order() {
        let records = decode_with_official_proto(&[VALID.as_bytes().to_vec(), VALID.as_bytes().to_vec()]).unwrap();
        let bodies: Vec<_> = records.iter().map(|r| r.body_str().unwrap()).collect();
        assert_eq!(bodies, ["request allowed", "request denied", "request allowed", "request denied"]);
        assert!(decode_with_official_proto(&[]).unwrap().is_empty());
    }

    #[test]
    fn rejects_a_misspelled_field() {
        let why = rejection(&VALID.replace("\"logRecords\"", "\"logRecord\""));
        assert!(why.contains("logRecord"), "{why}");
    }

    #[test]
    fn rejects_a_trace_id_that_is_not_hex() {
        let why = rejection(&VALID.replace("5b8efff798038103d269b633813fc60c", "5b8efff798038103d269b633813fc60z"));
        assert!(why.contains("traceId"), "{why}");
    }

    #[test]
    fn rejects_ids_of_the_wrong_length_or_case_and_snake_case_keys() {
        // Valid base64 of 12 bytes: the plain protobuf mapping would have taken it.
        rejection(&VALID.replace("eee19b7ec3c1b174", "AAAAAAAAAAAAAAAA"));
        rejection(&VALID.replace("5b8efff798038103d269b633813fc60c", "5B8EFFF798038103D269B633813FC60C"));
        rejection(&VALID.replace("5b8efff798038103d269b633813fc60c", "5b8efff798038103"));
        rejection(&VALID.replace("\"traceId\"", "\"trace_id\""));
        rejection(&VALID.replace("\"severityNumber\": 13", "\"severityNumber\": \"SEVERITY_NUMBER_WARN\""));
        rejection("not json");
    }

    #[test]
    fn removes_its_temporary_directory() {
        let dir = TempDir::new().unwrap();
        let path = dir.0.clone();
        std::fs::write(path.join("x"), b"x").unwrap();
        drop(dir);
        assert!(!path.exists());
    }
}
