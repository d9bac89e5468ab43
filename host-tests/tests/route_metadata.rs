//! Route metadata naming a rule or requirement the configuration does not define, through the
//! ABI: a configuration fault that every enforcing filter answers with 500 and a log line
//! naming the rule, in every configuration, also one that defines no named rules at all (it
//! must still read the metadata); the audit filter, which never refuses, records it as an
//! anomaly.

use std::sync::OnceLock;

use jwt_simple::prelude::*;
use serde_json::{Value, json};
use zt_host_tests::{Exchange, FilterSpec, Harness, Request};

const NOW: u64 = 1_700_000_000;
const ISS: &str = "https://issuer.test";

fn key() -> &'static ES256KeyPair {
    static KEY: OnceLock<ES256KeyPair> = OnceLock::new();
    KEY.get_or_init(|| ES256KeyPair::generate().with_key_id("ec"))
}

fn token() -> String {
    let mut claims = Claims::create(Duration::from_secs(3600)).with_issuer(ISS).with_audience("api");
    claims.issued_at = Some(UnixTimeStamp::from_secs(NOW));
    claims.invalid_before = None;
    claims.expires_at = Some(UnixTimeStamp::from_secs(NOW + 3600));
    key().sign(claims).unwrap()
}

fn envoy_with(module: &str, config: &Value) -> Harness {
    let mut envoy = Harness::new();
    envoy.clock().set_unix_seconds(NOW);
    envoy.load(FilterSpec::new(module, config.to_string())).unwrap();
    envoy
}

/// A request naming `rule` under `filter_metadata.zt.<key>`.
fn naming(key: &str, rule: &str) -> Request {
    Request::get("/orders").header("authorization", format!("Bearer {}", token())).route_metadata("zt", key, rule)
}

fn body(exchange: &Exchange) -> Value {
    serde_json::from_slice(&exchange.local_reply().expect("a local reply").body).unwrap()
}

/// 500 with `{"error": "configuration"}`, and an error log line naming the rule.
fn assert_refused(envoy: &Harness, exchange: &Exchange, key: &str, rule: &str) {
    assert_eq!(exchange.status(), Some(500), "{exchange:?}\n{}", envoy.log_text());
    assert_eq!(body(exchange)["error"], "configuration");
    let line = format!("filter_metadata.zt.{key} names ");
    let logged = envoy.logs().iter().any(|l| l.message.contains(&line) && l.message.contains(&format!("\"{rule}\"")));
    assert!(logged, "no log line names {rule}: {}", envoy.log_text());
}

#[test]
fn zt_jwt_without_named_requirements_refuses_an_undefined_one() {
    let jwk: Value = serde_json::from_str(&key().public_key().to_jwk()).unwrap();
    let provider = json!({"name": "corp", "issuer": ISS, "audiences": ["api"], "jwks": {"inline": {"keys": [jwk]}}});
    // The strict default, and the most permissive one: neither lets the fault pass.
    for default in [json!({}), json!({"allow_failed": true, "advisory": true})] {
        let mut envoy =
            envoy_with("zt_jwt", &json!({"providers": [provider.clone()], "requirements": {"default": default}}));
        let exchange = envoy.send(naming("jwt_requirement", "ghost"));
        assert_refused(&envoy, &exchange, "jwt_requirement", "ghost");
        assert_eq!(body(&exchange)["message"], "Jwt requirement of this route is not configured");
        // Without the metadata the same token passes: the configuration is otherwise sound.
        let plain = envoy.send(Request::get("/orders").header("authorization", format!("Bearer {}", token())));
        assert!(plain.reached_upstream(), "{plain:?}");
    }
}

#[test]
fn zt_authz_without_route_rules_refuses_an_undefined_one() {
    let policies = json!({"public": {"action": "ALLOW", "rules": [{}]}});
    for advisory in [false, true] {
        let config = json!({"policies": policies, "defaults": {"policies": ["public"]}, "advisory": advisory});
        let mut envoy = envoy_with("zt_authz", &config);
        let exchange = envoy.send(naming("authz_route", "ghost"));
        assert_refused(&envoy, &exchange, "authz_route", "ghost");
        let record: Value = serde_json::from_str(&exchange.filter_state_text("zt.authz.decision").unwrap()).unwrap();
        assert_eq!(
            (record["decision"].as_str(), record["reason"].as_str()),
            (Some("deny"), Some("unknown_route_rule"))
        );
        assert!(envoy.send(Request::get("/orders")).reached_upstream());
    }
}

#[test]
fn zt_ratelimit_without_route_rules_refuses_an_undefined_one() {
    let config = json!({
        "limits": {"api": {"quota": 100, "window_seconds": 60, "key": ["method"]}},
        "defaults": {"limits": ["api"]},
        "max_keys": 64,
    });
    let mut envoy = envoy_with("zt_ratelimit", &config);
    let exchange = envoy.send(naming("ratelimit_route", "ghost"));
    assert_refused(&envoy, &exchange, "ratelimit_route", "ghost");
    assert_eq!(body(&exchange)["reason"], "unknown_route_rule");
    assert!(envoy.send(Request::get("/orders")).reached_upstream());
}

#[test]
fn zt_audit_without_route_rules_records_an_undefined_one_as_an_anomaly() {
    // Nothing allowed is sampled: only an anomaly is recorded.
    let mut envoy = envoy_with("zt_audit", &json!({"sample_allowed": 0.0, "log_batch_records": 1}));
    assert!(envoy.send(Request::get("/orders")).reached_upstream());
    let exchange = envoy.send(naming("audit_route", "ghost"));
    assert!(exchange.reached_upstream(), "audit never refuses");
    let records: Vec<Value> = envoy
        .logs()
        .iter()
        .filter_map(|l| l.message.split_once("zt.audit.v1 ").map(|(_, record)| serde_json::from_str(record).unwrap()))
        .collect();
    assert_eq!(records.len(), 1, "{}", envoy.log_text());
    assert_eq!(records[0]["unknown_route_rule"], "ghost");
    assert_eq!(envoy.metric("zt_audit.anomalies"), Some(1));
    assert!(envoy.log_text().contains("filter_metadata.zt.audit_route names rule \"ghost\""), "{}", envoy.log_text());
}
