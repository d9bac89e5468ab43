//! Route rule selection: metadata, then Envoy route name, then the most specific `match`, then
//! the defaults; and which policies each rule puts in effect.

use serde_json::json;
use wasm_bindgen_test::wasm_bindgen_test;

use super::*;

/// One ALLOW-everything policy per route rule, named after it, so that the deciding policy
/// shows which rule was selected.
fn routes(routes: Value) -> AuthzConfig {
    let mut policies = serde_json::Map::new();
    for route in routes.as_array().unwrap() {
        let name = route["name"].as_str().unwrap();
        policies.insert(format!("allow-{name}"), json!({"action": "ALLOW", "rules": [{}]}));
    }
    let routes: Vec<Value> = routes
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mut r = r.clone();
            let name = r["name"].as_str().unwrap().to_owned();
            r["policies"] = json!([format!("allow-{name}")]);
            r
        })
        .collect();
    policies.insert("fallback".into(), json!({"action": "AUDIT", "rules": [{}]}));
    config(json!({"policies": policies, "defaults": {"policies": ["fallback"]}, "routes": routes}))
}

fn selected(config: &AuthzConfig, req: &Req) -> String {
    config.authorize(&req.facts()).route.unwrap_or_else(|| "-".to_owned())
}

#[wasm_bindgen_test(unsupported = test)]
fn metadata_then_route_name_then_match_then_defaults() {
    let config = routes(json!([
        {"name": "by-metadata"},
        {"name": "by-route-name", "route_names": ["orders_route", "orders_route_v2"]},
        {"name": "by-match", "match": {"path": {"prefix": "/orders/"}}},
    ]));
    let req = || Req::get("/orders/1");
    assert_eq!(selected(&config, &req().route_choice("by-metadata").route_name("orders_route")), "by-metadata");
    assert_eq!(selected(&config, &req().route_choice("by-route-name")), "by-route-name");
    assert_eq!(selected(&config, &req().route_name("orders_route")), "by-route-name");
    assert_eq!(selected(&config, &req().route_name("orders_route_v2")), "by-route-name");
    assert_eq!(selected(&config, &req().route_name("unlisted")), "by-match");
    assert_eq!(selected(&config, &req()), "by-match");
    assert_eq!(selected(&config, &Req::get("/other")), "-");
    let inputs = config.inputs();
    assert!(inputs.route_name && !inputs.authority);
}

#[wasm_bindgen_test(unsupported = test)]
fn unknown_metadata_fails_closed() {
    let config = routes(json!([{"name": "a", "match": {}}]));
    let decision = config.authorize(&Req::get("/").route_choice("b").facts());
    assert_eq!(summary(&decision), "deny default-deny unknown_route_rule -");
    let reply = denial(&decision, "zt");
    assert_eq!(reply.status, 500);
    assert_eq!(
        reply.body,
        r#"{"error":"configuration","message":"authorization rule of this route is not configured"}"#
    );
    // An empty metadata value names no rule either.
    assert_eq!(config.authorize(&Req::get("/").route_choice("").facts()).reason, AuthzReason::UnknownRouteRule);
}

#[wasm_bindgen_test(unsupported = test)]
fn the_most_specific_match_wins_whatever_the_declared_order() {
    let config = routes(json!([
        {"name": "catch-all", "match": {}},
        {"name": "get-anything", "match": {"methods": ["GET"]}},
        {"name": "api-prefix", "match": {"path": {"prefix": "/api/"}}},
        {"name": "api-v1-prefix", "match": {"path": {"prefix": "/api/v1/"}}},
        {"name": "api-v1-prefix-host", "match": {"hosts": ["admin.example.com"], "path": {"prefix": "/api/v1/"}}},
        {"name": "user-template", "match": {"path": {"template": "/api/v1/users/{id}"}}},
        {"name": "user-orders-template", "match": {"path": {"template": "/api/v1/users/{id}/orders/{*}"}}},
        {"name": "me-exact", "match": {"path": {"exact": "/api/v1/users/me"}}},
        {"name": "me-exact-post", "match": {"path": {"exact": "/api/v1/users/me"}, "methods": ["POST"]}},
        {"name": "me-exact-host", "match": {"path": {"exact": "/api/v1/users/me"}, "hosts": ["admin.example.com"]}},
    ]));
    let cases = [
        (Req::get("/api/v1/users/me"), "me-exact"),
        (Req::get("/api/v1/users/me?x=1"), "me-exact"),
        (Req::new("POST", "/api/v1/users/me"), "me-exact-post"),
        (Req::get("/api/v1/users/me").authority("admin.example.com:8443"), "me-exact-host"),
        (Req::get("/api/v1/users/7"), "user-template"),
        (Req::get("/api/v1/users/7/orders/9"), "user-orders-template"),
        (Req::get("/api/v1/users/7/orders/"), "api-v1-prefix"),
        (Req::get("/api/v1/users"), "api-v1-prefix"),
        (Req::get("/api/v1/x").authority("admin.example.com"), "api-v1-prefix-host"),
        (Req::get("/api/v2/x"), "api-prefix"),
        (Req::get("/API/v2/x"), "get-anything"),
        (Req::new("PUT", "/other"), "catch-all"),
    ];
    for (req, expected) in cases {
        assert_eq!(selected(&config, &req), expected, "{} {}", req.method, req.path);
    }
    assert!(config.inputs().authority);
}

#[wasm_bindgen_test(unsupported = test)]
fn an_exact_path_with_other_constraints_falls_through() {
    let config = routes(json!([
        {"name": "exact-admin-host", "match": {"path": {"exact": "/a"}, "hosts": ["admin.example.com"]}},
        {"name": "prefix", "match": {"path": {"prefix": "/"}}},
    ]));
    assert_eq!(selected(&config, &Req::get("/a").authority("admin.example.com")), "exact-admin-host");
    assert_eq!(selected(&config, &Req::get("/a")), "prefix");
    assert_eq!(selected(&config, &Req { authority: None, ..Req::get("/a") }), "prefix");
}

#[wasm_bindgen_test(unsupported = test)]
fn declared_order_breaks_ties() {
    let config = routes(json!([
        {"name": "first", "match": {"path": {"prefix": "/a/"}, "methods": ["GET"]}},
        {"name": "second", "match": {"path": {"prefix": "/a/"}, "hosts": ["api.example.com"]}},
    ]));
    assert_eq!(selected(&config, &Req::get("/a/x")), "first");
    assert_eq!(selected(&config, &Req::new("PUT", "/a/x")), "second");
}

#[wasm_bindgen_test(unsupported = test)]
fn defaults_are_inherited_unless_refused() {
    let config = config(json!({
        "policies": {
            "deny-dev": {"action": "DENY", "rules": [{"when": [{"claim": {"path": "env", "equals": "dev"}}]}]},
            "allow-all": {"action": "ALLOW", "rules": [{}]},
            "allow-public": {"action": "ALLOW", "rules": [{}]},
        },
        "defaults": {"policies": ["deny-dev"]},
        "routes": [
            {"name": "inherits", "route_names": ["r1"], "policies": ["allow-all"]},
            {"name": "public", "route_names": ["r2"], "policies": ["allow-public"], "inherit_defaults": false},
        ],
    }));
    let dev = |route: &str| Req::get("/").route_name(route).identity(json!({"env": "dev"}));
    assert_eq!(summary(&config.authorize(&dev("r1").facts())), "deny deny-dev policy_denied inherits");
    assert_eq!(summary(&config.authorize(&dev("r2").facts())), "allow allow-public policy_allowed public");
    // No rule: the defaults alone, which allow nothing.
    assert_eq!(summary(&config.authorize(&dev("r3").facts())), "deny deny-dev policy_denied -");
    let prod = Req::get("/").route_name("r3").identity(json!({"env": "prod"}));
    assert_eq!(summary(&config.authorize(&prod.facts())), "deny default-deny no_policy_matched -");
}

#[wasm_bindgen_test(unsupported = test)]
fn without_defaults_an_unmatched_request_is_denied() {
    let config = config(json!({
        "policies": {"allow": {"action": "ALLOW", "rules": [{}]}},
        "routes": [{"name": "r", "match": {"path": {"exact": "/r"}}, "policies": ["allow"]}],
    }));
    assert_eq!(summary(&config.authorize(&Req::get("/r").facts())), "allow allow policy_allowed r");
    assert_eq!(summary(&config.authorize(&Req::get("/s").facts())), "deny default-deny no_policy_matched -");
    let empty = super::config(json!({}));
    assert_eq!(summary(&empty.authorize(&Req::get("/").facts())), "deny default-deny no_policy_matched -");
    assert_eq!(empty.inputs(), Inputs::default());
}

#[wasm_bindgen_test(unsupported = test)]
fn many_rules_select_the_same_as_few() {
    let mut list = Vec::new();
    for i in 0..300 {
        list.push(json!({"name": format!("exact-{i}"), "route_names": [format!("route-{i}")],
            "match": {"path": {"exact": format!("/items/{i}")}}}));
    }
    list.push(json!({"name": "items", "match": {"path": {"prefix": "/items/"}}}));
    let config = routes(Value::Array(list));
    assert_eq!(selected(&config, &Req::get("/items/150")), "exact-150");
    assert_eq!(selected(&config, &Req::get("/items/150?x")), "exact-150");
    assert_eq!(selected(&config, &Req::get("/items/1500")), "items");
    assert_eq!(selected(&config, &Req::get("/").route_name("route-299")), "exact-299");
}
