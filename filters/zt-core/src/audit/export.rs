//! The collector's wire formats. OTLP/HTTP with the JSON encoding (OpenTelemetry protocol
//! specification, "OTLP/HTTP" and "JSON Protobuf Encoding"): any OpenTelemetry Collector takes
//! an `ExportLogsServiceRequest` on `/v1/logs` without glue, and so do the log stores behind it.
//! NDJSON, one record per line, for collectors that take plain lines.

use serde_json::json;

use super::chain::Sealed;
use super::compile::Format;
use super::record::{Draft, Outcome, trace_ids};

/// The instrumentation scope of every exported record.
const SCOPE: &str = "zt-audit";

/// One record in the collector's format, encoded once when it is queued.
pub(crate) fn fragment(format: Format, sealed: &Sealed, draft: &Draft, chain: &str, now_ns: u64) -> String {
    match format {
        Format::Ndjson => format!("{}\n", sealed.text),
        Format::Otlp => otlp_log_record(sealed, draft, chain, now_ns).to_string(),
    }
}

/// A batch body from queued fragments.
pub(crate) fn batch_body(format: Format, service_name: &str, fragments: &[&str]) -> Vec<u8> {
    match format {
        Format::Ndjson => fragments.concat().into_bytes(),
        Format::Otlp => {
            let resource = json!({"attributes": [string_attribute("service.name", service_name)]});
            let scope = json!({"name": SCOPE, "version": env!("CARGO_PKG_VERSION")});
            // The log records are spliced in as already-encoded JSON rather than parsed back.
            format!(
                r#"{{"resourceLogs":[{{"resource":{resource},"scopeLogs":[{{"scope":{scope},"logRecords":[{}]}}]}}]}}"#,
                fragments.join(",")
            )
            .into_bytes()
        }
    }
}

/// OTLP `LogRecord`: proto3 JSON mapping, so 64-bit integers are strings and field names are
/// lowerCamelCase; `traceId`/`spanId` are hex, as the OTLP JSON encoding specifies.
fn otlp_log_record(sealed: &Sealed, draft: &Draft, chain: &str, now_ns: u64) -> serde_json::Value {
    // SeverityNumber: INFO = 9, WARN = 13 (OpenTelemetry logs data model).
    let (severity_number, severity_text) = if draft.outcome() == Outcome::Allow { (9, "INFO") } else { (13, "WARN") };
    let mut attributes = vec![
        string_attribute("zt.audit.chain", chain),
        int_attribute("zt.audit.seq", sealed.seq),
        string_attribute("zt.audit.outcome", draft.outcome().as_str()),
        int_attribute("http.response.status_code", draft.status()),
    ];
    if let Some(method) = draft.method() {
        attributes.push(string_attribute("http.request.method", method));
    }
    let mut record = json!({
        "timeUnixNano": draft.start_ns().to_string(),
        "observedTimeUnixNano": now_ns.to_string(),
        "severityNumber": severity_number,
        "severityText": severity_text,
        "body": {"stringValue": sealed.text},
        "attributes": attributes,
    });
    if let (Some((trace, span)), Some(object)) = (draft.traceparent().and_then(trace_ids), record.as_object_mut()) {
        object.insert("traceId".to_owned(), json!(trace));
        object.insert("spanId".to_owned(), json!(span));
    }
    record
}

fn string_attribute(key: &str, value: &str) -> serde_json::Value {
    json!({"key": key, "value": {"stringValue": value}})
}

fn int_attribute(key: &str, value: u64) -> serde_json::Value {
    json!({"key": key, "value": {"intValue": value.to_string()}})
}
