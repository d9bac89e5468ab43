//! What the upstream receives of the caller's token, through the compiled `zt_jwt.wasm`: with
//! `forward_token` only a verified token, never one that failed (on `allow_failed` and
//! `advisory` routes), and on next-hop routes only the minted token, the caller's removed from
//! the header, the query parameter and the cookie alike. Also `algorithms` and ROCA keys as
//! the module applies them.

use std::sync::OnceLock;

use jwt_simple::prelude::*;
use serde_json::{Value, json};
use zt_host_tests::{Exchange, FilterSpec, Harness, HarnessError, Request, ScriptedResponse};

const NOW: u64 = 1_700_000_000;
const ISS: &str = "https://issuer.test";

struct Keys {
    ec: ES256KeyPair,
    rsa: RS256KeyPair,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        ec: ES256KeyPair::generate().with_key_id("ec"),
        rsa: RS256KeyPair::generate(2048).unwrap().with_key_id("rsa"),
    })
}

fn jwk(text: String) -> Value {
    let mut jwk: Value = serde_json::from_str(&text).unwrap();
    // As many issuers publish them: without `alg`, so the defaults decide.
    jwk.as_object_mut().unwrap().remove("alg");
    jwk
}

fn jwks() -> Value {
    json!({"keys": [jwk(keys().ec.public_key().to_jwk()), jwk(keys().rsa.public_key().to_jwk())]})
}

fn claims() -> JWTClaims<Value> {
    let mut claims = Claims::with_custom_claims(json!({"scope": "orders.read admin"}), Duration::from_secs(300))
        .with_issuer(ISS)
        .with_audience("api")
        .with_subject("alice");
    claims.issued_at = Some(UnixTimeStamp::from_secs(NOW));
    claims.invalid_before = None;
    claims.expires_at = Some(UnixTimeStamp::from_secs(NOW + 300));
    claims
}

fn good() -> String {
    keys().ec.sign(claims()).unwrap()
}

/// Well-formed, right issuer, signed by a key the provider does not have.
fn forged() -> String {
    ES256KeyPair::generate().with_key_id("ec").sign(claims()).unwrap()
}

fn provider() -> Value {
    json!({"name": "corp", "issuer": ISS, "audiences": ["api"], "jwks": {"inline": jwks()},
    "token_sources": [
        {"header": {"name": "authorization", "value_prefix": "Bearer "}},
        {"query": {"name": "access_token"}},
        {"cookie": {"name": "session"}},
    ]})
}

fn start(config: Value) -> Harness {
    let mut envoy = Harness::new();
    envoy.clock().set_unix_seconds(NOW);
    envoy.load(FilterSpec::new("zt_jwt", config.to_string())).unwrap();
    envoy
}

fn forwarding() -> Harness {
    start(json!({"providers": [provider()], "forward_token": true, "requirements": {
        "named": {"open": {"allow_failed": true}, "monitor": {"advisory": true}, "public": {"allow_missing": true}},
        "by_route_name": {"open": "open", "monitor": "monitor", "public": "public"},
    }}))
}

/// One request per source, each carrying `token` there and harmless neighbours beside it.
fn in_every_source(token: &str) -> [(&'static str, Request); 3] {
    [
        ("header", Request::get("/orders?page=2").header("authorization", format!("Bearer {token}"))),
        ("query", Request::get(&format!("/orders?page=2&access_token={token}&sort=asc"))),
        ("cookie", Request::get("/orders?page=2").header("cookie", format!("theme=dark; session={token}; lang=en"))),
    ]
}

/// Whether the upstream saw `token` anywhere at all.
fn upstream_carries(exchange: &Exchange, token: &str) -> bool {
    let zt_host_tests::Outcome::Upstream { headers, .. } = &exchange.outcome else { panic!("{exchange:?}") };
    headers.iter().any(|(_, value)| String::from_utf8_lossy(value).contains(token))
}

#[test]
fn with_forward_token_a_verified_token_goes_upstream_where_it_came() {
    let mut envoy = forwarding();
    let token = good();
    for (source, request) in in_every_source(&token) {
        let exchange = envoy.send(request);
        assert!(exchange.reached_upstream(), "{source}: {exchange:?}");
        assert!(upstream_carries(&exchange, &token), "{source}: a verified token is forwarded as asked");
    }
}

#[test]
fn with_forward_token_a_token_that_failed_never_goes_upstream() {
    let mut envoy = forwarding();
    let forged = forged();
    for route in ["open", "monitor"] {
        for (source, request) in in_every_source(&forged) {
            let exchange = envoy.send(request.route_name(route));
            assert!(exchange.reached_upstream(), "{route}/{source}: {exchange:?}");
            assert!(!upstream_carries(&exchange, &forged), "{route}/{source}: the unverified token went upstream");
            // What is not a token stays as it was.
            assert_eq!(
                exchange.upstream_header(":path").as_deref().map(|p| p.starts_with("/orders?page=2")),
                Some(true)
            );
            match source {
                "query" => assert_eq!(exchange.upstream_header(":path").as_deref(), Some("/orders?page=2&sort=asc")),
                "cookie" => assert_eq!(exchange.upstream_header("cookie").as_deref(), Some("theme=dark; lang=en")),
                _ => assert_eq!(exchange.upstream_header("authorization"), None),
            }
        }
    }
    // A malformed token on an `allow_failed` route: let through, without it.
    let decision = envoy.send(Request::get("/x").header("authorization", "Bearer abc").route_name("open"));
    assert!(decision.filter_state_text("zt.jwt.decision").unwrap().contains("\"anonymous\""));
    assert_eq!(decision.upstream_header("authorization"), None);
    // allow_missing lets only requests without any token through: nothing to forward there.
    let anonymous = envoy.send(Request::get("/docs").header("cookie", "theme=dark").route_name("public"));
    assert_eq!(anonymous.upstream_header("cookie").as_deref(), Some("theme=dark"));
}

#[test]
fn without_forward_token_query_and_cookie_tokens_are_removed_too() {
    let mut envoy = start(json!({"providers": [provider()]}));
    let token = good();
    for (source, request) in in_every_source(&token) {
        let exchange = envoy.send(request);
        assert!(exchange.reached_upstream(), "{source}: {exchange:?}");
        assert!(!upstream_carries(&exchange, &token), "{source}: the token went upstream");
    }
}

fn next_hop_config() -> Value {
    let mut signing_key: Value =
        serde_json::from_str(include_str!("../../filters/zt-core/testdata/A.1_Ed25519_private.jwk.json")).unwrap();
    signing_key["kid"] = json!("edge-1");
    json!({"providers": [provider()], "forward_token": true,
        "next_hop": {"issuer": "https://edge.internal", "signing_key": signing_key, "actor": "spiffe://td/edge",
            "profiles": {"orders": {"audience": "orders", "lifetime_seconds": 20, "scopes": ["orders.read"]}}},
        "requirements": {"default": {"next_hop_token": "orders"}}})
}

#[test]
fn next_hop_routes_remove_the_callers_token_from_every_source() {
    let mut edge = start(next_hop_config());
    let token = good();
    // The same token in all three places counts once; each place is cleared.
    let request = Request::get(&format!("/orders?access_token={token}&page=2"))
        .header("authorization", format!("Bearer {token}"))
        .header("cookie", format!("session={token}; theme=dark"));
    let mut requests: Vec<(&str, Request)> = in_every_source(&token).into_iter().collect();
    requests.push(("all three", request));
    for (source, request) in requests {
        let exchange = edge.send(request);
        assert!(exchange.reached_upstream(), "{source}: {exchange:?}");
        assert!(!upstream_carries(&exchange, &token), "{source}: the caller's token went upstream");
        let minted = exchange.upstream_header("authorization").unwrap();
        let minted = minted.strip_prefix("Bearer ").unwrap();
        let claims: Value = serde_json::from_slice(
            &base64::Engine::decode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                minted.split('.').nth(1).unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!((claims["iss"].as_str(), claims["caller_iss"].as_str()), (Some("https://edge.internal"), Some(ISS)));
        assert_eq!(claims["caller_provider"], "corp");
        assert_eq!(claims["scope"], "orders.read");
    }
}

#[test]
fn an_algorithm_the_provider_does_not_allow_is_refused_by_its_own_reason() {
    let mut envoy = start(json!({"providers": [provider()], "cache_entries": 0}));
    // PS256 with the RSA key, which has no `alg`: RS* only by default, so no in-module PSS.
    let pss = PS256KeyPair::from_der(&keys().rsa.to_der().unwrap()).unwrap().with_key_id("rsa");
    let exchange =
        envoy.send(Request::get("/").header("authorization", format!("Bearer {}", pss.sign(claims()).unwrap())));
    assert_eq!(exchange.status(), Some(401));
    assert_eq!(exchange.foreign_calls, 0);
    assert_eq!(envoy.metric("zt_jwt.denied.algorithm_not_allowed"), Some(1));
    assert!(exchange.local_reply().unwrap().body_text().contains("Jwt algorithm is not allowed for its issuer"));
    let rs = keys().rsa.sign(claims()).unwrap();
    assert!(envoy.send(Request::get("/").header("authorization", format!("Bearer {rs}"))).reached_upstream());

    // Listed, PSS verifies; and an unknown name refuses the configuration by its path.
    let mut listed = provider();
    listed["algorithms"] = json!(["PS256", "ES256"]);
    let mut envoy = start(json!({"providers": [listed.clone()]}));
    let exchange =
        envoy.send(Request::get("/").header("authorization", format!("Bearer {}", pss.sign(claims()).unwrap())));
    assert!(exchange.reached_upstream(), "{exchange:?}");
    listed["algorithms"] = json!(["PS256", "HS1"]);
    let mut refused = Harness::new();
    let err = refused.load(FilterSpec::new("zt_jwt", json!({"providers": [listed]}).to_string())).unwrap_err();
    assert_eq!(err, HarnessError::ConfigureRefused { filter: "zt-jwt".into() });
    assert!(
        refused.log_text().contains("providers[0].algorithms[1]: `HS1` is not a supported algorithm"),
        "{}",
        refused.log_text()
    );
}

/// crocs-muni/roca's positive test sample `mod03`, a 2048-bit modulus with the fingerprint.
fn roca_jwk(kid: &str) -> Value {
    let hex = include_str!("../../filters/zt-core/testdata/roca_mod03.hex").trim();
    let n: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    let n = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, n);
    json!({"kty": "RSA", "kid": kid, "n": n, "e": "AQAB"})
}

#[test]
fn roca_keys_refuse_the_configuration_and_are_dropped_from_fetched_sets() {
    let mut inline = provider();
    inline["jwks"]["inline"]["keys"].as_array_mut().unwrap().push(roca_jwk("weak"));
    let mut refused = Harness::new();
    let err = refused.load(FilterSpec::new("zt_jwt", json!({"providers": [inline]}).to_string())).unwrap_err();
    assert_eq!(err, HarnessError::ConfigureRefused { filter: "zt-jwt".into() });
    assert!(refused.log_text().contains("providers[0].jwks.inline.keys[2].n: the modulus has the ROCA fingerprint"));

    let mut envoy = Harness::new();
    envoy.clock().set_unix_seconds(NOW);
    let set = json!({"keys": [roca_jwk("weak"), jwk(keys().ec.public_key().to_jwk())]});
    envoy.script_http("idp", ScriptedResponse::ok(set.to_string()));
    let config = json!({"providers": [{"name": "corp", "issuer": ISS, "audiences": ["api"],
        "jwks": {"remote": {"cluster": "idp", "uri": "https://idp.test/jwks"}}}]});
    envoy.load(FilterSpec::new("zt_jwt", config.to_string())).unwrap();
    envoy.advance(std::time::Duration::from_secs(1)).unwrap();
    assert_eq!(envoy.metric("zt_jwt.jwks_key_roca"), Some(1), "{}", envoy.log_text());
    assert!(
        envoy.log_text().contains("key \"weak\" dropped: its RSA modulus has the ROCA fingerprint"),
        "{}",
        envoy.log_text()
    );
    assert!(envoy.send(Request::get("/").header("authorization", format!("Bearer {}", good()))).reached_upstream());
}
