//! The JWT filter's metrics, all in one place. Envoy shows Wasm-defined stats under the
//! `wasmcustom.` prefix, e.g. `wasmcustom.zt_jwt.denied.expired`.

use crate::Counter;
use crate::metrics::metric_segment;
use zt_core::jwt::JwtError;

pub struct JwtMetrics {
    pub anonymous: Counter,
    pub advisory_denied: Counter,
    pub cache_hit: Counter,
    pub cache_miss: Counter,
    /// Requests held until their provider's first keys arrived (or their wait ended).
    pub held_for_keys: Counter,
    /// RSA keys of fetched sets dropped for the ROCA fingerprint (CVE-2017-15361).
    pub jwks_key_roca: Counter,
    denied: Vec<(&'static str, Counter)>,
    /// Per provider, by its configured name: the counters a `provider` label tells apart.
    providers: Vec<(String, ProviderCounters)>,
}

/// A provider's counters, `zt_jwt.<event>.<provider>`: Envoy's tag extraction (the shipped
/// configurations' `stats_tags`) makes the provider a label of the `zt_jwt_<event>` family.
pub struct ProviderCounters {
    /// Requests whose token of this provider was verified and let through.
    pub allowed: Counter,
    pub jwks_fetch_ok: Counter,
    pub jwks_fetch_failed: Counter,
}

impl JwtMetrics {
    pub fn define<'a>(providers: impl Iterator<Item = &'a str>) -> Self {
        let counters = |provider: &str| {
            let label = metric_segment(provider);
            ProviderCounters {
                allowed: Counter::define(&format!("zt_jwt.allowed.{label}")),
                jwks_fetch_ok: Counter::define(&format!("zt_jwt.jwks_fetch_ok.{label}")),
                jwks_fetch_failed: Counter::define(&format!("zt_jwt.jwks_fetch_failed.{label}")),
            }
        };
        Self {
            providers: providers.map(|name| (name.to_owned(), counters(name))).collect(),
            anonymous: Counter::define("zt_jwt.anonymous"),
            advisory_denied: Counter::define("zt_jwt.advisory_denied"),
            cache_hit: Counter::define("zt_jwt.cache_hit"),
            cache_miss: Counter::define("zt_jwt.cache_miss"),
            held_for_keys: Counter::define("zt_jwt.held_for_keys"),
            jwks_key_roca: Counter::define("zt_jwt.jwks_key_roca"),
            denied: JwtError::REASONS
                .iter()
                .map(|reason| (*reason, Counter::define(&format!("zt_jwt.denied.{reason}"))))
                .collect(),
        }
    }

    /// The counters of the provider configured as `name`.
    pub fn provider(&self, name: &str) -> Option<&ProviderCounters> {
        self.providers.iter().find(|(known, _)| known == name).map(|(_, counters)| counters)
    }

    pub fn denied(&self, error: &JwtError) {
        let reason = error.reason();
        if let Some((_, counter)) = self.denied.iter().find(|(name, _)| *name == reason) {
            counter.increment();
        }
    }
}
