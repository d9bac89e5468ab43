//! Arbitrary bytes as the JWT filter's configuration: never a panic, only `ConfigError`s.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zt_core::jwt::JwtFilterConfig;

fuzz_target!(|data: &[u8]| {
    let _ = JwtFilterConfig::from_json(data);
});
