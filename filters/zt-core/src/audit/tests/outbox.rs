use serde_json::{Value, json};
use wasm_bindgen_test::wasm_bindgen_test;

use super::{allowed_facts, config};
use crate::audit::chain::hex;
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
    outbox.push(&sealed, &draft, chain, now_ms * MS)
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

#[wasm_bindgen_test(unsupported = test)]
fn the_queue_is_bounded_in_bytes_dropping_the_oldest() {
    const BOUND: usize = 65_536;
    let (config, mut outbox, mut chain) = outbox(json!({
        "cluster": "c", "format": "ndjson", "batch_records": 10, "queue_records": 1000, "queue_bytes": BOUND,
        "checkpoint_records": 1_000_000
    }));
    // Records differ by a byte or two (the width of `seq`): each one's size is measured.
    let mut sizes = Vec::new();
    let first_drop = loop {
        let before = outbox.bytes();
        let dropped = push(&config, &mut outbox, &mut chain, 0);
        assert!(outbox.bytes() <= BOUND, "{} bytes", outbox.bytes());
        if dropped.is_some() {
            break dropped;
        }
        sizes.push(outbox.bytes() - before);
    };
    assert!(sizes.len() > 50 && sizes.len() < 100, "{} records fit", sizes.len());
    assert_eq!(first_drop, Some(Dropped { count: 1, first_seq: 0, last_seq: 0 }), "the oldest goes");
    assert_eq!(outbox.waiting(), sizes.len(), "one in, one out");
    // A batch in flight still counts (its bytes are held until the collector answers) but is
    // never dropped from: the oldest WAITING record goes.
    assert_eq!(outbox.take_batch(0).unwrap().records, 10);
    let in_flight: usize = sizes[1..=10].iter().sum();
    let dropped = loop {
        if let Some(dropped) = push(&config, &mut outbox, &mut chain, 0) {
            break dropped;
        }
    };
    assert_eq!(dropped.first_seq, 11, "{dropped:?}");
    assert!(outbox.bytes() <= BOUND);
    let before = outbox.bytes();
    assert_eq!(outbox.delivered(), 10);
    assert_eq!(outbox.bytes(), before - in_flight);
}

#[wasm_bindgen_test(unsupported = test)]
fn a_record_larger_than_the_byte_bound_is_dropped_not_queued() {
    let (config, mut outbox, mut chain) = outbox(json!({"cluster": "c", "format": "ndjson", "queue_bytes": 65_536}));
    let mut facts = allowed_facts();
    facts.headers.push(("user-agent".into(), vec![b'x'; 70_000]));
    // Build with a configuration that copies the header, so that the record itself is large.
    let big = crate::audit::AuditConfig::from_json(br#"{"headers": ["user-agent"]}"#).unwrap().draft(&facts);
    push(&config, &mut outbox, &mut chain, 0);
    let sealed = chain.seal(&big);
    assert_eq!(outbox.push(&sealed, &big, &chain, 0), Some(Dropped { count: 1, first_seq: 1, last_seq: 1 }));
    assert_eq!(outbox.waiting(), 1, "the record before stays");
    assert!(outbox.bytes() < 65_536);
}

#[wasm_bindgen_test(unsupported = test)]
fn queue_bytes_default_and_range() {
    let config = super::config(json!({"collector": {"cluster": "c"}}));
    assert_eq!(config.collector().unwrap().queue_bytes, 8 << 20);
    for bad in [65_535u64, (1 << 30) + 1] {
        let error =
            AuditConfig::from_json(json!({"collector": {"cluster": "c", "queue_bytes": bad}}).to_string().as_bytes())
                .unwrap_err();
        assert_eq!(error.path, "collector.queue_bytes");
    }
}

fn ndjson_lines(batch: &crate::audit::Batch) -> Vec<Value> {
    std::str::from_utf8(&batch.body).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[wasm_bindgen_test(unsupported = test)]
fn a_checkpoint_follows_every_n_records_with_the_chain_head() {
    let (config, mut outbox, mut chain) = outbox(
        json!({"cluster": "c", "format": "ndjson", "batch_records": 10, "checkpoint_records": 3, "batch_age_ms": 10}),
    );
    let mut texts = Vec::new();
    for _ in 0..4 {
        let draft = config.draft(&allowed_facts());
        let sealed = chain.seal(&draft);
        texts.push(sealed.text.clone());
        assert_eq!(outbox.push(&sealed, &draft, &chain, 0), None);
    }
    let batch = outbox.take_batch(10).unwrap();
    assert_eq!(batch.records, 4, "a checkpoint is not a record");
    let lines = ndjson_lines(&batch);
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[2]["seq"], 2);
    let checkpoint = &lines[3]["checkpoint"];
    assert_eq!(lines[3].as_object().unwrap().len(), 1, "only the `checkpoint` member: {}", lines[3]);
    assert_eq!(checkpoint["chain"], chain.id());
    assert_eq!(checkpoint["seq"], 2);
    assert_eq!(checkpoint["prev_alg"], "sha256");
    assert_eq!(checkpoint["v"], 1);
    assert_eq!(checkpoint["time"], "1970-01-01T00:00:00.000Z");
    // The head is what record 3's `prev` says of record 2.
    let head = hex(&<sha2::Sha256 as sha2::Digest>::digest(texts[2].as_bytes()));
    assert_eq!(checkpoint["head"], head.as_str());
    assert_eq!(lines[4]["prev"], head.as_str());
    assert_eq!(outbox.delivered(), 4);
}

#[wasm_bindgen_test(unsupported = test)]
fn a_checkpoint_is_due_on_the_timer_when_records_came_since_the_last() {
    let (config, mut outbox, mut chain) =
        outbox(json!({"cluster": "c", "format": "ndjson", "batch_records": 100, "checkpoint_interval_ms": 1000}));
    assert_eq!(outbox.checkpoint_due(&chain, 5000 * MS), None);
    assert_eq!(outbox.waiting(), 0, "no records, no checkpoint");
    push(&config, &mut outbox, &mut chain, 100);
    push(&config, &mut outbox, &mut chain, 600);
    outbox.checkpoint_due(&chain, 1099 * MS);
    assert_eq!(outbox.waiting(), 2, "the first record is 999 ms old");
    outbox.checkpoint_due(&chain, 1100 * MS);
    assert_eq!(outbox.waiting(), 3);
    outbox.checkpoint_due(&chain, 9000 * MS);
    assert_eq!(outbox.waiting(), 3, "nothing new since the checkpoint");
    let lines = ndjson_lines(&outbox.take_batch(9000).unwrap());
    assert_eq!(
        (lines[2]["checkpoint"]["seq"].as_u64(), lines[2]["checkpoint"]["time"].as_str()),
        (Some(1), Some("1970-01-01T00:00:01.100Z"))
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn a_keyed_checkpoint_in_otlp_is_an_event_with_the_hmac_head() {
    let config =
        super::config(json!({"chain_key": {"env": "K"}, "collector": {"cluster": "c", "checkpoint_records": 1}}));
    let key = b"0123456789abcdef0123456789abcdef".to_vec();
    let mut chain = config.chain([5; 16], |_| Some(key.clone())).unwrap();
    let mut outbox = Outbox::new(config.collector().unwrap());
    let draft = config.draft(&allowed_facts());
    let sealed = chain.seal(&draft);
    outbox.push(&sealed, &draft, &chain, 7 * MS);
    let body: Value = serde_json::from_slice(&outbox.take_batch(5000).unwrap().body).unwrap();
    let records = body["resourceLogs"][0]["scopeLogs"][0]["logRecords"].as_array().unwrap().clone();
    assert_eq!(records.len(), 2);
    let attributes = records[1]["attributes"].as_array().unwrap();
    assert!(attributes.contains(&json!({"key": "event.name", "value": {"stringValue": "zt.audit.checkpoint"}})));
    assert!(attributes.contains(&json!({"key": "zt.audit.seq", "value": {"intValue": "0"}})));
    assert_eq!(records[1]["timeUnixNano"], "7000000");
    let checkpoint: Value = serde_json::from_str(records[1]["body"]["stringValue"].as_str().unwrap()).unwrap();
    assert_eq!(checkpoint["checkpoint"]["prev_alg"], "hmac-sha256");
    let mac = hex(&hmac_sha256::HMAC::mac(sealed.text.as_bytes(), &key));
    assert_eq!(checkpoint["checkpoint"]["head"], mac.as_str());
}

#[wasm_bindgen_test(unsupported = test)]
fn dropped_checkpoints_are_not_counted_as_records() {
    let (config, mut outbox, mut chain) = outbox(json!({
        "cluster": "c", "batch_records": 2, "queue_records": 3, "checkpoint_records": 2, "drop_after_ms": 1000
    }));
    // r0 r1 cp1 r2: four entries, one over the bound: r0 goes.
    push(&config, &mut outbox, &mut chain, 0);
    push(&config, &mut outbox, &mut chain, 0);
    assert_eq!(push(&config, &mut outbox, &mut chain, 0), Some(Dropped { count: 1, first_seq: 0, last_seq: 0 }));
    // r1 goes, then the checkpoint: only r1 counts.
    assert_eq!(push(&config, &mut outbox, &mut chain, 0), Some(Dropped { count: 1, first_seq: 1, last_seq: 1 }));
    assert_eq!(outbox.expire(1000), Some(Dropped { count: 2, first_seq: 2, last_seq: 3 }));
    assert_eq!((outbox.waiting(), outbox.bytes()), (0, 0));
}
