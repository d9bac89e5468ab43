//! Two configurations on one `vm_id`: Envoy shares data per `vm_id`, and two listeners (or two
//! Istio WasmPlugins of one image) can run the same module under one. Both filters loaded in
//! one harness share its shared-data store as such VMs share Envoy's. A provider or limit of
//! the same name must not carry state from one configuration into the other unless the two
//! define the same thing.

use std::sync::OnceLock;
use std::time::Duration as StdDuration;

use jwt_simple::prelude::*;
use serde_json::{Value, json};
use zt_host_tests::{Exchange, FilterSpec, Harness, Request, ScriptedResponse};

const NOW: u64 = 1_700_000_000;
const VM_ID: &str = "edge";

/// ES256 keys of the two identity providers, by `kid`.
fn key(kid: &str) -> &'static ES256KeyPair {
    static KEYS: OnceLock<[ES256KeyPair; 2]> = OnceLock::new();
    let keys = KEYS.get_or_init(|| ["a", "b"].map(|kid| ES256KeyPair::generate().with_key_id(kid)));
    keys.iter().find(|k| k.key_id().as_deref() == Some(kid)).unwrap()
}

fn jwks(kid: &str) -> ScriptedResponse {
    let jwk: Value = serde_json::from_str(&key(kid).public_key().to_jwk()).unwrap();
    ScriptedResponse::ok(json!({ "keys": [jwk] }).to_string())
}

fn token(issuer: &str, kid: &str) -> String {
    let mut claims = Claims::create(Duration::from_secs(3600)).with_issuer(issuer).with_audience("api");
    claims.issued_at = Some(UnixTimeStamp::from_secs(NOW));
    claims.invalid_before = None;
    claims.expires_at = Some(UnixTimeStamp::from_secs(NOW + 3600));
    key(kid).sign(claims).unwrap()
}

/// A provider named `idp` in either configuration, with its own issuer, JWKS cluster and URI,
/// token header and claim header; requests without its token pass (so that a request can be
/// meant for one configuration and pass the other).
fn jwt_config(issuer: &str, cluster: &str, token_header: &str, iss_header: &str) -> String {
    json!({
        "realm": "api",
        "providers": [{
            "name": "idp", "issuer": issuer, "audiences": ["api"],
            "jwks": {"remote": {"cluster": cluster, "uri": format!("{issuer}/jwks")}},
            "token_sources": [{"header": {"name": token_header, "value_prefix": "Bearer "}}],
        }],
        "claim_headers": [{"claim": "iss", "header": iss_header}],
        "requirements": {"default": {"allow_missing": true}},
    })
    .to_string()
}

const ISS_A: &str = "https://a.test";
const ISS_B: &str = "https://b.test";

fn with_a(issuer: &str, kid: &str) -> Request {
    Request::get("/api").header("authorization", format!("Bearer {}", token(issuer, kid)))
}

fn with_b(issuer: &str, kid: &str) -> Request {
    Request::get("/api").header("x-b-token", format!("Bearer {}", token(issuer, kid)))
}

#[test]
fn two_jwt_configurations_with_one_provider_name_keep_their_own_keys() {
    let mut envoy = Harness::new();
    envoy.clock().set_unix_seconds(NOW);
    envoy.script_http("idp-a", jwks("a"));
    envoy.script_http("idp-b", jwks("b"));
    let a = jwt_config(ISS_A, "idp-a", "authorization", "x-a-iss");
    let b = jwt_config(ISS_B, "idp-b", "x-b-token", "x-b-iss");
    envoy.load(FilterSpec::new("zt_jwt", a).name("listener-a").vm_id(VM_ID)).unwrap();
    envoy.load(FilterSpec::new("zt_jwt", b).name("listener-b").vm_id(VM_ID)).unwrap();
    // The first ticks fetch; later ticks are when a worker adopts what another published.
    envoy.advance(StdDuration::from_secs(3)).unwrap();
    let mut clusters: Vec<String> = envoy.http_calls().iter().map(|c| c.cluster.clone()).collect();
    clusters.sort();
    assert_eq!(clusters, ["idp-a", "idp-b"], "each configuration fetched its own keys, once");

    // Each accepts its own tokens, verified with its own keys.
    let own_a = envoy.send(with_a(ISS_A, "a"));
    assert!(own_a.reached_upstream(), "{own_a:?}\n{}", envoy.log_text());
    assert_eq!(own_a.upstream_header("x-a-iss").as_deref(), Some(ISS_A));
    let own_b = envoy.send(with_b(ISS_B, "b"));
    assert!(own_b.reached_upstream(), "{own_b:?}\n{}", envoy.log_text());
    assert_eq!(own_b.upstream_header("x-b-iss").as_deref(), Some(ISS_B));
    // Neither took the other's keys: a token of its issuer signed with the other's key fails.
    assert_eq!(envoy.send(with_a(ISS_A, "b")).status(), Some(401));
    assert_eq!(envoy.send(with_b(ISS_B, "a")).status(), Some(401));

    // The refreshes keep to their own records too.
    envoy.advance(StdDuration::from_secs(600)).unwrap();
    let fetches = |cluster: &str| envoy.http_calls().iter().filter(|c| c.cluster == cluster).count();
    assert_eq!((fetches("idp-a"), fetches("idp-b")), (2, 2), "one refresh each");
    assert!(envoy.send(with_a(ISS_A, "a")).reached_upstream(), "{}", envoy.log_text());
    assert!(envoy.send(with_b(ISS_B, "b")).reached_upstream(), "{}", envoy.log_text());
    assert_eq!(envoy.send(with_a(ISS_A, "b")).status(), Some(401));
    assert_eq!(envoy.send(with_b(ISS_B, "a")).status(), Some(401));
}

/// `api` allows `quota` per minute per `x-client`; configuration A exempts the Envoy route
/// `open`, so that requests there are counted by B alone.
fn ratelimit_config(quota: u64, exempt_open: bool) -> String {
    let mut config = json!({
        "limits": {"api": {"quota": quota, "window_seconds": 60, "key": [{"header": "x-client"}]}},
        "defaults": {"limits": ["api"]},
        "max_keys": 64,
    });
    if exempt_open {
        config["routes"] = json!([{"name": "open", "route_names": ["open"], "limits": [], "inherit_defaults": false}]);
    }
    config.to_string()
}

fn client(route: &str) -> Request {
    Request::get("/orders").header("x-client", "c1").route_name(route)
}

/// The quota of the limit that refused, from `RateLimit-Policy`.
fn refused_by(exchange: &Exchange) -> Option<String> {
    assert_eq!(exchange.status(), Some(429), "{exchange:?}");
    let reply = exchange.local_reply()?;
    reply.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("ratelimit-policy")).map(|(_, v)| v.clone())
}

#[test]
fn two_ratelimit_configurations_with_one_limit_name_keep_their_own_buckets() {
    let mut envoy = Harness::new();
    envoy.clock().set_unix_seconds(NOW);
    envoy.load(FilterSpec::new("zt_ratelimit", ratelimit_config(2, true)).name("listener-a").vm_id(VM_ID)).unwrap();
    envoy.load(FilterSpec::new("zt_ratelimit", ratelimit_config(5, false)).name("listener-b").vm_id(VM_ID)).unwrap();
    // A's quota of 2 holds, whatever B does with a limit of the same name: B's admissions
    // (each of these passes B too) neither reset A's bucket nor drain it.
    for _ in 0..2 {
        assert_eq!(envoy.send(client("limited")).status(), Some(200));
    }
    assert_eq!(refused_by(&envoy.send(client("limited"))).as_deref(), Some("\"api\";q=2;w=60"));
    // B counted the two A admitted, and enforces its own 5: three more on the route A exempts.
    for _ in 0..3 {
        let exchange = envoy.send(client("open"));
        assert_eq!(exchange.status(), Some(200), "{exchange:?}");
    }
    assert_eq!(refused_by(&envoy.send(client("open"))).as_deref(), Some("\"api\";q=5;w=60"));
    // And A's bucket is still A's: empty, not reset by B's requests.
    assert_eq!(refused_by(&envoy.send(client("limited"))).as_deref(), Some("\"api\";q=2;w=60"));
    // Half a minute refills one of A's 2 (and 2.5 of B's 5, which B had spent).
    envoy.advance(StdDuration::from_secs(30)).unwrap();
    assert_eq!(envoy.send(client("limited")).status(), Some(200));
    assert_eq!(refused_by(&envoy.send(client("limited"))).as_deref(), Some("\"api\";q=2;w=60"));
}
