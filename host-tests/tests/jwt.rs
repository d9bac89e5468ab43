//! The JWT filter through the ABI: the compiled `zt_jwt.wasm` in the harness, with tokens minted
//! here against the harness clock. The same rules as the core's unit tests, seen from outside.

use std::sync::OnceLock;
use std::time::Duration as StdDuration;

use jwt_simple::prelude::*;
use serde_json::{Value, json};
use zt_host_tests::{FilterSpec, Harness, HarnessError, Request};

const NOW: u64 = 1_700_000_000;
const ISS: &str = "https://issuer.test";

struct Keys {
    rsa: RS256KeyPair,
    ec: ES256KeyPair,
    ed: Ed25519KeyPair,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        rsa: RS256KeyPair::generate(2048).unwrap().with_key_id("rsa"),
        ec: ES256KeyPair::generate().with_key_id("ec"),
        ed: Ed25519KeyPair::generate().with_key_id("ed"),
    })
}

fn jwks() -> Value {
    let k = keys();
    let jwk = |text: String| serde_json::from_str::<Value>(&text).unwrap();
    json!({"keys": [
        jwk(k.rsa.public_key().to_jwk()),
        jwk(k.ec.public_key().to_jwk()),
        jwk(k.ed.public_key().to_jwk()),
    ]})
}

fn config(extra: Value) -> String {
    let mut config = json!({
        "realm": "api",
        "providers": [{"name": "corp", "issuer": ISS, "audiences": ["api"], "jwks": {"inline": jwks()}}],
    });
    for (key, value) in extra.as_object().unwrap() {
        config[key] = value.clone();
    }
    config.to_string()
}

fn claims(lifetime: u64) -> JWTClaims<NoCustomClaims> {
    let mut claims =
        Claims::create(Duration::from_secs(lifetime)).with_issuer(ISS).with_audience("api").with_subject("alice");
    claims.issued_at = Some(UnixTimeStamp::from_secs(NOW));
    claims.invalid_before = None;
    claims.expires_at = Some(UnixTimeStamp::from_secs(NOW + lifetime));
    claims
}

fn tokens() -> [(&'static str, String); 3] {
    let k = keys();
    [
        ("RS256", k.rsa.sign(claims(300)).unwrap()),
        ("ES256", k.ec.sign(claims(300)).unwrap()),
        ("EdDSA", k.ed.sign(claims(300)).unwrap()),
    ]
}

fn envoy(extra: Value) -> Harness {
    let mut envoy = Harness::new();
    envoy.clock().set_unix_seconds(NOW);
    envoy.load(FilterSpec::new("zt_jwt", config(extra))).unwrap();
    envoy
}

fn bearer(token: &str) -> Request {
    Request::get("/api").header("authorization", format!("Bearer {token}"))
}

#[test]
fn an_invalid_configuration_refuses_to_start_and_names_the_field() {
    let mut envoy = Harness::new();
    let bad = json!({"providers": [{"name": "corp", "issuer": ISS, "audiences": [], "jwks": {"inline": jwks()}}]});
    let err = envoy.load(FilterSpec::new("zt_jwt", bad.to_string())).unwrap_err();
    assert_eq!(err, HarnessError::ConfigureRefused { filter: "zt-jwt".into() });
    assert!(envoy.log_text().contains("providers[0].audiences: must not be empty"), "{}", envoy.log_text());
}

#[test]
fn valid_tokens_reach_the_upstream_without_the_token_and_with_the_identity_in_filter_state() {
    let mut envoy = envoy(json!({}));
    for (alg, token) in tokens() {
        let exchange = envoy.send(bearer(&token));
        assert!(exchange.reached_upstream(), "{alg}: {exchange:?}\n{}", envoy.log_text());
        assert_eq!(exchange.upstream_header("authorization"), None, "{alg}");
        let identity: Value = serde_json::from_str(&exchange.filter_state_text("zt.identity").unwrap()).unwrap();
        assert_eq!((identity["provider"].as_str(), identity["sub"].as_str()), (Some("corp"), Some("alice")), "{alg}");
        let decision: Value = serde_json::from_str(&exchange.filter_state_text("zt.jwt.decision").unwrap()).unwrap();
        assert_eq!(decision["decision"], "allow");
    }
    assert_eq!(envoy.metric("zt_jwt.allowed.corp"), Some(3), "counted under its provider");
}

#[test]
fn a_missing_token_gets_the_bare_challenge() {
    let mut envoy = envoy(json!({}));
    let exchange = envoy.send(Request::get("/api"));
    let reply = exchange.local_reply().unwrap();
    assert_eq!(reply.status, 401);
    assert_eq!(reply.header("www-authenticate"), Some("Bearer realm=\"api\""));
    assert_eq!(reply.body_text(), r#"{"error":"missing_token","message":"Jwt is missing"}"#);
    assert_eq!(envoy.metric("zt_jwt.denied.missing"), Some(1));
}

#[test]
fn bad_tokens_get_invalid_token_and_never_reach_the_upstream() {
    let mut envoy = envoy(json!({}));
    let (_, good) = tokens()[0].clone();
    let (head, _) = good.rsplit_once('.').unwrap();
    let forged = format!("{head}.{}", "A".repeat(342));
    let other_key = ES256KeyPair::generate().with_key_id("ec").sign(claims(300)).unwrap();
    let cases: Vec<(&str, Request, &str)> = vec![
        ("forged signature", bearer(&forged), "bad_signature"),
        ("unconfigured key", bearer(&other_key), "bad_signature"),
        ("alg none", bearer("eyJhbGciOiJub25lIn0.eyJpc3MiOiJqb2UifQ."), "unsupported_algorithm"),
        ("not a JWT", bearer("abc"), "malformed"),
        ("basic auth", Request::get("/").header("authorization", "Basic dXNlcjpwYXNz"), "token_format"),
        ("not UTF-8", Request::get("/").header("authorization", b"Bearer \xff\xfe"), "token_format"),
        ("two tokens", bearer(&good).header("authorization", format!("Bearer {other_key}")), "multiple_tokens"),
        ("64 KiB", bearer(&"a".repeat(65_536)), "too_large"),
    ];
    for (case, request, reason) in cases {
        let exchange = envoy.send(request);
        let reply = exchange.local_reply().unwrap_or_else(|| panic!("{case}: {exchange:?}"));
        assert_eq!(reply.status, 401, "{case}");
        assert_eq!(reply.header("www-authenticate"), Some("Bearer realm=\"api\", error=\"invalid_token\""), "{case}");
        assert!(envoy.metric(&format!("zt_jwt.denied.{reason}")).unwrap_or(0) >= 1, "{case}: {reason}");
        assert!(!reply.body_text().contains(&good[..20]), "{case}: the body echoes the token");
    }
    assert!(!envoy.log_text().contains(&good[..40]), "a log line holds the token");
}

#[test]
fn expiry_follows_the_host_clock_even_for_cached_tokens() {
    let mut envoy = envoy(json!({}));
    let (_, token) = tokens()[1].clone();
    assert!(envoy.send(bearer(&token)).reached_upstream());
    assert!(envoy.send(bearer(&token)).reached_upstream());
    assert_eq!((envoy.metric("zt_jwt.cache_miss"), envoy.metric("zt_jwt.cache_hit")), (Some(1), Some(1)));
    // exp is NOW + 300 and the skew 60 s.
    envoy.clock().set_unix_seconds(NOW + 359);
    assert!(envoy.send(bearer(&token)).reached_upstream());
    envoy.clock().set_unix_seconds(NOW + 360);
    assert_eq!(envoy.send(bearer(&token)).status(), Some(401));
    assert_eq!(envoy.metric("zt_jwt.denied.expired"), Some(1));
}

#[test]
fn rs256_and_es256_are_verified_by_the_host_when_it_offers_verify_signature() {
    let mut envoy = envoy(json!({"cache_entries": 0}));
    assert!(envoy.log_text().contains("on the host (Envoy verify_signature)"), "{}", envoy.log_text());
    let [(_, rs), (_, es), (_, ed)] = tokens();
    // One call for the RS256 and ES256 signatures each; EdDSA stays in the module.
    assert_eq!(envoy.send(bearer(&rs)).foreign_calls, 1);
    assert_eq!(envoy.send(bearer(&es)).foreign_calls, 1);
    assert_eq!(envoy.send(bearer(&ed)).foreign_calls, 0);
}

#[test]
fn without_verify_signature_everything_is_verified_in_the_module() {
    let mut envoy = Harness::new();
    envoy.clock().set_unix_seconds(NOW);
    envoy.withhold_verify_signature();
    envoy.load(FilterSpec::new("zt_jwt", config(json!({})))).unwrap();
    assert!(envoy.log_text().contains("in-module (jwt-simple)"), "{}", envoy.log_text());
    for (alg, token) in tokens() {
        let exchange = envoy.send(bearer(&token));
        assert!(exchange.reached_upstream(), "{alg}");
        assert_eq!(exchange.foreign_calls, 0);
    }
}

#[test]
fn routes_choose_their_requirement_by_name_and_metadata() {
    let mut envoy = envoy(json!({"requirements": {
        "named": {"public": {"allow_missing": true}, "monitor": {"advisory": true}},
        "by_route_name": {"docs": "public"},
    }}));
    assert_eq!(envoy.send(Request::get("/api")).status(), Some(401));
    let anonymous = envoy.send(Request::get("/docs").route_name("docs"));
    assert!(anonymous.reached_upstream());
    assert_eq!(anonymous.filter_state_text("zt.identity"), None);
    assert!(anonymous.filter_state_text("zt.jwt.decision").unwrap().contains("\"anonymous\""));
    // A present but bad token is still refused on an anonymous route.
    assert_eq!(envoy.send(bearer("abc").route_name("docs")).status(), Some(401));
    // Advisory: recorded, let through.
    let advisory = envoy.send(bearer("abc").route_metadata("zt", "jwt_requirement", "monitor"));
    assert!(advisory.reached_upstream());
    assert!(advisory.filter_state_text("zt.jwt.decision").unwrap().contains("advisory_deny"));
    assert_eq!(envoy.metric("zt_jwt.advisory_denied"), Some(1));
    // A requirement the configuration lacks: 500, never a pass.
    let unknown = envoy.send(Request::get("/x").route_metadata("zt", "jwt_requirement", "ghost"));
    assert_eq!(unknown.status(), Some(500));
}

#[test]
fn the_identity_reaches_a_later_module_through_filter_state() {
    let mut envoy = envoy(json!({}));
    envoy.load(FilterSpec::new("fixture_abi_probe", r#"{"reader": true}"#)).unwrap();
    let (_, token) = tokens()[2].clone();
    // A client-sent header of the same name is no way in: only filter state carries identity.
    let exchange =
        envoy.send(bearer(&token).header("x-probe-read-state", "zt.identity").header("zt.identity", "forged"));
    let seen: Value = serde_json::from_str(&exchange.upstream_header("x-probe-out-state").unwrap()).unwrap();
    assert_eq!(seen["sub"], "alice");
    let anonymous = envoy.send(Request::get("/").header("x-probe-read-state", "zt.identity"));
    assert_eq!(anonymous.status(), Some(401));
}

#[test]
fn ticks_and_time_do_not_disturb_the_filter() {
    let mut envoy = envoy(json!({}));
    envoy.advance(StdDuration::from_secs(30)).unwrap();
    let (_, token) = tokens()[0].clone();
    assert!(envoy.send(bearer(&token)).reached_upstream());
}

#[test]
fn claim_headers_are_set_from_verified_tokens_and_never_from_clients() {
    let mut envoy = envoy(json!({
        "claim_headers": [{"claim": "sub", "header": "x-user"}],
        "requirements": {"named": {"public": {"allow_missing": true}}, "by_route_name": {"docs": "public"}},
    }));
    let (_, token) = tokens()[1].clone();
    let exchange = envoy.send(bearer(&token).header("x-user", "mallory"));
    assert_eq!(exchange.upstream_header_values("x-user"), ["alice"]);
    // Anonymous route: the forged header is removed, nothing is set.
    let anonymous = envoy.send(Request::get("/docs").route_name("docs").header("x-user", "mallory"));
    assert!(anonymous.reached_upstream());
    assert_eq!(anonymous.upstream_header("x-user"), None);
}

#[test]
fn the_payload_header_carries_the_verified_claims_and_never_a_clients_copy() {
    use base64::Engine as _;
    let mut envoy = envoy(json!({
        "payload_header": "x-jwt-payload",
        "requirements": {"named": {"public": {"allow_missing": true}}, "by_route_name": {"docs": "public"}},
    }));
    let (_, token) = tokens()[2].clone();
    let exchange = envoy.send(bearer(&token).header("x-jwt-payload", "eyJzdWIiOiJhZG1pbiJ9"));
    let values = exchange.upstream_header_values("x-jwt-payload");
    assert_eq!(values.len(), 1, "{values:?}");
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&values[0]).unwrap()).unwrap();
    assert_eq!((claims["sub"].as_str(), claims["iss"].as_str()), (Some("alice"), Some(ISS)));
    let anonymous =
        envoy.send(Request::get("/docs").route_name("docs").header("x-jwt-payload", "eyJzdWIiOiJhZG1pbiJ9"));
    assert!(anonymous.reached_upstream());
    assert_eq!(anonymous.upstream_header("x-jwt-payload"), None);
}

#[test]
fn a_payload_header_that_is_reserved_is_refused_by_name() {
    let mut envoy = Harness::new();
    let err = envoy.load(FilterSpec::new("zt_jwt", config(json!({"payload_header": "authorization"})))).unwrap_err();
    assert_eq!(err, HarnessError::ConfigureRefused { filter: "zt-jwt".into() });
    assert!(envoy.log_text().contains("payload_header: must be a lower-case header name"), "{}", envoy.log_text());
}

/// The edge mints a token for the `orders` upstream; the next hop is this same filter trusting
/// the JWKS the edge serves.
#[test]
fn next_hop_tokens_are_minted_served_verified_and_expire() {
    let mut signing_key: Value =
        serde_json::from_str(include_str!("../../filters/zt-core/testdata/A.1_Ed25519_private.jwk.json")).unwrap();
    signing_key["kid"] = json!("edge-1");
    let mut edge = envoy(json!({
        "next_hop": {"issuer": "https://edge.internal", "signing_key": signing_key, "actor": "spiffe://td/edge",
            "profiles": {"orders": {"audience": "orders", "lifetime_seconds": 20, "scopes": ["orders.read"]}}},
        "requirements": {"default": {"next_hop_token": "orders"}},
    }));
    let jwks_reply = edge.send(Request::get("/.well-known/jwks.json"));
    let reply = jwks_reply.local_reply().expect("the edge serves its JWKS");
    assert_eq!(reply.status, 200);
    let jwks: Value = serde_json::from_str(&reply.body_text()).unwrap();
    assert_eq!(jwks["keys"][0]["kid"], "edge-1");
    assert!(jwks["keys"][0].get("d").is_none());

    let custom = json!({"scope": "orders.read admin"});
    let mut with_scope = Claims::with_custom_claims(custom, Duration::from_secs(300))
        .with_issuer(ISS)
        .with_audience("api")
        .with_subject("alice");
    with_scope.issued_at = Some(UnixTimeStamp::from_secs(NOW));
    with_scope.expires_at = Some(UnixTimeStamp::from_secs(NOW + 300));
    with_scope.invalid_before = None;
    let caller_token = keys().ec.sign(with_scope).unwrap();
    let exchange = edge.send(bearer(&caller_token));
    let forwarded = exchange.upstream_header("authorization").expect("a minted token goes upstream");
    let minted = forwarded.strip_prefix("Bearer ").unwrap();
    assert_ne!(minted, caller_token, "never the caller's token");

    let mut next_hop = Harness::new();
    next_hop.clock().set_unix_seconds(NOW);
    let next_config = json!({"providers": [{"name": "edge", "issuer": "https://edge.internal", "audiences": ["orders"],
        "jwks": {"inline": jwks}, "clock_skew_seconds": 5}], "claim_headers": [{"claim": "scope", "header": "x-scope"}]});
    next_hop.load(FilterSpec::new("zt_jwt", next_config.to_string())).unwrap();
    let accepted = next_hop.send(bearer(minted));
    assert!(accepted.reached_upstream(), "{accepted:?}");
    assert_eq!(accepted.upstream_header("x-scope").as_deref(), Some("orders.read"), "scopes narrowed to the profile");
    next_hop.clock().set_unix_seconds(NOW + 20 + 5);
    let replay = next_hop.send(bearer(minted));
    assert_eq!(replay.status(), Some(401), "a replay after the lifetime fails");
    assert_eq!(next_hop.metric("zt_jwt.denied.expired"), Some(1));
}

#[test]
fn a_route_can_require_tokens_of_several_providers_together() {
    let mut envoy = Harness::new();
    envoy.clock().set_unix_seconds(NOW);
    let config = json!({"realm": "api", "providers": [
        {"name": "corp", "issuer": ISS, "audiences": ["api"], "jwks": {"inline": jwks()}},
        {"name": "mesh", "issuer": "https://mesh.test", "audiences": ["api"], "jwks": {"inline": jwks()},
         "token_sources": [{"header": {"name": "x-workload-token"}}]},
    ], "requirements": {"named": {"both": {"all_of": ["corp", "mesh"]}}, "by_route_name": {"internal": "both"}}});
    envoy.load(FilterSpec::new("zt_jwt", config.to_string())).unwrap();
    let (_, user) = tokens()[1].clone();
    let workload = keys().ed.sign(claims(300).with_issuer("https://mesh.test")).unwrap();
    let both = envoy.send(bearer(&user).header("x-workload-token", &workload).route_name("internal"));
    assert!(both.reached_upstream(), "{both:?}");
    assert_eq!(both.upstream_header("x-workload-token"), None, "token headers are removed");
    let identity: Value = serde_json::from_str(&both.filter_state_text("zt.identity").unwrap()).unwrap();
    assert_eq!(identity["provider"], "corp");
    let one = envoy.send(bearer(&user).route_name("internal"));
    assert_eq!(one.status(), Some(401), "the workload token is missing");
    assert!(envoy.send(bearer(&user)).reached_upstream(), "other routes need one token");
}

/// An HMAC secret named by an environment variable of the VM (`{"env": "NAME"}`) verifies
/// tokens as an inline one does, in zt-jwt and in the suite; the variable missing from the VM
/// refuses the configuration, naming the field.
#[test]
fn an_hmac_secret_from_the_vms_environment_verifies_tokens() {
    use base64::Engine as _;
    let secret = [0x42u8; 32];
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let provider = json!({"name": "shared", "issuer": "https://hs.test", "audiences": ["api"],
        "hmac_keys": [{"alg": "HS256", "secret": {"env": "ZT_TEST_HMAC"}}]});
    let jwt = json!({"realm": "api", "providers": [provider]});
    let mut claims = claims(300).with_issuer("https://hs.test");
    claims.issued_at = Some(UnixTimeStamp::from_secs(NOW));
    let token = HS256Key::from_bytes(&secret).authenticate(claims).unwrap();
    for layout in zt_host_tests::Layout::ALL {
        let mut envoy = Harness::new();
        envoy.clock().set_unix_seconds(NOW);
        for filter in layout.filters(&[("jwt", &jwt)], &[("ZT_TEST_HMAC", &encoded)]) {
            envoy.load(filter).unwrap();
        }
        let exchange = envoy.send(bearer(&token));
        assert_eq!(exchange.status(), Some(200), "{layout:?}: {}", envoy.log_text());
        assert!(!envoy.log_text().contains(&encoded), "the secret is never logged");

        let mut envoy = Harness::new();
        for filter in layout.filters(&[("jwt", &jwt)], &[]) {
            assert!(matches!(envoy.load(filter), Err(HarnessError::ConfigureRefused { .. })), "{layout:?}");
        }
        let log = envoy.log_text();
        assert!(log.contains("providers[0].hmac_keys[0].secret.env") && log.contains("ZT_TEST_HMAC"), "{log}");
    }
}
