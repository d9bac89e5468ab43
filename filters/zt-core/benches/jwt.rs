//! Criterion micro-benchmarks of the JWT hot paths, natively with the in-module verifier:
//! `Authenticator::authenticate` with the cache off (parse, claim checks, signature per
//! algorithm) and on (every call after the first a hit: SHA-256 of the token and a lookup).
//! Run with `make bench-core` (or `cargo bench -p zt-core --bench jwt`). Timings depend on the
//! machine; nothing is asserted but that each token verifies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::hint::black_box;
use std::time::{Duration as StdDuration, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use jwt_simple::prelude::*;
use serde_json::{Value, json};
use zt_core::UnixSeconds;
use zt_core::jwt::{Authenticator, InModuleVerifier, JwtFilterConfig};

const ISS: &str = "https://issuer.bench";

fn authenticator(jwks: &Value, cache_entries: usize) -> Authenticator {
    let config = json!({"providers": [{"name": "bench", "issuer": ISS, "audiences": ["api"], "jwks": {"inline": jwks}}],
        "cache_entries": cache_entries});
    Authenticator::new(JwtFilterConfig::from_json(config.to_string().as_bytes()).unwrap(), Box::new(InModuleVerifier))
}

fn jwt(c: &mut Criterion) {
    let rsa = RS256KeyPair::generate(2048).unwrap().with_key_id("rsa");
    let pss = PS256KeyPair::generate(2048).unwrap().with_key_id("pss");
    let ec = ES256KeyPair::generate().with_key_id("ec");
    let ed = Ed25519KeyPair::generate().with_key_id("ed");
    let jwk = |text: String| serde_json::from_str::<Value>(&text).unwrap();
    let jwks = json!({"keys": [jwk(rsa.public_key().to_jwk()), jwk(pss.public_key().to_jwk()),
        jwk(ec.public_key().to_jwk()), jwk(ed.public_key().to_jwk())]});
    let claims = || Claims::create(Duration::from_mins(10)).with_issuer(ISS).with_audience("api").with_subject("bench");
    let tokens = [
        ("RS256", rsa.sign(claims()).unwrap()),
        ("PS256", pss.sign(claims()).unwrap()),
        ("ES256", ec.sign(claims()).unwrap()),
        ("EdDSA", ed.sign(claims()).unwrap()),
    ];
    let now = UnixSeconds(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs());
    let cached = authenticator(&jwks, 1024);
    let uncached = authenticator(&jwks, 0);

    let mut verify = c.benchmark_group("jwt/verify (cache off)");
    verify.sample_size(20).measurement_time(StdDuration::from_secs(3));
    for (alg, token) in &tokens {
        let headers = vec![("authorization".to_owned(), format!("Bearer {token}").into_bytes())];
        assert!(uncached.authenticate(&headers, now).is_ok(), "{alg}: the token must verify");
        verify.bench_function(*alg, |b| b.iter(|| uncached.authenticate(black_box(&headers), now).unwrap()));
    }
    verify.finish();

    let mut hit = c.benchmark_group("jwt/cache hit");
    hit.measurement_time(StdDuration::from_secs(2));
    for (alg, token) in &tokens {
        let headers = vec![("authorization".to_owned(), format!("Bearer {token}").into_bytes())];
        assert!(cached.authenticate(&headers, now).is_ok(), "{alg}: the token must verify");
        hit.bench_function(*alg, |b| {
            b.iter(|| {
                let authenticated = cached.authenticate(black_box(&headers), now).unwrap();
                assert!(authenticated.cache_hit);
                authenticated
            });
        });
    }
    hit.finish();
}

criterion_group!(benches, jwt);
criterion_main!(benches);
