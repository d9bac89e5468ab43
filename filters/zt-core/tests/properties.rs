//! Property tests: arbitrary bytes as token, as JWKS and as configuration never panic, and no
//! token is accepted unless a configured key signed exactly it.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::OnceLock;

use jwt_simple::prelude::*;
use proptest::prelude::*;
use serde_json::{Value, json};
use zt_core::UnixSeconds;
use zt_core::jwt::{Authenticator, InModuleVerifier, JwtFilterConfig, KeySet, KeyUse};

const NOW: UnixSeconds = UnixSeconds(1_700_000_000);
const ISS: &str = "https://issuer.prop";

/// The configuration and valid tokens, made once: RSA key generation dominates otherwise.
struct Fixture {
    config: String,
    valid: Vec<String>,
}

fn claims() -> JWTClaims<NoCustomClaims> {
    let mut claims = Claims::create(Duration::from_secs(600)).with_issuer(ISS).with_audience("api").with_subject("p");
    claims.issued_at = Some(UnixTimeStamp::from_secs(NOW.0));
    claims.invalid_before = None;
    claims.expires_at = Some(UnixTimeStamp::from_secs(NOW.0 + 600));
    claims
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let ec = ES256KeyPair::generate().with_key_id("ec");
        let ed = Ed25519KeyPair::generate().with_key_id("ed");
        let rsa = RS256KeyPair::generate(2048).unwrap().with_key_id("rsa");
        let hs = HS256Key::from_bytes(b"secret-secret-secret-secret-secret").with_key_id("hs");
        let jwk = |text: String| serde_json::from_str::<Value>(&text).unwrap();
        let jwks = json!({"keys": [jwk(ec.public_key().to_jwk()), jwk(ed.public_key().to_jwk()), jwk(rsa.public_key().to_jwk())]});
        let config = json!({"providers": [{"name": "p", "issuer": ISS, "audiences": ["api"], "jwks": {"inline": jwks},
            "hmac_keys": [{"kid": "hs", "alg": "HS256", "secret": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}]}],
            "cache_entries": 0});
        let valid = vec![
            ec.sign(claims()).unwrap(),
            ed.sign(claims()).unwrap(),
            rsa.sign(claims()).unwrap(),
            hs.authenticate(claims()).unwrap(),
        ];
        Fixture { config: config.to_string(), valid }
    })
}

thread_local! {
    /// The authenticator is single-threaded (as in a Wasm VM): one per test thread.
    static AUTH: Authenticator = {
        let auth = Authenticator::new(JwtFilterConfig::from_json(fixture().config.as_bytes()).unwrap(), Box::new(InModuleVerifier));
        for token in &fixture().valid {
            auth.verify(token, NOW).unwrap();
        }
        auth
    };
}

fn verify(token: &str) -> bool {
    AUTH.with(|auth| auth.verify(token, NOW).is_ok())
}

fn token_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_\\-]{0,80}\\.[A-Za-z0-9_\\-]{0,200}\\.[A-Za-z0-9_\\-]{0,120}",
        "[A-Za-z0-9_\\-.=+/ ]{0,400}",
        any::<Vec<u8>>().prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_tokens_are_refused_without_panic(token in token_like()) {
        prop_assert!(!verify(&token));
        let headers = vec![("authorization".to_owned(), format!("Bearer {token}").into_bytes())];
        prop_assert!(AUTH.with(|auth| auth.authenticate(&headers, NOW).is_err()));
    }

    #[test]
    fn any_change_to_a_valid_token_is_refused(which in 0usize..4, position in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let original = &fixture().valid[which];
        let mut bytes = original.as_bytes().to_vec();
        let at = position.index(bytes.len());
        prop_assume!(bytes[at] != byte);
        bytes[at] = byte;
        let changed = String::from_utf8_lossy(&bytes).into_owned();
        prop_assume!(changed != *original);
        prop_assert!(!verify(&changed), "accepted a changed token");
    }

    #[test]
    fn tokens_with_arbitrary_claims_signed_by_another_key_are_refused(
        sub in ".{0,40}",
        extra in "[a-z]{1,8}",
        value in any::<i64>(),
        kid in prop_oneof![Just("ec".to_owned()), Just("hs".to_owned()), "[a-z]{0,4}"],
    ) {
        let attacker = ES256KeyPair::generate().with_key_id(&kid);
        let mut custom = serde_json::Map::new();
        custom.insert(extra, json!(value));
        let mut claims = Claims::with_custom_claims(custom, Duration::from_secs(600))
            .with_issuer(ISS)
            .with_audience("api")
            .with_subject(sub);
        claims.issued_at = Some(UnixTimeStamp::from_secs(NOW.0));
        claims.expires_at = Some(UnixTimeStamp::from_secs(NOW.0 + 600));
        claims.invalid_before = None;
        prop_assert!(!verify(&attacker.sign(claims).unwrap()));
    }

    #[test]
    fn arbitrary_jwks_bytes_never_panic(bytes in any::<Vec<u8>>()) {
        let _ = KeySet::from_remote_jwks(&bytes, KeyUse::Signature);
        let _ = KeySet::from_jwks(&Value::String(String::from_utf8_lossy(&bytes).into_owned()), KeyUse::Signature, "jwks");
    }

    #[test]
    fn arbitrary_jwk_members_never_panic(
        kty in prop_oneof![Just("RSA".to_owned()), Just("EC".to_owned()), Just("OKP".to_owned()), Just("oct".to_owned()), ".{0,4}"],
        crv in prop_oneof![Just("P-256".to_owned()), Just("P-384".to_owned()), Just("Ed25519".to_owned()), ".{0,6}"],
        n in "[A-Za-z0-9_\\-]{0,400}",
        x in "[A-Za-z0-9_\\-]{0,64}",
        alg in prop_oneof![Just("RS256".to_owned()), Just("ES256".to_owned()), Just("none".to_owned()), ".{0,6}"],
    ) {
        let jwks = json!({"keys": [{"kty": kty, "crv": crv, "n": n, "e": "AQAB", "x": x, "y": x, "alg": alg}]});
        let _ = KeySet::from_remote_jwks(jwks.to_string().as_bytes(), KeyUse::Signature);
        let _ = KeySet::from_jwks(&jwks, KeyUse::Signature, "jwks");
    }

    #[test]
    fn arbitrary_configuration_bytes_never_panic(bytes in any::<Vec<u8>>()) {
        let _ = JwtFilterConfig::from_json(&bytes);
    }

    #[test]
    fn arbitrary_configuration_values_never_panic(
        name in ".{0,8}",
        issuer in ".{0,20}",
        aud in prop::collection::vec(".{0,6}", 0..3),
        skew in any::<u64>(),
        cache in any::<usize>(),
        max in any::<usize>(),
    ) {
        let config = json!({"providers": [{"name": name, "issuer": issuer, "audiences": aud, "clock_skew_seconds": skew,
            "jwks": {"remote": {"cluster": name, "uri": issuer}}}], "cache_entries": cache, "max_token_bytes": max});
        let _ = JwtFilterConfig::from_json(config.to_string().as_bytes());
    }
}
