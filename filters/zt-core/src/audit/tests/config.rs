use serde_json::json;
use wasm_bindgen_test::wasm_bindgen_test;

use crate::audit::{AuditConfig, Format, RecordLogLevel};

fn error_path(json: serde_json::Value) -> String {
    AuditConfig::from_json(json.to_string().as_bytes()).unwrap_err().path
}

#[wasm_bindgen_test(unsupported = test)]
fn an_empty_configuration_logs_every_request() {
    let config = AuditConfig::from_json(b"{}").unwrap();
    assert!(config.log() && config.collector().is_none());
    assert_eq!(config.log_batch().check_every_ms(), Some(100), "32 records or 200 ms per log call");
    assert_eq!(config.log_level(), RecordLogLevel::Info);
}

#[wasm_bindgen_test(unsupported = test)]
fn records_can_be_written_at_the_level_istios_proxies_keep() {
    let config = AuditConfig::from_json(br#"{"log_level": "warning"}"#).unwrap();
    assert_eq!(config.log_level(), RecordLogLevel::Warning);
    assert!(RecordLogLevel::Info < RecordLogLevel::Warning && RecordLogLevel::Warning < RecordLogLevel::Error);
    assert_eq!(error_path(json!({"log_level": "debug"})), "log_level");
}

#[wasm_bindgen_test(unsupported = test)]
fn collector_defaults() {
    let config = AuditConfig::from_json(br#"{"collector": {"cluster": "otel"}}"#).unwrap();
    let c = config.collector().unwrap();
    assert_eq!((c.format, c.path.as_str(), c.authority.as_str()), (Format::Otlp, "/v1/logs", "otel"));
    assert_eq!((c.batch_records, c.batch_age_ms, c.queue_records, c.timeout_ms), (100, 1000, 10_000, 5000));
    let config = AuditConfig::from_json(br#"{"collector": {"cluster": "c", "format": "ndjson"}}"#).unwrap();
    assert_eq!(config.collector().unwrap().path, "/");
}

#[wasm_bindgen_test(unsupported = test)]
fn refuses_bad_values_naming_the_field() {
    let cases = [
        (json!({"sample_allowed": 1.5}), "sample_allowed"),
        (json!({"sample_allowd": 1.0}), "sample_allowd"),
        (json!({"query": "sometimes"}), "query"),
        (json!({"log_batch_records": 0}), "log_batch_records"),
        (json!({"log_batch_records": 5_000_000_000_u64}), "log_batch_records"),
        (json!({"log_batch_age_ms": 5}), "log_batch_age_ms"),
        (json!({"headers": ["bad header"]}), "headers[0]"),
        (json!({"headers": [":path"]}), "headers[0]"),
        (json!({"redact_headers": ["ok", ""]}), "redact_headers[1]"),
        (json!({"redact_query_params": [""]}), "redact_query_params[0]"),
        (json!({"identity": {"claims": ["sub"]}}), "identity.claims[0]"),
        (json!({"identity": {"hash": ["email"]}}), "identity.hash[0]"),
        (json!({"identity": {"hash": ["sub"]}}), "identity.hash_key"),
        (json!({"identity": {"hash": ["sub"], "hash_key": "short"}}), "identity.hash_key"),
        (json!({"identity": {"omit": ["email"]}}), "identity.omit[0]"),
        (json!({"identity": {"omit": ["sub"], "hash": ["sub"], "hash_key": "k".repeat(32)}}), "identity.omit[0]"),
        (json!({"collector": {}}), "collector"),
        (json!({"collector": {"cluster": ""}}), "collector.cluster"),
        (json!({"collector": {"cluster": "c", "format": "xml"}}), "collector.format"),
        (json!({"collector": {"cluster": "c", "path": "v1/logs"}}), "collector.path"),
        (json!({"collector": {"cluster": "c", "batch_records": 0}}), "collector.batch_records"),
        (json!({"collector": {"cluster": "c", "batch_records": 50, "queue_records": 10}}), "collector.queue_records"),
        (json!({"collector": {"cluster": "c", "batch_age_ms": 5}}), "collector.batch_age_ms"),
        (json!({"collector": {"cluster": "c", "drop_after_ms": 100}}), "collector.drop_after_ms"),
        (json!({"collector": {"cluster": "c", "timeout_ms": 0}}), "collector.timeout_ms"),
        (json!({"collector": {"cluster": "c", "headers": {"content-type": "x"}}}), "collector.headers.content-type"),
        (json!({"collector": {"cluster": "c", "service_name": ""}}), "collector.service_name"),
        (json!({"routes": [{"name": "a", "sample_allowed": -0.1}]}), "routes[0].sample_allowed"),
        (json!({"routes": [{"name": "a b"}]}), "routes[0].name"),
        (json!({"routes": [{"name": "a"}, {"name": "a"}]}), "routes[1].name"),
    ];
    for (json, path) in cases {
        assert_eq!(error_path(json.clone()), path, "{json}");
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn debug_output_never_shows_collector_headers() {
    let config =
        AuditConfig::from_json(br#"{"collector": {"cluster": "c", "headers": {"x-api-key": "SECRET"}}}"#).unwrap();
    assert!(!format!("{config:?}").contains("SECRET"));
}
