//! Arbitrary bytes as a bearer token: never a panic, never an accept (no fuzzer can sign with
//! the configured key).
#![no_main]

use libfuzzer_sys::fuzz_target;
use zt_core::UnixSeconds;
use zt_core::jwt::{Authenticator, InModuleVerifier, JwtFilterConfig};

const CONFIG: &str = r#"{"providers": [{"name": "p", "issuer": "https://issuer.fuzz", "audiences": ["api"],
  "jwks": {"inline": {"keys": [
    {"kty": "EC", "crv": "P-256", "kid": "ec", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
    {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}},
  "hmac_keys": [{"kid": "hs", "alg": "HS256", "secret": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}]}],
  "cache_entries": 16}"#;

thread_local! {
    static AUTH: Authenticator = match JwtFilterConfig::from_json(CONFIG.as_bytes()) {
        Ok(config) => Authenticator::new(config, Box::new(InModuleVerifier)),
        Err(error) => panic!("fuzz configuration: {error}"),
    };
}

fuzz_target!(|data: &[u8]| {
    let token = String::from_utf8_lossy(data);
    AUTH.with(|auth| {
        assert!(auth.verify(&token, UnixSeconds(1_700_000_000)).is_err(), "accepted an unsigned token");
        let headers = vec![("authorization".to_owned(), [b"Bearer ".as_slice(), data].concat())];
        assert!(auth.authenticate(&headers, UnixSeconds(1_700_000_000)).is_err());
    });
});
