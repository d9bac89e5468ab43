//! Arbitrary request facts and rate-limit service answers: never a panic. The first byte picks
//! the configuration:
//! - a rich one (every kind of key, a fallback, global limits): any facts, then the service's
//!   answer from the remaining bytes;
//! - one limit per `x-user` header with a burst of 3: the bytes are a sequence of requests at
//!   one instant, and no key passes more than 3.
#![no_main]

mod common;

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use zt_core::ratelimit::{GlobalAnswer, RateLimitConfig, RequestFacts, Step, Verdict, admitted_headers, refusal};

const RICH: &str = r#"{
  "limits": {
    "per-user": {"quota": 3, "window_seconds": 60, "key": [{"claim": ["org", "id"]}, "provider", {"header": "x-user"}],
                 "unkeyed": {"fallback": "per-net"}},
    "per-net": {"quota": 2, "window_seconds": 1, "burst": 4, "key": [{"source_prefix": {"ipv4": 24, "ipv6": 48}}, "route", "method"]},
    "service": {"key": [{"claim": "sub"}], "mode": "global"},
    "both": {"quota": 5, "window_seconds": 10, "key": ["source_ip", "remote_ip"], "mode": "local_then_global", "advisory": true}
  },
  "defaults": {"limits": ["per-user"]},
  "routes": [{"name": "r1", "route_names": ["r1"], "match": {"path": {"prefix": "/v1"}}, "limits": ["service", "both"]}],
  "max_keys": 8,
  "global": {"cluster": "rls", "domain": "zt", "timeout_ms": 50, "on_error": "allow"}
}"#;

const BURST: u64 = 3;
const PER_USER: &str = r#"{
  "limits": {"per-user": {"quota": 1, "window_seconds": 60, "burst": 3, "key": [{"header": "x-user"}]}},
  "defaults": {"limits": ["per-user"]},
  "max_keys": 16
}"#;

fn config(text: &str) -> RateLimitConfig {
    match RateLimitConfig::from_json(text.as_bytes()) {
        Ok(config) => config,
        Err(error) => panic!("fuzz configuration: {error}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    if selector % 2 == 0 {
        rich(rest);
    } else {
        per_user(rest);
    }
});

fn rich(data: &[u8]) {
    let config = config(RICH);
    let store = common::Store::default();
    if config.prepare(&store).is_err() {
        panic!("prepare");
    }
    let f = common::Facts::parse(data);
    let facts = RequestFacts {
        route_name: f.route_name.as_deref(),
        route_choice: None,
        authority: f.authority.as_deref(),
        method: &f.method,
        path: &f.path,
        headers: &f.headers,
        source: f.source,
        // The address behind trusted proxies: the peer's, read backwards, so that the two differ.
        remote: f.source.map(|ip| match ip {
            std::net::IpAddr::V4(v4) => std::net::IpAddr::from(v4.octets().map(|b| b.reverse_bits())),
            std::net::IpAddr::V6(v6) => std::net::IpAddr::from(v6.octets().map(|b| b.reverse_bits())),
        }),
        identity: f.identity.as_ref(),
        now_ms: f.now,
    };
    // Twice: the second request meets the buckets the first left.
    for _ in 0..2 {
        let decision = match config.check(&facts, &store) {
            Step::Decided(decision) => decision,
            Step::AskGlobal(pending) => {
                let _ = pending.request();
                let answer = if f.selector % 2 == 0 { GlobalAnswer::Response(&f.rest) } else { GlobalAnswer::Failed };
                config.finish(pending, answer, &store, f.now)
            }
        };
        let _ = decision.record();
        let _ = refusal(&decision, true);
        let _ = admitted_headers(&decision, true);
    }
}

/// Requests separated by `0x00`, each the value of its `x-user` header (none when empty).
fn per_user(data: &[u8]) {
    let config = config(PER_USER);
    let store = common::Store::default();
    if config.prepare(&store).is_err() {
        panic!("prepare");
    }
    let mut passed: HashMap<&[u8], u64> = HashMap::new();
    for user in data.split(|b| *b == 0).take(64) {
        let headers: Vec<(String, Vec<u8>)> =
            if user.is_empty() { Vec::new() } else { vec![("x-user".to_owned(), user.to_vec())] };
        let facts = RequestFacts {
            route_name: None,
            route_choice: None,
            authority: None,
            method: "GET",
            path: "/",
            headers: &headers,
            source: None,
            remote: None,
            identity: None,
            now_ms: 1_700_000_000_000,
        };
        let Step::Decided(decision) = config.check(&facts, &store) else { panic!("asked a service") };
        if decision.verdict != Verdict::Limited {
            assert!(!user.is_empty(), "an unkeyed request passed");
            let count = passed.entry(user).or_default();
            *count += 1;
            assert!(*count <= BURST, "{count} requests of one key passed a burst of {BURST}");
        }
    }
}
