//! Arbitrary bytes as the rate-limit filter's configuration: never a panic, only
//! `ConfigError`s; a configuration that parses prepares its tables without a panic.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use zt_core::ratelimit::RateLimitConfig;

fuzz_target!(|data: &[u8]| {
    if let Ok(config) = RateLimitConfig::from_json(data) {
        // Preparing writes one entry per slot: only for small tables, to keep the fuzzer fast.
        if config.max_keys() <= 1024 {
            let _ = config.prepare(&common::Store::default());
        }
    }
});
