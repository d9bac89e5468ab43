//! What one request costs the audit core natively: building the record from the stream's facts
//! (identity and three decisions parsed from filter state, redaction, timestamp), chaining it
//! (JSON encoding and SHA-256), and encoding it for the collector (OTLP/HTTP JSON log record).
//! Prints the record's size. Run with `make bench-core` (or `cargo bench -p zt-core --bench audit`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
criterion::criterion_main!(native::benches);

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::hint::black_box;

    use criterion::{Criterion, criterion_group};
    use serde_json::json;
    use zt_core::audit::{AuditConfig, Chain, Handed, HandedIdentity, Outbox, StreamFacts};

    /// A request the whole chain allowed, as the adapter reads it in Envoy.
    fn facts() -> StreamFacts {
        let identity = json!({
            "provider": "corp", "iss": "https://issuer.example", "sub": "alice", "aud": ["api"],
            "scopes": ["orders:read", "orders:write"], "exp": 1_795_467_391u64,
            "claims": {"iss": "https://issuer.example", "sub": "alice", "aud": "api", "azp": "web",
                       "scope": "orders:read orders:write", "exp": 1_795_467_391u64, "iat": 1_795_463_791u64}
        });
        StreamFacts {
            start_ns: Some(1_795_463_791_123_000_000),
            now_ns: 1_795_463_791_126_000_000,
            request_id: Some("5e1c2a9d-aaaa-4bbb-8ccc-0123456789ab".into()),
            traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
            source: zt_core::SourceAddresses::from_envoy(Some("10.1.2.3:45710"), None),
            peer_uri_san: Some("spiffe://cluster.local/ns/shop/sa/web".into()),
            authority: Some("api.example.com".into()),
            method: Some("GET".into()),
            path: Some("/orders/7?page=2".into()),
            route_name: Some("orders".into()),
            route_choice: None,
            cluster: Some("backend".into()),
            status: Some(200),
            flags: 0,
            details: Some("via_upstream".into()),
            duration_ns: Some(2_500_000),
            bytes_in: Some(0),
            bytes_out: Some(512),
            headers: vec![("user-agent".into(), b"curl/8.5.0".to_vec()), ("cookie".into(), b"s=1".to_vec())],
            identity: Some(HandedIdentity::FilterState(identity.to_string().into_bytes())),
            jwt: Some(Handed::FilterState(
                br#"{"decision":"allow","reason":null,"requirement":"default","provider":"corp"}"#.to_vec(),
            )),
            authz: Some(Handed::FilterState(
                br#"{"decision":"allow","policy":"orders-read","reason":"policy_allowed","route":"orders","audit":[]}"#
                    .to_vec(),
            )),
            ratelimit: Some(Handed::FilterState(
                br#"{"decision":"admitted","reason":"within_limits","limit":null,"remaining":99,"route":null}"#
                    .to_vec(),
            )),
        }
    }

    fn record(c: &mut Criterion) {
        let config = AuditConfig::from_json(
            json!({"headers": ["user-agent", "cookie"], "collector": {"cluster": "otel", "queue_records": 1_000_000}})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        let facts = facts();
        let mut chain = Chain::new([7; 16]);
        let sample = chain.seal(&config.draft(&facts));
        eprintln!("audit record: {} bytes of JSON", sample.text.len());
        c.bench_function("audit/draft+seal (log sink)", |b| {
            b.iter(|| {
                let draft = config.draft(black_box(&facts));
                black_box(chain.seal(&draft))
            })
        });
        let mut outbox = Outbox::new(config.collector().unwrap());
        let mut pushed = 0u64;
        c.bench_function("audit/draft+seal+otlp queue (log and collector)", |b| {
            b.iter(|| {
                let draft = config.draft(black_box(&facts));
                let sealed = chain.seal(&draft);
                outbox.push(&sealed, &draft, &chain, facts.now_ns);
                pushed += 1;
                // Keep the queue from growing without bound over the run, as delivery would.
                if pushed.is_multiple_of(100) {
                    outbox.take_batch(u64::MAX);
                    outbox.delivered();
                }
            })
        });
    }

    criterion_group!(benches, record);
}
