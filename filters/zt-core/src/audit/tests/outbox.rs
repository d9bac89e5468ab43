use serde_json::{Value, json};
use wasm_bindgen_test::wasm_bindgen_test;

use super::{allowed_facts, config};
use crate::audit::{AuditConfig, Chain, Dropped, Outbox};

const MS: u64 = 1_000_000;

fn outbox(collector: Value) -> (AuditConfig, Outbox, Chain) {
    let config = config(json!({"collector": collector}));
    let outbox = Outbox::new(config.collector().unwrap());
    (config, outbox, Chain::new([3; 16]))
}

fn push(config: &AuditConfig, outbox: &mut Outbox, chain: &mut Chain, now_ms: u64) -> Option<Dropped> {
    let draft = config.draft(&allowed_facts());
    let sealed = chain.seal(&draft);
    outbox.push(&sealed, &draft, chain.id(), now_ms * MS)
}

#[wasm_bindgen_test(unsupported = test)]
fn sends_a_batch_when_full_or_old_enough() {
    let (config, mut outbox, mut chain) = outbox(json!({"cluster": "c", "batch_records": 3, "batch_age_ms": 100}));
    push(&config, &mut outbox, &mut chain, 0);
    push(&config, &mut outbox, &mut chain, 0);
    assert!(outbox.take_batch(50).is_none(), "two records, 50 ms old");
    push(&config, &mut outbox, &mut chain, 50);
    let batch = outbox.take_batch(50).unwrap();
    assert_eq!(batch.records, 3);
    push(&config, &mut outbox, &mut chain, 60);
    assert!(outbox.take_batch(500).is_none(), "one export in flight at a time");
    assert_eq!(outbox.delivered(), 3);
    assert!(outbox.take_batch(100).is_none(), "40 ms old");
    assert_eq!(outbox.take_batch(160).unwrap().records, 1);
}

#[wasm_bindgen_test(unsupported = test)]
fn an_otlp_batch_is_an_export_logs_service_request() {
    let (config, mut outbox, mut chain) = outbox(json!({"cluster": "c", "batch_records": 2, "service_name": "edge"}));
    push(&config, &mut outbox, &mut chain, 0);
    push(&config, &mut outbox, &mut chain, 0);
    let body: Value = serde_json::from_slice(&outbox.take_batch(0).unwrap().body).unwrap();
    let resource = &body["resourceLogs"][0];
    assert_eq!(resource["resource"]["attributes"][0], json!({"key": "service.name", "value": {"stringValue": "edge"}}));
    assert_eq!(resource["scopeLogs"][0]["scope"]["name"], "zt-audit");
    let records = resource["scopeLogs"][0]["logRecords"].as_array().unwrap();
    assert_eq!(records.len(), 2);
    let first = &records[0];
    assert_eq!(first["timeUnixNano"], "1795463791123000000");
    assert_eq!(first["severityNumber"], 9);
    assert_eq!(first["traceId"], "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(first["spanId"], "b7ad6b7169203331");
    let text = first["body"]["stringValue"].as_str().unwrap();
    let record: Value = serde_json::from_str(text).unwrap();
    assert_eq!(record["seq"], 0);
    assert!(
        first["attributes"].as_array().unwrap().contains(&json!({"key": "zt.audit.seq", "value": {"intValue": "0"}}))
    );
    assert_eq!(serde_json::from_str::<Value>(records[1]["body"]["stringValue"].as_str().unwrap()).unwrap()["seq"], 1);
}

#[wasm_bindgen_test(unsupported = test)]
fn an_ndjson_batch_is_the_records_one_per_line() {
    let (config, mut outbox, mut chain) = outbox(json!({"cluster": "c", "format": "ndjson", "batch_records": 2}));
    push(&config, &mut outbox, &mut chain, 0);
    push(&config, &mut outbox, &mut chain, 0);
    let body = String::from_utf8(outbox.take_batch(0).unwrap().body).unwrap();
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[1].starts_with(r#"{"v":1,"#) && body.ends_with('\n'));
}

#[wasm_bindgen_test(unsupported = test)]
fn a_failed_export_is_retried_after_a_back_off_in_order() {
    let (config, mut outbox, mut chain) = outbox(json!({"cluster": "c", "batch_records": 2, "batch_age_ms": 100}));
    for _ in 0..3 {
        push(&config, &mut outbox, &mut chain, 0);
    }
    assert_eq!(outbox.take_batch(0).unwrap().records, 2);
    assert_eq!(outbox.failed(10), None);
    assert_eq!(outbox.waiting(), 3);
    assert!(outbox.take_batch(50).is_none(), "backing off");
    let retry: Value = serde_json::from_slice(&outbox.take_batch(110).unwrap().body).unwrap();
    let seq = |i: usize| {
        let text = retry["resourceLogs"][0]["scopeLogs"][0]["logRecords"][i]["body"]["stringValue"].as_str().unwrap();
        serde_json::from_str::<Value>(text).unwrap()["seq"].as_u64().unwrap()
    };
    assert_eq!((seq(0), seq(1)), (0, 1), "the failed batch first, in order");
}

#[wasm_bindgen_test(unsupported = test)]
fn drops_the_oldest_when_full_and_the_expired() {
    let (config, mut outbox, mut chain) = outbox(
        json!({"cluster": "c", "batch_records": 2, "queue_records": 4, "batch_age_ms": 100, "drop_after_ms": 1000}),
    );
    for _ in 0..4 {
        assert_eq!(push(&config, &mut outbox, &mut chain, 0), None);
    }
    assert_eq!(push(&config, &mut outbox, &mut chain, 0), Some(Dropped { count: 1, first_seq: 0, last_seq: 0 }));
    assert_eq!(outbox.take_batch(0).unwrap().records, 2);
    // Waiting: seq 3, 4; three more make five, one over the bound: seq 3 goes.
    push(&config, &mut outbox, &mut chain, 500);
    push(&config, &mut outbox, &mut chain, 500);
    assert_eq!(push(&config, &mut outbox, &mut chain, 500), Some(Dropped { count: 1, first_seq: 3, last_seq: 3 }));
    // The two in flight (seq 1, 2) fail and come back first: six waiting, room for four.
    assert_eq!(outbox.failed(600), Some(Dropped { count: 2, first_seq: 1, last_seq: 2 }));
    assert_eq!(outbox.waiting(), 4);
    // Records queued at 0 ms (seq 4) are older than 1000 ms at 1200 ms; those from 500 ms are not.
    assert_eq!(outbox.expire(1200), Some(Dropped { count: 1, first_seq: 4, last_seq: 4 }));
    assert_eq!(outbox.waiting(), 3);
}
