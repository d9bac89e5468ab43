//! Every configuration error names its JSON path.

use serde_json::json;
use wasm_bindgen_test::wasm_bindgen_test;

use super::{config, config_error};

fn base(limits: serde_json::Value) -> serde_json::Value {
    json!({"limits": limits, "defaults": {"limits": ["a"]}})
}

#[wasm_bindgen_test(unsupported = test)]
fn a_minimal_configuration_is_accepted() {
    let c = config(base(json!({"a": {"quota": 10, "window_seconds": 60, "key": [{"claim": "sub"}]}})));
    assert!(c.inputs().identity);
    assert!(!c.inputs().source);
    assert_eq!(c.tables().count(), 1);
    assert!(c.headers_on_admitted());
    assert!(!c.x_ratelimit());
}

#[wasm_bindgen_test(unsupported = test)]
fn errors_name_the_field() {
    let cases = [
        (base(json!({"a": {"window_seconds": 60, "key": []}})), "limits.a.quota: is required"),
        (base(json!({"a": {"quota": 0, "window_seconds": 60, "key": []}})), "limits.a.quota: must be 1 to"),
        (base(json!({"a": {"quota": 1, "key": []}})), "limits.a.window_seconds: is required"),
        (base(json!({"a": {"quota": 1, "window_seconds": 0, "key": []}})), "limits.a.window_seconds: must be"),
        (base(json!({"a": {"quota": 1, "window_seconds": 1, "burst": 0, "key": []}})), "limits.a.burst: must be"),
        (
            base(json!({"a": {"quota": 1, "window_seconds": 1, "key": [{"header": "bad header"}]}})),
            "limits.a.key[0].header",
        ),
        (
            base(json!({"a": {"quota": 1, "window_seconds": 1, "key": ["route", "route"]}})),
            "limits.a.key[1]: is listed twice",
        ),
        (base(json!({"a": {"quota": 1, "window_seconds": 1, "key": [{"claim": ""}]}})), "limits.a.key[0].claim"),
        (
            base(json!({"a": {"quota": 1, "window_seconds": 1, "key": [{"source_prefix": {"ipv4": 33, "ipv6": 64}}]}})),
            "limits.a.key[0].source_prefix.ipv4",
        ),
        (
            base(json!({"a": {"quota": 1, "window_seconds": 1, "key": [], "unkeyed": {"fallback": "zz"}}})),
            "limits.a.unkeyed.fallback: no limit named `zz`",
        ),
        (
            base(json!({"a": {"quota": 1, "window_seconds": 1, "key": [], "unkeyed": {"fallback": "a"}}})),
            "limits.a.unkeyed.fallback: a limit cannot fall back to itself",
        ),
        (
            base(json!({"a": {"quota": 1, "window_seconds": 1, "key": [], "mode": "global"}})),
            "limits.a.quota: a `global` limit",
        ),
        (base(json!({"a": {"key": [], "mode": "global"}})), "limits.a.mode: needs the top-level `global`"),
        (
            base(json!({"a": {"quota": 1, "window_seconds": 1, "key": [], "colour": 1}})),
            "limits.a.colour: unknown field `colour`",
        ),
        (json!({"limits": {"a": {"quota": 1, "window_seconds": 1, "key": []}}}), "missing field `defaults`"),
        (
            json!({"limits": {"a": {"quota": 1, "window_seconds": 1, "key": []}, "b": {"quota": 1, "window_seconds": 1, "key": []}}, "defaults": {"limits": ["a"]}}),
            "limits.b: is used by no route rule",
        ),
        (
            json!({"limits": {"a": {"quota": 1, "window_seconds": 1, "key": []}}, "defaults": {"limits": ["x"]}}),
            "defaults.limits[0]: no limit named `x`",
        ),
        (
            json!({"limits": {"a": {"quota": 1, "window_seconds": 1, "key": []}}, "defaults": {"limits": ["a"]}, "routes": [{"name": "r", "limits": ["a"]}]}),
            "routes[0].limits[0]: `a` is already in effect",
        ),
        (
            json!({"limits": {"a": {"quota": 1, "window_seconds": 1, "key": []}}, "defaults": {"limits": ["a"]}, "max_keys": 0}),
            "max_keys: must be 1 to",
        ),
        (
            json!({"limits": {"a": {"key": [], "mode": "global"}}, "defaults": {"limits": ["a"]}, "global": {"cluster": "", "domain": "d"}}),
            "global.cluster: must be 1 to 100 bytes",
        ),
        (
            json!({"limits": {"a": {"key": [], "mode": "global"}}, "defaults": {"limits": ["a"]}, "global": {"cluster": "c", "domain": "d", "timeout_ms": 0}}),
            "global.timeout_ms",
        ),
        (
            json!({"limits": {"a b": {"quota": 1, "window_seconds": 1, "key": []}}, "defaults": {"limits": ["a b"]}}),
            "limits.a b: \"a b\" must be",
        ),
    ];
    for (configuration, expected) in cases {
        let error = config_error(configuration.clone());
        assert!(error.contains(expected), "{configuration}\n  gave: {error}\n  want: {expected}");
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn fallback_chains_are_refused() {
    let error = config_error(json!({
        "limits": {
            "a": {"quota": 1, "window_seconds": 1, "key": [{"claim": "sub"}], "unkeyed": {"fallback": "b"}},
            "b": {"quota": 1, "window_seconds": 1, "key": [{"header": "x-key"}], "unkeyed": {"fallback": "c"}},
            "c": {"quota": 1, "window_seconds": 1, "key": ["source_ip"]},
        },
        "defaults": {"limits": ["a"]},
    }));
    assert!(error.contains("limits.a.unkeyed.fallback: `b` has a fallback itself"), "{error}");
}

#[wasm_bindgen_test(unsupported = test)]
fn inputs_list_only_what_keys_read() {
    let c = config(json!({
        "limits": {
            "h": {"quota": 1, "window_seconds": 1, "key": [{"header": "X-Api-Key"}, "method"]},
            "s": {"quota": 1, "window_seconds": 1, "key": [{"source_prefix": {"ipv4": 24, "ipv6": 64}}]},
        },
        "defaults": {"limits": ["h"]},
        "routes": [{"name": "r", "route_names": ["api"], "limits": ["s"]}],
    }));
    let inputs = c.inputs();
    assert_eq!(inputs.headers, vec!["x-api-key".to_owned()]);
    assert!(inputs.source && inputs.route_name && !inputs.identity && !inputs.authority);
}
