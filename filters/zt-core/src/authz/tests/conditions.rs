//! Every condition object and combinator: a match, a miss, and the request without identity
//! (or peer, or source).

use serde_json::json;
use wasm_bindgen_test::wasm_bindgen_test;

use super::*;

/// Asserts, for each `(condition, request, expected)`, whether a policy with that single `when`
/// condition allows the request.
fn check(cases: &[(Value, Req, bool)]) {
    for (i, (condition, req, expected)) in cases.iter().enumerate() {
        let config = allow_when(condition.clone());
        assert_eq!(allowed(&config, req), *expected, "case {i}: {condition} on {:?}", req.facts());
    }
}

fn anonymous() -> Req {
    Req::get("/x")
}

fn with_claims(claims: Value) -> Req {
    Req::get("/x").identity(claims)
}

#[wasm_bindgen_test(unsupported = test)]
fn scopes() {
    let caller = || with_claims(json!({"sub": "alice", "scope": "orders:read orders:write"}));
    check(&[
        (json!({"scopes": {"all_of": ["orders:read"]}}), caller(), true),
        (json!({"scopes": {"all_of": ["orders:read", "orders:write"]}}), caller(), true),
        (json!({"scopes": {"all_of": ["orders:read", "admin"]}}), caller(), false),
        (json!({"scopes": {"any_of": ["admin", "orders:write"]}}), caller(), true),
        (json!({"scopes": {"any_of": ["admin"]}}), caller(), false),
        (json!({"scopes": {"all_of": ["orders"]}}), caller(), false),
        (json!({"scopes": {"all_of": ["orders:read"]}}), with_claims(json!({"scp": ["orders:read"]})), true),
        (json!({"scopes": {"all_of": ["orders:read"]}}), anonymous(), false),
        (json!({"scopes": {"any_of": ["orders:read"]}}), anonymous(), false),
    ]);
}

#[wasm_bindgen_test(unsupported = test)]
fn scopes_from_a_configured_claim() {
    let config = |claim: Value| {
        super::config(json!({
            "scope_claim": claim,
            "policies": {"p": {"action": "ALLOW", "rules": [{"when": [{"scopes": {"all_of": ["orders:read"]}}]}]}},
            "defaults": {"policies": ["p"]},
        }))
    };
    let array = config(json!("permissions"));
    assert!(allowed(&array, &with_claims(json!({"permissions": ["orders:read", "x"]}))));
    assert!(allowed(&array, &with_claims(json!({"permissions": "x orders:read"}))));
    // `scope` no longer counts once another claim is named.
    assert!(!allowed(&array, &with_claims(json!({"scope": "orders:read"}))));
    assert!(!allowed(&array, &with_claims(json!({"permissions": 5}))));
    let nested = config(json!("realm_access.roles"));
    assert!(allowed(&nested, &with_claims(json!({"realm_access": {"roles": ["orders:read"]}}))));
    assert!(!allowed(&nested, &with_claims(json!({"realm_access": ["orders:read"]}))));
}

#[wasm_bindgen_test(unsupported = test)]
fn claim_operators() {
    let claims = || {
        with_claims(json!({
            "sub": "alice",
            "org": {"team": "payments", "level": 3, "tags": ["eu", 7, true]},
            "a.b": "dotted",
            "tier": 2.0,
            "verified": true,
            "nothing": null,
            "groups": ["admin", "dev"],
        }))
    };
    let c = |spec: Value| json!({"claim": spec});
    check(&[
        (c(json!({"path": "org.team", "equals": "payments"})), claims(), true),
        (c(json!({"path": "org.team", "equals": "billing"})), claims(), false),
        (c(json!({"path": ["org", "team"], "equals": "payments"})), claims(), true),
        (c(json!({"path": ["a.b"], "equals": "dotted"})), claims(), true),
        (c(json!({"path": "a.b", "equals": "dotted"})), claims(), false),
        (c(json!({"path": "tier", "equals": 2})), claims(), true),
        (c(json!({"path": "org.level", "equals": 3.0})), claims(), true),
        (c(json!({"path": "verified", "equals": true})), claims(), true),
        (c(json!({"path": "verified", "equals": "true"})), claims(), false),
        (c(json!({"path": "groups", "equals": ["admin", "dev"]})), claims(), true),
        (c(json!({"path": "groups", "equals": "admin"})), claims(), false),
        (c(json!({"path": "org.team", "one_of": ["billing", "payments"]})), claims(), true),
        (c(json!({"path": "org.team", "one_of": ["billing"]})), claims(), false),
        (c(json!({"path": "org.team", "prefix": "pay"})), claims(), true),
        (c(json!({"path": "org.team", "prefix": "ments"})), claims(), false),
        (c(json!({"path": "org.level", "prefix": "3"})), claims(), false),
        (c(json!({"path": "org.team", "exists": true})), claims(), true),
        (c(json!({"path": "org.missing", "exists": true})), claims(), false),
        (c(json!({"path": "org.missing", "exists": false})), claims(), true),
        (c(json!({"path": "nothing", "exists": true})), claims(), false),
        (c(json!({"path": "nothing", "exists": false})), claims(), true),
        (c(json!({"path": "org.team.deeper", "exists": false})), claims(), true),
        (c(json!({"path": "org.level", "gt": 2})), claims(), true),
        (c(json!({"path": "org.level", "gt": 3})), claims(), false),
        (c(json!({"path": "org.level", "gte": 3})), claims(), true),
        (c(json!({"path": "org.level", "gte": 3.5})), claims(), false),
        (c(json!({"path": "org.level", "lt": 4})), claims(), true),
        (c(json!({"path": "org.level", "lt": 3})), claims(), false),
        (c(json!({"path": "org.level", "lte": 3})), claims(), true),
        (c(json!({"path": "org.level", "lte": 2.9})), claims(), false),
        (c(json!({"path": "org.team", "gt": 0})), claims(), false),
        (c(json!({"path": "groups", "contains": "admin"})), claims(), true),
        (c(json!({"path": "groups", "contains": "root"})), claims(), false),
        (c(json!({"path": "org.tags", "contains": 7.0})), claims(), true),
        (c(json!({"path": "org.tags", "contains": true})), claims(), true),
        (c(json!({"path": "org.team", "contains": "pay"})), claims(), false),
        // Without an identity every claim condition is false, `exists: false` included.
        (c(json!({"path": "org.team", "equals": "payments"})), anonymous(), false),
        (c(json!({"path": "org.missing", "exists": false})), anonymous(), false),
        (c(json!({"path": "groups", "contains": "admin"})), anonymous(), false),
    ]);
}

#[wasm_bindgen_test(unsupported = test)]
fn issuer_provider_and_authenticated() {
    let caller = || with_claims(json!({"sub": "alice"}));
    check(&[
        (json!({"issuer": [ISS]}), caller(), true),
        (json!({"issuer": ["https://other", ISS]}), caller(), true),
        (json!({"issuer": ["https://other"]}), caller(), false),
        (json!({"issuer": [ISS]}), anonymous(), false),
        (json!({"provider": ["corp"]}), caller(), true),
        (json!({"provider": ["partner"]}), caller(), false),
        (json!({"provider": ["corp"]}), anonymous(), false),
        (json!({"authenticated": true}), caller(), true),
        (json!({"authenticated": true}), anonymous(), false),
        (json!({"authenticated": false}), caller(), false),
        (json!({"authenticated": false}), anonymous(), true),
    ]);
}

#[wasm_bindgen_test(unsupported = test)]
fn peer_spiffe_ids() {
    let from = |san: &str| Req::get("/x").peer(san);
    let exact = json!({"peer": {"spiffe_id": "spiffe://cluster.local/ns/shop/sa/web"}});
    let within = json!({"peer": {"trust_domain": "cluster.local", "path_prefix": "/ns/shop/"}});
    let domain = json!({"peer": {"trust_domain": "cluster.local"}});
    check(&[
        (exact.clone(), from("spiffe://cluster.local/ns/shop/sa/web"), true),
        (exact.clone(), from("spiffe://cluster.local/ns/shop/sa/web2"), false),
        (exact.clone(), from("spiffe://other.local/ns/shop/sa/web"), false),
        (exact.clone(), from("spiffe://cluster.local/ns/shop/sa/web/"), false),
        (exact.clone(), from("SPIFFE://cluster.local/ns/shop/sa/web"), false),
        (exact.clone(), anonymous(), false),
        (within.clone(), from("spiffe://cluster.local/ns/shop/sa/any"), true),
        (within.clone(), from("spiffe://cluster.local/ns/shopping/sa/any"), false),
        (within.clone(), from("spiffe://cluster.local/ns/other/sa/any"), false),
        (within.clone(), from("spiffe://cluster.local/ns/shop/../x"), false),
        (
            json!({"peer": {"trust_domain": "cluster.local", "path_prefix": "/ns/shop"}}),
            from("spiffe://cluster.local/ns/shop"),
            true,
        ),
        (
            json!({"peer": {"trust_domain": "cluster.local", "path_prefix": "/ns/shop"}}),
            from("spiffe://cluster.local/ns/shops"),
            false,
        ),
        (domain.clone(), from("spiffe://cluster.local"), true),
        (domain.clone(), from("spiffe://cluster.local/anything"), true),
        (domain.clone(), from("spiffe://cluster.localx/anything"), false),
        (domain, from("not a uri"), false),
    ]);
}

#[wasm_bindgen_test(unsupported = test)]
fn source_ip() {
    let cond = json!({"source_ip": ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]});
    check(&[
        (cond.clone(), Req::get("/x").source("10.20.30.40"), true),
        (cond.clone(), Req::get("/x").source("::ffff:10.20.30.40"), true),
        (cond.clone(), Req::get("/x").source("11.0.0.1"), false),
        (cond.clone(), Req::get("/x").source("2001:db8:1::1"), true),
        (cond.clone(), Req::get("/x").source("2001:db9::1"), false),
        (cond.clone(), Req::get("/x").source("192.0.2.7"), true),
        (cond.clone(), Req::get("/x").source("192.0.2.8"), false),
        (cond, anonymous(), false),
    ]);
}

#[wasm_bindgen_test(unsupported = test)]
fn headers() {
    let req = || Req::get("/x").header("x-env", b"staging-eu").header("x-bin", b"\xff\xfe");
    check(&[
        (json!({"header": {"name": "x-env", "exact": "staging-eu"}}), req(), true),
        (json!({"header": {"name": "X-Env", "exact": "staging-eu"}}), req(), true),
        (json!({"header": {"name": "x-env", "exact": "staging"}}), req(), false),
        (json!({"header": {"name": "x-env", "exact": "STAGING-EU"}}), req(), false),
        (json!({"header": {"name": "x-env", "prefix": "staging"}}), req(), true),
        (json!({"header": {"name": "x-env", "prefix": "prod"}}), req(), false),
        (json!({"header": {"name": "x-env", "present": true}}), req(), true),
        (json!({"header": {"name": "x-env", "present": false}}), req(), false),
        (json!({"header": {"name": "x-other", "present": false}}), req(), true),
        (json!({"header": {"name": "x-other", "present": true}}), req(), false),
        (json!({"header": {"name": "x-bin", "prefix": "x"}}), req(), false),
        (json!({"header": {"name": "x-bin", "present": true}}), req(), true),
        // A repeated header: any one value may satisfy the test.
        (json!({"header": {"name": "x-env", "exact": "prod"}}), req().header("x-env", b"prod"), true),
        (json!({"header": {"name": "x-env", "present": true}}), Req::get("/x").header("x-env", b""), true),
    ]);
}

#[wasm_bindgen_test(unsupported = test)]
fn time_windows() {
    // NOW is Tuesday 22:13:20 UTC; 1970-01-01 (second 0) a Thursday at midnight.
    check(&[
        (json!({"time_window": {"start": "22:00", "end": "23:00"}}), anonymous(), true),
        (json!({"time_window": {"start": "09:00", "end": "17:00"}}), anonymous(), false),
        (json!({"time_window": {"days": ["tue"], "start": "22:00", "end": "06:00"}}), anonymous(), true),
        (json!({"time_window": {"days": ["mon"], "start": "22:00", "end": "06:00"}}), anonymous(), false),
        (json!({"time_window": {"days": ["thu"], "start": "00:00", "end": "00:01"}}), anonymous().at(0), true),
        (json!({"time_window": {"days": ["fri"], "start": "00:00", "end": "00:01"}}), anonymous().at(0), false),
        (json!({"time_window": {"days": ["wed"], "start": "23:00", "end": "01:00"}}), anonymous().at(30), true),
    ]);
}

#[wasm_bindgen_test(unsupported = test)]
fn environment() {
    let cond = json!({"environment": {"claim": "env"}});
    check(&[
        (cond.clone(), with_claims(json!({"env": "production"})), true),
        (cond.clone(), with_claims(json!({"env": ["staging", "production"]})), true),
        (cond.clone(), with_claims(json!({"env": "staging"})), false),
        (cond.clone(), with_claims(json!({"env": "Production"})), false),
        (cond.clone(), with_claims(json!({})), false),
        (cond.clone(), anonymous(), false),
        (json!({"environment": {"claim": "deploy.env"}}), with_claims(json!({"deploy": {"env": "production"}})), true),
    ]);
}

#[wasm_bindgen_test(unsupported = test)]
fn combinators_nest() {
    let admin = || with_claims(json!({"sub": "alice", "groups": ["admin"], "scope": "read"}));
    let dev = || with_claims(json!({"sub": "bob", "groups": ["dev"]}));
    let is_admin = json!({"claim": {"path": "groups", "contains": "admin"}});
    let reads = json!({"scopes": {"all_of": ["read"]}});
    check(&[
        (json!({"all": [is_admin, reads]}), admin(), true),
        (json!({"all": [is_admin, reads]}), dev(), false),
        (json!({"any": [is_admin, {"claim": {"path": "sub", "equals": "bob"}}]}), dev(), true),
        (json!({"any": [is_admin, reads]}), dev(), false),
        (json!({"not": is_admin}), dev(), true),
        (json!({"not": is_admin}), admin(), false),
        // Two-valued logic: the claim condition is false without identity, so its negation holds.
        (json!({"not": is_admin}), anonymous(), true),
        (json!({"not": {"not": is_admin}}), admin(), true),
        (json!({"all": [{"any": [{"not": is_admin}, reads]}, {"authenticated": true}]}), admin(), true),
        (json!({"all": [{"any": [{"not": is_admin}, reads]}, {"authenticated": true}]}), anonymous(), false),
        (json!({"any": [{"key": "request.auth.claims[groups]", "values": ["dev"]}, is_admin]}), dev(), true),
    ]);
}

#[wasm_bindgen_test(unsupported = test)]
fn istio_when_keys() {
    let caller = || {
        with_claims(json!({
            "sub": "alice",
            "aud": ["orders", "billing"],
            "azp": "web-app",
            "groups": ["admin", "dev"],
            "org": {"team": "payments"},
            "level": 3,
            "verified": true,
        }))
        .peer("spiffe://cluster.local/ns/shop/sa/web")
        .source("10.1.2.3")
        .header("x-tenant", b"acme")
    };
    let when = |key: &str, values: Value| json!({"key": key, "values": values});
    let not = |key: &str, values: Value| json!({"key": key, "notValues": values});
    check(&[
        (when("request.auth.claims[groups]", json!(["admin"])), caller(), true),
        (when("request.auth.claims[groups]", json!(["root"])), caller(), false),
        (when("request.auth.claims[groups]", json!(["ad*"])), caller(), true),
        (when("request.auth.claims[org][team]", json!(["payments"])), caller(), true),
        (when("request.auth.claims[org][team]", json!(["*ments"])), caller(), true),
        (when("request.auth.claims[org]", json!(["*"])), caller(), false),
        (when("request.auth.claims[level]", json!(["3"])), caller(), true),
        (when("request.auth.claims[verified]", json!(["true"])), caller(), true),
        (when("request.auth.claims[missing]", json!(["*"])), caller(), false),
        (when("request.auth.claims[groups]", json!(["admin"])), anonymous(), false),
        (not("request.auth.claims[groups]", json!(["root"])), caller(), true),
        (not("request.auth.claims[groups]", json!(["dev"])), caller(), false),
        (json!({"key": "request.auth.claims[groups]", "values": ["admin"], "notValues": ["dev"]}), caller(), false),
        (when("request.auth.principal", json!([format!("{ISS}/alice")])), caller(), true),
        (when("request.auth.principal", json!([format!("{ISS}/*")])), caller(), true),
        (when("request.auth.principal", json!(["*/alice"])), caller(), true),
        (when("request.auth.principal", json!([format!("{ISS}/bob")])), caller(), false),
        (when("request.auth.audiences", json!(["billing"])), caller(), true),
        (when("request.auth.audiences", json!(["shipping"])), caller(), false),
        (when("request.auth.presenter", json!(["web-app"])), caller(), true),
        (when("request.auth.presenter", json!(["cli"])), caller(), false),
        (when("request.headers[x-tenant]", json!(["acme"])), caller(), true),
        (when("request.headers[X-Tenant]", json!(["ac*"])), caller(), true),
        (when("request.headers[x-tenant]", json!(["other"])), caller(), false),
        (when("source.ip", json!(["10.0.0.0/8"])), caller(), true),
        (when("source.ip", json!(["192.168.0.0/16"])), caller(), false),
        (not("source.ip", json!(["192.168.0.0/16"])), caller(), true),
        (when("source.principal", json!(["cluster.local/ns/shop/sa/web"])), caller(), true),
        (when("source.principal", json!(["cluster.local/ns/shop/*"])), caller(), true),
        (when("source.principal", json!(["spiffe://cluster.local/ns/shop/sa/web"])), caller(), false),
        (when("source.namespace", json!(["shop"])), caller(), true),
        (when("source.namespace", json!(["prod"])), caller(), false),
        (when("source.principal", json!(["*"])), anonymous(), false),
    ]);
}

#[wasm_bindgen_test(unsupported = test)]
fn inputs_name_what_policies_read() {
    let inputs = |condition: Value| allow_when(condition).inputs();
    let base = Inputs::default();
    assert_eq!(inputs(json!({"authenticated": true})), Inputs { identity: true, ..base });
    assert_eq!(inputs(json!({"not": {"scopes": {"all_of": ["a"]}}})), Inputs { identity: true, ..base });
    assert_eq!(inputs(json!({"source_ip": ["10.0.0.0/8"]})), Inputs { source: true, ..base });
    assert_eq!(inputs(json!({"peer": {"trust_domain": "td"}})), Inputs { peer: true, ..base });
    assert_eq!(inputs(json!({"header": {"name": "x", "present": true}})), Inputs { headers: true, ..base });
    assert_eq!(inputs(json!({"time_window": {"start": "01:00", "end": "02:00"}})), base);
    assert_eq!(
        allow_rule(json!({"to": [{"operation": {"hosts": ["a.com"], "paths": ["/x"]}}]})).inputs(),
        Inputs { authority: true, ..base }
    );
    assert_eq!(
        allow_rule(json!({"from": [{"source": {"principals": ["td/x"], "requestPrincipals": ["*"]}}]})).inputs(),
        Inputs { peer: true, identity: true, ..base }
    );
}

/// A workload presents its SPIFFE ID by certificate (mTLS) or by a JWT-SVID the JWT filter
/// verified: principal, namespace and peer conditions take either.
#[wasm_bindgen_test(unsupported = test)]
fn a_jwt_svid_stands_for_the_workload_as_an_mtls_peer_does() {
    let svid = |id: &str| {
        let mut identity = identity(json!({"sub": id}));
        identity.spiffe_id = Some(id.to_owned());
        identity
    };
    let by_svid = |id: &str| Req { identity: Some(svid(id)), ..Req::get("/x") };
    let web = "spiffe://cluster.local/ns/shop/sa/web";
    for config in [
        allow_rule(json!({"from": [{"source": {"principals": ["cluster.local/ns/shop/sa/web"]}}]})),
        allow_rule(json!({"from": [{"source": {"namespaces": ["shop"]}}]})),
        allow_when(json!({"peer": {"spiffe_id": web}})),
    ] {
        assert!(allowed(&config, &Req::get("/x").peer(web)), "by certificate");
        assert!(allowed(&config, &by_svid(web)), "by JWT-SVID");
        assert!(!allowed(&config, &by_svid("spiffe://cluster.local/ns/other/sa/web")));
        assert!(!allowed(&config, &Req::get("/x")), "neither");
        // A token's `sub` that looks like a SPIFFE ID is no JWT-SVID unless a `spiffe`
        // provider verified it as one.
        assert!(!allowed(&config, &Req::get("/x").identity(json!({"sub": web}))));
        // With both, either one matching is the workload (each alone would be allowed).
        assert!(allowed(
            &config,
            &Req { identity: Some(svid("spiffe://cluster.local/ns/x/sa/y")), ..Req::get("/x").peer(web) }
        ));
    }
    // A DENY on a workload refuses it whichever credential names it.
    let deny = config(json!({
        "environment": "production",
        "policies": {
            "block": {"action": "DENY", "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/shop/sa/web"]}}]}]},
            "all": {"action": "ALLOW", "rules": [{}]},
        },
        "defaults": {"policies": ["block", "all"]},
    }));
    assert!(!allowed(
        &deny,
        &Req { identity: Some(svid(web)), ..Req::get("/x").peer("spiffe://cluster.local/ns/a/sa/b") }
    ));
    assert!(allowed(&deny, &Req::get("/x").peer("spiffe://cluster.local/ns/a/sa/b")));
    // The adapter reads the identity for peer conditions.
    assert!(allow_rule(json!({"from": [{"source": {"principals": ["td/x"]}}]})).inputs().reads_identity());
}
