//! Property tests of the rate-limit filter: any bytes or JSON as configuration and any request
//! facts or service answer never panic, and within one instant no key of an enforced limit
//! passes more requests than the limit's burst.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::IpAddr;

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use zt_core::jwt::Identity;
use zt_core::ratelimit::{GlobalAnswer, RateLimitConfig, RequestFacts, Step, Verdict};
use zt_core::{SharedStore, StoreError};

/// Envoy's shared data as the filter sees it: compare-and-swap on a version per key, a removal
/// stored as an empty value.
#[derive(Default)]
struct Store {
    entries: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    next_cas: Cell<u32>,
}

impl SharedStore for Store {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.entries.borrow().get(key).filter(|(value, _)| !value.is_empty()).cloned()
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        let mut entries = self.entries.borrow_mut();
        if let (Some(cas), Some((_, current))) = (cas, entries.get(key))
            && cas != *current
        {
            return Err(StoreError::CasMismatch);
        }
        self.next_cas.set(self.next_cas.get().wrapping_add(1));
        entries.insert(key.to_owned(), (value.to_vec(), self.next_cas.get()));
        Ok(())
    }
}

const NOW_MS: u64 = 1_700_000_000_000;
const SOURCES: [Option<&str>; 4] = [None, Some("10.0.0.1"), Some("10.0.0.2"), Some("2001:db8::1")];
const USERS: [Option<&str>; 3] = [None, Some("a"), Some("b")];
const SUBS: [Option<&str>; 3] = [None, Some("alice"), Some("bob")];
const METHODS: [&str; 2] = ["GET", "POST"];

/// The parts a bucket key may be made of, and their JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    SourceIp,
    User,
    Sub,
    Method,
    Route,
}

impl Part {
    fn json(self) -> Value {
        match self {
            Part::SourceIp => json!("source_ip"),
            Part::User => json!({"header": "x-user"}),
            Part::Sub => json!({"claim": "sub"}),
            Part::Method => json!("method"),
            Part::Route => json!("route"),
        }
    }

    /// The request's value of this part; `None` when the request cannot be keyed by it.
    fn value(self, r: &Req) -> Option<&'static str> {
        match self {
            Part::SourceIp => SOURCES[r.source],
            Part::User => USERS[r.user],
            Part::Sub => SUBS[r.sub],
            Part::Method => Some(METHODS[r.method]),
            Part::Route => Some("defaults"),
        }
    }
}

#[derive(Debug, Clone)]
struct LimitModel {
    quota: u64,
    window_seconds: u64,
    burst: Option<u64>,
    key: Vec<Part>,
    advisory: bool,
}

impl LimitModel {
    fn strategy() -> impl Strategy<Value = LimitModel> {
        // Distinct parts: a part listed twice is refused (`key[1]: is listed twice`).
        let parts = vec![Part::SourceIp, Part::User, Part::Sub, Part::Method, Part::Route];
        (
            1u64..8,
            1u64..7200,
            prop::option::of(1u64..8),
            prop::sample::subsequence(parts, 0..=3),
            prop::bool::weighted(0.2),
        )
            .prop_map(|(quota, window_seconds, burst, key, advisory)| LimitModel {
                quota,
                window_seconds,
                burst,
                key,
                advisory,
            })
    }

    fn burst(&self) -> u64 {
        self.burst.unwrap_or(self.quota)
    }

    /// The bucket a request falls in, `None` when the request cannot be keyed.
    fn key(&self, r: &Req) -> Option<Vec<&'static str>> {
        self.key.iter().map(|part| part.value(r)).collect()
    }

    fn json(&self) -> Value {
        let mut limit = json!({"quota": self.quota, "window_seconds": self.window_seconds,
            "key": self.key.iter().map(|p| p.json()).collect::<Vec<_>>(), "advisory": self.advisory});
        if let Some(burst) = self.burst {
            limit["burst"] = json!(burst);
        }
        limit
    }
}

#[derive(Debug, Clone, Copy)]
struct Req {
    source: usize,
    user: usize,
    sub: usize,
    method: usize,
}

impl Req {
    fn strategy() -> impl Strategy<Value = Req> {
        (0..SOURCES.len(), 0..USERS.len(), 0..SUBS.len(), 0..METHODS.len())
            .prop_map(|(source, user, sub, method)| Req { source, user, sub, method })
    }
}

fn config_of(limits: &[LimitModel]) -> (RateLimitConfig, Store, String) {
    let names: Vec<String> = (0..limits.len()).map(|i| format!("l{i}")).collect();
    let json = json!({
        "limits": names.iter().zip(limits).map(|(n, l)| (n.clone(), l.json())).collect::<Map<_, _>>(),
        "defaults": {"limits": names},
        "max_keys": 64,
    })
    .to_string();
    let config = RateLimitConfig::from_json(json.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{json}"));
    let store = Store::default();
    config.prepare(&store).unwrap();
    (config, store, json)
}

/// One request at `NOW_MS`: whether it passes.
fn passes(config: &RateLimitConfig, store: &Store, r: &Req) -> bool {
    let headers: Vec<(String, Vec<u8>)> =
        USERS[r.user].map(|u| ("x-user".to_owned(), u.as_bytes().to_vec())).into_iter().collect();
    let identity = SUBS[r.sub].map(|sub| {
        let mut claims = Map::new();
        claims.insert("iss".into(), json!("https://a"));
        claims.insert("sub".into(), json!(sub));
        Identity::from_claims("p", claims)
    });
    let facts = RequestFacts {
        route_name: None,
        route_choice: None,
        authority: None,
        method: METHODS[r.method],
        path: "/",
        headers: &headers,
        source: SOURCES[r.source].map(|s| s.parse::<IpAddr>().unwrap()),
        remote: None,
        identity: identity.as_ref(),
        now_ms: NOW_MS,
    };
    match config.check(&facts, store) {
        Step::Decided(decision) => decision.verdict != Verdict::Limited,
        Step::AskGlobal(_) => panic!("no global limit is configured"),
    }
}

/// Arbitrary JSON values, nested a few levels, with the configuration's own member names mixed
/// in so that the parser gets past its first checks.
fn any_json() -> impl Strategy<Value = Value> {
    let names = prop_oneof![
        Just("limits".to_owned()),
        Just("defaults".to_owned()),
        Just("quota".to_owned()),
        Just("window_seconds".to_owned()),
        Just("burst".to_owned()),
        Just("key".to_owned()),
        Just("unkeyed".to_owned()),
        Just("fallback".to_owned()),
        Just("source_prefix".to_owned()),
        "[a-z_]{0,10}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(|n| json!(n)),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        prop_oneof![Just("source_ip".to_owned()), Just("l".to_owned()), ".{0,12}"].prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((names.clone(), inner), 0..5).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A configuration with every kind of key, a fallback, a global limit and route rules.
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn no_key_of_an_enforced_limit_passes_more_than_its_burst_in_one_instant(
        limits in prop::collection::vec(LimitModel::strategy(), 1..4),
        requests in prop::collection::vec(Req::strategy(), 1..48),
    ) {
        let (config, store, json) = config_of(&limits);
        let mut passed: Vec<HashMap<Vec<&str>, u64>> = vec![HashMap::new(); limits.len()];
        for r in &requests {
            if !passes(&config, &store, r) {
                continue;
            }
            for (limit, counts) in limits.iter().zip(&mut passed) {
                match limit.key(r) {
                    Some(key) => *counts.entry(key).or_default() += 1,
                    // An enforced limit that cannot key a request refuses it (`unkeyed: deny`).
                    None => prop_assert!(limit.advisory, "an unkeyed request passed {r:?}\n{json}"),
                }
            }
        }
        for (limit, counts) in limits.iter().zip(&passed).filter(|(l, _)| !l.advisory) {
            for (key, count) in counts {
                prop_assert!(*count <= limit.burst(), "{count} requests of key {key:?} passed a burst of {}\n{json}", limit.burst());
            }
        }
    }

    #[test]
    fn one_enforced_limit_passes_exactly_its_burst_per_key(
        limit in LimitModel::strategy(),
        requests in prop::collection::vec(Req::strategy(), 1..48),
    ) {
        let limit = LimitModel { advisory: false, ..limit };
        let (config, store, json) = config_of(std::slice::from_ref(&limit));
        let mut seen: HashMap<Vec<&str>, u64> = HashMap::new();
        for r in &requests {
            let expected = match limit.key(r) {
                Some(key) => {
                    let count = seen.entry(key).or_default();
                    *count += 1;
                    *count <= limit.burst()
                }
                None => false,
            };
            prop_assert_eq!(passes(&config, &store, r), expected, "{:?}\n{}", r, json);
        }
    }

    #[test]
    fn arbitrary_configuration_bytes_never_panic(bytes in any::<Vec<u8>>()) {
        let _ = RateLimitConfig::from_json(&bytes);
    }

    #[test]
    fn arbitrary_configuration_json_never_panics(value in any_json()) {
        let _ = RateLimitConfig::from_json(value.to_string().as_bytes());
        let _ = RateLimitConfig::from_json(json!({"limits": {"l": value}, "defaults": {"limits": ["l"]}}).to_string().as_bytes());
        let _ = RateLimitConfig::from_json(json!({"limits": {"l": {"quota": 1, "window_seconds": 1, "key": [value]}},
            "defaults": {"limits": ["l"]}, "max_keys": 4}).to_string().as_bytes());
    }

    #[test]
    fn arbitrary_request_facts_and_service_answers_never_panic(
        method in ".{0,8}",
        path in "(/[a-z0-9%.]{0,6}){0,4}(\\?.{0,8})?|.{0,20}",
        authority in prop::option::of(".{0,20}"),
        headers in prop::collection::vec((prop_oneof![Just("x-user".to_owned()), "[a-z-]{1,8}"], any::<Vec<u8>>()), 0..4),
        source in prop::option::of(any::<IpAddr>()),
        remote in prop::option::of(any::<IpAddr>()),
        claims in prop::collection::vec((prop_oneof![Just("org".to_owned()), Just("sub".to_owned()), "[a-z]{1,6}"], any_json()), 0..4),
        route_name in prop::option::of(prop_oneof![Just("r1".to_owned()), ".{0,4}"]),
        route_choice in prop::option::of(prop_oneof![Just("r1".to_owned()), ".{0,4}"]),
        now_ms in prop_oneof![Just(NOW_MS), any::<u64>()],
        answer in prop::option::of(any::<Vec<u8>>()),
    ) {
        let config = RateLimitConfig::from_json(RICH.as_bytes()).unwrap();
        let store = Store::default();
        config.prepare(&store).unwrap();
        let identity = (!claims.is_empty()).then(|| Identity::from_claims("p", claims.into_iter().collect()));
        let facts = RequestFacts {
            route_name: route_name.as_deref(),
            route_choice: route_choice.as_deref(),
            authority: authority.as_deref(),
            method: &method,
            path: &path,
            headers: &headers,
            source,
            remote,
            identity: identity.as_ref(),
            now_ms,
        };
        // Twice: the second meets the buckets the first left.
        for _ in 0..2 {
            let decision = match config.check(&facts, &store) {
                Step::Decided(decision) => decision,
                Step::AskGlobal(pending) => {
                    let _ = pending.request();
                    let answer = answer.as_deref().map_or(GlobalAnswer::Failed, GlobalAnswer::Response);
                    config.finish(pending, answer, &store, now_ms)
                }
            };
            let _ = decision.record();
            let _ = zt_core::ratelimit::refusal(&decision, true);
            let _ = zt_core::ratelimit::admitted_headers(&decision, true);
        }
    }
}
