//! The one place policies combine into a decision.
//!
//! P is the list of policies in effect for the selected route rule (see `routes.rs`). AUDIT
//! policies never affect the verdict; those that match are listed in [`Decision::audit`].
//!
//! 0. A policy in P reads an address the request lacks (the direct peer, when the listener took
//!    the address from `X-Forwarded-For` and no filter state names the peer; or the remote
//!    address) → Deny(`default-deny`), `peer_address_unknown` / `remote_address_unknown`: no
//!    policy of the route is evaluated on an address the caller may have forged.
//! 1. A matching non-advisory DENY → Deny(it), `policy_denied`: an explicit deny wins over any
//!    allow, as in Istio.
//! 2. Else a matching non-advisory ALLOW → Allow(it); but if an advisory DENY matched too →
//!    AdvisoryDeny(that DENY): the request passes and the would-be denial is recorded.
//! 3. Else, if P holds a non-advisory ALLOW → Deny(`default-deny`), `no_policy_matched`.
//! 4. Else, if P holds ALLOW policies, all advisory (a route rolled out in monitor-only mode):
//!    a matching advisory DENY → AdvisoryDeny(it); a matching advisory ALLOW → Allow(it); none
//!    → AdvisoryDeny(`default-deny`), `no_policy_matched`.
//! 5. Else (no ALLOW at all) → Deny(`default-deny`), `no_policy_matched`: default deny.
//!
//! With the filter-wide `advisory: true`, every Deny becomes an AdvisoryDeny, policy and reason
//! kept. A default deny's reason is refined, on the deny path only: without an identity, when an
//! ALLOW policy that could have allowed reads the identity → `identity_missing` (401); with an
//! identity, when such a policy would match were its scope conditions met → `scope_missing`
//! with those scopes (403 `insufficient_scope`).

use serde::Serialize;

use super::compile::{AuthzConfig, Policy};
use super::condition::{Request, Scopes};
use super::config::Action;
use super::{DEFAULT_DENY, RequestFacts};
use crate::routes::Selected;

/// Whether the request passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Allow,
    Deny,
    /// Would have been denied; passes because a policy or the filter is advisory.
    AdvisoryDeny,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
            Verdict::AdvisoryDeny => "advisory_deny",
        }
    }
}

/// Why the decision was taken. Facts about configuration and the request's shape, never a
/// claim value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthzReason {
    /// An ALLOW policy matched.
    PolicyAllowed,
    /// A DENY policy matched.
    PolicyDenied,
    /// No policy allowed the request: default deny.
    NoPolicyMatched,
    /// No policy allowed it, and one that reads the identity might have: the caller did not
    /// authenticate.
    IdentityMissing,
    /// A policy would have allowed it had the caller's token carried these scopes.
    ScopeMissing { required: Vec<String> },
    /// Route metadata names a route rule the configuration does not define.
    UnknownRouteRule,
    /// A policy reads the connection's direct peer address and the proxy gave none it can
    /// trust (the remote address came from `X-Forwarded-For`): not decided on a forgeable one.
    PeerAddressUnknown,
    /// A policy reads the remote (client) address and the proxy gave none.
    RemoteAddressUnknown,
}

impl AuthzReason {
    /// Every value [`AuthzReason::as_str`] can take, for defining one metric per reason up front.
    pub const REASONS: [&'static str; 8] = [
        "policy_allowed",
        "policy_denied",
        "no_policy_matched",
        "identity_missing",
        "scope_missing",
        "unknown_route_rule",
        "peer_address_unknown",
        "remote_address_unknown",
    ];

    /// A stable snake_case name, for metrics and records.
    pub fn as_str(&self) -> &'static str {
        match self {
            AuthzReason::PolicyAllowed => "policy_allowed",
            AuthzReason::PolicyDenied => "policy_denied",
            AuthzReason::NoPolicyMatched => "no_policy_matched",
            AuthzReason::IdentityMissing => "identity_missing",
            AuthzReason::ScopeMissing { .. } => "scope_missing",
            AuthzReason::UnknownRouteRule => "unknown_route_rule",
            AuthzReason::PeerAddressUnknown => "peer_address_unknown",
            AuthzReason::RemoteAddressUnknown => "remote_address_unknown",
        }
    }
}

/// The answer for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    /// The deciding policy's id, or `default-deny`.
    pub policy: String,
    pub reason: AuthzReason,
    /// The selected route rule's name; `None` when the `defaults` applied.
    pub route: Option<String>,
    /// Ids of the AUDIT policies that matched, in the order they are in effect.
    pub audit: Vec<String>,
}

impl Decision {
    /// Whether the request goes on upstream (allowed, or denied only in advisory mode).
    pub fn passes(&self) -> bool {
        self.verdict != Verdict::Deny
    }

    /// The record handed on to the audit stage (through filter state between single filters,
    /// [`crate::filter_state::AUTHZ_DECISION`]): ids and reasons only, never a claim value.
    pub fn record(&self) -> DecisionRecord {
        DecisionRecord {
            decision: self.verdict,
            policy: Some(self.policy.clone()),
            reason: self.reason.as_str(),
            route: self.route.clone(),
            audit: self.audit.clone(),
        }
    }
}

/// [`Decision::record`]: `{"decision", "policy", "reason", "route", "audit"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionRecord {
    pub decision: Verdict,
    /// `None` when the request could not be evaluated (its facts were unreadable).
    pub policy: Option<String>,
    /// [`AuthzReason::as_str`], or why the request could not be evaluated.
    pub reason: &'static str,
    pub route: Option<String>,
    pub audit: Vec<String>,
}

impl DecisionRecord {
    /// A request refused before any policy was evaluated, for the reason `code`.
    pub fn unevaluated(code: &'static str) -> Self {
        Self { decision: Verdict::Deny, policy: None, reason: code, route: None, audit: Vec::new() }
    }
}

impl AuthzConfig {
    /// Decides on one request. Pure: same facts, same decision.
    pub fn authorize(&self, facts: &RequestFacts<'_>) -> Decision {
        let request = Request::new(facts, self.scope_claim.as_deref());
        let decision = match self.routes.select(facts.route_choice, facts.route_name, &request.route()) {
            Selected::Rule(rule) => self.combine(&rule.items, &request, Some(&rule.name)),
            Selected::Defaults => self.combine(self.defaults.as_deref().unwrap_or(&[]), &request, None),
            Selected::UnknownRule => Decision {
                verdict: Verdict::Deny,
                policy: DEFAULT_DENY.to_owned(),
                reason: AuthzReason::UnknownRouteRule,
                route: None,
                audit: Vec::new(),
            },
        };
        // A route naming an undefined rule is the proxy's configuration fault, not a policy
        // being rolled out: refused in advisory mode too, as every filter refuses it.
        if self.advisory && decision.verdict == Verdict::Deny && decision.reason != AuthzReason::UnknownRouteRule {
            return Decision { verdict: Verdict::AdvisoryDeny, ..decision };
        }
        decision
    }

    /// An address a policy in effect reads and the request lacks: the route is refused, not
    /// evaluated, since two-valued logic would read a missing address as outside every
    /// `notIpBlocks` range, a pass. Routes whose policies read no address are unaffected.
    fn unknown_address<'p>(
        mut in_effect: impl Iterator<Item = &'p Policy>,
        request: &Request<'_>,
    ) -> Option<AuthzReason> {
        let (peer, remote) = (request.source.is_none(), request.remote.is_none());
        if !peer && !remote {
            return None;
        }
        in_effect.find_map(|p| match (p.inputs.source && peer, p.inputs.remote && remote) {
            (true, _) => Some(AuthzReason::PeerAddressUnknown),
            (false, true) => Some(AuthzReason::RemoteAddressUnknown),
            (false, false) => None,
        })
    }

    fn combine(&self, ids: &[usize], request: &Request<'_>, route: Option<&str>) -> Decision {
        let in_effect = || ids.iter().filter_map(|&i| self.policies.get(i));
        if let Some(reason) = Self::unknown_address(in_effect(), request) {
            return Decision {
                verdict: Verdict::Deny,
                policy: DEFAULT_DENY.to_owned(),
                reason,
                route: route.map(str::to_owned),
                audit: Vec::new(),
            };
        }
        let mut audit = Vec::new();
        let (mut deny, mut advisory_deny, mut allow, mut advisory_allow) = (None, None, None, None);
        let (mut enforced_allows, mut advisory_allows) = (false, false);
        for policy in in_effect() {
            // Once an enforced DENY matched, only AUDIT policies can still change the answer.
            let decided = deny.is_some();
            let slot = match (policy.action, policy.advisory) {
                (Action::Audit, _) => {
                    if policy.matches(request, Scopes::Checked) {
                        audit.push(policy.id.clone());
                    }
                    continue;
                }
                (Action::Deny, false) => &mut deny,
                (Action::Deny, true) => &mut advisory_deny,
                (Action::Allow, false) => {
                    enforced_allows = true;
                    &mut allow
                }
                (Action::Allow, true) => {
                    advisory_allows = true;
                    &mut advisory_allow
                }
            };
            // Each policy is evaluated at most once, and none after the first of its kind.
            if !decided && slot.is_none() && policy.matches(request, Scopes::Checked) {
                *slot = Some(policy);
            }
        }
        let decide = |verdict, policy: &str, reason| Decision {
            verdict,
            policy: policy.to_owned(),
            reason,
            route: route.map(str::to_owned),
            audit,
        };
        let refine = |advisory: bool| {
            refine(in_effect().filter(|p| p.action == Action::Allow && p.advisory == advisory), request)
        };
        match (deny, allow, advisory_deny, advisory_allow) {
            (Some(deny), ..) => decide(Verdict::Deny, &deny.id, AuthzReason::PolicyDenied),
            (None, Some(_), Some(would_deny), _) => {
                decide(Verdict::AdvisoryDeny, &would_deny.id, AuthzReason::PolicyDenied)
            }
            (None, Some(allow), None, _) => decide(Verdict::Allow, &allow.id, AuthzReason::PolicyAllowed),
            (None, None, ..) if enforced_allows => decide(Verdict::Deny, DEFAULT_DENY, refine(false)),
            (None, None, Some(would_deny), _) if advisory_allows => {
                decide(Verdict::AdvisoryDeny, &would_deny.id, AuthzReason::PolicyDenied)
            }
            (None, None, None, Some(allow)) => decide(Verdict::Allow, &allow.id, AuthzReason::PolicyAllowed),
            (None, None, _, None) if advisory_allows => decide(Verdict::AdvisoryDeny, DEFAULT_DENY, refine(true)),
            _ => decide(Verdict::Deny, DEFAULT_DENY, AuthzReason::NoPolicyMatched),
        }
    }
}

/// Why no ALLOW policy among `allows` matched, when more can be said than `no_policy_matched`.
fn refine<'p>(mut allows: impl Iterator<Item = &'p Policy>, request: &Request<'_>) -> AuthzReason {
    if request.identity.is_none() {
        return if allows.any(|p| p.reads_identity) {
            AuthzReason::IdentityMissing
        } else {
            AuthzReason::NoPolicyMatched
        };
    }
    for rule in allows.flat_map(|p| &p.rules) {
        if rule.eval(request, Scopes::Granted) {
            let mut required = Vec::new();
            rule.missing_scopes(request, &mut required);
            if !required.is_empty() {
                return AuthzReason::ScopeMissing { required };
            }
        }
    }
    AuthzReason::NoPolicyMatched
}
