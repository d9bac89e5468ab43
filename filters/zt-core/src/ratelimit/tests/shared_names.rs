//! Shared-table names: Envoy shares data per `vm_id`, and two configurations on one `vm_id`
//! with a limit of the same name must share its buckets only when the limits are the same.

use serde_json::{Value, json};
use wasm_bindgen_test::wasm_bindgen_test;

use super::super::{Step, Verdict};
use super::{Facts, config};
use crate::shared_store::MemoryStore;

/// `limits.api` with `fields` over a base of 2 per 60 s per `sub`, and `max_keys`.
fn limit(fields: Value, max_keys: u64) -> Value {
    let mut limit = json!({"quota": 2, "window_seconds": 60, "key": [{"claim": "sub"}]});
    for (name, value) in fields.as_object().unwrap() {
        limit[name] = value.clone();
    }
    let mut config = json!({"limits": {"api": limit}, "defaults": {"limits": ["api"]}, "max_keys": max_keys});
    if limit["mode"] == json!("local_then_global") {
        config["global"] = json!({"cluster": "rls", "domain": "zt"});
    }
    config
}

fn prefix(value: Value) -> String {
    let config = config(value);
    let (_, table) = config.tables().find(|(name, _)| *name == "api").unwrap();
    table.prefix().to_owned()
}

#[wasm_bindgen_test(unsupported = test)]
fn table_names_follow_the_limit_definition_not_its_name_alone() {
    let base = prefix(limit(json!({}), 64));
    let digest = base.strip_prefix("zt.rl/api.").and_then(|rest| rest.strip_suffix('/')).unwrap();
    assert_eq!(digest.len(), 32, "{base}");
    // The same definition, written otherwise: the same table.
    assert_eq!(base, prefix(limit(json!({"burst": 2, "key": [{"claim": ["sub"]}]}), 64)));
    // The fallback applies another limit's table: it does not name this one.
    let with_fallback = json!({
        "limits": {
            "api": {"quota": 2, "window_seconds": 60, "key": [{"claim": "sub"}], "unkeyed": {"fallback": "anon"}},
            "anon": {"quota": 1, "window_seconds": 60, "key": ["source_ip"]},
        },
        "defaults": {"limits": ["api"]},
        "max_keys": 64,
    });
    assert_eq!(base, prefix(with_fallback));
    for (what, other) in [
        ("quota", limit(json!({"quota": 3, "burst": 2}), 64)),
        ("window", limit(json!({"window_seconds": 61}), 64)),
        ("burst", limit(json!({"burst": 3}), 64)),
        ("key", limit(json!({"key": [{"claim": "email"}]}), 64)),
        ("key order", limit(json!({"key": [{"claim": "sub"}, "method"]}), 64)),
        ("claim path", limit(json!({"key": [{"claim": "org.id"}]}), 64)),
        ("claim path of one dotted name", limit(json!({"key": [{"claim": ["org.id"]}]}), 64)),
        ("source prefix", limit(json!({"key": [{"source_prefix": {"ipv4": 24, "ipv6": 64}}]}), 64)),
        ("header", limit(json!({"key": [{"header": "x-tenant"}]}), 64)),
        ("mode", limit(json!({"mode": "local_then_global"}), 64)),
        ("advisory", limit(json!({"advisory": true}), 64)),
        ("slots", limit(json!({}), 65)),
    ] {
        assert_ne!(base, prefix(other), "a different {what} shares the table");
    }
    let prefix_a = prefix(limit(json!({"key": [{"source_prefix": {"ipv4": 24, "ipv6": 64}}]}), 64));
    let prefix_b = prefix(limit(json!({"key": [{"source_prefix": {"ipv4": 24, "ipv6": 48}}]}), 64));
    assert_ne!(prefix_a, prefix_b);
}

fn admitted(config: &super::super::RateLimitConfig, store: &MemoryStore, who: &str) -> bool {
    match config.check(&Facts::get("/").who(who).facts(), store) {
        Step::Decided(decision) => decision.verdict == Verdict::Admitted,
        Step::AskGlobal(_) => panic!("asked the service"),
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn two_configurations_on_one_store_keep_their_own_quota() {
    let store = MemoryStore::default();
    let two = config(limit(json!({"quota": 2}), 64));
    let five = config(limit(json!({"quota": 5}), 64));
    two.prepare(&store).unwrap();
    five.prepare(&store).unwrap();
    // Interleaved, as requests on two listeners are: neither resets nor drains the other.
    let mut admitted_two = 0;
    let mut admitted_five = 0;
    for _ in 0..6 {
        admitted_two += u32::from(admitted(&two, &store, "alice"));
        admitted_five += u32::from(admitted(&five, &store, "alice"));
    }
    assert_eq!((admitted_two, admitted_five), (2, 5));
    // The same definition (another worker, or a listener configured alike) shares the bucket.
    let twin = config(limit(json!({"quota": 2}), 64));
    twin.prepare(&store).unwrap();
    assert!(!admitted(&twin, &store, "alice"));
}
