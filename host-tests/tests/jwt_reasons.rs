//! Every failure reason of the JWT filter, and every hostile input the issue lists, through the
//! compiled module: the status, the challenge, the fixed message, the metric, and that nothing
//! reaches the upstream. Tokens with hand-made headers are signed here with a P-256 key whose
//! public half the filter trusts, so that only the property under test is wrong.

use std::time::Duration as StdDuration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_simple::prelude::*;
use p256::ecdsa::signature::Signer as _;
use serde_json::{Value, json};
use zt_host_tests::{FilterSpec, Harness, Request};

const NOW: u64 = 1_700_000_000;
const ISS: &str = "https://issuer.test";
const INVALID: &str = "Bearer realm=\"api\", error=\"invalid_token\"";

struct Keys {
    ec: ES256KeyPair,
    rsa: RS256KeyPair,
}

fn keys() -> &'static Keys {
    static KEYS: std::sync::OnceLock<Keys> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| Keys {
        ec: ES256KeyPair::generate().with_key_id("ec"),
        rsa: RS256KeyPair::generate(2048).unwrap().with_key_id("rsa"),
    })
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A compact JWS with exactly this header and payload, signed ES256 by the trusted key.
fn signed(header: &Value, payload: &Value) -> String {
    signed_raw(header.to_string().as_bytes(), payload.to_string().as_bytes())
}

fn signed_raw(header: &[u8], payload: &[u8]) -> String {
    signed_by(&keys().ec, header, payload)
}

fn signed_by(signer: &ES256KeyPair, header: &[u8], payload: &[u8]) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let key = p256::ecdsa::SigningKey::from_slice(&signer.to_bytes()).unwrap();
    let signature: p256::ecdsa::Signature = key.sign(input.as_bytes());
    format!("{input}.{}", b64(&signature.to_bytes()))
}

fn claims() -> Value {
    json!({"iss": ISS, "aud": "api", "sub": "alice", "iat": NOW, "exp": NOW + 300})
}

fn with(mut value: Value, member: &str, new: Value) -> Value {
    value[member] = new;
    value
}

fn without(mut value: Value, member: &str) -> Value {
    value.as_object_mut().unwrap().remove(member);
    value
}

fn es256() -> Value {
    json!({"alg": "ES256", "kid": "ec", "typ": "JWT"})
}

fn envoy() -> Harness {
    let k = keys();
    let jwk = |text: String| serde_json::from_str::<Value>(&text).unwrap();
    let config = json!({
        "realm": "api",
        "providers": [
            {"name": "corp", "issuer": ISS, "audiences": ["api"], "max_lifetime_seconds": 3600,
             "required_claims": {"tenant": "blue"},
             "jwks": {"inline": {"keys": [jwk(k.ec.public_key().to_jwk()), jwk(k.rsa.public_key().to_jwk())]}}},
            {"name": "partner", "issuer": "https://partner.test", "audiences": ["api"],
             "token_sources": [{"query": {"name": "access_token"}}],
             "jwks": {"inline": {"keys": [jwk(ES256KeyPair::generate().public_key().to_jwk())]}}},
        ],
        "requirements": {"named": {"partner_only": {"providers": ["partner"]}}, "by_route_name": {"partners": "partner_only"}},
    });
    let mut envoy = Harness::new();
    envoy.clock().set_unix_seconds(NOW);
    envoy.load(FilterSpec::new("zt_jwt", config.to_string())).unwrap();
    envoy
}

fn bearer(token: &str) -> Request {
    Request::get("/api").header("authorization", format!("Bearer {token}"))
}

#[test]
fn every_failure_reason_and_hostile_input_is_refused_and_counted() {
    let good_claims = with(claims(), "tenant", json!("blue"));
    let good = signed(&es256(), &good_claims);
    let k = keys();
    let attacker = ES256KeyPair::generate();
    let attacker_jwk: Value = serde_json::from_str(&attacker.public_key().to_jwk()).unwrap();
    let (good_head, good_rest) = good.split_once('.').unwrap();
    let (good_payload, good_signature) = good_rest.split_once('.').unwrap();
    let hs256_with_rsa_key = {
        let pem = k.rsa.public_key().to_pem().unwrap();
        let mac = HS256Key::from_bytes(pem.as_bytes());
        let tenant = json!({"tenant": "blue"}).as_object().unwrap().clone();
        let mut claims =
            Claims::with_custom_claims(tenant, Duration::from_secs(300)).with_issuer(ISS).with_audience("api");
        claims.issued_at = Some(UnixTimeStamp::from_secs(NOW));
        claims.expires_at = Some(UnixTimeStamp::from_secs(NOW + 300));
        claims.invalid_before = None;
        mac.with_key_id("rsa").authenticate(claims).unwrap()
    };
    let cases: Vec<(&str, Request, &str)> = vec![
        ("no token", Request::get("/api"), "missing"),
        (
            "two different tokens",
            bearer(&good).header("authorization", format!("Bearer {}", signed(&es256(), &claims()))),
            "multiple_tokens",
        ),
        (
            "header and query tokens",
            Request::get(&format!("/api?access_token={}", signed(&es256(), &claims())))
                .header("authorization", format!("Bearer {good}")),
            "multiple_tokens",
        ),
        ("basic scheme", Request::get("/api").header("authorization", "Basic dXNlcjpwYXNz"), "token_format"),
        ("corp token in partner's query", Request::get(&format!("/api?access_token={good}")), "token_location"),
        ("64 KiB token", bearer(&"a".repeat(65_536)), "too_large"),
        ("two parts", bearer(&format!("{good_head}.{good_payload}")), "malformed"),
        ("four parts", bearer(&format!("{good}.x")), "malformed"),
        ("JWE (five parts)", bearer(&format!("{good_head}.{good_payload}.a.b.{good_signature}")), "malformed"),
        ("bad base64url", bearer(&format!("{good_head}.{good_payload}!.{good_signature}")), "malformed"),
        ("padded base64url", bearer(&format!("{good_head}==.{good_payload}.{good_signature}")), "malformed"),
        ("non-JSON header", bearer(&signed_raw(b"not json", good_claims.to_string().as_bytes())), "malformed"),
        ("non-object header", bearer(&signed_raw(b"[\"ES256\"]", good_claims.to_string().as_bytes())), "malformed"),
        ("non-object payload", bearer(&signed_raw(es256().to_string().as_bytes(), b"42")), "malformed"),
        (
            "duplicate alg",
            bearer(&signed_raw(br#"{"alg":"ES256","alg":"none"}"#, good_claims.to_string().as_bytes())),
            "duplicate_member",
        ),
        ("alg none", bearer(&format!("{}.{good_payload}.", b64(br#"{"alg":"none"}"#))), "unsupported_algorithm"),
        ("alg NONE, signed", bearer(&signed(&json!({"alg": "NONE"}), &good_claims)), "unsupported_algorithm"),
        ("alg nOnE", bearer(&format!("{}.{good_payload}.", b64(br#"{"alg":"nOnE"}"#))), "unsupported_algorithm"),
        ("unknown crit", bearer(&signed(&with(es256(), "crit", json!(["exp"])), &good_claims)), "critical_header"),
        ("typ JWE", bearer(&signed(&with(es256(), "typ", json!("JWE")), &good_claims)), "unsupported_type"),
        (
            "unknown issuer",
            bearer(&signed(&es256(), &with(good_claims.clone(), "iss", json!("https://evil.test")))),
            "unknown_issuer",
        ),
        ("no issuer", bearer(&signed(&es256(), &without(good_claims.clone(), "iss"))), "unknown_issuer"),
        ("unknown kid", bearer(&signed(&with(es256(), "kid", json!("nope")), &good_claims)), "no_matching_key"),
        (
            "kid of an RSA key on ES256",
            bearer(&signed(&with(es256(), "kid", json!("rsa")), &good_claims)),
            "no_matching_key",
        ),
        ("HS256 with the RSA public key as secret", bearer(&hs256_with_rsa_key), "algorithm_not_allowed"),
        (
            "tampered payload",
            bearer(&format!(
                "{good_head}.{}.{good_signature}",
                b64(with(good_claims.clone(), "sub", json!("admin")).to_string().as_bytes())
            )),
            "bad_signature",
        ),
        ("tampered signature", bearer(&format!("{good_head}.{good_payload}.{}", b64(&[1u8; 64]))), "bad_signature"),
        (
            "ECDSA signature of zeros",
            bearer(&format!("{good_head}.{good_payload}.{}", b64(&[0u8; 64]))),
            "bad_signature",
        ),
        (
            "embedded jwk of the signer",
            bearer(&signed_by(
                &attacker,
                json!({"alg": "ES256", "jwk": attacker_jwk}).to_string().as_bytes(),
                good_claims.to_string().as_bytes(),
            )),
            "bad_signature",
        ),
        (
            "jku naming the signer's keys",
            bearer(&signed_by(
                &attacker,
                json!({"alg": "ES256", "jku": "https://evil.test/jwks"}).to_string().as_bytes(),
                good_claims.to_string().as_bytes(),
            )),
            "bad_signature",
        ),
        ("no exp", bearer(&signed(&es256(), &without(good_claims.clone(), "exp"))), "expiration_missing"),
        (
            "exp as a string",
            bearer(&signed(&es256(), &with(good_claims.clone(), "exp", json!((NOW + 300).to_string())))),
            "invalid_claim",
        ),
        ("expired", bearer(&signed(&es256(), &with(good_claims.clone(), "exp", json!(NOW - 120)))), "expired"),
        (
            "not yet valid",
            bearer(&signed(&es256(), &with(good_claims.clone(), "nbf", json!(NOW + 120)))),
            "not_yet_valid",
        ),
        (
            "issued in the future",
            bearer(&signed(&es256(), &with(good_claims.clone(), "iat", json!(NOW + 120)))),
            "issued_in_future",
        ),
        (
            "lifetime too long",
            bearer(&signed(&es256(), &with(good_claims.clone(), "exp", json!(NOW + 7200)))),
            "lifetime_too_long",
        ),
        (
            "wrong audience",
            bearer(&signed(&es256(), &with(good_claims.clone(), "aud", json!(["other"])))),
            "audience_mismatch",
        ),
        ("no audience", bearer(&signed(&es256(), &without(good_claims.clone(), "aud"))), "audience_mismatch"),
        ("required claim missing", bearer(&signed(&es256(), &claims())), "required_claim"),
        ("provider not allowed on route", bearer(&good).route_name("partners"), "provider_not_allowed"),
        ("undefined requirement", bearer(&good).route_metadata("zt", "jwt_requirement", "nope"), "unknown_requirement"),
    ];
    let mut envoy = envoy();
    let mut table = Vec::new();
    for (case, request, reason) in cases {
        let metric = format!("zt_jwt.denied.{reason}");
        let before = envoy.metric(&metric).unwrap_or(0);
        let exchange = envoy.send(request);
        let reply = exchange.local_reply().unwrap_or_else(|| panic!("{case}: not refused: {exchange:?}"));
        let (status, challenge) = match reason {
            "missing" => (401, "Bearer realm=\"api\""),
            "unknown_requirement" => (500, ""),
            _ => (401, INVALID),
        };
        assert_eq!(reply.status, status, "{case}");
        assert_eq!(reply.header("www-authenticate").unwrap_or(""), challenge, "{case}");
        assert!(!reply.body_text().contains(&good[..30]), "{case}: the body echoes a token");
        assert_eq!(envoy.metric(&metric).unwrap_or(0), before + 1, "{case}: metric {metric}");
        let body: Value = serde_json::from_str(&reply.body_text()).unwrap();
        table.push(format!(
            "| `{reason}` | {case} | {status} | {} | {} |",
            reply.header("www-authenticate").unwrap_or("—"),
            body["message"].as_str().unwrap_or("")
        ));
    }
    assert!(!envoy.log_text().contains(&good[..40]), "a log line holds a token");
    // The header parameters that name keys are ignored, not refused: signed by the configured
    // key, such a token is good.
    let ignored = with(with(es256(), "jku", json!("https://evil.test/jwks")), "x5u", json!("https://evil.test/x5"));
    assert!(envoy.send(bearer(&signed(&ignored, &good_claims))).reached_upstream());
    assert!(envoy.send(bearer(&good)).reached_upstream(), "the good token itself passes");
    println!("{}", table.join("\n"));
}

#[test]
fn advancing_time_alone_expires_a_token() {
    let mut envoy = envoy();
    let token = signed(&es256(), &with(claims(), "tenant", json!("blue")));
    assert!(envoy.send(bearer(&token)).reached_upstream());
    envoy.advance(StdDuration::from_secs(300 + 60)).unwrap();
    assert_eq!(envoy.send(bearer(&token)).status(), Some(401));
    assert_eq!(envoy.metric("zt_jwt.denied.expired"), Some(1));
}
