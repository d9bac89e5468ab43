//! What a cache hit saves: `Authenticator::authenticate` on the same token with the
//! verified-token cache on (every call after the first is a hit) against the cache off (every
//! call parses, checks claims and verifies the signature). Native, in-module verifier; run with
//! `make bench-core` (or `cargo bench -p zt-core --bench jwt_cache`). Prints medians; asserts
//! nothing, since timings depend on the machine.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::hint::black_box;
use std::time::{Duration as StdDuration, Instant, SystemTime, UNIX_EPOCH};

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

/// Median time of one call, over `rounds` rounds of `batch` calls each.
fn median(rounds: usize, batch: usize, mut call: impl FnMut()) -> StdDuration {
    let mut samples: Vec<StdDuration> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..batch {
                call();
            }
            start.elapsed() / u32::try_from(batch).unwrap()
        })
        .collect();
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let rsa = RS256KeyPair::generate(2048).unwrap().with_key_id("rsa");
    let ec = ES256KeyPair::generate().with_key_id("ec");
    let ed = Ed25519KeyPair::generate().with_key_id("ed");
    let jwk = |text: String| serde_json::from_str::<Value>(&text).unwrap();
    let jwks =
        json!({"keys": [jwk(rsa.public_key().to_jwk()), jwk(ec.public_key().to_jwk()), jwk(ed.public_key().to_jwk())]});
    let claims = || Claims::create(Duration::from_mins(10)).with_issuer(ISS).with_audience("api").with_subject("bench");
    let tokens = [
        ("RS256", rsa.sign(claims()).unwrap()),
        ("ES256", ec.sign(claims()).unwrap()),
        ("EdDSA", ed.sign(claims()).unwrap()),
    ];
    let now = UnixSeconds(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs());
    let cached = authenticator(&jwks, 1024);
    let uncached = authenticator(&jwks, 0);
    println!("{:<6} {:>16} {:>16} {:>10}", "alg", "full verify", "cache hit", "ratio");
    for (alg, token) in &tokens {
        let headers = vec![("authorization".to_owned(), format!("Bearer {token}").into_bytes())];
        assert!(cached.authenticate(&headers, now).is_ok(), "{alg}: the token must verify");
        let full = median(15, 20, || {
            black_box(uncached.authenticate(black_box(&headers), now).unwrap());
        });
        let hit = median(15, 2000, || {
            let authenticated = cached.authenticate(black_box(&headers), now).unwrap();
            assert!(authenticated.cache_hit);
            black_box(authenticated);
        });
        let ratio = full.as_secs_f64() / hit.as_secs_f64();
        println!("{alg:<6} {:>13.1} µs {:>13.2} µs {:>9.0}x", full.as_secs_f64() * 1e6, hit.as_secs_f64() * 1e6, ratio);
    }
}
