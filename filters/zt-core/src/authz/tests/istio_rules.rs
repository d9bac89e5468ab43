//! Istio's rule semantics (`from` / `to` / `when`), and a realistic policy written in Istio's
//! form: the one the README shows beside Istio's YAML.

use serde_json::json;
use wasm_bindgen_test::wasm_bindgen_test;

use super::*;

const WEB: &str = "spiffe://cluster.local/ns/shop/sa/web";
const BATCH: &str = "spiffe://cluster.local/ns/backoffice/sa/batch";

fn check(rule: Value, cases: &[(Req, bool)]) {
    let config = allow_rule(rule.clone());
    for (i, (req, expected)) in cases.iter().enumerate() {
        assert_eq!(allowed(&config, req), *expected, "case {i}: {rule} on {:?}", req.facts());
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn sources_or_between_entries_and_within_values_and_between_fields() {
    let rule = json!({"from": [
        {"source": {"principals": ["cluster.local/ns/shop/sa/web", "cluster.local/ns/shop/sa/api"], "ipBlocks": ["10.0.0.0/8"]}},
        {"source": {"namespaces": ["backoffice"]}},
    ]});
    check(
        rule,
        &[
            (Req::get("/").peer(WEB).source("10.0.0.1"), true),
            (Req::get("/").peer("spiffe://cluster.local/ns/shop/sa/api").source("10.0.0.1"), true),
            // Fields of one source are ANDed.
            (Req::get("/").peer(WEB).source("192.0.2.1"), false),
            (Req::get("/").peer(WEB), false),
            // Entries are ORed.
            (Req::get("/").peer(BATCH), true),
            (Req::get("/").peer("spiffe://cluster.local/ns/other/sa/web").source("10.0.0.1"), false),
            (Req::get("/"), false),
        ],
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn not_fields_hold_when_no_value_matches() {
    check(
        json!({"from": [{"source": {"notPrincipals": ["cluster.local/ns/shop/*"], "notIpBlocks": ["192.0.2.0/24"]}}]}),
        &[
            (Req::get("/").peer(BATCH).source("10.0.0.1"), true),
            (Req::get("/").peer(WEB).source("10.0.0.1"), false),
            (Req::get("/").peer(BATCH).source("192.0.2.9"), false),
            // No peer, no source: nothing to match, so "none matches" holds (Istio does the same).
            (Req::get("/"), true),
        ],
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn request_principals_and_anonymous_callers() {
    let alice = || Req::get("/").identity(json!({"sub": "alice"}));
    check(
        json!({"from": [{"source": {"requestPrincipals": [format!("{ISS}/*")]}}]}),
        &[
            (alice(), true),
            (Req::get("/").identity(json!({"iss": "https://evil", "sub": "alice"})), false),
            (Req::get("/").identity(json!({})), false),
            (Req::get("/"), false),
        ],
    );
    // Istio's idiom for "only unauthenticated callers".
    check(json!({"from": [{"source": {"notRequestPrincipals": ["*"]}}]}), &[(alice(), false), (Req::get("/"), true)]);
    check(json!({"from": [{"source": {"requestPrincipals": ["*"]}}]}), &[(alice(), true), (Req::get("/"), false)]);
}

#[wasm_bindgen_test(unsupported = test)]
fn operations() {
    check(
        json!({"to": [
            {"operation": {"hosts": ["api.example.com", "*.internal"], "methods": ["GET", "HEAD"], "paths": ["/orders/*"], "notPaths": ["/orders/admin*"]}},
            {"operation": {"methods": ["POST"], "paths": ["/orders/{*}/cancel"], "notHosts": ["public.example.com"]}},
        ]}),
        &[
            (Req::get("/orders/7"), true),
            (Req::get("/orders/7?expand=items#top"), true),
            (Req::new("HEAD", "/orders/7").authority("billing.internal:8080"), true),
            (Req::get("/orders/7").authority("API.EXAMPLE.COM:443"), true),
            (Req::get("/orders/7").authority("other.example.com"), false),
            (Req::new("get", "/orders/7"), false),
            (Req::new("DELETE", "/orders/7"), false),
            (Req::get("/orders/admin/x"), false),
            (Req::get("/Orders/7"), false),
            (Req::get("//orders/7"), false),
            (Req::new("POST", "/orders/7/cancel"), true),
            (Req::new("POST", "/orders/7/cancel?now=1"), true),
            (Req::new("POST", "/orders/7/cancel").authority("public.example.com"), false),
            (Req::new("POST", "/orders//cancel"), false),
            (Req::new("POST", "/orders/7"), false),
        ],
    );
    check(
        json!({"to": [{"operation": {"notMethods": ["DELETE"], "paths": ["/admin", "*.json"]}}]}),
        &[
            (Req::get("/admin"), true),
            (Req::get("/admin?x"), true),
            (Req::get("/Admin"), false),
            (Req::get("//admin"), false),
            (Req::get("/admin/"), false),
            (Req::get("/data/x.json"), true),
            (Req::new("DELETE", "/admin"), false),
        ],
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn from_to_and_when_are_anded_and_rules_ored() {
    let config = config(json!({
        "policies": {"p": {"action": "ALLOW", "rules": [
            {
                "from": [{"source": {"principals": ["cluster.local/ns/shop/sa/web"]}}],
                "to": [{"operation": {"methods": ["GET"]}}],
                "when": [{"key": "request.headers[x-tenant]", "values": ["acme"]}, {"authenticated": true}],
            },
            {"to": [{"operation": {"paths": ["/health"]}}]},
        ]}},
        "defaults": {"policies": ["p"]},
    }));
    let full = || Req::get("/x").peer(WEB).header("x-tenant", b"acme").identity(json!({"sub": "a"}));
    assert!(allowed(&config, &full()));
    assert!(!allowed(&config, &Req { method: "PUT".into(), ..full() }));
    assert!(!allowed(&config, &Req { peer: None, ..full() }));
    assert!(!allowed(&config, &Req { headers: Vec::new(), ..full() }));
    assert!(!allowed(&config, &Req { identity: None, ..full() }));
    assert!(allowed(&config, &Req::new("DELETE", "/health")));
    // An empty rule and an empty source place no constraint.
    assert!(allowed(&allow_rule(json!({})), &Req::get("/")));
    assert!(allowed(&allow_rule(json!({"from": [{"source": {}}]})), &Req::get("/")));
}

/// The README's example, Istio's YAML translated field for field:
///
/// ```yaml
/// apiVersion: security.istio.io/v1
/// kind: AuthorizationPolicy
/// metadata: {name: orders-read, namespace: shop}
/// spec:
///   action: ALLOW
///   rules:
///   - from:
///     - source:
///         principals: ["cluster.local/ns/shop/sa/web"]
///         requestPrincipals: ["https://issuer.example/*"]
///     - source:
///         namespaces: ["backoffice"]
///     to:
///     - operation:
///         hosts: ["api.example.com"]
///         methods: ["GET", "HEAD"]
///         paths: ["/orders", "/orders/{*}"]
///         notPaths: ["/orders/internal"]
///     when:
///     - key: request.auth.claims[groups]
///       values: ["customers", "support"]
///     - key: source.ip
///       notValues: ["203.0.113.0/24"]
/// ---
/// apiVersion: security.istio.io/v1
/// kind: AuthorizationPolicy
/// metadata: {name: deny-dev-callers, namespace: shop}
/// spec:
///   action: DENY
///   rules:
///   - when:
///     - key: request.auth.claims[env]
///       values: ["dev"]
/// ```
#[wasm_bindgen_test(unsupported = test)]
fn a_realistic_policy_in_istio_form() {
    let config = AuthzConfig::from_json(
        br#"{
          "realm": "shop",
          "policies": {
            "orders-read": {
              "action": "ALLOW",
              "rules": [{
                "from": [
                  {"source": {"principals": ["cluster.local/ns/shop/sa/web"],
                              "requestPrincipals": ["https://issuer.example/*"]}},
                  {"source": {"namespaces": ["backoffice"]}}
                ],
                "to": [{"operation": {"hosts": ["api.example.com"], "methods": ["GET", "HEAD"],
                                      "paths": ["/orders", "/orders/{*}"], "notPaths": ["/orders/internal"]}}],
                "when": [
                  {"key": "request.auth.claims[groups]", "values": ["customers", "support"]},
                  {"key": "source.ip", "notValues": ["203.0.113.0/24"]}
                ]
              }]
            },
            "deny-dev-callers": {
              "action": "DENY",
              "rules": [{"when": [{"key": "request.auth.claims[env]", "values": ["dev"]}]}]
            }
          },
          "defaults": {"policies": ["deny-dev-callers"]},
          "routes": [{"name": "orders", "match": {"path": {"prefix": "/orders"}}, "policies": ["orders-read"]}]
        }"#,
    )
    .unwrap();
    let customer = || {
        Req::get("/orders/42")
            .peer(WEB)
            .source("10.1.2.3")
            .identity(json!({"sub": "alice", "groups": ["customers"], "env": "prod"}))
    };
    let decide = |req: Req| summary(&config.authorize(&req.facts()));
    assert_eq!(decide(customer()), "allow orders-read policy_allowed orders");
    assert_eq!(decide(Req { path: "/orders".into(), ..customer() }), "allow orders-read policy_allowed orders");
    assert_eq!(
        decide(Req::get("/orders/42").peer(BATCH).identity(json!({"groups": ["support"]}))),
        "allow orders-read policy_allowed orders"
    );
    assert_eq!(
        decide(Req { path: "/orders/internal".into(), ..customer() }),
        "deny default-deny no_policy_matched orders"
    );
    assert_eq!(decide(customer().source("203.0.113.7")), "deny default-deny no_policy_matched orders");
    assert_eq!(decide(Req { method: "POST".into(), ..customer() }), "deny default-deny no_policy_matched orders");
    assert_eq!(
        decide(customer().identity(json!({"sub": "alice", "groups": ["customers"], "env": "dev"}))),
        "deny deny-dev-callers policy_denied orders"
    );
    assert_eq!(
        decide(customer().identity(json!({"sub": "alice", "groups": ["guests"]}))),
        "deny default-deny no_policy_matched orders"
    );
    // The web workload without a token: the policy reads the identity, so the answer is 401.
    let anonymous = config.authorize(&Req::get("/orders/42").peer(WEB).facts());
    assert_eq!(summary(&anonymous), "deny default-deny identity_missing orders");
    assert_eq!(denial(&anonymous, config.realm()).status, 401);
    // Outside every route rule, only the defaults apply: no ALLOW, so default deny.
    assert_eq!(decide(Req { path: "/admin".into(), ..customer() }), "deny default-deny no_policy_matched -");
    assert_eq!(
        config.inputs(),
        Inputs { authority: true, source: true, peer: true, identity: true, ..Inputs::default() }
    );
}
