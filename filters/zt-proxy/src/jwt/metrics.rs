//! The JWT filter's metrics, all in one place. Envoy shows Wasm-defined stats under the
//! `wasmcustom.` prefix, e.g. `wasmcustom.zt_jwt.denied.expired`.

use crate::Counter;
use zt_core::jwt::JwtError;

pub struct JwtMetrics {
    pub allowed: Counter,
    pub anonymous: Counter,
    pub advisory_denied: Counter,
    pub cache_hit: Counter,
    pub cache_miss: Counter,
    pub jwks_fetch_ok: Counter,
    pub jwks_fetch_failed: Counter,
    /// Requests held until their provider's first keys arrived (or their wait ended).
    pub held_for_keys: Counter,
    /// RSA keys of fetched sets dropped for the ROCA fingerprint (CVE-2017-15361).
    pub jwks_key_roca: Counter,
    denied: Vec<(&'static str, Counter)>,
}

impl JwtMetrics {
    pub fn define() -> Self {
        Self {
            allowed: Counter::define("zt_jwt.allowed"),
            anonymous: Counter::define("zt_jwt.anonymous"),
            advisory_denied: Counter::define("zt_jwt.advisory_denied"),
            cache_hit: Counter::define("zt_jwt.cache_hit"),
            cache_miss: Counter::define("zt_jwt.cache_miss"),
            jwks_fetch_ok: Counter::define("zt_jwt.jwks_fetch_ok"),
            jwks_fetch_failed: Counter::define("zt_jwt.jwks_fetch_failed"),
            held_for_keys: Counter::define("zt_jwt.held_for_keys"),
            jwks_key_roca: Counter::define("zt_jwt.jwks_key_roca"),
            denied: JwtError::REASONS
                .iter()
                .map(|reason| (*reason, Counter::define(&format!("zt_jwt.denied.{reason}"))))
                .collect(),
        }
    }

    pub fn denied(&self, error: &JwtError) {
        let reason = error.reason();
        if let Some((_, counter)) = self.denied.iter().find(|(name, _)| *name == reason) {
            counter.increment();
        }
    }
}
