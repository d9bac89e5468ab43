//! Arbitrary bytes as the authorization filter's configuration: never a panic, only
//! `ConfigError`s.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zt_core::authz::AuthzConfig;

fuzz_target!(|data: &[u8]| {
    let _ = AuthzConfig::from_json(data);
});
