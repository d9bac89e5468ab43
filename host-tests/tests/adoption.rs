//! Authorization, rate limit and audit without zt-jwt: the caller Envoy's own `jwt_authn` (or
//! Istio's `RequestAuthentication`) verified, taken from the stream's dynamic metadata as Envoy
//! answers the `metadata` attribute, when the configuration's `identity_source` says so. In both
//! layouts: the three single filters, each configured alike, and the suite without a `jwt`
//! section (the field set once, beside the sections).

use serde_json::{Value, json};
use zt_host_tests::{FilterSpec, Harness, HarnessError, Layout, Request};

const NOW: u64 = 1_700_000_000;
const MARKER: &str = "zt.audit.v1 ";

/// Istio's `RequestAuthentication` writes every rule's payload under `payload`; the rules call
/// the caller's provider `corp`.
fn adopted() -> Value {
    json!({"jwt_authn": [{"payload_in_metadata": "payload", "issuer": "https://corp.example", "provider": "corp"}]})
}

/// Orders need the `orders:read` scope; everything else is open.
fn authz() -> Value {
    json!({
        "policies": {
            "orders-read": {"action": "ALLOW", "rules": [{"when": [{"scopes": {"all_of": ["orders:read"]}}]}]},
            "open": {"action": "ALLOW", "rules": [{}]},
        },
        "defaults": {"policies": ["open"]},
        "routes": [{"name": "orders", "match": {"path": {"prefix": "/orders/"}}, "policies": ["orders-read"], "inherit_defaults": false}],
    })
}

/// 2 requests a minute per subject; anonymous callers 1 a minute in all.
fn ratelimit() -> Value {
    json!({
        "limits": {
            "per-user": {"quota": 2, "window_seconds": 60, "key": [{"claim": "sub"}], "unkeyed": {"fallback": "anonymous"}},
            "anonymous": {"quota": 1, "window_seconds": 60, "key": []},
        },
        "defaults": {"limits": ["per-user"]},
        "max_keys": 64,
    })
}

fn audit() -> Value {
    json!({"log_batch_records": 1})
}

/// The three stages reading the caller from `source` (`None`: the configuration says nothing).
fn filters(layout: Layout, source: Option<&Value>) -> Vec<FilterSpec> {
    let sections = [("authz", authz()), ("ratelimit", ratelimit()), ("audit", audit())];
    match layout {
        Layout::Chain => sections
            .into_iter()
            .map(|(stage, mut config)| {
                if let Some(source) = source {
                    config["identity_source"] = source.clone();
                }
                FilterSpec::new(&format!("zt_{stage}"), config.to_string())
            })
            .collect(),
        Layout::Suite => {
            let mut suite: serde_json::Map<String, Value> =
                sections.into_iter().map(|(stage, config)| (stage.to_owned(), config)).collect();
            if let Some(source) = source {
                suite.insert("identity_source".into(), source.clone());
            }
            vec![FilterSpec::new("zt_suite", Value::Object(suite).to_string())]
        }
    }
}

fn envoy(layout: Layout) -> Harness {
    let mut envoy = Harness::new();
    envoy.clock().set_unix_seconds(NOW);
    for filter in filters(layout, Some(&adopted())) {
        let loaded = envoy.load(filter);
        assert!(loaded.is_ok(), "{layout:?}: {loaded:?} {}", envoy.log_text());
    }
    envoy
}

/// A request `jwt_authn` verified: its payload in the stream's metadata.
fn verified(path: &str, sub: &str, scope: Value) -> Request {
    let payload = json!({"iss": "https://corp.example", "sub": sub, "scope": scope, "exp": NOW + 300, "tier": 2});
    Request::get(path).jwt_authn_payload("payload", &payload)
}

fn records(envoy: &Harness) -> Vec<Value> {
    let logs = envoy.logs();
    let lines = logs.iter().flat_map(|l| l.message.lines().map(str::to_owned).collect::<Vec<_>>());
    lines
        .filter_map(|line| line.find(MARKER).map(|i| serde_json::from_str(&line[i + MARKER.len()..]).unwrap()))
        .collect()
}

#[test]
fn the_caller_jwt_authn_verified_is_authorized_limited_and_recorded() {
    for layout in Layout::ALL {
        let mut envoy = envoy(layout);
        // Istio normalizes `scope` into a list; a plain space-delimited string reads the same.
        let allowed = envoy.send(verified("/orders/1", "alice", json!(["orders:read", "profile"])));
        assert_eq!(allowed.status(), Some(200), "{layout:?}: {}", envoy.log_text());
        assert!(allowed.reached_upstream());
        let second = envoy.send(verified("/orders/2", "alice", json!("orders:read")));
        assert_eq!(second.status(), Some(200), "{layout:?}");
        assert_eq!(envoy.send(verified("/orders/3", "alice", json!("orders:read"))).status(), Some(429), "{layout:?}");
        // Another subject has its own bucket, and a caller without the scope is refused.
        assert_eq!(envoy.send(verified("/profile", "bob", json!("profile"))).status(), Some(200), "{layout:?}");
        assert_eq!(envoy.send(verified("/orders/4", "bob", json!("profile"))).status(), Some(403), "{layout:?}");

        let records = records(&envoy);
        assert_eq!(records.len(), 5, "{layout:?}: {}", envoy.log_text());
        let identity = &records[0]["identity"];
        assert_eq!(
            (identity["provider"].as_str(), identity["sub"].as_str()),
            (Some("corp"), Some("alice")),
            "{records:?}"
        );
        assert_eq!(identity["iss"], "https://corp.example");
        let outcomes: Vec<&str> = records.iter().map(|r| r["outcome"].as_str().unwrap()).collect();
        assert_eq!(outcomes, ["allow", "allow", "limited", "allow", "deny"], "{layout:?}");
        assert_eq!(envoy.metric_sum("zt_authz.allowed"), 4, "{layout:?}: the limited request passed authorization");
    }
}

#[test]
fn without_a_payload_the_caller_is_anonymous_and_rules_needing_one_deny() {
    for layout in Layout::ALL {
        let mut envoy = envoy(layout);
        // jwt_authn let the request through without a token (allow_missing): no metadata.
        let anonymous = envoy.send(Request::get("/orders/1"));
        assert_eq!(anonymous.status(), Some(401), "{layout:?}: {}", envoy.log_text());
        // A payload under another provider's key is not the configured caller.
        let payload = json!({"iss": "https://other.example", "sub": "mallory", "scope": "orders:read"});
        let other = envoy.send(Request::get("/orders/1").jwt_authn_payload("partner_payload", &payload));
        assert_eq!(other.status(), Some(401), "{layout:?}");
        // Headers a client can send name nobody.
        let forged = Request::get("/orders/1")
            .header("x-jwt-payload", "eyJzdWIiOiJtYWxsb3J5Iiwic2NvcGUiOiJvcmRlcnM6cmVhZCJ9")
            .header("x-forwarded-user", "alice");
        assert_eq!(envoy.send(forged).status(), Some(401), "{layout:?}");
        let records = records(&envoy);
        assert!(records.iter().all(|r| r.get("identity").is_none()), "{records:?}");
    }
}

#[test]
fn metadata_that_does_not_decode_is_refused_not_anonymous() {
    for layout in Layout::ALL {
        let mut envoy = envoy(layout);
        let broken = envoy.send(Request::get("/profile").attribute("metadata", b"\xff\xff\xff"));
        assert_eq!(broken.status(), Some(500), "{layout:?}: {}", envoy.log_text());
        assert!(!broken.reached_upstream());
        let records = records(&envoy);
        assert_eq!(records.last().map(|r| r["identity"].clone()), Some(json!({"unreadable": true})), "{records:?}");
    }
}

/// Istio puts every issuer's payload under `payload`: a token of an issuer jwt_authn accepts but
/// the configuration does not name is refused, never taken for `corp`'s caller.
#[test]
fn a_payload_of_an_issuer_no_entry_names_is_refused() {
    for layout in Layout::ALL {
        let mut envoy = envoy(layout);
        let payload = json!({"iss": "https://partner.example", "sub": "mallory", "scope": "orders:read"});
        let exchange = envoy.send(Request::get("/orders/1").jwt_authn_payload("payload", &payload));
        assert_eq!(exchange.status(), Some(500), "{layout:?}: {}", envoy.log_text());
        assert!(!exchange.reached_upstream());
        assert!(envoy.log_text().contains("whose iss no identity_source entry names"), "{}", envoy.log_text());
        assert_eq!(records(&envoy).last().map(|r| r["identity"].clone()), Some(json!({"unreadable": true})));
    }
}

#[test]
fn by_default_the_stages_read_zt_jwts_filter_state_not_jwt_authns_metadata() {
    for layout in Layout::ALL {
        let mut envoy = Harness::new();
        envoy.clock().set_unix_seconds(NOW);
        for filter in filters(layout, None) {
            envoy.load(filter).unwrap();
        }
        let exchange = envoy.send(verified("/orders/1", "alice", json!("orders:read")));
        assert_eq!(exchange.status(), Some(401), "{layout:?}: {}", envoy.log_text());
    }
}

#[test]
fn a_bad_identity_source_refuses_the_configuration_naming_the_field() {
    let empty = json!({"jwt_authn": []});
    for layout in Layout::ALL {
        let mut envoy = Harness::new();
        let refused = envoy.load(filters(layout, Some(&empty)).remove(0));
        assert!(matches!(refused, Err(HarnessError::ConfigureRefused { .. })), "{layout:?}: {refused:?}");
        assert!(envoy.log_text().contains("identity_source.jwt_authn: must name at least one"), "{}", envoy.log_text());
    }
    // The suite's own jwt section verifies the caller: it takes no second source.
    let mut envoy = Harness::new();
    let suite = json!({"jwt": {"providers": []}, "authz": authz(), "identity_source": adopted()});
    let refused = envoy.load(FilterSpec::new("zt_suite", suite.to_string()));
    assert!(matches!(refused, Err(HarnessError::ConfigureRefused { .. })), "{refused:?}");
    assert!(envoy.log_text().contains("identity_source: the jwt section verifies the caller"), "{}", envoy.log_text());
}
