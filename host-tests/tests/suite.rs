//! The suite module through the ABI: one filter whose configuration has a section per stage.
//! What differs from the chain of single filters: errors name the section; identity and
//! decisions stay in memory (nothing in filter state, fewer host calls); and a stage that waits
//! for a callout (a key refetch, the rate-limit service) lets the later stages run when it
//! answers. The scenarios shared with the chain run in `audit.rs` against both layouts.

use std::sync::OnceLock;
use std::time::Duration as StdDuration;

use jwt_simple::prelude::*;
use serde_json::{Value, json};
use zt_core::ratelimit::rls;
use zt_host_tests::{
    Exchange, FilterSpec, Harness, HarnessError, HostCallKind, Layout, Request, ScriptedGrpc, ScriptedResponse,
};

const NOW: u64 = 1_795_463_791;
const ISS: &str = "https://issuer.test";
const MARKER: &str = "zt.audit.v1 ";

fn key(kid: &str) -> &'static ES256KeyPair {
    static KEYS: OnceLock<[ES256KeyPair; 2]> = OnceLock::new();
    let keys = KEYS.get_or_init(|| ["a", "b"].map(|kid| ES256KeyPair::generate().with_key_id(kid)));
    keys.iter().find(|k| k.key_id().as_deref() == Some(kid)).unwrap()
}

fn jwk(kid: &str) -> Value {
    serde_json::from_str(&key(kid).public_key().to_jwk()).unwrap()
}

fn token(kid: &str, sub: &str, scope: &str) -> String {
    let mut claims = Claims::with_custom_claims(json!({"scope": scope}), Duration::from_secs(3600))
        .with_issuer(ISS)
        .with_audience("api")
        .with_subject(sub);
    claims.issued_at = Some(UnixTimeStamp::from_secs(NOW));
    claims.invalid_before = None;
    claims.expires_at = Some(UnixTimeStamp::from_secs(NOW + 3600));
    key(kid).sign(claims).unwrap()
}

fn jwt(jwks: Value) -> Value {
    json!({"realm": "api", "providers": [{"name": "corp", "issuer": ISS, "audiences": ["api"], "jwks": jwks}]})
}

fn authz() -> Value {
    json!({
        "policies": {"orders-read": {"action": "ALLOW", "rules": [{"when": [{"scopes": {"all_of": ["orders:read"]}}]}]}},
        "defaults": {"policies": ["orders-read"]},
    })
}

fn local_limit() -> Value {
    json!({
        "limits": {"per-user": {"quota": 1, "window_seconds": 60, "key": [{"claim": "sub"}]}},
        "defaults": {"limits": ["per-user"]},
        "max_keys": 64,
    })
}

/// An audit section that writes each record to the log as its stream ends (the default batches
/// them: see `every_stages_service_keeps_its_own_schedule_on_the_one_timer`).
fn each_record() -> Value {
    json!({"log_batch_records": 1})
}

fn suite(sections: &[(&str, &Value)]) -> Harness {
    let mut envoy = Harness::new();
    envoy.clock().set_unix_seconds(NOW);
    for filter in Layout::Suite.filters(sections, &[]) {
        envoy.load(filter).unwrap();
    }
    envoy
}

fn bearer(token: &str) -> Request {
    Request::get("/orders/7").header("authorization", format!("Bearer {token}"))
}

fn records(envoy: &Harness) -> Vec<Value> {
    let logs = envoy.logs();
    let lines = logs.iter().flat_map(|l| l.message.lines());
    let texts = lines.filter_map(|line| line.find(MARKER).map(|i| &line[i + MARKER.len()..]));
    texts.map(|text| serde_json::from_str(text).unwrap()).collect()
}

fn decisions(exchange: &Exchange, envoy: &Harness) -> Value {
    assert!(exchange.filter_state_text("zt.authz.decision").is_none(), "the suite writes no filter state");
    records(envoy).last().expect("a record")["decisions"].clone()
}

#[test]
fn a_configuration_error_names_the_section_and_the_path_inside_it() {
    let cases = [
        (json!({"authz": {"policies": {"admin": {"action": "MAYBE"}}}}), "authz.policies"),
        (json!({"jwt": {"providers": []}}), "jwt"),
        (json!({"ratelimit": {"limits": {"x": {"quota": 0, "window_seconds": 1}}}}), "ratelimit.limits"),
        (json!({"audit": {"collector": {"cluster": "otel", "batch_records": 0}}}), "audit.collector.batch_records"),
        (json!({"jwt_authn": {}}), "jwt_authn: unknown section"),
        (json!({}), "(root): no section"),
    ];
    for (config, named) in cases {
        let mut envoy = Harness::new();
        let refused = envoy.load(FilterSpec::new("zt_suite", config.to_string()));
        assert!(matches!(refused, Err(HarnessError::ConfigureRefused { .. })), "{config}: {refused:?}");
        assert!(
            envoy.log_text().contains(&format!("zt-suite: invalid configuration: {named}")),
            "{}",
            envoy.log_text()
        );
    }
}

#[test]
fn a_missing_section_is_that_stage_off() {
    // Authorization alone reads no identity of its own: an open policy lets anyone through.
    let open = json!({"policies": {"open": {"action": "ALLOW", "rules": [{}]}}, "defaults": {"policies": ["open"]}});
    let mut envoy = suite(&[("authz", &open)]);
    assert!(envoy.send(Request::get("/x")).reached_upstream());
    assert!(envoy.metric_names().iter().all(|name| !name.starts_with("zt_jwt.")), "no JWT stage, no JWT metrics");
    assert_eq!(envoy.metric_sum("zt_authz.allowed"), 1);
}

#[test]
fn identity_and_decisions_stay_in_memory_with_fewer_host_calls() {
    let (jwt, authz, limit, audit) =
        (jwt(json!({"inline": {"keys": [jwk("a")]}})), authz(), local_limit(), each_record());
    let sections = [("jwt", &jwt), ("authz", &authz), ("ratelimit", &limit), ("audit", &audit)];
    let mut calls = Vec::new();
    for layout in Layout::ALL {
        let mut envoy = Harness::new();
        envoy.clock().set_unix_seconds(NOW);
        for filter in layout.filters(&sections, &[]) {
            envoy.load(filter).unwrap();
        }
        let exchange = envoy.send(bearer(&token("a", "alice", "orders:read")));
        assert!(exchange.reached_upstream(), "{layout:?}: {}", envoy.log_text());
        let record = &records(&envoy)[0];
        assert_eq!(record["identity"]["sub"], "alice", "{layout:?}");
        assert_eq!(record["decisions"]["authz"]["policy"], "orders-read", "{layout:?}");
        assert_eq!(record["decisions"]["ratelimit"]["decision"], "admitted", "{layout:?}");
        let state = |kind: HostCallKind| exchange.host_calls.iter().filter(|c| c.kind == kind).count();
        if layout == Layout::Suite {
            assert_eq!(state(HostCallKind::SetProperty), 0, "nothing written to filter state");
            assert!(exchange.filter_state_text("zt.identity").is_none());
        }
        calls.push((layout, exchange.host_calls.len()));
    }
    let [(_, chain), (_, suite)] = calls[..] else { unreachable!() };
    println!("host calls per request: chain {chain}, suite {suite}");
    assert!(suite < chain, "suite {suite} host calls, chain {chain}");
}

/// `filter_state: true`: one entry, `zt.suite`, with the caller and each decision made, written
/// whether the request goes on, is refused, or waited for keys first.
#[test]
fn the_filter_state_option_writes_one_entry_of_the_decisions() {
    let remote = json!({"remote": {"cluster": "idp", "uri": "https://idp.test/jwks", "cache_duration_seconds": 600,
                                   "unknown_kid_refetch_interval_seconds": 1}});
    let (jwt, authz, limit) = (jwt(remote), authz(), local_limit());
    let mut envoy = Harness::new();
    envoy.clock().set_unix_seconds(NOW);
    envoy.script_http("idp", ScriptedResponse::ok(json!({"keys": [jwk("a")]}).to_string()));
    let sections = [("jwt", &jwt), ("authz", &authz), ("ratelimit", &limit)];
    envoy.load(Layout::Suite.filters_publishing(&sections, &[]).remove(0)).unwrap();
    envoy.advance(StdDuration::from_millis(200)).unwrap();
    let entry = |exchange: &Exchange| -> Value {
        let writes = exchange.host_calls.iter().filter(|c| c.kind == HostCallKind::SetProperty).count();
        assert_eq!(writes, 1, "one filter-state write per request");
        assert!(exchange.filter_state_text("zt.authz.decision").is_none(), "no single filter's entries");
        serde_json::from_str(&exchange.filter_state_text("zt.suite").expect("the entry")).unwrap()
    };

    let admitted = envoy.send(bearer(&token("a", "alice", "orders:read")));
    assert!(admitted.reached_upstream(), "{}", envoy.log_text());
    let state = entry(&admitted);
    assert_eq!(state["identity"], json!({"provider": "corp", "iss": ISS, "sub": "alice"}), "who, not the claims");
    assert_eq!(state["jwt"]["decision"], "allow");
    assert_eq!(state["authz"]["policy"], "orders-read");
    assert_eq!(state["ratelimit"]["decision"], "admitted");

    let limited = envoy.send(bearer(&token("a", "alice", "orders:read")));
    assert_eq!(limited.status(), Some(429));
    assert_eq!(entry(&limited)["ratelimit"]["decision"], "limited");

    let anonymous = envoy.send(Request::get("/orders/7"));
    assert_eq!(anonymous.status(), Some(401));
    let state = entry(&anonymous);
    assert_eq!(state["jwt"]["decision"], "deny");
    assert!(state.get("identity").is_none() && state.get("authz").is_none(), "{state}");

    // A request that waited for a refetch: the entry holds what was decided after the wait.
    envoy.clock().set_unix_seconds(NOW + 2);
    envoy.script_http("idp", ScriptedResponse::ok(json!({"keys": [jwk("a"), jwk("b")]}).to_string()));
    let waited = envoy.send(bearer(&token("b", "bob", "profile")));
    assert_eq!(waited.status(), Some(403), "{}", envoy.log_text());
    let state: Value = serde_json::from_str(&waited.filter_state_text("zt.suite").unwrap()).unwrap();
    assert_eq!((state["identity"]["sub"].as_str(), state["authz"]["decision"].as_str()), (Some("bob"), Some("deny")));
}

#[test]
fn later_stages_see_the_request_headers_as_the_jwt_stage_left_them() {
    // The suite reads the request headers once; the JWT stage's edits must reach what the later
    // stages read, as they reach a later filter of the chain: the verified `x-user` replaces the
    // forged one for authorization and audit, and the token is gone (`forward_token` false).
    let mut jwt = jwt(json!({"inline": {"keys": [jwk("a")]}}));
    jwt["claim_headers"] = json!([{"claim": "sub", "header": "x-user"}]);
    let authz = json!({
        "policies": {"alice-only": {"action": "ALLOW", "rules": [{"when": [
            {"header": {"name": "x-user", "exact": "alice"}},
            {"header": {"name": "authorization", "present": false}},
        ]}]}},
        "defaults": {"policies": ["alice-only"]},
    });
    let audit = json!({"headers": ["x-user"], "log_batch_records": 1});
    let sections = [("jwt", &jwt), ("authz", &authz), ("audit", &audit)];
    for layout in Layout::ALL {
        let mut envoy = Harness::new();
        envoy.clock().set_unix_seconds(NOW);
        for filter in layout.filters(&sections, &[]) {
            envoy.load(filter).unwrap();
        }
        let forged = bearer(&token("a", "alice", "orders:read")).header("x-user", "mallory");
        let exchange = envoy.send(forged);
        assert!(exchange.reached_upstream(), "{layout:?}: {}", envoy.log_text());
        assert_eq!(exchange.upstream_header("x-user").as_deref(), Some("alice"), "{layout:?}");
        assert_eq!(records(&envoy)[0]["headers"]["x-user"], "alice", "{layout:?}");
        let refused = envoy.send(bearer(&token("a", "bob", "orders:read")).header("x-user", "alice"));
        assert_eq!(refused.status(), Some(403), "{layout:?}: bob's own x-user is replaced by his sub");
    }
}

#[test]
fn after_a_key_refetch_the_later_stages_decide_the_request() {
    let remote = json!({"remote": {"cluster": "idp", "uri": "https://idp.test/jwks", "cache_duration_seconds": 600,
                                   "unknown_kid_refetch_interval_seconds": 1}});
    let (jwt, authz, limit, audit) = (jwt(remote), authz(), local_limit(), each_record());
    let mut envoy = Harness::new();
    envoy.clock().set_unix_seconds(NOW);
    envoy.script_http("idp", ScriptedResponse::ok(json!({"keys": [jwk("a")]}).to_string()));
    let sections = [("jwt", &jwt), ("authz", &authz), ("ratelimit", &limit), ("audit", &audit)];
    envoy.load(Layout::Suite.filters(&sections, &[]).remove(0)).unwrap();
    envoy.advance(StdDuration::from_millis(200)).unwrap();
    envoy.clock().set_unix_seconds(NOW + 2);
    // Key "b" is published after start: the request waits for the refetch, then authorization
    // refuses it for its scope, which it could only do after the JWT stage let it on.
    envoy.script_http("idp", ScriptedResponse::ok(json!({"keys": [jwk("a"), jwk("b")]}).to_string()));
    let refused = envoy.send(bearer(&token("b", "bob", "profile")));
    assert_eq!(refused.status(), Some(403), "{}", envoy.log_text());
    assert_eq!(envoy.http_calls().len(), 2, "start-up fetch and the request's refetch");
    let after = decisions(&refused, &envoy);
    assert_eq!((after["jwt"]["decision"].as_str(), after["authz"]["decision"].as_str()), (Some("allow"), Some("deny")));
    // And one that passes authorization goes through the rate limit too.
    let admitted = envoy.send(bearer(&token("b", "carol", "orders:read")));
    assert!(admitted.reached_upstream(), "{}", envoy.log_text());
    assert_eq!(decisions(&admitted, &envoy)["ratelimit"]["decision"], "admitted");
}

fn rls_answer(code: rls::Code) -> ScriptedGrpc {
    let status = rls::DescriptorStatus {
        code: code as i32,
        current_limit: None,
        limit_remaining: 0,
        duration_until_reset: None,
    };
    ScriptedGrpc::reply(rls::encode(&rls::RateLimitResponse { overall_code: code as i32, statuses: vec![status] }))
}

#[test]
fn the_rate_limit_services_answer_resumes_or_refuses_and_is_audited() {
    let global = json!({
        "limits": {"partner": {"key": [{"claim": "sub"}], "mode": "global"}},
        "defaults": {"limits": ["partner"]},
        "global": {"cluster": "ratelimit", "domain": "zt", "timeout_ms": 250, "on_error": "deny"},
    });
    let (jwt, authz, audit) = (jwt(json!({"inline": {"keys": [jwk("a")]}})), authz(), each_record());
    let mut envoy = suite(&[("jwt", &jwt), ("authz", &authz), ("ratelimit", &global), ("audit", &audit)]);
    envoy.script_grpc_sequence("ratelimit", vec![rls_answer(rls::Code::Ok), rls_answer(rls::Code::OverLimit)]);
    let admitted = envoy.send(bearer(&token("a", "dave", "orders:read")));
    assert!(admitted.reached_upstream(), "{}", envoy.log_text());
    let limited = envoy.send(bearer(&token("a", "dave", "orders:read")));
    assert_eq!(limited.status(), Some(429));
    let outcomes: Vec<Value> = records(&envoy).iter().map(|r| r["outcome"].clone()).collect();
    assert_eq!(outcomes, [json!("allow"), json!("limited")]);
    assert_eq!(envoy.grpc_calls().len(), 2);
}

#[test]
fn every_stages_service_keeps_its_own_schedule_on_the_one_timer() {
    // Remote keys (first fetch within 100 ms, then every 8 s: 4/5 of the cache duration), audit export (every 25 ms
    // tick, a batch when 2 records wait or 100 ms pass), the audit log (by default 32 records per log call, none
    // waiting over 200 ms), bucket sweeps (every 30 s by default).
    let remote = json!({"remote": {"cluster": "idp", "uri": "https://idp.test/jwks", "cache_duration_seconds": 10}});
    let (jwt, authz, audit) =
        (jwt(remote), authz(), json!({"collector": {"cluster": "otel", "batch_records": 2, "batch_age_ms": 100}}));
    let mut envoy = Harness::new();
    envoy.clock().set_unix_seconds(NOW);
    envoy.script_http("idp", ScriptedResponse::ok(json!({"keys": [jwk("a")]}).to_string()));
    envoy.script_http("otel", ScriptedResponse::ok("{}"));
    let limit = local_limit();
    let sections = [("jwt", &jwt), ("authz", &authz), ("ratelimit", &limit), ("audit", &audit)];
    envoy.load(Layout::Suite.filters(&sections, &[]).remove(0)).unwrap();
    let calls_to = |envoy: &Harness, cluster: &str| envoy.http_calls().iter().filter(|c| c.cluster == cluster).count();
    envoy.advance(StdDuration::from_millis(150)).unwrap();
    assert_eq!(calls_to(&envoy, "idp"), 1, "the first keys within 100 ms");
    for sub in ["a", "b", "c"] {
        assert!(envoy.send(bearer(&token("a", sub, "orders:read"))).reached_upstream(), "{}", envoy.log_text());
    }
    envoy.advance(StdDuration::from_millis(50)).unwrap();
    assert_eq!(calls_to(&envoy, "otel"), 1, "a full batch leaves at the next audit tick");
    assert!(records(&envoy).is_empty(), "records wait for the log call: {}", envoy.log_text());
    envoy.advance(StdDuration::from_millis(150)).unwrap();
    assert_eq!(calls_to(&envoy, "otel"), 2, "the third record when it is a batch age old");
    let log_calls: Vec<_> = envoy.logs().into_iter().filter(|l| l.message.contains(MARKER)).collect();
    assert_eq!((log_calls.len(), records(&envoy).len()), (1, 3), "one log call, 200 ms after the first record");
    assert_eq!(envoy.metric("zt_audit.collector.exported"), Some(3));
    envoy.advance(StdDuration::from_secs(10)).unwrap();
    assert_eq!(calls_to(&envoy, "idp"), 2, "one refresh after 8 s, not one per tick");
    // A minute and a sweep later, the three buckets are full again and freed.
    envoy.advance(StdDuration::from_secs(65)).unwrap();
    assert_eq!(envoy.metric("zt_ratelimit.evicted"), Some(3), "{}", envoy.log_text());
    // Fetched at 0.1 s, then 8.1 s, 16.1 s, ... 72.1 s: ten in 75 s.
    assert_eq!(calls_to(&envoy, "idp"), 10, "a refresh every 8 s");
}
