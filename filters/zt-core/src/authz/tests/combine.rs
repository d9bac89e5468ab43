//! How policies combine (each case of `decide.rs`), the reason refinement, the decision record
//! and the denial replies.

use serde_json::json;
use wasm_bindgen_test::wasm_bindgen_test;

use super::*;

/// A policy that matches when the request carries the header `x-<id>`.
fn policy(action: &str, advisory: bool, id: &str) -> (String, Value) {
    let rule = json!({"when": [{"header": {"name": format!("x-{id}"), "present": true}}]});
    (id.to_owned(), json!({"action": action, "advisory": advisory, "rules": [rule]}))
}

fn with_policies(list: &[(String, Value)], filter_advisory: bool) -> AuthzConfig {
    let ids: Vec<&String> = list.iter().map(|(id, _)| id).collect();
    let policies: serde_json::Map<String, Value> = list.iter().cloned().collect();
    config(
        json!({"advisory": filter_advisory, "policies": policies, "routes": [{"name": "r", "match": {}, "policies": ids}]}),
    )
}

/// A request that the policies named in `matching` (space-separated) match.
fn matching(matching: &str) -> Req {
    matching.split_whitespace().fold(Req::get("/"), |req, id| req.header(&format!("x-{id}"), b"1"))
}

fn decide(config: &AuthzConfig, ids: &str) -> String {
    summary(&config.authorize(&matching(ids).facts()))
}

#[wasm_bindgen_test(unsupported = test)]
fn every_combining_case() {
    let all = with_policies(
        &[
            policy("DENY", false, "deny"),
            policy("DENY", true, "adv-deny"),
            policy("ALLOW", false, "allow"),
            policy("ALLOW", true, "adv-allow"),
            policy("AUDIT", false, "audit"),
        ],
        false,
    );
    let cases = [
        // 1. An enforced DENY wins over everything.
        ("deny allow adv-deny adv-allow", "deny deny policy_denied r"),
        // 2. An enforced ALLOW allows, unless an advisory DENY matched too.
        ("allow", "allow allow policy_allowed r"),
        ("allow adv-deny", "advisory_deny adv-deny policy_denied r"),
        ("allow adv-allow", "allow allow policy_allowed r"),
        // 3. With an enforced ALLOW in effect, nothing else can allow.
        ("adv-allow", "deny default-deny no_policy_matched r"),
        ("adv-deny", "deny default-deny no_policy_matched r"),
        ("audit", "deny default-deny no_policy_matched r"),
        ("", "deny default-deny no_policy_matched r"),
    ];
    for (matching, expected) in cases {
        assert_eq!(decide(&all, matching), expected, "matching: {matching}");
    }

    // 4. Every ALLOW advisory: monitor-only.
    let monitor = with_policies(&[policy("ALLOW", true, "adv-allow"), policy("DENY", true, "adv-deny")], false);
    assert_eq!(decide(&monitor, "adv-allow adv-deny"), "advisory_deny adv-deny policy_denied r");
    assert_eq!(decide(&monitor, "adv-allow"), "allow adv-allow policy_allowed r");
    assert_eq!(decide(&monitor, "adv-deny"), "advisory_deny adv-deny policy_denied r");
    assert_eq!(decide(&monitor, ""), "advisory_deny default-deny no_policy_matched r");
    let monitor_with_deny = with_policies(&[policy("ALLOW", true, "adv-allow"), policy("DENY", false, "deny")], false);
    assert_eq!(decide(&monitor_with_deny, "adv-allow deny"), "deny deny policy_denied r");

    // 5. No ALLOW at all: default deny, even when nothing denies.
    let only_denies = with_policies(&[policy("DENY", false, "deny"), policy("DENY", true, "adv-deny")], false);
    assert_eq!(decide(&only_denies, ""), "deny default-deny no_policy_matched r");
    assert_eq!(decide(&only_denies, "adv-deny"), "deny default-deny no_policy_matched r");
    assert_eq!(decide(&only_denies, "deny"), "deny deny policy_denied r");
    let only_audit = with_policies(&[policy("AUDIT", false, "audit")], false);
    assert_eq!(decide(&only_audit, "audit"), "deny default-deny no_policy_matched r");
}

#[wasm_bindgen_test(unsupported = test)]
fn filter_wide_advisory_keeps_policy_and_reason() {
    let config = with_policies(&[policy("DENY", false, "deny"), policy("ALLOW", false, "allow")], true);
    assert!(config.advisory());
    assert_eq!(decide(&config, "deny allow"), "advisory_deny deny policy_denied r");
    assert_eq!(decide(&config, ""), "advisory_deny default-deny no_policy_matched r");
    assert_eq!(decide(&config, "allow"), "allow allow policy_allowed r");
    // A route naming an undefined rule is the proxy's configuration fault, not a policy being
    // rolled out: refused in advisory mode too (500), as zt-jwt and zt-ratelimit refuse it.
    let unknown = config.authorize(&Req::get("/").route_choice("nope").facts());
    assert_eq!(summary(&unknown), "deny default-deny unknown_route_rule -");
    assert!(!unknown.passes());
}

#[wasm_bindgen_test(unsupported = test)]
fn audit_policies_are_listed_whatever_the_verdict() {
    let config = with_policies(
        &[policy("AUDIT", false, "audit-a"), policy("DENY", false, "deny"), policy("AUDIT", false, "audit-b")],
        false,
    );
    let decision = config.authorize(&matching("audit-a audit-b deny").facts());
    assert_eq!(decision.audit, ["audit-a", "audit-b"]);
    assert_eq!(decision.verdict, Verdict::Deny);
    assert_eq!(config.authorize(&matching("audit-b").facts()).audit, ["audit-b"]);
    assert!(config.authorize(&matching("").facts()).audit.is_empty());
}

fn scoped() -> AuthzConfig {
    config(json!({
        "realm": "shop",
        "policies": {
            "orders-write": {"action": "ALLOW", "rules": [
                {"to": [{"operation": {"methods": ["POST"]}}],
                 "when": [{"scopes": {"all_of": ["orders:write", "orders:read"]}}, {"claim": {"path": "tenant", "equals": "acme"}}]},
            ]},
            "orders-any": {"action": "ALLOW", "rules": [
                {"to": [{"operation": {"methods": ["PUT"]}}], "when": [{"scopes": {"any_of": ["orders:admin", "orders:owner"]}}]},
            ]},
            "public": {"action": "ALLOW", "rules": [{"to": [{"operation": {"paths": ["/public"]}}]}]},
        },
        "defaults": {"policies": ["orders-write", "orders-any", "public"]},
    }))
}

#[wasm_bindgen_test(unsupported = test)]
fn refines_a_default_deny_into_401_or_403_insufficient_scope() {
    let config = scoped();
    let acme =
        |method: &str, scope: &str| Req::new(method, "/orders").identity(json!({"tenant": "acme", "scope": scope}));
    let decision = config.authorize(&acme("POST", "orders:read").facts());
    assert_eq!(
        decision.reason,
        AuthzReason::ScopeMissing { required: vec!["orders:write".into(), "orders:read".into()] }
    );
    let reply = denial(&decision, config.realm());
    assert_eq!(reply.status, 403);
    assert_eq!(
        reply.header("www-authenticate"),
        Some(r#"Bearer realm="shop", error="insufficient_scope", scope="orders:write orders:read""#)
    );
    assert_eq!(reply.body, r#"{"error":"insufficient_scope","policy":"default-deny"}"#);

    let any_of = config.authorize(&acme("PUT", "").facts());
    assert_eq!(
        any_of.reason,
        AuthzReason::ScopeMissing { required: vec!["orders:admin".into(), "orders:owner".into()] }
    );

    // Scopes would not help: another condition fails too.
    let other_tenant = Req::new("POST", "/orders").identity(json!({"tenant": "evil", "scope": ""}));
    assert_eq!(config.authorize(&other_tenant.facts()).reason, AuthzReason::NoPolicyMatched);
    assert_eq!(denial(&config.authorize(&other_tenant.facts()), "shop").status, 403);
    assert_eq!(config.authorize(&acme("DELETE", "").facts()).reason, AuthzReason::NoPolicyMatched);

    // No identity, and a policy that reads it: 401 with a bare challenge.
    let anonymous = config.authorize(&Req::new("POST", "/orders").facts());
    assert_eq!(summary(&anonymous), "deny default-deny identity_missing -");
    let reply = denial(&anonymous, config.realm());
    assert_eq!(reply.status, 401);
    assert_eq!(reply.header("www-authenticate"), Some(r#"Bearer realm="shop""#));
    assert_eq!(reply.body, r#"{"error":"unauthenticated","policy":"default-deny"}"#);

    // Allowed when the scopes are there.
    assert_eq!(
        summary(&config.authorize(&acme("POST", "orders:read orders:write").facts())),
        "allow orders-write policy_allowed -"
    );
    assert_eq!(summary(&config.authorize(&Req::get("/public").facts())), "allow public policy_allowed -");
}

#[wasm_bindgen_test(unsupported = test)]
fn no_refinement_when_no_allow_policy_reads_the_identity() {
    let config = allow_rule(json!({"to": [{"operation": {"paths": ["/public"]}}]}));
    let decision = config.authorize(&Req::get("/private").facts());
    assert_eq!(decision.reason, AuthzReason::NoPolicyMatched);
    assert_eq!(denial(&decision, "zt").status, 403);
    // A policy denial is never refined, even without identity.
    let deny = with_policies(&[policy("DENY", false, "deny"), policy("ALLOW", false, "allow")], false);
    let decision = deny.authorize(&matching("deny").facts());
    assert_eq!(decision.reason, AuthzReason::PolicyDenied);
    let reply = denial(&decision, "zt");
    assert_eq!((reply.status, reply.body.as_str()), (403, r#"{"error":"forbidden","policy":"deny"}"#));
    assert_eq!(reply.header("www-authenticate"), None);
}

#[wasm_bindgen_test(unsupported = test)]
fn refinement_in_monitor_only_mode_uses_the_advisory_allows() {
    let config = config(json!({
        "policies": {"p": {"action": "ALLOW", "advisory": true, "rules": [{"when": [{"scopes": {"all_of": ["x"]}}]}]}},
        "defaults": {"policies": ["p"]},
    }));
    let with_identity = config.authorize(&Req::get("/").identity(json!({"sub": "a"})).facts());
    assert_eq!(with_identity.verdict, Verdict::AdvisoryDeny);
    assert_eq!(with_identity.reason, AuthzReason::ScopeMissing { required: vec!["x".into()] });
    assert_eq!(config.authorize(&Req::get("/").facts()).reason, AuthzReason::IdentityMissing);
}

#[wasm_bindgen_test(unsupported = test)]
fn records_ids_and_reasons_only() {
    let config = config(json!({
        "policies": {
            "orders": {"action": "ALLOW", "rules": [{"when": [{"claim": {"path": "email", "equals": "alice@example.com"}}]}]},
            "log": {"action": "AUDIT", "rules": [{}]},
        },
        "routes": [{"name": "orders", "route_names": ["orders_route"], "policies": ["log", "orders"]}],
    }));
    let req = Req::get("/").route_name("orders_route").identity(json!({"sub": "alice", "email": "alice@example.com"}));
    let decision = config.authorize(&req.facts());
    assert!(decision.passes());
    assert_eq!(
        serde_json::to_value(decision.record()).unwrap(),
        json!({"decision": "allow", "policy": "orders", "reason": "policy_allowed", "route": "orders", "audit": ["log"]})
    );
    assert!(!serde_json::to_string(&decision.record()).unwrap().contains("alice"));
    let denied = config.authorize(&Req::get("/").facts());
    assert!(!denied.passes());
    assert_eq!(
        serde_json::to_value(denied.record()).unwrap(),
        json!({"decision": "deny", "policy": "default-deny", "reason": "no_policy_matched", "route": null, "audit": []})
    );
    let scope = Decision {
        verdict: Verdict::AdvisoryDeny,
        policy: "p".into(),
        reason: AuthzReason::ScopeMissing { required: vec!["a".into()] },
        route: Some("r".into()),
        audit: Vec::new(),
    };
    assert_eq!(scope.record().decision, Verdict::AdvisoryDeny);
    assert_eq!(scope.record().reason, "scope_missing");
}

#[wasm_bindgen_test(unsupported = test)]
fn every_reason_is_listed_once() {
    let all = [
        AuthzReason::PolicyAllowed,
        AuthzReason::PolicyDenied,
        AuthzReason::NoPolicyMatched,
        AuthzReason::IdentityMissing,
        AuthzReason::ScopeMissing { required: Vec::new() },
        AuthzReason::UnknownRouteRule,
        AuthzReason::PeerAddressUnknown,
        AuthzReason::RemoteAddressUnknown,
    ];
    for reason in &all {
        assert!(AuthzReason::REASONS.contains(&reason.as_str()), "{reason:?}");
        // Total: every decision maps to some reply.
        let decision = Decision {
            verdict: Verdict::Deny,
            policy: "p".into(),
            reason: reason.clone(),
            route: None,
            audit: Vec::new(),
        };
        assert!([401, 403, 500].contains(&denial(&decision, "zt").status));
    }
    for name in AuthzReason::REASONS {
        assert!(all.iter().any(|r| r.as_str() == name), "{name}");
    }
}
