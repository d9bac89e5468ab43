//! The authorization filter's metrics, all in one place. Envoy shows Wasm-defined stats under
//! the `wasmcustom.` prefix, e.g. `wasmcustom.zt_authz.denied.scope_missing`.

use crate::Counter;
use zt_core::authz::{AuthzReason, Decision, Verdict};

pub struct AuthzMetrics {
    allowed: Counter,
    denied: Counter,
    advisory_denied: Counter,
    /// Requests some AUDIT policy matched.
    audited: Counter,
    /// Denials (enforced or advisory) by reason.
    reasons: Vec<(&'static str, Counter)>,
}

impl AuthzMetrics {
    pub fn define() -> Self {
        Self {
            allowed: Counter::define("zt_authz.allowed"),
            denied: Counter::define("zt_authz.denied"),
            advisory_denied: Counter::define("zt_authz.advisory_denied"),
            audited: Counter::define("zt_authz.audited"),
            reasons: AuthzReason::REASONS
                .iter()
                .filter(|reason| **reason != "policy_allowed")
                .map(|reason| (*reason, Counter::define(&format!("zt_authz.denied.{reason}"))))
                .collect(),
        }
    }

    pub fn record(&self, decision: &Decision) {
        match decision.verdict {
            Verdict::Allow => self.allowed.increment(),
            Verdict::Deny => self.denied.increment(),
            Verdict::AdvisoryDeny => self.advisory_denied.increment(),
        }
        if decision.verdict != Verdict::Allow {
            let reason = decision.reason.as_str();
            if let Some((_, counter)) = self.reasons.iter().find(|(name, _)| *name == reason) {
                counter.increment();
            }
        }
        if !decision.audit.is_empty() {
            self.audited.increment();
        }
    }

    /// A request the filter could not evaluate (its facts were unreadable): denied.
    pub fn unreadable(&self) {
        self.denied.increment();
    }
}
