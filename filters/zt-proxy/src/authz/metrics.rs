//! The authorization filter's metrics, all in one place. Envoy shows Wasm-defined stats under
//! the `wasmcustom.` prefix, e.g. `wasmcustom.zt_authz.denied.scope_missing`.

use crate::Counter;
use zt_core::authz::{AuthzReason, Decision, Verdict};

pub struct AuthzMetrics {
    allowed: Counter,
    advisory_denied: Counter,
    /// Requests some AUDIT policy matched.
    audited: Counter,
    /// Denials (enforced or advisory) by reason: one family, `zt_authz.denied` with the label
    /// `reason` under the shipped tag extraction (so there is no untagged total of that name;
    /// enforced denials are the family's sum less `advisory_denied`).
    reasons: Vec<(&'static str, Counter)>,
    /// Requests refused because their facts were unreadable.
    unevaluated: Counter,
}

impl AuthzMetrics {
    pub fn define() -> Self {
        Self {
            allowed: Counter::define("zt_authz.allowed"),
            advisory_denied: Counter::define("zt_authz.advisory_denied"),
            audited: Counter::define("zt_authz.audited"),
            reasons: AuthzReason::REASONS
                .iter()
                .filter(|reason| **reason != "policy_allowed")
                .map(|reason| (*reason, Counter::define(&format!("zt_authz.denied.{reason}"))))
                .collect(),
            unevaluated: Counter::define("zt_authz.denied.unevaluated"),
        }
    }

    pub fn record(&self, decision: &Decision) {
        match decision.verdict {
            Verdict::Allow => self.allowed.increment(),
            // Counted by reason below: the `zt_authz.denied` family.
            Verdict::Deny => {}
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
        self.unevaluated.increment();
    }
}
