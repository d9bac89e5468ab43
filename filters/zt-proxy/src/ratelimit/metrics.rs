//! The rate-limit filter's metrics, all in one place. Envoy shows Wasm-defined stats under the
//! `wasmcustom.` prefix, e.g. `wasmcustom.zt_ratelimit.limited.over_limit`.

use crate::Counter;
use zt_core::ratelimit::{Decision, RateLimitConfig, Reason, Verdict};

pub struct RateLimitMetrics {
    admitted: Counter,
    advisory_limited: Counter,
    /// Refusals (enforced or advisory) by reason, and by limit: the families
    /// `zt_ratelimit.limited` (label `reason`) and `zt_ratelimit.limit.limited` (label `limit`)
    /// under the shipped tag extraction, so there is no untagged total of the first name.
    reasons: Vec<(Reason, Counter)>,
    limits: Vec<(String, Counter)>,
    /// Requests refused because their facts were unreadable.
    unevaluated: Counter,
    /// CAS writes another worker's write made retry: the cost of exactness under contention.
    cas_retries: Counter,
    lock_waits: Counter,
    reclaimed: Counter,
    evicted: Counter,
    global_calls: Counter,
    global_errors: Counter,
    /// Requests a limit keyed on the peer address for which Envoy gave no trustworthy peer.
    peer_address_unknown: Counter,
}

impl RateLimitMetrics {
    pub fn define(config: &RateLimitConfig) -> Self {
        Self {
            admitted: Counter::define("zt_ratelimit.admitted"),
            advisory_limited: Counter::define("zt_ratelimit.advisory_limited"),
            reasons: Reason::ALL
                .iter()
                .filter(|r| **r != Reason::WithinLimits)
                .map(|r| (*r, Counter::define(&format!("zt_ratelimit.limited.{}", r.as_str()))))
                .collect(),
            limits: config
                .limit_names()
                .map(|name| (name.to_owned(), Counter::define(&format!("zt_ratelimit.limit.{name}.limited"))))
                .collect(),
            unevaluated: Counter::define("zt_ratelimit.limited.unevaluated"),
            cas_retries: Counter::define("zt_ratelimit.cas_retries"),
            lock_waits: Counter::define("zt_ratelimit.lock_waits"),
            reclaimed: Counter::define("zt_ratelimit.reclaimed"),
            evicted: Counter::define("zt_ratelimit.evicted"),
            global_calls: Counter::define("zt_ratelimit.global.calls"),
            global_errors: Counter::define("zt_ratelimit.global.errors"),
            peer_address_unknown: Counter::define("zt_ratelimit.peer_address_unknown"),
        }
    }

    pub fn record(&self, decision: &Decision) {
        match decision.verdict {
            Verdict::Admitted => self.admitted.increment(),
            // Counted by reason below: the `zt_ratelimit.limited` family.
            Verdict::Limited => {}
            Verdict::AdvisoryLimited => self.advisory_limited.increment(),
        }
        if decision.verdict != Verdict::Admitted {
            if let Some((_, counter)) = self.reasons.iter().find(|(r, _)| *r == decision.reason) {
                counter.increment();
            }
            if let Some((_, counter)) = self.limits.iter().find(|(n, _)| Some(n) == decision.limit.as_ref()) {
                counter.increment();
            }
        }
        self.cas_retries.add(u64::from(decision.effort.cas_retries));
        self.lock_waits.add(u64::from(decision.effort.lock_waits));
        self.reclaimed.add(u64::from(decision.effort.reclaimed));
    }

    /// A request the filter could not evaluate (its facts were unreadable): refused.
    pub fn unreadable(&self) {
        self.unevaluated.increment();
    }

    pub fn global_call(&self) {
        self.global_calls.increment();
    }

    pub fn global_error(&self) {
        self.global_errors.increment();
    }

    pub fn peer_address_unknown(&self) {
        self.peer_address_unknown.increment();
    }

    pub fn evicted(&self, count: u64) {
        self.evicted.add(count);
    }
}
