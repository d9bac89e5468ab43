//! What the Wasm module costs, in the harness (wasmtime, not Envoy's V8): VM start-up
//! (instantiate + `on_vm_start` + `on_configure`, which probes the host crypto) and one request
//! through `zt-jwt` per algorithm, with signatures on the (emulated) host or in the module, cache
//! off, so that the Wasm penalty per algorithm is a number. Run with `make bench-wasm`; prints
//! medians, asserts nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::time::{Duration as StdDuration, Instant, SystemTime, UNIX_EPOCH};

use jwt_simple::prelude::*;
use serde_json::{Value, json};
use zt_host_tests::{FilterSpec, Harness, Request};

const ISS: &str = "https://issuer.bench";

fn median(mut samples: Vec<StdDuration>) -> StdDuration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let rsa = RS256KeyPair::generate(2048).unwrap().with_key_id("rsa");
    let ps = PS256KeyPair::from_der(&rsa.to_der().unwrap()).unwrap().with_key_id("rsa");
    let ec = ES256KeyPair::generate().with_key_id("ec");
    let ed = Ed25519KeyPair::generate().with_key_id("ed");
    // Without `alg`, so that the RSA key serves RS256 and PS256 alike (PS256 listed in
    // `algorithms`: by default an RSA key without `alg` verifies RS* only).
    let jwk = |text: String| {
        let mut jwk = serde_json::from_str::<Value>(&text).unwrap();
        jwk.as_object_mut().unwrap().remove("alg");
        jwk
    };
    let jwks =
        json!({"keys": [jwk(rsa.public_key().to_jwk()), jwk(ec.public_key().to_jwk()), jwk(ed.public_key().to_jwk())]});
    let claims = || Claims::create(Duration::from_mins(30)).with_issuer(ISS).with_audience("api");
    let tokens = [
        ("RS256", rsa.sign(claims()).unwrap()),
        ("PS256", ps.sign(claims()).unwrap()),
        ("ES256", ec.sign(claims()).unwrap()),
        ("EdDSA", ed.sign(claims()).unwrap()),
    ];
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let config = |verifier: &str| {
        json!({"providers": [{"name": "b", "issuer": ISS, "audiences": ["api"], "jwks": {"inline": jwks},
            "algorithms": ["RS256", "PS256", "ES256", "EdDSA"]}],
            "cache_entries": 0, "signature_verifier": verifier})
        .to_string()
    };

    let mut starts: Vec<StdDuration> = (0..16)
        .map(|_| {
            let mut envoy = Harness::new();
            envoy.clock().set_unix_seconds(now);
            let started = Instant::now();
            envoy.load(FilterSpec::new("zt_jwt", config("auto"))).unwrap();
            started.elapsed()
        })
        .collect();
    // The harness compiles a module once per process: the first load includes the compilation.
    let first = starts.remove(0);
    println!(
        "zt_jwt: first load (compile + start) {:.1} ms; VM start (instantiate + on_vm_start + on_configure): median {:.2} ms",
        first.as_secs_f64() * 1e3,
        median(starts).as_secs_f64() * 1e3
    );

    println!("{:<6} {:>20} {:>20}", "alg", "verifier auto (µs)", "in module (µs)");
    let mut harnesses: Vec<Harness> = ["auto", "in_module"]
        .iter()
        .map(|verifier| {
            let mut envoy = Harness::new();
            envoy.clock().set_unix_seconds(now);
            envoy.load(FilterSpec::new("zt_jwt", config(verifier))).unwrap();
            envoy
        })
        .collect();
    for (alg, token) in &tokens {
        let mut cells = Vec::new();
        for envoy in &mut harnesses {
            let request = || Request::get("/api").header("authorization", format!("Bearer {token}"));
            assert!(envoy.send(request()).reached_upstream(), "{alg}");
            let samples: Vec<StdDuration> = (0..30)
                .map(|_| {
                    let started = Instant::now();
                    let exchange = envoy.send(request());
                    let elapsed = started.elapsed();
                    assert!(exchange.reached_upstream());
                    elapsed
                })
                .collect();
            cells.push(median(samples).as_secs_f64() * 1e6);
        }
        println!("{alg:<6} {:>20.0} {:>20.0}", cells[0], cells[1]);
    }
    // The same request with a cache hit: what remains of the filter when no signature is checked.
    let mut cached = Harness::new();
    cached.clock().set_unix_seconds(now);
    cached
        .load(FilterSpec::new("zt_jwt", config("auto").replace("\"cache_entries\":0", "\"cache_entries\":16")))
        .unwrap();
    let token = &tokens[2].1;
    let request = || Request::get("/api").header("authorization", format!("Bearer {token}"));
    cached.send(request());
    let samples: Vec<StdDuration> = (0..100)
        .map(|_| {
            let started = Instant::now();
            cached.send(request());
            started.elapsed()
        })
        .collect();
    println!(
        "cache hit (ES256 token), whole request through the harness: {:.0} µs",
        median(samples).as_secs_f64() * 1e6
    );
}
