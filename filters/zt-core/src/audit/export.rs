//! The collector's wire formats. OTLP/HTTP with the JSON encoding (OpenTelemetry protocol
//! specification, "OTLP/HTTP" and "JSON Protobuf Encoding"): any OpenTelemetry Collector takes
//! an `ExportLogsServiceRequest` on `/v1/logs` without glue, and so do the log stores behind it.
//! NDJSON, one record per line, for collectors that take plain lines.

use serde_json::json;

use super::chain::{Head, Sealed};
use super::compile::Format;
use super::record::{Draft, Outcome, trace_ids};
use super::time::rfc3339_millis;

/// The OTLP `event.name` of a checkpoint (OpenTelemetry semantic conventions, events), which
/// tells it from the records in the same export.
pub const CHECKPOINT_EVENT: &str = "zt.audit.checkpoint";

/// The instrumentation scope of every exported record.
const SCOPE: &str = "zt-audit";

/// One record in the collector's format, encoded once when it is queued.
pub(crate) fn fragment(format: Format, sealed: &Sealed, draft: &Draft, chain: &str, now_ns: u64) -> String {
    match format {
        Format::Ndjson => format!("{}\n", sealed.text),
        Format::Otlp => otlp_log_record(sealed, draft, chain, now_ns),
    }
}

/// A checkpoint in the collector's format. Its text is one JSON object whose only member is
/// `checkpoint`, so that it is never taken for a record (records lead with `v`, `chain`, `seq`,
/// `prev`): `{"checkpoint":{"v":1,"chain":…,"seq":…,"head":…,"prev_alg":…,"time":…}}`.
pub(crate) fn checkpoint_fragment(format: Format, head: &Head<'_>, now_ns: u64) -> String {
    let text = json!({"checkpoint": {
        "v": super::VERSION,
        "chain": head.chain,
        "seq": head.seq,
        "head": head.head,
        "prev_alg": head.alg.as_str(),
        "time": rfc3339_millis(now_ns),
    }})
    .to_string();
    match format {
        Format::Ndjson => format!("{text}\n"),
        Format::Otlp => {
            let attributes = [
                string_attribute("event.name", CHECKPOINT_EVENT),
                string_attribute("zt.audit.chain", head.chain),
                int_attribute("zt.audit.seq", head.seq),
            ];
            let body = serde_json::to_string(&text).unwrap_or_else(|_| "\"\"".to_owned());
            format!(
                r#"{{"timeUnixNano":"{now_ns}","observedTimeUnixNano":"{now_ns}","severityNumber":9,"severityText":"INFO","body":{{"stringValue":{body}}},"attributes":[{}]}}"#,
                attributes.join(",")
            )
        }
    }
}

/// A batch body from queued fragments.
pub(crate) fn batch_body(format: Format, service_name: &str, fragments: &[&str]) -> Vec<u8> {
    match format {
        Format::Ndjson => fragments.concat().into_bytes(),
        Format::Otlp => {
            let resource = format!(r#"{{"attributes":[{}]}}"#, string_attribute("service.name", service_name));
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
/// lowerCamelCase; `traceId`/`spanId` are hex, as the OTLP JSON encoding specifies. Written
/// with `format!` around JSON-escaped strings: building a `serde_json::Value` first cost more
/// than the record itself.
fn otlp_log_record(sealed: &Sealed, draft: &Draft, chain: &str, now_ns: u64) -> String {
    // SeverityNumber: INFO = 9, WARN = 13 (OpenTelemetry logs data model).
    let (severity_number, severity_text) = if draft.outcome() == Outcome::Allow { (9, "INFO") } else { (13, "WARN") };
    let quoted = |text: &str| serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned());
    let mut attributes = vec![
        string_attribute("zt.audit.chain", chain),
        int_attribute("zt.audit.seq", sealed.seq),
        string_attribute("zt.audit.outcome", draft.outcome().as_str()),
        int_attribute("http.response.status_code", draft.status()),
    ];
    if let Some(method) = draft.method() {
        attributes.push(string_attribute("http.request.method", method));
    }
    // A well-formed traceparent's ids are lower-case hex (checked when the draft was made).
    let trace = draft
        .traceparent()
        .and_then(trace_ids)
        .map(|(trace, span)| format!(r#","traceId":"{trace}","spanId":"{span}""#))
        .unwrap_or_default();
    format!(
        r#"{{"timeUnixNano":"{}","observedTimeUnixNano":"{now_ns}","severityNumber":{severity_number},"severityText":"{severity_text}","body":{{"stringValue":{}}},"attributes":[{}]{trace}}}"#,
        draft.start_ns(),
        quoted(&sealed.text),
        attributes.join(","),
    )
}

fn string_attribute(key: &str, value: &str) -> String {
    json!({"key": key, "value": {"stringValue": value}}).to_string()
}

fn int_attribute(key: &str, value: u64) -> String {
    format!(r#"{{"key":"{key}","value":{{"intValue":"{value}"}}}}"#)
}
