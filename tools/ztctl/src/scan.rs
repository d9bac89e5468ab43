//! Finds zt-audit records in the three forms the audit spec lists (filters/zt-audit/README.md: Envoy
//! log, NDJSON, OTLP), detected line by line so that one stream may mix them:
//!
//! 1. an Envoy log line holding the marker `zt.audit.v1 `: the record is the rest of the line
//!    (less the `\tthread=N` that Istio's text `--log-format` appends); a log call with several
//!    records spreads them over lines, each starting with the marker. Under Istio's JSON
//!    `--log-format` a log line is a JSON object whose `msg` holds the message: its records are
//!    those of the message's lines. `kubectl logs --timestamps` prefixes either form;
//! 2. an NDJSON line that is a JSON object with a record key (`v`, `chain`, `seq`, `prev`);
//! 3. an OTLP/HTTP JSON `ExportLogsServiceRequest` (`resourceLogs`): each log record's
//!    `body.stringValue`, in order. One request per line, or spread over several lines
//!    (a pretty-printed export): a line opening a JSON value that ends on a later line.
//!
//! The text handed on is exactly the record's bytes as they appear (only the line end, `\n` or
//! `\r\n`, is cut), since the chain hashes that text. Any other line is ignored. This module
//! never judges a record: [`crate::record`] parses it, [`crate::chain`] checks the chain.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::rc::Rc;

use serde::Deserialize;
use serde_json::Value;

use crate::error::CliError;
use crate::record::RecordError;

/// The marker the audit filter writes before each record in Envoy's log.
pub const MARKER: &[u8] = b"zt.audit.v1 ";

/// Top-level keys that make a JSON object "look like a record": a line with one of them that is
/// not a valid record is a break, never silently skipped.
const RECORD_KEYS: [&str; 4] = ["v", "chain", "seq", "prev"];

/// Where a record was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file name as given; `<stdin>` for `-`.
    pub source: Rc<str>,
    /// 1-based; for a multi-line OTLP request, the line where it starts.
    pub line: usize,
    /// 1-based index of the log record within its OTLP request, counted across `resourceLogs`
    /// and `scopeLogs`; `None` for log and NDJSON lines.
    pub otlp_record: Option<usize>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.source, self.line)?;
        if let Some(index) = self.otlp_record {
            write!(f, " (OTLP log record {index})")?;
        }
        Ok(())
    }
}

/// One record (or checkpoint) candidate: its exact text, or why its text could not even be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub at: Location,
    pub text: Result<String, RecordError>,
    pub kind: Kind,
}

/// What a candidate is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Record,
    /// A chain checkpoint from the collector's copy: a JSON object whose only key is
    /// `checkpoint` (an NDJSON line, or the body of an OTLP log record).
    Checkpoint,
}

/// The top-level key of a checkpoint.
const CHECKPOINT_KEY: &str = "checkpoint";

fn is_checkpoint(object: &serde_json::Map<String, Value>) -> bool {
    object.len() == 1 && object.contains_key(CHECKPOINT_KEY)
}

/// Reads one input (`-`: standard input) and hands every record candidate to `sink`, in order.
pub fn scan_path(path: &str, sink: &mut dyn FnMut(Found)) -> Result<(), CliError> {
    let unreadable = |source| CliError::Unreadable { path: display_name(path).to_owned(), source };
    let name: Rc<str> = Rc::from(display_name(path));
    if path == "-" {
        let stdin = std::io::stdin();
        scan_reader(&name, stdin.lock(), sink).map_err(unreadable)
    } else {
        let file = File::open(path).map_err(unreadable)?;
        scan_reader(&name, BufReader::new(file), sink).map_err(unreadable)
    }
}

fn display_name(path: &str) -> &str {
    if path == "-" { "<stdin>" } else { path }
}

/// Line by line, streaming, until a line opens a JSON value that continues on later lines; only
/// then is the rest of the input read into memory, to parse such values whole.
pub fn scan_reader(name: &Rc<str>, mut reader: impl BufRead, sink: &mut dyn FnMut(Found)) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut line_no = 0;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            return Ok(());
        }
        line_no += 1;
        let at = Location { source: name.clone(), line: line_no, otlp_record: None };
        match classify(strip_line_end(&buf), &at) {
            Line::Found(found) => found.into_iter().for_each(&mut *sink),
            Line::Continues => {
                reader.read_to_end(&mut buf)?;
                scan_slice(name, &buf, line_no, sink);
                return Ok(());
            }
        }
    }
}

/// The same on text in memory that starts at line `first_line`: multi-line JSON values are parsed
/// whole, and their records located at the line where the value starts.
fn scan_slice(name: &Rc<str>, data: &[u8], first_line: usize, sink: &mut dyn FnMut(Found)) {
    let mut pos = 0;
    let mut line_no = first_line;
    while let Some(rest) = data.get(pos..).filter(|rest| !rest.is_empty()) {
        let line_len = rest.iter().position(|&b| b == b'\n').map_or(rest.len(), |i| i + 1);
        let line = strip_line_end(rest.get(..line_len).unwrap_or(rest));
        let at = Location { source: name.clone(), line: line_no, otlp_record: None };
        match classify(line, &at) {
            Line::Found(found) => found.into_iter().for_each(&mut *sink),
            Line::Continues => {
                let mut values = serde_json::Deserializer::from_slice(rest).into_iter::<Value>();
                if let Some(Ok(value)) = values.next() {
                    let consumed = values.byte_offset();
                    let text = rest.get(..consumed).unwrap_or(rest);
                    if let Value::Object(object) = value {
                        // A record is one line by contract; spread over lines it is not as emitted.
                        let spread = || Err(RecordError::SpreadOverLines);
                        object_records(object, &at, spread).into_iter().for_each(&mut *sink);
                    }
                    // Go on right after the value: the rest of its last line is read as a line of
                    // its own (usually empty), at the line number where the value ended.
                    line_no += text.iter().filter(|&&b| b == b'\n').count();
                    pos += consumed;
                    continue;
                }
                // Not a whole JSON value after all (a truncated line): judged as the line it is.
                broken_json(line, &at, None).into_iter().for_each(&mut *sink);
            }
        }
        pos += line_len;
        line_no += 1;
    }
}

enum Line {
    Found(Vec<Found>),
    /// The line opens a JSON value that does not end on it.
    Continues,
}

fn classify(line: &[u8], at: &Location) -> Line {
    // JSON lines first: an NDJSON record may hold the marker inside a value (a path), while an
    // Envoy log line starts with its `[timestamp]`, never with `{`.
    if line.trim_ascii_start().starts_with(b"{") {
        return match serde_json::from_slice::<Value>(line) {
            Ok(Value::Object(object)) => match json_log_message(&object) {
                Some(message) => Line::Found(message_records(message, at)),
                None => Line::Found(object_records(object, at, || text_of(line))),
            },
            Ok(_) => Line::Found(Vec::new()),
            Err(e) if e.is_eof() => Line::Continues,
            Err(e) => Line::Found(broken_json(line, at, Some(&e))),
        };
    }
    let Some(marker) = find(line, MARKER) else { return Line::Found(Vec::new()) };
    // A JSON log entry behind a prefix (`kubectl logs --timestamps`) holds the marker in its
    // message, escaped: read the entry, not the line.
    if let Some(open) = line.iter().position(|&b| b == b'{').filter(|&open| open < marker)
        && let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(line.get(open..).unwrap_or_default())
        && let Some(message) = json_log_message(&object)
    {
        return Line::Found(message_records(message, at));
    }
    let record = line.get(marker + MARKER.len()..).unwrap_or_default();
    Line::Found(vec![Found { at: at.clone(), text: text_of(without_thread_suffix(record)), kind: Kind::Record }])
}

/// The message of an application log entry in JSON (Istio's `--log-format`, whose `msg` is
/// Envoy's `%j`) when it holds records.
fn json_log_message(object: &serde_json::Map<String, Value>) -> Option<&str> {
    let message = object.get("msg").and_then(Value::as_str)?;
    find(message.as_bytes(), MARKER).map(|_| message)
}

/// The records of one log message: a log call writes several, a line each after the marker.
fn message_records(message: &str, at: &Location) -> Vec<Found> {
    let lines = message.lines().map(str::as_bytes);
    let records = lines.filter_map(|line| find(line, MARKER).and_then(|i| line.get(i + MARKER.len()..)));
    records.map(|record| Found { at: at.clone(), text: text_of(record), kind: Kind::Record }).collect()
}

/// The record without the `\tthread=<id>` Istio's text `--log-format`
/// (`%Y-%m-%dT%T.%fZ\t%l\tenvoy %n %g:%#\t%v\tthread=%t`) puts after a message: a record never
/// ends so (a tab inside a record is escaped as `\t`), so nothing of a record is cut.
fn without_thread_suffix(record: &[u8]) -> &[u8] {
    let Some(tab) = record.iter().rposition(|&b| b == b'\t') else { return record };
    let suffix = record.get(tab + 1..).unwrap_or_default();
    match suffix.strip_prefix(b"thread=") {
        Some(id) if !id.is_empty() && id.iter().all(u8::is_ascii_digit) => record.get(..tab).unwrap_or(record),
        _ => record,
    }
}

/// The records a JSON object holds: itself when it has a record key, those of an OTLP request.
fn object_records(
    object: serde_json::Map<String, Value>,
    at: &Location,
    own_text: impl FnOnce() -> Result<String, RecordError>,
) -> Vec<Found> {
    if object.contains_key("resourceLogs") || object.contains_key("resource_logs") {
        return otlp_records(Value::Object(object), at);
    }
    if RECORD_KEYS.iter().any(|key| object.contains_key(*key)) {
        return vec![Found { at: at.clone(), text: own_text(), kind: Kind::Record }];
    }
    if is_checkpoint(&object) {
        return vec![Found { at: at.clone(), text: own_text(), kind: Kind::Checkpoint }];
    }
    Vec::new()
}

/// A line that starts like JSON but is not: a record candidate only if it reads like one.
fn broken_json(line: &[u8], at: &Location, error: Option<&serde_json::Error>) -> Vec<Found> {
    if !looks_like_record(line) {
        return Vec::new();
    }
    let detail = error.map_or_else(|| "the JSON value does not end".to_owned(), ToString::to_string);
    vec![Found { at: at.clone(), text: Err(RecordError::NotJson { detail }), kind: Kind::Record }]
}

/// Text that is not valid JSON but names a record key, as the filter writes them (`{"v":` first).
fn looks_like_record(text: &[u8]) -> bool {
    let text = text.trim_ascii_start();
    text.starts_with(b"{\"v\"") || find(text, b"\"chain\"").is_some() || find(text, b"\"prev\"").is_some()
}

/// OTLP's JSON encoding of `ExportLogsServiceRequest`, only the fields leading to the bodies.
/// Unknown fields are ignored on purpose (no `deny_unknown_fields`): OTLP messages carry many
/// fields this tool does not read, and the protobuf JSON mapping requires readers to skip
/// unknown ones. Field names also in their proto spelling, which that mapping allows.
#[derive(Deserialize)]
struct ExportLogsServiceRequest {
    #[serde(default, rename = "resourceLogs", alias = "resource_logs")]
    resource_logs: Vec<ResourceLogs>,
}

#[derive(Deserialize)]
struct ResourceLogs {
    #[serde(default, rename = "scopeLogs", alias = "scope_logs")]
    scope_logs: Vec<ScopeLogs>,
}

#[derive(Deserialize)]
struct ScopeLogs {
    #[serde(default, rename = "logRecords", alias = "log_records")]
    log_records: Vec<LogRecord>,
}

#[derive(Deserialize)]
struct LogRecord {
    #[serde(default)]
    body: Option<AnyValue>,
}

#[derive(Deserialize)]
struct AnyValue {
    #[serde(default, rename = "stringValue", alias = "string_value")]
    string_value: Option<String>,
}

fn otlp_records(request: Value, at: &Location) -> Vec<Found> {
    let request: ExportLogsServiceRequest = match serde_json::from_value(request) {
        Ok(request) => request,
        Err(e) => {
            let text = Err(RecordError::OtlpInvalid { detail: e.to_string() });
            return vec![Found { at: at.clone(), text, kind: Kind::Record }];
        }
    };
    let log_records = request.resource_logs.into_iter().flat_map(|r| r.scope_logs).flat_map(|s| s.log_records);
    let mut found = Vec::new();
    for (i, log_record) in log_records.enumerate() {
        // Other log records may share the export (Envoy access logs): only records are taken.
        let Some(text) = log_record.body.and_then(|body| body.string_value) else { continue };
        let at = Location { otlp_record: Some(i + 1), ..at.clone() };
        if let Some(kind) = body_kind(&text) {
            found.push(Found { at, text: Ok(text), kind });
        }
    }
    found
}

/// What an OTLP log record's body is: a record, a checkpoint, or neither (another log).
fn body_kind(text: &str) -> Option<Kind> {
    if !text.trim_start().starts_with('{') {
        return None;
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(object)) if RECORD_KEYS.iter().any(|key| object.contains_key(*key)) => Some(Kind::Record),
        Ok(Value::Object(object)) if is_checkpoint(&object) => Some(Kind::Checkpoint),
        Ok(_) => None,
        Err(_) => looks_like_record(text.as_bytes()).then_some(Kind::Record),
    }
}

fn text_of(bytes: &[u8]) -> Result<String, RecordError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| RecordError::NotUtf8)
}

/// Cuts `\n` and then one `\r` (a log written with CRLF line ends); nothing else.
fn strip_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(input: &str) -> Vec<Found> {
        let mut found = Vec::new();
        scan_reader(&Rc::from("t"), input.as_bytes(), &mut |f| found.push(f)).unwrap();
        found
    }

    fn texts(input: &str) -> Vec<(usize, Option<usize>, Result<String, RecordError>)> {
        scan(input)
            .into_iter()
            .filter(|f| f.kind == Kind::Record)
            .map(|f| (f.at.line, f.at.otlp_record, f.text))
            .collect()
    }

    #[test]
    fn checkpoints_are_found_apart_from_records_in_ndjson_and_otlp() {
        let checkpoint = r#"{"checkpoint":{"v":1,"chain":"c","seq":0}}"#;
        let input = format!("{REC}\n{checkpoint}\n{{\"checkpoint\":1,\"v\":1}}\n{}\n", otlp(&[REC, checkpoint]));
        let found: Vec<(usize, Option<usize>, Kind)> =
            scan(&input).into_iter().map(|f| (f.at.line, f.at.otlp_record, f.kind)).collect();
        assert_eq!(
            found,
            vec![
                (1, None, Kind::Record),
                (2, None, Kind::Checkpoint),
                // With a record key besides, it is a (malformed) record, never skipped.
                (3, None, Kind::Record),
                (4, Some(1), Kind::Record),
                (4, Some(2), Kind::Checkpoint),
            ]
        );
        assert_eq!(scan(&input)[1].text, Ok(checkpoint.to_owned()));
    }

    const REC: &str = r#"{"v":1,"chain":"c","seq":0}"#;
    const REC2: &str = r#"{"v":1,"chain":"c","seq":1,"path":"/a\tb"}"#;

    /// Envoy 1.40 run with Istio's text `--log-format`: a log call of two records, one line each,
    /// the thread after the last.
    #[test]
    fn istio_text_format_records_lose_the_thread_suffix_only() {
        let input = format!(
            "2026-12-07T10:00:00.123456Z\twarning\tenvoy wasm external/envoy/source/extensions/common/wasm/context.cc:1151\t\
             wasm log zt-suite zt-suite: zt.audit.v1 {REC}\nzt.audit.v1 {REC2}\tthread=21\n"
        );
        assert_eq!(texts(&input), vec![(1, None, Ok(REC.to_owned())), (2, None, Ok(REC2.to_owned()))]);
        // Only Istio's suffix: anything else after a record stays, for the record check to judge.
        assert_eq!(texts(&format!("zt.audit.v1 {REC}\tthread=x\n"))[0].2, Ok(format!("{REC}\tthread=x")));
    }

    /// Istio's JSON `--log-format`: the message (two records of one log call) escaped in `msg`,
    /// also behind `kubectl logs --timestamps`.
    #[test]
    fn istio_json_format_records_come_from_the_message() {
        let message = format!("wasm log zt-suite zt-suite: zt.audit.v1 {REC}\nzt.audit.v1 {REC2}");
        let entry = serde_json::json!({"level": "warning", "time": "2026-12-07T10:00:00.123456Z", "scope": "envoy wasm",
            "msg": message, "caller": "external/envoy/source/extensions/common/wasm/context.cc:1151", "thread": 21});
        let expected = vec![(1, None, Ok(REC.to_owned())), (1, None, Ok(REC2.to_owned()))];
        assert_eq!(texts(&format!("{entry}\n")), expected);
        assert_eq!(texts(&format!("2026-12-07T10:00:00.123456789Z {entry}\n")), expected);
        // Another JSON log entry is no record.
        assert!(texts(r#"{"level":"info","msg":"starting","thread":1}"#).is_empty());
    }

    #[test]
    fn envoy_log_lines_give_the_text_after_the_marker() {
        let log = format!(
            "[2026-11-23 19:56:31.123][1][info][main] starting\n\
             [2026-11-23 19:56:31.123][1234][info][wasm] [context.cc:1192] wasm log zt-audit zt-audit: zt.audit.v1 {REC}\r\n\
             unrelated zt.audit.v2 {{}}\n"
        );
        assert_eq!(texts(&log), vec![(2, None, Ok(REC.to_owned()))]);
    }

    #[test]
    fn the_first_marker_counts_and_the_rest_of_the_line_is_kept_verbatim() {
        let line = r#"[x] zt.audit.v1 {"v":1,"path":"/zt.audit.v1 x"}  "#;
        assert_eq!(texts(line), vec![(1, None, Ok(r#"{"v":1,"path":"/zt.audit.v1 x"}  "#.to_owned()))]);
    }

    #[test]
    fn ndjson_lines_are_records_when_they_have_a_record_key() {
        let input = format!("{REC}\n{{\"other\":1}}\n[1,2]\n{{\"seq\":3}}\n");
        assert_eq!(texts(&input), vec![(1, None, Ok(REC.to_owned())), (4, None, Ok(r#"{"seq":3}"#.to_owned()))]);
    }

    #[test]
    fn an_ndjson_record_may_hold_the_marker_in_a_value() {
        let line = r#"{"v":1,"path":"/a zt.audit.v1 b"}"#;
        assert_eq!(texts(line), vec![(1, None, Ok(line.to_owned()))]);
    }

    #[test]
    fn broken_json_that_reads_like_a_record_is_reported() {
        let found = texts("{\"v\":1,\"chain\":\"c\"]\n{not json at all]\n");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, 1);
        assert!(matches!(&found[0].2, Err(RecordError::NotJson { .. })), "{found:?}");
    }

    #[test]
    fn non_utf8_after_the_marker_is_reported() {
        let mut input = b"[x] zt.audit.v1 {\"v\":1,\"p\":\"".to_vec();
        input.extend_from_slice(&[0xff, b'"', b'}', b'\n']);
        let mut found = Vec::new();
        scan_reader(&Rc::from("t"), input.as_slice(), &mut |f| found.push(f)).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].text, Err(RecordError::NotUtf8));
    }

    fn otlp(bodies: &[&str]) -> String {
        let records: Vec<Value> =
            bodies.iter().map(|b| serde_json::json!({"timeUnixNano": "1", "body": {"stringValue": b}})).collect();
        serde_json::json!({"resourceLogs": [{"resource": {"attributes": []},
            "scopeLogs": [{"scope": {"name": "zt-audit"}, "logRecords": records}]}]})
        .to_string()
    }

    #[test]
    fn otlp_lines_give_each_string_body_in_order() {
        let second = r#"{"v":1,"chain":"c","seq":1}"#;
        let input = format!("{}\n{}\n", otlp(&[REC, "GET /x 200", second]), otlp(&[second]));
        assert_eq!(
            texts(&input),
            vec![
                (1, Some(1), Ok(REC.to_owned())),
                (1, Some(3), Ok(second.to_owned())),
                (2, Some(1), Ok(second.to_owned()))
            ]
        );
    }

    #[test]
    fn a_pretty_printed_otlp_file_is_parsed_whole() {
        let one: Value = serde_json::from_str(&otlp(&[REC])).unwrap();
        let pretty = serde_json::to_string_pretty(&one).unwrap();
        let input = format!("[log] start\n{pretty}\n{pretty}\n[x] zt.audit.v1 {REC}\n");
        let lines_per_doc = pretty.lines().count();
        assert_eq!(
            texts(&input),
            vec![
                (2, Some(1), Ok(REC.to_owned())),
                (2 + lines_per_doc, Some(1), Ok(REC.to_owned())),
                (2 + 2 * lines_per_doc, None, Ok(REC.to_owned()))
            ]
        );
    }

    #[test]
    fn a_truncated_last_line_is_reported_where_it_starts() {
        let input = format!("{REC}\n{{\"v\":1,\"chain\":\"c\",\"se");
        let found = texts(&input);
        assert_eq!(found.len(), 2);
        assert_eq!(found[1].0, 2);
        assert!(matches!(&found[1].2, Err(RecordError::NotJson { .. })), "{found:?}");
    }

    #[test]
    fn a_record_spread_over_lines_is_reported() {
        let found = texts("{\"v\":1,\n\"chain\":\"c\"}\n");
        assert_eq!(found, vec![(1, None, Err(RecordError::SpreadOverLines))]);
    }

    #[test]
    fn a_bad_otlp_shape_is_reported() {
        let found = texts(r#"{"resourceLogs": "nope"}"#);
        assert!(matches!(&found[..], [(1, None, Err(RecordError::OtlpInvalid { .. }))]), "{found:?}");
    }

    #[test]
    fn locations_read_as_file_line_and_otlp_index() {
        let at = Location { source: Rc::from("a.log"), line: 7, otlp_record: None };
        assert_eq!(at.to_string(), "a.log:7");
        assert_eq!(Location { otlp_record: Some(2), ..at }.to_string(), "a.log:7 (OTLP log record 2)");
    }
}
