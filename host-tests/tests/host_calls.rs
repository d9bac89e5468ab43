//! The host-call census of the four-module chain: every stream call (property reads and
//! writes, header-map calls, foreign functions) each compiled module makes for one request,
//! as the harness sees it through the ABI. Host calls are what the chain's cost is made of in
//! Envoy (each copies through the VM's allocator; `get_property` builds an attribute wrapper
//! per call), so the diet is measured here, deterministically, call by call.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use jwt_simple::prelude::*;
use serde_json::{Value, json};
use zt_host_tests::{FilterSpec, Harness, HostCall, HostCallKind, Request};

const NOW: u64 = 1_795_463_791;
const ISS: &str = "https://issuer.test";

fn key() -> &'static ES256KeyPair {
    static KEY: OnceLock<ES256KeyPair> = OnceLock::new();
    KEY.get_or_init(|| ES256KeyPair::generate().with_key_id("ec"))
}

fn token() -> String {
    let mut claims = Claims::with_custom_claims(json!({"scope": "orders:read"}), Duration::from_secs(3600))
        .with_issuer(ISS)
        .with_audience("api")
        .with_subject("alice");
    claims.issued_at = Some(UnixTimeStamp::from_secs(NOW));
    claims.invalid_before = None;
    claims.expires_at = Some(UnixTimeStamp::from_secs(NOW + 3600));
    key().sign(claims).unwrap()
}

const MODULES: [&str; 4] = ["zt_jwt", "zt_authz", "zt_ratelimit", "zt_audit"];

/// The first `n` modules of the chain as the benchmark runs it: a token required, one scope
/// policy, a per-user limit, an audit record to Envoy's log.
fn chain(n: usize) -> Harness {
    let jwk: Value = serde_json::from_str(&key().public_key().to_jwk()).unwrap();
    let configs = [
        json!({"realm": "api",
            "providers": [{"name": "corp", "issuer": ISS, "audiences": ["api"], "jwks": {"inline": {"keys": [jwk]}}}]}),
        json!({"policies": {"read": {"action": "ALLOW", "rules": [{"when": [{"scopes": {"all_of": ["orders:read"]}}]}]}},
            "defaults": {"policies": ["read"]}}),
        json!({"limits": {"per-user": {"quota": 1000, "window_seconds": 60, "key": [{"claim": "sub"}]}},
            "defaults": {"limits": ["per-user"]}, "max_keys": 64}),
        json!({"headers": ["user-agent"]}),
    ];
    let mut envoy = Harness::new();
    envoy.clock().set_unix_seconds(NOW);
    for (module, config) in MODULES.iter().zip(configs).take(n) {
        envoy.load(FilterSpec::new(module, config.to_string())).unwrap();
    }
    envoy
}

fn request(token: &str) -> Request {
    Request::get("/orders/7")
        .header("authorization", format!("Bearer {token}"))
        .header("x-request-id", "req-1")
        .header("user-agent", "wrk")
        .route_name("orders")
}

/// What the first `n` modules call for one request whose token comes from the cache (the
/// second of two, as on a busy proxy): stream calls, and service calls by function.
fn census(n: usize) -> (Vec<HostCall>, BTreeMap<&'static str, u64>) {
    let mut envoy = chain(n);
    let token = token();
    assert_eq!(envoy.send(request(&token)).status(), Some(200));
    let before = envoy.service_calls();
    let exchange = envoy.send(request(&token));
    assert_eq!(exchange.status(), Some(200));
    let mut services = envoy.service_calls();
    for (function, count) in &mut services {
        *count -= before.get(function).copied().unwrap_or(0);
    }
    services.retain(|_, count| *count > 0);
    (exchange.host_calls, services)
}

/// Each request fact is read at most once per request by each module: a second read is a
/// second trip through the host for something the module already holds.
#[test]
fn no_module_reads_a_property_twice_in_a_request() {
    let (calls, _) = census(MODULES.len());
    let mut reads: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for call in calls.iter().filter(|c| c.kind == HostCallKind::GetProperty) {
        *reads.entry((call.filter.as_str(), call.target.as_str())).or_default() += 1;
    }
    let twice: Vec<_> = reads.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "read more than once: {twice:?}");
    // Nothing a module wrote is read back by itself.
    for write in calls.iter().filter(|c| c.kind == HostCallKind::SetProperty) {
        let read_back = calls
            .iter()
            .any(|c| c.kind == HostCallKind::GetProperty && c.filter == write.filter && c.target == write.target);
        assert!(!read_back, "{} reads back {}", write.filter, write.target);
    }
}

/// The census itself, module by module (`cargo test -p zt-host-tests --test host_calls --
/// --nocapture`), for the one-pass work to be measured against: service calls are the
/// differences between chain prefixes.
#[test]
fn the_census_of_a_cached_request_through_the_chain() {
    let mut previous: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut total = 0;
    for (n, module) in MODULES.iter().enumerate() {
        let (calls, services) = census(n + 1);
        let name = module.replace('_', "-");
        let mine: Vec<&HostCall> = calls.iter().filter(|c| c.filter == name).collect();
        assert!(!mine.is_empty(), "{module} made no stream call: the census lost it");
        let mut by_kind: BTreeMap<HostCallKind, Vec<&str>> = BTreeMap::new();
        for call in &mine {
            by_kind.entry(call.kind).or_default().push(call.target.as_str());
        }
        let own: BTreeMap<&str, u64> = services
            .iter()
            .map(|(f, c)| (*f, c - previous.get(f).copied().unwrap_or(0)))
            .filter(|(_, c)| *c > 0)
            .collect();
        let count = mine.len() + own.values().sum::<u64>() as usize;
        total += count;
        eprintln!("{module}: {count} host calls per request");
        for (kind, targets) in &by_kind {
            eprintln!("  {kind:?} x{}: {}", targets.len(), targets.join(", "));
        }
        for (function, calls) in &own {
            eprintln!("  {function} x{calls}");
        }
        previous = services;
    }
    eprintln!("the chain: {total} host calls per request");
}
