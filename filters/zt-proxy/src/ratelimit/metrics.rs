//! The rate-limit filter's metrics, all in one place. Envoy shows Wasm-defined stats under the
//! `wasmcustom.` prefix, e.g. `wasmcustom.zt_ratelimit.limited.over_limit.orders`.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::Counter;
use crate::metrics::metric_segment;
use zt_core::ratelimit::{Decision, RateLimitConfig, Reason, Verdict};

/// The route segment of a request no route rule selected (the `defaults` applied).
const DEFAULTS: &str = "defaults";
/// The route segment of a request whose route metadata names a rule the configuration lacks.
const UNKNOWN_RULE: &str = "unknown_rule";

pub struct RateLimitMetrics {
    advisory_limited: Counter,
    /// Every decision, one counter each, by its route rule: `zt_ratelimit.admitted.<route>` and
    /// `zt_ratelimit.limited.<reason>.<route>` (refusals enforced or advisory), which the shipped
    /// tag extraction turns into the families `zt_ratelimit_admitted` and `zt_ratelimit_limited`
    /// with the labels `route` and `reason`. Each is defined the first time it counts.
    decided: RefCell<HashMap<String, Counter>>,
    /// Refusals by the limit that decided them: `zt_ratelimit.limit.<limit>.limited` (label
    /// `limit`).
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
            advisory_limited: Counter::define("zt_ratelimit.advisory_limited"),
            decided: RefCell::default(),
            limits: config
                .limit_names()
                .map(|name| {
                    let counter = Counter::define(&format!("zt_ratelimit.limit.{}.limited", metric_segment(name)));
                    (name.to_owned(), counter)
                })
                .collect(),
            unevaluated: Counter::define("zt_ratelimit.limited.unevaluated.none"),
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
        let route = match (&decision.route, decision.reason) {
            (_, Reason::UnknownRouteRule) => UNKNOWN_RULE.to_owned(),
            (Some(rule), _) => metric_segment(rule),
            (None, _) => DEFAULTS.to_owned(),
        };
        let name = match decision.verdict {
            Verdict::Admitted => format!("zt_ratelimit.admitted.{route}"),
            Verdict::Limited | Verdict::AdvisoryLimited => {
                format!("zt_ratelimit.limited.{}.{route}", decision.reason.as_str())
            }
        };
        let counter = *self.decided.borrow_mut().entry(name).or_insert_with_key(|name| Counter::define(name));
        counter.increment();
        if decision.verdict == Verdict::AdvisoryLimited {
            self.advisory_limited.increment();
        }
        if decision.verdict != Verdict::Admitted
            && let Some((_, counter)) = self.limits.iter().find(|(n, _)| Some(n) == decision.limit.as_ref())
        {
            counter.increment();
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
