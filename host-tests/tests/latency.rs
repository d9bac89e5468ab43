//! Per-stage latency histograms (`latency_histogram: true` in a stage's configuration): one
//! sample per request for each stage that decided on it, in microseconds, the wait for keys
//! included; none at all unless asked. In both layouts.

use std::time::Duration as StdDuration;

use jwt_simple::prelude::*;
use serde_json::{Value, json};
use zt_host_tests::{FilterSpec, Harness, Layout, Request, ScriptedResponse};

const NOW: u64 = 1_700_000_000;
const ISS: &str = "https://issuer.test";
const STAGES: [&str; 4] = ["jwt", "authz", "ratelimit", "audit"];

fn key() -> &'static ES256KeyPair {
    static KEY: std::sync::OnceLock<ES256KeyPair> = std::sync::OnceLock::new();
    KEY.get_or_init(|| ES256KeyPair::generate().with_key_id("ec"))
}

fn token() -> String {
    let mut claims = Claims::with_custom_claims(json!({"scope": "orders:read"}), Duration::from_secs(300))
        .with_issuer(ISS)
        .with_audience("api")
        .with_subject("alice");
    claims.issued_at = Some(UnixTimeStamp::from_secs(NOW));
    claims.invalid_before = None;
    claims.expires_at = Some(UnixTimeStamp::from_secs(NOW + 300));
    key().sign(claims).unwrap()
}

/// Each stage's configuration, with `latency_histogram` as `on` says (absent when `None`).
fn sections(on: Option<bool>) -> Vec<(&'static str, Value)> {
    let jwk: Value = serde_json::from_str(&key().public_key().to_jwk()).unwrap();
    let mut sections = vec![
        (
            "jwt",
            json!({"providers": [{"name": "corp", "issuer": ISS, "audiences": ["api"], "jwks": {"inline": {"keys": [jwk]}}}]}),
        ),
        (
            "authz",
            json!({"policies": {"reader": {"action": "ALLOW", "rules": [{"when": [{"scopes": {"all_of": ["orders:read"]}}]}]}},
                         "defaults": {"policies": ["reader"]}}),
        ),
        (
            "ratelimit",
            json!({"limits": {"per-user": {"quota": 100, "window_seconds": 60, "key": [{"claim": "sub"}]}},
                             "defaults": {"limits": ["per-user"]}, "max_keys": 64}),
        ),
        ("audit", json!({"log_batch_records": 1})),
    ];
    if let Some(on) = on {
        for (_, config) in &mut sections {
            config["latency_histogram"] = json!(on);
        }
    }
    sections
}

fn envoy(layout: Layout, on: Option<bool>) -> Harness {
    let mut envoy = Harness::new();
    envoy.clock().set_unix_seconds(NOW);
    let sections = sections(on);
    let borrowed: Vec<(&str, &Value)> = sections.iter().map(|(stage, config)| (*stage, config)).collect();
    for filter in layout.filters(&borrowed, &[]) {
        envoy.load(filter).unwrap();
    }
    envoy
}

fn samples(envoy: &Harness, stage: &str) -> Vec<u64> {
    envoy.histogram(&format!("zt_{stage}.latency_us"))
}

#[test]
fn each_stage_records_one_sample_per_request_it_decided() {
    for layout in Layout::ALL {
        let mut envoy = envoy(layout, Some(true));
        let bearer = format!("Bearer {}", token());
        for _ in 0..3 {
            let exchange = envoy.send(Request::get("/orders/1").header("authorization", bearer.as_str()));
            assert_eq!(exchange.status(), Some(200), "{layout:?}: {}", envoy.log_text());
        }
        for stage in STAGES {
            assert_eq!(samples(&envoy, stage).len(), 3, "{layout:?} {stage}");
        }
        // A request the JWT stage refuses: the later stages never decide on it; audit records it.
        let refused = envoy.send(Request::get("/orders/1").header("authorization", "Bearer x.y.z"));
        assert_eq!(refused.status(), Some(401));
        let counts: Vec<usize> = STAGES.iter().map(|stage| samples(&envoy, stage).len()).collect();
        assert_eq!(counts, [4, 3, 3, 4], "{layout:?}");
    }
}

#[test]
fn without_the_option_no_histogram_exists() {
    for layout in Layout::ALL {
        for on in [None, Some(false)] {
            let mut envoy = envoy(layout, on);
            let exchange = envoy.send(Request::get("/orders/1").header("authorization", format!("Bearer {}", token())));
            assert_eq!(exchange.status(), Some(200));
            let names = envoy.metric_names();
            assert!(!names.iter().any(|name| name.contains("latency")), "{layout:?} {on:?}: {names:?}");
        }
    }
}

/// A request whose key is new waits for the refetch of the issuer's keys (answered 30 ms
/// later): the JWT stage's sample spans the wait.
#[test]
fn a_stage_that_waits_for_keys_counts_the_wait() {
    let mut envoy = Harness::new();
    envoy.clock().set_unix_seconds(NOW);
    let jwk = |key: &ES256KeyPair| serde_json::from_str::<Value>(&key.public_key().to_jwk()).unwrap();
    let old = ES256KeyPair::generate().with_key_id("old");
    envoy.script_http("idp", ScriptedResponse::ok(json!({"keys": [jwk(&old)]}).to_string()));
    let config = json!({"latency_histogram": true, "providers": [{"name": "corp", "issuer": ISS, "audiences": ["api"],
        "jwks": {"remote": {"cluster": "idp", "uri": "https://idp.test/jwks", "unknown_kid_refetch_interval_seconds": 5}}}]});
    envoy.load(FilterSpec::new("zt_jwt", config.to_string())).unwrap();
    envoy.advance(StdDuration::from_millis(200)).unwrap();
    assert_eq!(envoy.http_calls().len(), 1, "the start-up fetch");
    // The issuer rotated to `ec`; its keys now take 30 ms to come.
    let rotated = ScriptedResponse::ok(json!({"keys": [jwk(&old), jwk(key())]}).to_string());
    envoy.script_http("idp", ScriptedResponse::After { after: StdDuration::from_millis(30), reply: Box::new(rotated) });
    envoy.clock().set_unix_seconds(NOW + 6);
    let exchange = envoy.send(Request::get("/orders/1").header("authorization", format!("Bearer {}", token())));
    assert!(exchange.reached_upstream(), "{exchange:?}\n{}", envoy.log_text());
    assert_eq!(envoy.http_calls().len(), 2, "the request's refetch");
    let waited = samples(&envoy, "jwt");
    assert_eq!(waited.len(), 1);
    assert!((30_000..31_000).contains(&waited[0]), "{waited:?} µs");
}
