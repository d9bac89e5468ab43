//! Arbitrary bytes as a fetched JWKS, and as an inline one: never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zt_core::jwt::{KeySet, KeyUse};

fuzz_target!(|data: &[u8]| {
    let _ = KeySet::from_remote_jwks(data, KeyUse::Signature);
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = KeySet::from_jwks(&value, KeyUse::Signature, "jwks");
    }
});
