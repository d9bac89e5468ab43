//! The authorization stage through the ABI after the JWT stage, in both layouts: chained after
//! the JWT filter as in Envoy (the identity from the JWT module's filter state), and as the
//! suite (in memory); the peer and source from Envoy's attributes. The same rules as the core's
//! unit tests, seen from outside.

use std::sync::OnceLock;

use jwt_simple::prelude::*;
use serde_json::{Value, json};
use zt_host_tests::{Harness, HarnessError, Layout, Request};

const NOW: u64 = 1_700_000_000;
const ISS: &str = "https://issuer.test";

fn key() -> &'static ES256KeyPair {
    static KEY: OnceLock<ES256KeyPair> = OnceLock::new();
    KEY.get_or_init(|| ES256KeyPair::generate().with_key_id("ec"))
}

/// The JWT filter: tokens optional (anonymous callers reach the authorization filter, which
/// decides whether the route needs an identity).
fn jwt_config() -> Value {
    let jwk: Value = serde_json::from_str(&key().public_key().to_jwk()).unwrap();
    json!({
        "realm": "api",
        "providers": [{"name": "corp", "issuer": ISS, "audiences": ["api"], "jwks": {"inline": {"keys": [jwk]}}}],
        "requirements": {"default": {"allow_missing": true}},
    })
}

/// Orders: read with scope `orders:read` by an authenticated caller; admin only for the
/// `billing` workload by SPIFFE ID from the internal network; callers tagged `dev` never.
fn authz_config() -> Value {
    json!({
        "realm": "api",
        "environment": "production",
        "policies": {
            "orders-read": {"action": "ALLOW", "rules": [{
                "to": [{"operation": {"methods": ["GET"], "paths": ["/orders/*"]}}],
                "when": [{"scopes": {"all_of": ["orders:read"]}}]
            }]},
            "billing-admin": {"action": "ALLOW", "rules": [{
                "from": [{"source": {"principals": ["cluster.local/ns/billing/sa/api"], "ipBlocks": ["10.0.0.0/8"]}}]
            }]},
            "same-environment": {"action": "DENY", "rules": [{
                "when": [{"all": [{"authenticated": true}, {"not": {"environment": {"claim": "env"}}}]}]
            }]},
            "public": {"action": "ALLOW", "rules": [{}]},
        },
        "defaults": {"policies": ["same-environment"]},
        "routes": [
            {"name": "orders", "match": {"path": {"prefix": "/orders/"}}, "policies": ["orders-read"]},
            {"name": "admin", "match": {"path": {"prefix": "/admin"}}, "policies": ["billing-admin"]},
            {"name": "health", "route_names": ["health"], "policies": ["public"], "inherit_defaults": false},
        ],
    })
}

/// The JWT and authorization stages as two filters or as the suite, decisions in filter state.
fn envoy_with(layout: Layout, authz: Value) -> Harness {
    let mut envoy = Harness::new();
    envoy.clock().set_unix_seconds(NOW);
    for filter in layout.filters_publishing(&[("jwt", &jwt_config()), ("authz", &authz)], &[]) {
        envoy.load(filter).unwrap();
    }
    envoy
}

fn envoy(layout: Layout) -> Harness {
    envoy_with(layout, authz_config())
}

/// A configuration only the authorization stage reads: its load is refused.
fn refused(layout: Layout, authz: &Value) -> Harness {
    let mut envoy = Harness::new();
    for filter in layout.filters(&[("authz", authz)], &[]) {
        let refused = envoy.load(filter);
        assert!(matches!(refused, Err(HarnessError::ConfigureRefused { .. })), "{layout:?}: {refused:?}");
    }
    envoy
}

fn token(scope: &str, env: &str) -> String {
    let mut claims = Claims::with_custom_claims(json!({"scope": scope, "env": env}), Duration::from_secs(300))
        .with_issuer(ISS)
        .with_audience("api")
        .with_subject("alice");
    claims.issued_at = Some(UnixTimeStamp::from_secs(NOW));
    claims.invalid_before = None;
    claims.expires_at = Some(UnixTimeStamp::from_secs(NOW + 300));
    key().sign(claims).unwrap()
}

fn get(path: &str, token: Option<&str>) -> Request {
    let request = Request::get(path);
    match token {
        Some(token) => request.header("authorization", format!("Bearer {token}")),
        None => request,
    }
}

fn decision(layout: Layout, exchange: &zt_host_tests::Exchange) -> Value {
    layout.decision(exchange, "authz").expect("a decision in filter state")
}

#[test]
fn an_invalid_configuration_refuses_to_start_and_names_the_field() {
    for layout in Layout::ALL {
        let mut bad = authz_config();
        bad["policies"]["billing-admin"]["rules"][0]["from"][0]["source"]["ipBlocks"] = json!(["10.0.0.0/33"]);
        let envoy = refused(layout, &bad);
        let log = envoy.log_text();
        assert!(log.contains("policies.billing-admin.rules[0].from[0].source.ipBlocks[0]"), "{log}");

        let mut undefined = authz_config();
        undefined["routes"][0]["policies"] = json!(["orders-write"]);
        let envoy = refused(layout, &undefined);
        assert!(envoy.log_text().contains("routes[0].policies[0]"), "{}", envoy.log_text());
    }
}

#[test]
fn a_token_with_the_scope_is_allowed_and_the_decision_recorded() {
    for layout in Layout::ALL {
        let mut envoy = envoy(layout);
        let exchange = envoy.send(get("/orders/42", Some(&token("orders:read", "production"))));
        assert_eq!(exchange.status(), Some(200), "{}", envoy.log_text());
        assert!(exchange.reached_upstream());
        let record = decision(layout, &exchange);
        assert_eq!(record["decision"], "allow");
        assert_eq!(record["policy"], "orders-read");
        assert_eq!(record["route"], "orders");
        assert_eq!(envoy.metric("zt_authz.allowed.orders.orders-read"), Some(1), "by route rule and policy");
    }
}

#[test]
fn a_missing_scope_is_403_insufficient_scope_naming_the_scope() {
    for layout in Layout::ALL {
        let mut envoy = envoy(layout);
        let exchange = envoy.send(get("/orders/42", Some(&token("profile", "production"))));
        assert_eq!(exchange.status(), Some(403));
        assert!(!exchange.reached_upstream());
        let reply = exchange.local_reply().unwrap();
        assert_eq!(
            reply.header("www-authenticate"),
            Some(r#"Bearer realm="api", error="insufficient_scope", scope="orders:read""#)
        );
        assert_eq!(decision(layout, &exchange)["reason"], "scope_missing");
        assert_eq!(
            envoy.metric("zt_authz.denied.scope_missing.orders.default-deny"),
            Some(1),
            "{:?}",
            envoy.metric_names()
        );
    }
}

#[test]
fn no_identity_where_one_is_needed_is_401_with_the_realm() {
    for layout in Layout::ALL {
        let mut envoy = envoy(layout);
        let exchange = envoy.send(get("/orders/42", None));
        assert_eq!(exchange.status(), Some(401));
        assert_eq!(exchange.local_reply().unwrap().header("www-authenticate"), Some(r#"Bearer realm="api""#));
        assert_eq!(decision(layout, &exchange)["reason"], "identity_missing");
    }
}

#[test]
fn a_forged_identity_header_has_no_effect() {
    for layout in Layout::ALL {
        let mut envoy = envoy(layout);
        let forged =
            json!({"provider": "corp", "iss": ISS, "sub": "mallory", "aud": ["api"], "scopes": ["orders:read"],
            "exp": NOW + 300, "claims": {"scope": "orders:read", "env": "production"}})
            .to_string();
        let request = get("/orders/42", None).header("zt.identity", &forged).header("x-zt-identity", &forged);
        let exchange = envoy.send(request);
        assert_eq!(exchange.status(), Some(401));
        assert!(!exchange.reached_upstream());
    }
}

#[test]
fn the_environment_rule_denies_a_dev_identity_on_every_route() {
    for layout in Layout::ALL {
        let mut envoy = envoy(layout);
        let exchange = envoy.send(get("/orders/42", Some(&token("orders:read", "dev"))));
        assert_eq!(exchange.status(), Some(403));
        let body: Value = serde_json::from_str(&exchange.local_reply().unwrap().body_text()).unwrap();
        assert_eq!(body["policy"], "same-environment");
        assert!(!exchange.local_reply().unwrap().body_text().contains("dev"), "no claim value in the body");
    }
}

#[test]
fn the_workload_identity_and_network_decide_the_admin_route() {
    for layout in Layout::ALL {
        let mut envoy = envoy(layout);
        let billing = "spiffe://cluster.local/ns/billing/sa/api";
        let from = |san: Option<&str>, ip: &str| {
            let request = get("/admin/users", None).attribute("source.address", format!("{ip}:5000"));
            match san {
                Some(san) => request.attribute("connection.uri_san_peer_certificate", san),
                None => request,
            }
        };
        assert_eq!(envoy.send(from(Some(billing), "10.1.2.3")).status(), Some(200), "{}", envoy.log_text());
        assert_eq!(envoy.send(from(Some(billing), "192.168.1.1")).status(), Some(403), "outside the network");
        let other = "spiffe://cluster.local/ns/shop/sa/web";
        assert_eq!(envoy.send(from(Some(other), "10.1.2.3")).status(), Some(403), "another workload");
        assert_eq!(envoy.send(from(None, "10.1.2.3")).status(), Some(403), "no client certificate");
    }
}

#[test]
fn routes_are_chosen_by_envoy_route_name_and_paths_match_exactly() {
    for layout in Layout::ALL {
        let mut envoy = envoy(layout);
        assert_eq!(envoy.send(get("/healthz", None).route_name("health")).status(), Some(200));
        // Case and extra slashes are not folded here (Envoy normalises paths before the filter):
        // `/Admin` is no admin route, and falls to the defaults, which allow nothing.
        let exchange = envoy.send(get("/Admin", None).attribute("connection.uri_san_peer_certificate", "x"));
        assert_eq!(exchange.status(), Some(403));
        assert_eq!(decision(layout, &exchange)["policy"], "default-deny");
    }
}

#[test]
fn an_advisory_policy_records_the_denial_and_lets_the_request_through() {
    for layout in Layout::ALL {
        let mut config = authz_config();
        config["policies"]["same-environment"]["advisory"] = json!(true);
        let mut envoy = envoy_with(layout, config);
        let exchange = envoy.send(get("/orders/42", Some(&token("orders:read", "dev"))));
        assert_eq!(exchange.status(), Some(200));
        let record = decision(layout, &exchange);
        assert_eq!(record["decision"], "advisory_deny");
        assert_eq!(record["policy"], "same-environment");
        assert_eq!(envoy.metric("zt_authz.advisory_denied"), Some(1));
    }
}

#[test]
fn the_filter_wide_advisory_mode_never_blocks() {
    for layout in Layout::ALL {
        let mut config = authz_config();
        config["advisory"] = json!(true);
        let mut envoy = envoy_with(layout, config);
        let exchange = envoy.send(get("/orders/42", None));
        assert_eq!(exchange.status(), Some(200));
        assert_eq!(decision(layout, &exchange)["decision"], "advisory_deny");
    }
}

/// Only `10.0.0.0/8` peers may call `/internal`; `/edge` is for clients behind the trusted
/// proxies in `203.0.113.0/24` (Istio's `remoteIpBlocks`).
fn address_config() -> Value {
    json!({
        "policies": {
            "internal": {"action": "ALLOW", "rules": [{"from": [{"source": {"ipBlocks": ["10.0.0.0/8"]}}]}]},
            "edge": {"action": "ALLOW", "rules": [{"from": [{"source": {"remoteIpBlocks": ["203.0.113.0/24"]}}]}]},
        },
        "routes": [
            {"name": "internal", "match": {"path": {"prefix": "/internal"}}, "policies": ["internal"]},
            {"name": "edge", "match": {"path": {"prefix": "/edge"}}, "policies": ["edge"]},
        ],
    })
}

#[test]
fn a_forwarded_for_header_never_stands_for_the_peer() {
    for layout in Layout::ALL {
        let mut envoy = envoy_with(layout, address_config());
        // The measured spoof: 403 from 127.0.0.1, and the same client claiming 10.1.2.3.
        assert_eq!(envoy.send(get("/internal/x", None)).status(), Some(403));
        let spoof = envoy.send(get("/internal/x", None).forwarded_for("10.1.2.3"));
        assert_eq!(spoof.status(), Some(403));
        assert_eq!(decision(layout, &spoof)["reason"], "peer_address_unknown");
        assert!(spoof.local_reply().unwrap().body_text().contains("source_address_unknown"));
        assert!(envoy.log_text().contains("zt.peer_address"), "the log tells the operator what to set");
        assert_eq!(envoy.metric_sum("zt_authz.denied.peer_address_unknown"), 1, "{:?}", envoy.metric_names());
        // A real peer in the network passes; the filter-state entry names the peer whatever the
        // header says.
        let inside = get("/internal/x", None).attribute("source.address", "10.9.9.9:40000");
        assert_eq!(envoy.send(inside).status(), Some(200));
        let named = get("/internal/x", None).forwarded_for("10.1.2.3").peer_address_state("127.0.0.1:40000");
        assert_eq!(envoy.send(named).status(), Some(403), "the peer is 127.0.0.1, not the header's 10.1.2.3");
        let named = get("/internal/x", None).forwarded_for("192.0.2.1").peer_address_state("10.0.0.7:40000");
        assert_eq!(envoy.send(named).status(), Some(200));
    }
}

#[test]
fn remote_ip_blocks_read_the_client_behind_the_trusted_proxies() {
    for layout in Layout::ALL {
        let mut envoy = envoy_with(layout, address_config());
        let via_proxy = |client: &str| get("/edge/x", None).forwarded_for(client).peer_address_state("10.0.0.2:40000");
        assert_eq!(envoy.send(via_proxy("203.0.113.9")).status(), Some(200));
        assert_eq!(envoy.send(via_proxy("198.51.100.1")).status(), Some(403));
        // A policy on the remote address alone does not need the peer.
        assert_eq!(envoy.send(get("/edge/x", None).forwarded_for("203.0.113.9")).status(), Some(200));
    }
}
