//! The authorization filter's metrics, all in one place. Envoy shows Wasm-defined stats under
//! the `wasmcustom.` prefix, e.g. `wasmcustom.zt_authz.denied.scope_missing.orders.orders-read`.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::Counter;
use crate::metrics::metric_segment;
use zt_core::authz::{AuthzReason, Decision, Verdict};

/// The route segment of a request no route rule selected (the `defaults` applied).
const DEFAULTS: &str = "defaults";
/// The route and policy segments of a request that was not evaluated.
const NONE: &str = "none";
/// The route segment of a request whose route metadata names a rule the configuration lacks.
const UNKNOWN_RULE: &str = "unknown_rule";

pub struct AuthzMetrics {
    advisory_denied: Counter,
    /// Requests some AUDIT policy matched.
    audited: Counter,
    /// Every decision, one counter each, by what decided it: `zt_authz.allowed.<route>.<policy>`
    /// and `zt_authz.denied.<reason>.<route>.<policy>` (denials enforced or advisory), which the
    /// shipped tag extraction turns into the families `zt_authz_allowed` and `zt_authz_denied`
    /// with the labels `route`, `policy` and `reason`. Each is defined the first time it counts:
    /// the configuration's reasons, rules and policies bound their number.
    decided: RefCell<HashMap<String, Counter>>,
}

impl AuthzMetrics {
    pub fn define() -> Self {
        Self {
            advisory_denied: Counter::define("zt_authz.advisory_denied"),
            audited: Counter::define("zt_authz.audited"),
            decided: RefCell::default(),
        }
    }

    pub fn record(&self, decision: &Decision) {
        let route = match (&decision.route, &decision.reason) {
            (_, AuthzReason::UnknownRouteRule) => UNKNOWN_RULE,
            (Some(rule), _) => rule,
            (None, _) => DEFAULTS,
        };
        let name = match decision.verdict {
            Verdict::Allow => {
                format!("zt_authz.allowed.{}.{}", metric_segment(route), metric_segment(&decision.policy))
            }
            Verdict::Deny | Verdict::AdvisoryDeny => format!(
                "zt_authz.denied.{}.{}.{}",
                decision.reason.as_str(),
                metric_segment(route),
                metric_segment(&decision.policy)
            ),
        };
        self.count(name);
        if decision.verdict == Verdict::AdvisoryDeny {
            self.advisory_denied.increment();
        }
        if !decision.audit.is_empty() {
            self.audited.increment();
        }
    }

    /// A request the filter could not evaluate (its facts were unreadable): denied, by no rule
    /// and no policy.
    pub fn unreadable(&self) {
        self.count(format!("zt_authz.denied.unevaluated.{NONE}.{NONE}"));
    }

    fn count(&self, name: String) {
        let mut decided = self.decided.borrow_mut();
        let counter = *decided.entry(name).or_insert_with_key(|name| Counter::define(name));
        counter.increment();
    }
}
