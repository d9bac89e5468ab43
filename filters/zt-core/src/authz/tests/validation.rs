//! Every configuration error, with the exact JSON path it names.

use serde_json::json;
use wasm_bindgen_test::wasm_bindgen_test;

use super::*;

/// A valid configuration around one policy `p`, used by `defaults`.
fn with_policy(policy: Value) -> Value {
    json!({"environment": "production", "policies": {"p": policy}, "defaults": {"policies": ["p"]}})
}

fn with_rule(rule: Value) -> Value {
    with_policy(json!({"action": "ALLOW", "rules": [rule]}))
}

fn with_when(condition: Value) -> Value {
    with_rule(json!({"when": [condition]}))
}

fn with_source(source: Value) -> Value {
    with_rule(json!({"from": [{"source": source}]}))
}

fn with_operation(operation: Value) -> Value {
    with_rule(json!({"to": [{"operation": operation}]}))
}

/// Route rules next to an ALLOW policy `p` and a DENY policy `d` used by `defaults`.
fn with_routes(routes: Value) -> Value {
    json!({
        "policies": {"p": {"action": "ALLOW", "rules": [{}]}, "d": {"action": "DENY", "rules": [{}]}},
        "defaults": {"policies": ["d"]},
        "routes": routes,
    })
}

fn check(cases: Vec<(Value, &str, &str)>) {
    for (json, path, message) in cases {
        let error = config_error(json.clone());
        assert_eq!(error.path, path, "{error}\n{json}");
        assert!(error.message.contains(message), "`{}` lacks `{message}`\n{json}", error.message);
    }
}

const SRC: &str = "policies.p.rules[0].from[0].source";
const OP: &str = "policies.p.rules[0].to[0].operation";
const WHEN: &str = "policies.p.rules[0].when[0]";

#[wasm_bindgen_test(unsupported = test)]
fn top_level_and_policies() {
    check(vec![
        (json!({"polices": {}}), "polices", "unknown field `polices`"),
        (json!({"realm": "a\"b"}), "realm", "printable ASCII"),
        (json!({"realm": ""}), "realm", "non-empty"),
        (json!({"environment": ""}), "environment", "must not be empty"),
        (json!({"scope_claim": ""}), "scope_claim", "non-empty member names"),
        (json!({"scope_claim": "a..b"}), "scope_claim", "non-empty member names"),
        (json!({"advisory": "yes"}), "advisory", "invalid type"),
        (json!({"policies": {"p": {"actoin": "ALLOW"}}}), "policies.p.actoin", "unknown field `actoin`"),
        (
            json!({"policies": {"p": {"action": "CUSTOM", "rules": [{}]}}}),
            "policies.p.action",
            "unknown variant `CUSTOM`",
        ),
        (json!({"policies": {"p": {"rules": [{}]}}}), "policies.p", "missing field `action`"),
        (json!({"policies": {"p": {"action": "ALLOW"}}}), "policies.p", "missing field `rules`"),
        (with_policy(json!({"action": "ALLOW", "rules": []})), "policies.p.rules", "must not be empty"),
        (with_rule(json!({"from": []})), "policies.p.rules[0].from", "must not be empty"),
        (with_rule(json!({"to": []})), "policies.p.rules[0].to", "must not be empty"),
        (with_rule(json!({"when": []})), "policies.p.rules[0].when", "must not be empty"),
        (with_rule(json!({"from": [{}]})), "policies.p.rules[0].from[0]", "missing field `source`"),
        (with_rule(json!({"from": [{"source": {}, "x": 1}]})), "policies.p.rules[0].from[0].x", "unknown field"),
        (with_rule(json!({"to": [{"operation": {}, "x": 1}]})), "policies.p.rules[0].to[0].x", "unknown field"),
        (with_rule(json!({"form": []})), "policies.p.rules[0].form", "unknown field `form`"),
        (
            json!({"policies": {"a b": {"action": "ALLOW", "rules": [{}]}}, "defaults": {"policies": ["a b"]}}),
            "policies.a b",
            "letters, digits",
        ),
        (
            json!({"policies": {"default-deny": {"action": "ALLOW", "rules": [{}]}}, "defaults": {"policies": ["default-deny"]}}),
            "policies.default-deny",
            "reserved",
        ),
        (json!({"policies": {"p": {"action": "ALLOW", "rules": [{}]}}}), "policies.p", "used by no route rule"),
        (json!({"defaults": {"policies": []}}), "defaults.policies", "must not be empty"),
        (json!({"defaults": {"policies": ["ghost"]}}), "defaults.policies[0]", "no policy named `ghost`"),
        (
            json!({"policies": {"p": {"action": "ALLOW", "rules": [{}]}}, "defaults": {"policies": ["p", "p"]}}),
            "defaults.policies[1]",
            "already in effect",
        ),
    ]);
    let twice = br#"{"policies": {"a": {"action": "ALLOW", "rules": [{}]}, "a": {"action": "DENY", "rules": [{}]}}}"#;
    let error = AuthzConfig::from_json(twice).unwrap_err();
    assert_eq!((error.path.as_str(), error.message.as_str()), ("policies", "`a` is defined twice"));
    assert_eq!(AuthzConfig::from_json(b"{} x").unwrap_err().path, "(root)");
}

#[wasm_bindgen_test(unsupported = test)]
fn istio_sources_and_operations() {
    check(vec![
        (with_source(json!({"principal": ["x"]})), &format!("{SRC}.principal"), "unknown field `principal`"),
        (with_source(json!({"remoteIpBlock": ["10.0.0.0/8"]})), &format!("{SRC}.remoteIpBlock"), "unknown field"),
        (
            with_source(json!({"notRemoteIpBlocks": ["10.0.0.0/33"]})),
            &format!("{SRC}.notRemoteIpBlocks[0]"),
            "invalid CIDR",
        ),
        (with_source(json!({"principals": []})), &format!("{SRC}.principals"), "must not be empty"),
        (with_source(json!({"principals": [""]})), &format!("{SRC}.principals[0]"), "must not be empty"),
        (with_source(json!({"notPrincipals": ["a*b"]})), &format!("{SRC}.notPrincipals[0]"), "`*` may only"),
        (with_source(json!({"requestPrincipals": ["*a*"]})), &format!("{SRC}.requestPrincipals[0]"), "`*` may only"),
        (with_source(json!({"namespaces": []})), &format!("{SRC}.namespaces"), "must not be empty"),
        (
            with_source(json!({"ipBlocks": ["10.0.0.0/8", "10.0.0.0/33"]})),
            &format!("{SRC}.ipBlocks[1]"),
            "invalid CIDR \"10.0.0.0/33\"",
        ),
        (with_source(json!({"notIpBlocks": ["2001:db8::/129"]})), &format!("{SRC}.notIpBlocks[0]"), "invalid CIDR"),
        (with_source(json!({"ipBlocks": ["10.0.0.1/8"]})), &format!("{SRC}.ipBlocks[0]"), "host bits"),
        (with_operation(json!({"ports": ["80"]})), &format!("{OP}.ports"), "unknown field `ports`"),
        (with_operation(json!({"hosts": ["a b"]})), &format!("{OP}.hosts[0]"), "not a host"),
        (with_operation(json!({"notHosts": []})), &format!("{OP}.notHosts"), "must not be empty"),
        (with_operation(json!({"methods": ["GET", "G T"]})), &format!("{OP}.methods[1]"), "not an HTTP method"),
        (with_operation(json!({"paths": ["/a/{**}/b"]})), &format!("{OP}.paths[0]"), "last segment"),
        (with_operation(json!({"paths": ["/a/{id}"]})), &format!("{OP}.paths[0]"), "whole segment"),
        (with_operation(json!({"notPaths": ["admin"]})), &format!("{OP}.notPaths[0]"), "must start with `/`"),
        (with_operation(json!({"paths": ["/a?b=1"]})), &format!("{OP}.paths[0]"), "query"),
    ]);
}

#[wasm_bindgen_test(unsupported = test)]
fn istio_when_entries() {
    check(vec![
        (with_when(json!({"key": "destination.port", "values": ["80"]})), &format!("{WHEN}.key"), "unknown key"),
        (with_when(json!({"key": "request.auth.claims", "values": ["x"]})), &format!("{WHEN}.key"), "unknown key"),
        (with_when(json!({"key": "request.auth.claims[]", "values": ["x"]})), &format!("{WHEN}.key"), "unknown key"),
        (with_when(json!({"key": "request.auth.claims[a]x", "values": ["x"]})), &format!("{WHEN}.key"), "unknown key"),
        (with_when(json!({"key": "request.headers[a][b]", "values": ["x"]})), &format!("{WHEN}.key"), "one header"),
        (with_when(json!({"key": "request.headers[a b]", "values": ["x"]})), &format!("{WHEN}.key"), "header name"),
        (with_when(json!({"key": "source.ip"})), WHEN, "needs `values` or `notValues`"),
        (with_when(json!({"key": "source.ip", "values": []})), &format!("{WHEN}.values"), "must not be empty"),
        (with_when(json!({"key": "source.ip", "notValues": ["x"]})), &format!("{WHEN}.notValues[0]"), "invalid CIDR"),
        (
            with_when(json!({"key": "source.ip", "values": ["10.0.0.0/8"], "key2": 1})),
            &format!("{WHEN}.key2"),
            "unknown field",
        ),
        (with_when(json!({"values": ["x"]})), WHEN, "missing field `key`"),
        (
            with_when(json!({"key": "source.ip", "values": ["10.0.0.0/8"], "scopes": {"all_of": ["a"]}})),
            WHEN,
            "mixes Istio's `key` with `scopes`",
        ),
        (with_when(json!({"values": ["x"], "authenticated": true})), WHEN, "mixes Istio's `values`"),
    ]);
    let twice = br#"{"policies": {"p": {"action": "ALLOW", "rules": [{"when": [
        {"key": "source.ip", "key": "source.ip", "values": ["10.0.0.0/8"]}]}]}}, "defaults": {"policies": ["p"]}}"#;
    let error = AuthzConfig::from_json(twice).unwrap_err();
    assert_eq!(error.path, WHEN);
    assert!(error.message.contains("duplicate field `key`"), "{error}");
}

#[wasm_bindgen_test(unsupported = test)]
fn our_conditions() {
    check(vec![
        (with_when(json!({})), WHEN, "empty condition"),
        (with_when(json!("scopes")), WHEN, "invalid type"),
        (with_when(json!({"scope": {}})), &format!("{WHEN}.scope"), "unknown field `scope`"),
        (
            with_when(json!({"claim": {"path": "a", "gt": 1}, "issuer": ["x"]})),
            WHEN,
            "holds two conditions, `claim` and `issuer`",
        ),
        (with_when(json!({"all": []})), &format!("{WHEN}.all"), "must not be empty"),
        (with_when(json!({"any": []})), &format!("{WHEN}.any"), "must not be empty"),
        (
            with_when(json!({"all": [{"claim": {"path": "a", "gt": "x"}}]})),
            &format!("{WHEN}.all[0].claim.gt"),
            "invalid type",
        ),
        (
            with_when(json!({"any": [{"authenticated": true}, {"issuer": []}]})),
            &format!("{WHEN}.any[1].issuer"),
            "must not be empty",
        ),
        (
            with_when(json!({"not": {"not": {"provider": [""]}}})),
            &format!("{WHEN}.not.not.provider[0]"),
            "must not be empty",
        ),
        (with_when(json!({"scopes": {}})), &format!("{WHEN}.scopes"), "exactly one of `all_of` and `any_of`"),
        (with_when(json!({"scopes": {"all_of": ["a"], "any_of": ["b"]}})), &format!("{WHEN}.scopes"), "exactly one"),
        (with_when(json!({"scopes": {"all_of": []}})), &format!("{WHEN}.scopes.all_of"), "must not be empty"),
        (with_when(json!({"scopes": {"any_of": ["a", "b c"]}})), &format!("{WHEN}.scopes.any_of[1]"), "not a scope"),
        (with_when(json!({"scopes": {"all_of": ["a\"b"]}})), &format!("{WHEN}.scopes.all_of[0]"), "not a scope"),
        (with_when(json!({"claim": {"path": "a"}})), &format!("{WHEN}.claim"), "exactly one operator"),
        (
            with_when(json!({"claim": {"path": "a", "equals": 1, "prefix": "x"}})),
            &format!("{WHEN}.claim"),
            "exactly one operator",
        ),
        (
            with_when(json!({"claim": {"path": "a", "gt": 1, "lt": 5}})),
            &format!("{WHEN}.claim"),
            "exactly one operator",
        ),
        (with_when(json!({"claim": {"path": "a", "equals": null}})), &format!("{WHEN}.claim.equals"), "null"),
        (
            with_when(json!({"claim": {"path": "a", "one_of": []}})),
            &format!("{WHEN}.claim.one_of"),
            "must not be empty",
        ),
        (with_when(json!({"claim": {"path": "a", "one_of": [1, null]}})), &format!("{WHEN}.claim.one_of[1]"), "null"),
        (with_when(json!({"claim": {"path": "a", "contains": null}})), &format!("{WHEN}.claim.contains"), "null"),
        (
            with_when(json!({"claim": {"path": "a", "prefix": ""}})),
            &format!("{WHEN}.claim.prefix"),
            "must not be empty",
        ),
        (
            with_when(json!({"claim": {"path": "a..b", "exists": true}})),
            &format!("{WHEN}.claim.path"),
            "non-empty member",
        ),
        (with_when(json!({"claim": {"path": [], "exists": true}})), &format!("{WHEN}.claim.path"), "non-empty member"),
        (with_when(json!({"claim": {"path": 5, "exists": true}})), &format!("{WHEN}.claim.path"), "a claim path"),
        (with_when(json!({"claim": {"path": "a", "matches": "x"}})), &format!("{WHEN}.claim.matches"), "unknown field"),
        (with_when(json!({"issuer": []})), &format!("{WHEN}.issuer"), "must not be empty"),
        (with_when(json!({"peer": {}})), &format!("{WHEN}.peer"), "needs `spiffe_id` or `trust_domain`"),
        (
            with_when(json!({"peer": {"spiffe_id": "spiffe://td/a/"}})),
            &format!("{WHEN}.peer.spiffe_id"),
            "empty path segment",
        ),
        (with_when(json!({"peer": {"spiffe_id": "https://td/a"}})), &format!("{WHEN}.peer.spiffe_id"), "spiffe://"),
        (
            with_when(json!({"peer": {"spiffe_id": "spiffe://td/a", "trust_domain": "td"}})),
            &format!("{WHEN}.peer"),
            "excludes",
        ),
        (with_when(json!({"peer": {"trust_domain": "TD"}})), &format!("{WHEN}.peer.trust_domain"), "lowercase"),
        (
            with_when(json!({"peer": {"trust_domain": "td", "path_prefix": "ns/a"}})),
            &format!("{WHEN}.peer.path_prefix"),
            "start with `/`",
        ),
        (
            with_when(json!({"peer": {"trust_domain": "td", "path_prefix": "/ns/../a"}})),
            &format!("{WHEN}.peer.path_prefix"),
            "`..`",
        ),
        (
            with_when(json!({"source_ip": ["10.0.0.0/8", "300.0.0.0/8"]})),
            &format!("{WHEN}.source_ip[1]"),
            "invalid CIDR \"300.0.0.0/8\"",
        ),
        (with_when(json!({"source_ip": []})), &format!("{WHEN}.source_ip"), "must not be empty"),
        (
            with_when(json!({"header": {"name": "x"}})),
            &format!("{WHEN}.header"),
            "exactly one of `exact`, `prefix`, `present`",
        ),
        (
            with_when(json!({"header": {"name": "x", "exact": "a", "present": true}})),
            &format!("{WHEN}.header"),
            "exactly one",
        ),
        (with_when(json!({"header": {"name": "a b", "present": true}})), &format!("{WHEN}.header.name"), "header name"),
        (
            with_when(json!({"time_window": {"start": "9:00", "end": "17:00"}})),
            &format!("{WHEN}.time_window.start"),
            "HH:MM",
        ),
        (
            with_when(json!({"time_window": {"start": "09:00", "end": "24:00"}})),
            &format!("{WHEN}.time_window.end"),
            "HH:MM",
        ),
        (
            with_when(json!({"time_window": {"start": "09:00", "end": "09:00"}})),
            &format!("{WHEN}.time_window.end"),
            "empty",
        ),
        (
            with_when(json!({"time_window": {"days": ["mon", "funday"], "start": "09:00", "end": "17:00"}})),
            &format!("{WHEN}.time_window.days[1]"),
            "\"funday\"",
        ),
        (
            with_when(json!({"time_window": {"days": [], "start": "09:00", "end": "17:00"}})),
            &format!("{WHEN}.time_window.days"),
            "must not be empty",
        ),
        (with_when(json!({"time_window": {"start": "09:00"}})), &format!("{WHEN}.time_window"), "missing field `end`"),
        (with_when(json!({"environment": {"claim": ""}})), &format!("{WHEN}.environment.claim"), "non-empty member"),
        (with_when(json!({"authenticated": "yes"})), &format!("{WHEN}.authenticated"), "invalid type"),
    ]);
    let no_label = json!({"policies": {"p": {"action": "ALLOW", "rules": [{"when": [{"environment": {"claim": "env"}}]}]}},
        "defaults": {"policies": ["p"]}});
    check(vec![(no_label, &format!("{WHEN}.environment"), "`environment` label")]);
}

#[wasm_bindgen_test(unsupported = test)]
fn route_rules() {
    check(vec![
        (with_routes(json!([{"name": "", "policies": ["p"]}])), "routes[0].name", "non-empty"),
        (with_routes(json!([{"policies": ["p"]}])), "routes[0]", "missing field `name`"),
        (with_routes(json!([{"name": "a"}, {"name": "a"}])), "routes[1].name", "duplicates routes[0].name"),
        (with_routes(json!([{"name": "a", "matches": {}}])), "routes[0].matches", "unknown field `matches`"),
        (with_routes(json!([{"name": "a", "route_names": []}])), "routes[0].route_names", "must not be empty"),
        (with_routes(json!([{"name": "a", "route_names": [""]}])), "routes[0].route_names[0]", "must not be empty"),
        (
            with_routes(json!([{"name": "a", "route_names": ["x"]}, {"name": "b", "route_names": ["y", "x"]}])),
            "routes[1].route_names[1]",
            "`x` is already listed by routes[0] (`a`)",
        ),
        (with_routes(json!([{"name": "a", "route_names": ["x", "x"]}])), "routes[0].route_names[1]", "already listed"),
        (with_routes(json!([{"name": "a", "match": {"path": {}}}])), "routes[0].match.path", "exactly one of"),
        (
            with_routes(json!([{"name": "a", "match": {"path": {"exact": "/a", "prefix": "/a"}}}])),
            "routes[0].match.path",
            "exactly one of",
        ),
        (
            with_routes(json!([{"name": "a", "match": {"path": {"regex": ".*"}}}])),
            "routes[0].match.path.regex",
            "unknown field",
        ),
        (
            with_routes(json!([{"name": "a", "match": {"path": {"exact": "a"}}}])),
            "routes[0].match.path.exact",
            "start with `/`",
        ),
        (
            with_routes(json!([{"name": "a", "match": {"path": {"prefix": "/a?"}}}])),
            "routes[0].match.path.prefix",
            "query",
        ),
        (
            with_routes(json!([
                {"name": "a", "route_names": ["a"]},
                {"name": "b", "route_names": ["b"]},
                {"name": "c", "route_names": ["c"]},
                {"name": "d", "match": {"path": {"template": "/users/{id}/{**}/x"}}},
            ])),
            "routes[3].match.path.template",
            "last segment",
        ),
        (
            with_routes(json!([{"name": "a", "match": {"path": {"template": "/users/{1d}"}}}])),
            "routes[0].match.path.template",
            "variable name",
        ),
        (
            with_routes(json!([{"name": "a", "match": {"path": {"template": "/users"}}}])),
            "routes[0].match.path.template",
            "no wildcard",
        ),
        (with_routes(json!([{"name": "a", "match": {"hosts": []}}])), "routes[0].match.hosts", "must not be empty"),
        (with_routes(json!([{"name": "a", "match": {"hosts": ["a.com", "a*b"]}}])), "routes[0].match.hosts[1]", "`*`"),
        (with_routes(json!([{"name": "a", "match": {"methods": []}}])), "routes[0].match.methods", "must not be empty"),
        (
            with_routes(json!([{"name": "a", "policies": ["ghost"]}])),
            "routes[0].policies[0]",
            "no policy named `ghost`",
        ),
        (with_routes(json!([{"name": "a", "policies": ["p", "p"]}])), "routes[0].policies[1]", "already in effect"),
        (
            with_routes(json!([{"name": "a", "policies": ["d", "p"]}])),
            "routes[0].policies[0]",
            "inherited from `defaults`",
        ),
        (
            with_routes(json!([{"name": "a", "policies": [], "inherit_defaults": false}])),
            "routes[0].policies",
            "no policy",
        ),
        (
            json!({"policies": {"p": {"action": "ALLOW", "rules": [{}]}}, "routes": [{"name": "a"}, {"name": "b", "policies": ["p"]}]}),
            "routes[0].policies",
            "no policy is in effect",
        ),
    ]);
}

#[wasm_bindgen_test(unsupported = test)]
fn unreachable_route_rules() {
    let route = |name: &str, matcher: Value| json!({"name": name, "match": matcher});
    check(vec![
        (
            with_routes(json!([
                route("a", json!({"path": {"prefix": "/a/"}})),
                route("b", json!({"path": {"prefix": "/a/"}}))
            ])),
            "routes[1].match",
            "unreachable: every request it matches is selected first by routes[0] (`a`)",
        ),
        (
            with_routes(json!([
                route("a", json!({"path": {"exact": "/a"}})),
                route("b", json!({"path": {"exact": "/a"}}))
            ])),
            "routes[1].match",
            "routes[0]",
        ),
        (with_routes(json!([route("a", json!({})), route("b", json!({}))])), "routes[1].match", "routes[0]"),
        (
            // Ranked first for its longer literal, `/a/{**}` covers every path of prefix `/a/b/`.
            with_routes(json!([
                route("p", json!({"path": {"prefix": "/a/b/"}})),
                route("t", json!({"path": {"template": "/a/b/{**}"}}))
            ])),
            "routes[0].match",
            "routes[1] (`t`)",
        ),
        (
            with_routes(json!([
                route(
                    "hosts",
                    json!({"hosts": ["*.example.com"], "methods": ["GET", "POST"], "path": {"prefix": "/a"}})
                ),
                route("narrower", json!({"hosts": ["api.example.com"], "methods": ["GET"], "path": {"prefix": "/a"}})),
            ])),
            "routes[1].match",
            "routes[0] (`hosts`)",
        ),
        (
            // Same rank, declared later, and no more constrained.
            with_routes(json!([
                route("get", json!({"methods": ["GET", "PUT"], "path": {"exact": "/x"}})),
                route("get-only", json!({"methods": ["GET"], "path": {"exact": "/x"}})),
            ])),
            "routes[1].match",
            "routes[0] (`get`)",
        ),
    ]);
    // Overlapping but not covered: both reachable.
    for routes in [
        json!([route("a", json!({"path": {"prefix": "/a/"}})), route("b", json!({"path": {"prefix": "/a/b"}}))]),
        json!([route("a", json!({"methods": ["GET"]})), route("b", json!({}))]),
        json!([
            route("a", json!({"hosts": ["a.com"], "path": {"prefix": "/"}})),
            route("b", json!({"path": {"prefix": "/"}}))
        ]),
        json!([route("a", json!({"path": {"template": "/u/{id}"}})), route("b", json!({"path": {"prefix": "/u/"}}))]),
        json!([route("a", json!({"path": {"exact": "/u/me"}})), route("b", json!({"path": {"template": "/u/{id}"}}))]),
        json!([{"name": "a"}, {"name": "b"}]),
    ] {
        let routes: Vec<Value> = routes
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r["policies"] = json!(["p"]);
                r
            })
            .collect();
        config(with_routes(Value::Array(routes)));
    }
}
