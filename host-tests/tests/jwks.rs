//! The JWKS lifecycle of the compiled JWT filter: first fetch, failure, refresh, rotation to a
//! new `kid`, unknown-`kid` refetch, OpenID discovery, and workers (VMs with one `vm_id`)
//! sharing one fetch through shared data. Fetches are answered from scripts by the harness
//! through `on_http_call_response`; the clock and the filter's one-second timer are the test's.

use std::sync::OnceLock;
use std::time::Duration as StdDuration;

use jwt_simple::prelude::*;
use serde_json::{Value, json};
use zt_host_tests::{Exchange, FilterSpec, Harness, Outcome, Request, ScriptedResponse};

const NOW: u64 = 1_700_000_000;
const ISS: &str = "https://idp.test";

/// ES256 keys by `kid`.
fn key(kid: &str) -> &'static ES256KeyPair {
    static KEYS: OnceLock<[ES256KeyPair; 3]> = OnceLock::new();
    let keys = KEYS.get_or_init(|| ["a", "b", "c"].map(|kid| ES256KeyPair::generate().with_key_id(kid)));
    keys.iter().find(|k| k.key_id().as_deref() == Some(kid)).unwrap()
}

fn jwks(kids: &[&str]) -> ScriptedResponse {
    let keys: Vec<Value> =
        kids.iter().map(|kid| serde_json::from_str(&key(kid).public_key().to_jwk()).unwrap()).collect();
    ScriptedResponse::ok(json!({ "keys": keys }).to_string())
}

fn token(kid: &str) -> String {
    let mut claims = Claims::create(Duration::from_secs(3600)).with_issuer(ISS).with_audience("api");
    claims.issued_at = Some(UnixTimeStamp::from_secs(NOW));
    claims.invalid_before = None;
    claims.expires_at = Some(UnixTimeStamp::from_secs(NOW + 3600));
    key(kid).sign(claims).unwrap()
}

fn remote(extra: Value) -> Value {
    let mut remote = json!({"cluster": "idp", "uri": "https://idp.test/jwks", "cache_duration_seconds": 10,
        "unknown_kid_refetch_interval_seconds": 5});
    for (k, v) in extra.as_object().unwrap() {
        remote[k] = v.clone();
    }
    json!({ "remote": remote })
}

fn config(jwks: Value) -> String {
    json!({"realm": "api", "forward_token": true,
        "providers": [{"name": "idp", "issuer": ISS, "audiences": ["api"], "jwks": jwks}]})
    .to_string()
}

/// Envoy at `NOW` with the filter loaded and its first timer ticks (100 ms apart) done: the
/// start-up fetch answered. The clock then stands at `NOW` + 0.2 s, `NOW` in whole seconds.
fn envoy_with(script: ScriptedResponse, jwks: Value) -> Harness {
    let mut envoy = Harness::new();
    envoy.clock().set_unix_seconds(NOW);
    envoy.script_http("idp", script);
    envoy.load(FilterSpec::new("zt_jwt", config(jwks))).unwrap();
    first_tick(&mut envoy);
    envoy
}

fn first_tick(envoy: &mut Harness) {
    assert!(envoy.http_calls().is_empty(), "no fetch from on_configure");
    envoy.advance(StdDuration::from_millis(200)).unwrap();
}

fn send(envoy: &mut Harness, kid: &str) -> Exchange {
    envoy.send(Request::get("/api").header("authorization", format!("Bearer {}", token(kid))))
}

fn advance(envoy: &mut Harness, seconds: u64) {
    envoy.advance(StdDuration::from_secs(seconds)).unwrap();
}

#[test]
fn keys_are_fetched_at_start_through_the_cluster() {
    let mut envoy = envoy_with(jwks(&["a"]), remote(json!({})));
    let calls = envoy.http_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].cluster, "idp");
    assert_eq!(calls[0].header(":method"), Some("GET"));
    assert_eq!(calls[0].header(":path"), Some("/jwks"));
    assert_eq!(calls[0].header(":authority"), Some("idp.test"));
    assert_eq!(calls[0].timeout, StdDuration::from_millis(5000));
    let exchange = send(&mut envoy, "a");
    assert!(exchange.reached_upstream(), "{exchange:?}\n{}", envoy.log_text());
    assert_eq!(envoy.metric("zt_jwt.jwks_fetch_ok.idp"), Some(1), "counted under its provider");
    assert!(
        envoy.log_text().contains("provider idp: 1 key(s) from idp.test/jwks via cluster idp"),
        "{}",
        envoy.log_text()
    );
}

#[test]
fn without_keys_requests_fail_closed_until_a_retry_succeeds() {
    let mut envoy = envoy_with(ScriptedResponse::Fail, remote(json!({})));
    let exchange = send(&mut envoy, "a");
    let reply = exchange.local_reply().expect("refused");
    assert_eq!(reply.status, 401);
    assert_eq!(reply.header("www-authenticate"), Some("Bearer realm=\"api\", error=\"invalid_token\""));
    assert_eq!(reply.body_text(), r#"{"error":"invalid_token","message":"Jwks remote fetch is failed"}"#);
    assert_eq!(envoy.metric("zt_jwt.denied.keys_unavailable"), Some(1));
    assert_eq!(envoy.metric("zt_jwt.jwks_fetch_failed.idp"), Some(1));
    let logs = envoy.log_text();
    assert!(logs.contains("failed: no response") && logs.contains("no keys yet: its tokens are refused"), "{logs}");
    assert!(logs.contains("denied: provider idp has no keys (its JWKS fetch failed"), "{logs}");

    envoy.script_http("idp", ScriptedResponse::status(503, "down"));
    advance(&mut envoy, 1);
    assert!(envoy.log_text().contains("HTTP status 503"));
    assert_eq!(send(&mut envoy, "a").status(), Some(401));

    envoy.script_http("idp", jwks(&["a"]));
    advance(&mut envoy, 2);
    assert!(send(&mut envoy, "a").reached_upstream(), "{}", envoy.log_text());
    assert_eq!(envoy.http_calls().len(), 3, "retries after 1 s, then 2 s");
}

#[test]
fn a_failed_refresh_keeps_the_last_good_keys() {
    let mut envoy = envoy_with(jwks(&["a"]), remote(json!({})));
    envoy.script_http("idp", ScriptedResponse::status(500, "oops"));
    advance(&mut envoy, 9);
    assert!(envoy.http_calls().len() >= 2, "the refresh ran at 8 s");
    assert!(envoy.log_text().contains("keeping the last good keys"), "{}", envoy.log_text());
    assert!(send(&mut envoy, "a").reached_upstream());
}

#[test]
fn a_refresh_rotates_to_a_new_kid_and_drops_the_old_one() {
    let mut envoy = envoy_with(jwks(&["a"]), remote(json!({"unknown_kid_refetch_interval_seconds": 3600})));
    assert!(send(&mut envoy, "a").reached_upstream());
    assert_eq!(send(&mut envoy, "b").status(), Some(401));
    envoy.script_http("idp", jwks(&["b"]));
    advance(&mut envoy, 7);
    assert_eq!(envoy.http_calls().len(), 1, "not before four fifths of the cache duration");
    // Due at 8 s; the one-second timer sees it within the next second.
    advance(&mut envoy, 2);
    assert_eq!(envoy.http_calls().len(), 2);
    assert!(send(&mut envoy, "b").reached_upstream());
    // The cached verification of the old token went with its key.
    let old = send(&mut envoy, "a");
    assert_eq!(
        old.local_reply().map(|r| r.body_text()).as_deref(),
        Some(r#"{"error":"invalid_token","message":"Jwks doesn't have key to match kid or alg from Jwt"}"#)
    );
}

#[test]
fn an_unknown_kid_pauses_the_request_for_one_rate_limited_refetch() {
    let mut envoy = envoy_with(jwks(&["a"]), remote(json!({})));
    envoy.script_http("idp", jwks(&["a", "b"]));
    // Within the interval after the start-up fetch: refused without a fetch.
    assert_eq!(send(&mut envoy, "b").status(), Some(401));
    assert_eq!(envoy.http_calls().len(), 1);
    envoy.clock().set_unix_seconds(NOW + 5);
    let exchange = send(&mut envoy, "b");
    assert!(exchange.reached_upstream(), "{exchange:?}\n{}", envoy.log_text());
    assert_eq!(envoy.http_calls().len(), 2, "the request's own refetch");
    // A made-up kid right after: no new fetch, a plain refusal.
    assert_eq!(send(&mut envoy, "c").status(), Some(401));
    assert_eq!(envoy.http_calls().len(), 2);
    assert_eq!(envoy.metric("zt_jwt.denied.no_matching_key"), Some(2));
}

#[test]
fn workers_share_one_fetch() {
    let mut envoy = Harness::new();
    envoy.clock().set_unix_seconds(NOW);
    envoy.script_http("idp", jwks(&["a"]));
    let config = config(remote(json!({})));
    // Three workers: three VMs of one vm_id, chained so that a request must pass all of them.
    for worker in ["worker-1", "worker-2", "worker-3"] {
        envoy.load(FilterSpec::new("zt_jwt", config.clone()).name(worker)).unwrap();
    }
    first_tick(&mut envoy);
    assert_eq!(envoy.http_calls().len(), 1, "one start-up fetch for all workers");
    assert!(send(&mut envoy, "a").reached_upstream(), "{}", envoy.log_text());
    envoy.script_http("idp", jwks(&["b"]));
    advance(&mut envoy, 9);
    assert_eq!(envoy.http_calls().len(), 2, "one refresh for all workers");
    let exchange = send(&mut envoy, "b");
    assert!(exchange.reached_upstream(), "every worker adopted the rotated keys: {exchange:?}");
}

#[test]
fn oidc_discovery_finds_the_jwks_of_the_configured_issuer() {
    let mut envoy = Harness::new();
    envoy.clock().set_unix_seconds(NOW);
    let document = json!({"issuer": ISS, "jwks_uri": "https://idp.test/protocol/certs"}).to_string();
    envoy.script_http_path("idp", "/.well-known/openid-configuration", ScriptedResponse::ok(document));
    let ScriptedResponse::Reply { body, .. } = jwks(&["a"]) else { unreachable!() };
    envoy.script_http_path("idp", "/protocol/certs", ScriptedResponse::ok(body));
    envoy.load(FilterSpec::new("zt_jwt", config(json!({"oidc_discovery": {"cluster": "idp"}})))).unwrap();
    first_tick(&mut envoy);
    let paths: Vec<_> = envoy.http_calls().iter().map(|c| c.header(":path").unwrap().to_owned()).collect();
    assert_eq!(paths, ["/.well-known/openid-configuration", "/protocol/certs"]);
    assert!(send(&mut envoy, "a").reached_upstream(), "{}", envoy.log_text());
}

#[test]
fn a_discovery_document_of_another_issuer_gives_no_keys() {
    let mut envoy = Harness::new();
    envoy.clock().set_unix_seconds(NOW);
    let document = json!({"issuer": "https://evil.test", "jwks_uri": "https://idp.test/certs"}).to_string();
    envoy.script_http("idp", ScriptedResponse::ok(document));
    envoy.load(FilterSpec::new("zt_jwt", config(json!({"oidc_discovery": {"cluster": "idp"}})))).unwrap();
    first_tick(&mut envoy);
    assert_eq!(envoy.http_calls().len(), 1, "the JWKS is never fetched");
    assert!(envoy.log_text().contains("its issuer differs from the configured issuer"), "{}", envoy.log_text());
    assert_eq!(send(&mut envoy, "a").status(), Some(401));
}

#[test]
fn an_unknown_cluster_is_a_failed_fetch_not_a_crash() {
    let mut envoy = Harness::new();
    envoy.clock().set_unix_seconds(NOW);
    // No script for `idp`: the harness refuses the call as Envoy refuses an unknown cluster.
    envoy.load(FilterSpec::new("zt_jwt", config(remote(json!({}))))).unwrap();
    first_tick(&mut envoy);
    assert!(envoy.log_text().contains("cannot send the key fetch to cluster idp"), "{}", envoy.log_text());
    assert_eq!(send(&mut envoy, "a").status(), Some(401));
}

#[test]
fn a_request_before_the_first_keys_is_held_not_refused() {
    let mut envoy = Harness::new();
    envoy.clock().set_unix_seconds(NOW);
    envoy.script_http("idp", ScriptedResponse::Hold);
    envoy.load(FilterSpec::new("zt_jwt", config(remote(json!({}))))).unwrap();
    // Before the first tick nothing is fetched yet: the request waits, as with `jwt_authn`.
    let early = send(&mut envoy, "a");
    assert!(matches!(early.outcome, Outcome::Stalled { .. }), "held, not answered: {early:?}");
    assert_eq!(envoy.metric("zt_jwt.held_for_keys"), Some(1));
    assert_eq!(envoy.metric("zt_jwt.denied.keys_unavailable"), Some(0));
    // Once the first fetch is out and still unanswered, requests are held too.
    first_tick(&mut envoy);
    assert_eq!(envoy.http_calls().len(), 1);
    assert!(matches!(send(&mut envoy, "a").outcome, Outcome::Stalled { .. }));
    // The wait ends with the fetch timeout (5 s) and a second: then refused at once.
    advance(&mut envoy, 7);
    assert_eq!(send(&mut envoy, "a").status(), Some(401), "{}", envoy.log_text());
}

#[test]
fn a_worker_adopts_published_keys_at_request_time_before_its_first_tick() {
    let mut envoy = Harness::new();
    envoy.clock().set_unix_seconds(NOW);
    envoy.script_http("idp", jwks(&["a"]));
    let config = config(remote(json!({})));
    envoy.load(FilterSpec::new("zt_jwt", config.clone()).name("worker-1")).unwrap();
    first_tick(&mut envoy);
    // Worker 2 starts after worker 1 published: its timer has not run, its first request
    // finds the keys in shared data.
    envoy.load(FilterSpec::new("zt_jwt", config).name("worker-2")).unwrap();
    let exchange = send(&mut envoy, "a");
    assert!(exchange.reached_upstream(), "{exchange:?}\n{}", envoy.log_text());
    assert_eq!(envoy.http_calls().len(), 1, "no second fetch");
    assert_eq!(envoy.metric("zt_jwt.held_for_keys"), Some(0));
}
