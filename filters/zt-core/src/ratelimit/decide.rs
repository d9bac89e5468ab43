//! How the limits of a request combine into one decision, in one place:
//!
//! - every limit in effect must admit the request; the first enforced limit that refuses
//!   decides, and the tokens the request already took from other limits are given back (a
//!   refused request is not served, so it should not count);
//! - an advisory limit that would refuse only marks the decision `advisory_limited`;
//! - a limit that cannot key the request (no such claim or header) or place its key (table
//!   full) applies its fallback limit, or refuses (`unkeyed`, `table_full`);
//! - shared-memory contention beyond the bounded retries refuses (`contention`): fail closed;
//! - global limits are asked of the rate-limit service after the local ones admitted; a
//!   failed or late answer refuses or admits per `global.on_error`;
//! - route metadata naming an undefined route rule refuses (`unknown_route_rule`).

use serde::Serialize;

use super::bucket::Take;
use super::compile::{Limit, RateLimitConfig};
use super::config::{Mode, OnError};
use super::key::{self, Entries, Unkeyed};
use super::rls;
use super::table::{Effort, KeyId, TableError};
use super::{RequestFacts, rls::Code};
use crate::routes::{RouteRequest, Selected};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Admitted,
    Limited,
    /// An advisory limit would have refused; the request passes.
    AdvisoryLimited,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Admitted => "admitted",
            Verdict::Limited => "limited",
            Verdict::AdvisoryLimited => "advisory_limited",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    WithinLimits,
    OverLimit,
    Unkeyed,
    TableFull,
    Contention,
    GlobalOverLimit,
    GlobalUnavailable,
    UnknownRouteRule,
}

impl Reason {
    pub const ALL: [Reason; 8] = [
        Reason::WithinLimits,
        Reason::OverLimit,
        Reason::Unkeyed,
        Reason::TableFull,
        Reason::Contention,
        Reason::GlobalOverLimit,
        Reason::GlobalUnavailable,
        Reason::UnknownRouteRule,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::WithinLimits => "within_limits",
            Reason::OverLimit => "over_limit",
            Reason::Unkeyed => "unkeyed",
            Reason::TableFull => "table_full",
            Reason::Contention => "contention",
            Reason::GlobalOverLimit => "global_over_limit",
            Reason::GlobalUnavailable => "global_unavailable",
            Reason::UnknownRouteRule => "unknown_route_rule",
        }
    }
}

/// One applied limit as the client may be told about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitStatus {
    pub name: String,
    pub quota: u64,
    pub window_seconds: u64,
    pub remaining: u64,
    pub reset_seconds: u64,
    pub retry_after_seconds: u64,
    pub advisory: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    pub reason: Reason,
    /// The limit that decided a refusal (or an advisory one); `None` when all admitted.
    pub limit: Option<String>,
    /// The selected route rule, `None` for `defaults`.
    pub route: Option<String>,
    /// The limits applied, in order, with their numbers after this request.
    pub statuses: Vec<LimitStatus>,
    /// CAS retries and reclaimed slots during this request.
    pub effort: Effort,
}

/// [`Decision::record`]: `{"decision", "reason", "limit", "remaining", "route"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionRecord {
    pub decision: Verdict,
    /// [`Reason::as_str`], or why the request could not be evaluated.
    pub reason: &'static str,
    pub limit: Option<String>,
    /// Tokens left of the deciding limit, or of the tightest enforced one.
    pub remaining: Option<u64>,
    pub route: Option<String>,
}

impl DecisionRecord {
    /// A request refused before any limit was applied, for the reason `code`.
    pub fn unevaluated(code: &'static str) -> Self {
        Self { decision: Verdict::Limited, reason: code, limit: None, remaining: None, route: None }
    }
}

impl Decision {
    /// The record handed to the audit filter ([`crate::filter_state::RATELIMIT_DECISION`]):
    /// names and numbers, never a key's value.
    pub fn record(&self) -> DecisionRecord {
        DecisionRecord {
            decision: self.verdict,
            reason: self.reason.as_str(),
            limit: self.limit.clone(),
            remaining: self.deciding_status().map(|s| s.remaining),
            route: self.route.clone(),
        }
    }

    /// The deciding limit's status, or else the enforced limit with the fewest left.
    pub(crate) fn deciding_status(&self) -> Option<&LimitStatus> {
        match &self.limit {
            Some(name) => self.statuses.iter().find(|s| &s.name == name),
            None => self.statuses.iter().filter(|s| !s.advisory).min_by_key(|s| s.remaining),
        }
    }

    fn refused(reason: Reason, limit: &Limit, route: Option<&str>, statuses: Vec<LimitStatus>, effort: Effort) -> Self {
        Decision {
            verdict: if limit.advisory { Verdict::AdvisoryLimited } else { Verdict::Limited },
            reason,
            limit: Some(limit.name.clone()),
            route: route.map(str::to_owned),
            statuses,
            effort,
        }
    }
}

/// What the adapter does next.
#[derive(Debug)]
pub enum Step {
    Decided(Decision),
    /// Send [`Pending::request`] to the rate-limit service, then call
    /// [`RateLimitConfig::finish`] with its answer.
    AskGlobal(Pending),
}

/// A request waiting for the rate-limit service.
#[derive(Debug)]
pub struct Pending {
    route: Option<String>,
    statuses: Vec<LimitStatus>,
    effort: Effort,
    /// Local tokens taken, to give back if the service refuses.
    taken: Vec<(usize, KeyId)>,
    /// The limits asked, in descriptor order.
    asked: Vec<usize>,
    advisory_refusal: Option<(Reason, String)>,
    request: rls::RateLimitRequest,
}

impl Pending {
    /// The `ShouldRateLimit` request, serialized.
    pub fn request(&self) -> Vec<u8> {
        prost::Message::encode_to_vec(&self.request)
    }
}

/// The rate-limit service's answer.
#[derive(Debug, Clone, Copy)]
pub enum GlobalAnswer<'a> {
    /// A `RateLimitResponse` message.
    Response(&'a [u8]),
    /// The call failed: gRPC status, timeout, unknown cluster.
    Failed,
}

/// Where a limit's key came from.
enum Keyed<'a> {
    Limit(&'a Limit, Entries),
    /// Neither the limit nor its fallback could key the request: refused by `limit`.
    Refused(&'a Limit, Reason),
}

impl RateLimitConfig {
    /// Applies the local limits of a request and says whether the service must be asked.
    pub fn check(&self, facts: &RequestFacts<'_>, store: &dyn crate::SharedStore) -> Step {
        let path = crate::authz::path::strip_query(facts.path);
        let request = RouteRequest { path, method: facts.method, authority: facts.authority };
        let (route, items) = match self.routes.select(facts.route_choice, facts.route_name, &request) {
            Selected::Rule(rule) => (Some(rule.name.as_str()), rule.items.as_slice()),
            Selected::Defaults => (None, self.defaults.as_slice()),
            Selected::UnknownRule => {
                return Step::Decided(Decision {
                    verdict: Verdict::Limited,
                    reason: Reason::UnknownRouteRule,
                    limit: None,
                    route: None,
                    statuses: Vec::new(),
                    effort: Effort::default(),
                });
            }
        };
        let mut evaluation = Evaluation { route, statuses: Vec::new(), effort: Effort::default(), taken: Vec::new() };
        let mut advisory_refusal: Option<(Reason, String)> = None;
        let mut asks: Vec<(usize, Entries)> = Vec::new();
        for &index in items {
            let Some(limit) = self.limits.get(index) else { continue };
            let (limit, entries) = match self.key(limit, facts, route) {
                Keyed::Limit(limit, entries) => (limit, entries),
                Keyed::Refused(limit, reason) => match evaluation.refuse(self, reason, limit, store, facts.now_ms) {
                    Some(decision) => return Step::Decided(decision),
                    None => {
                        advisory_refusal.get_or_insert((reason, limit.name.clone()));
                        continue;
                    }
                },
            };
            let mut admitted_locally = true;
            if limit.table.is_some() {
                let mut placed = self.take(limit, &entries, store, facts.now_ms, &mut evaluation);
                // A full table falls to the fallback, as an unkeyable request does.
                let mut applied = limit;
                if let (Err(TableError::Full), Some(fallback)) =
                    (&placed, limit.fallback.and_then(|i| self.limits.get(i)))
                {
                    match key::entries(&fallback.key, facts, route.unwrap_or("defaults")) {
                        Ok(fallback_entries) => {
                            applied = fallback;
                            placed = self.take(fallback, &fallback_entries, store, facts.now_ms, &mut evaluation);
                        }
                        Err(Unkeyed) => placed = Err(TableError::Full),
                    }
                }
                let reason = match placed {
                    Ok(take) if take.admitted => None,
                    Ok(_) => Some(Reason::OverLimit),
                    Err(TableError::Full) => Some(Reason::TableFull),
                    Err(TableError::Contention | TableError::Store(_)) => Some(Reason::Contention),
                };
                if let Some(reason) = reason {
                    admitted_locally = false;
                    match evaluation.refuse(self, reason, applied, store, facts.now_ms) {
                        Some(decision) => return Step::Decided(decision),
                        None => {
                            advisory_refusal.get_or_insert((reason, applied.name.clone()));
                        }
                    }
                }
            }
            if admitted_locally && limit.mode != Mode::Local {
                asks.push((self.index_of(limit), entries));
            }
        }
        if asks.is_empty() {
            return Step::Decided(evaluation.admitted(advisory_refusal));
        }
        let domain = self.global.as_ref().map(|g| g.domain.clone()).unwrap_or_default();
        let descriptors = asks
            .iter()
            .filter_map(|(index, entries)| {
                let limit = self.limits.get(*index)?;
                let mut all = vec![rls::Entry { key: "limit".to_owned(), value: limit.name.clone() }];
                all.extend(entries.iter().map(|(key, value)| rls::Entry { key: key.clone(), value: value.clone() }));
                Some(rls::RateLimitDescriptor { entries: all })
            })
            .collect();
        Step::AskGlobal(Pending {
            route: route.map(str::to_owned),
            statuses: evaluation.statuses,
            effort: evaluation.effort,
            taken: evaluation.taken,
            asked: asks.into_iter().map(|(index, _)| index).collect(),
            advisory_refusal,
            request: rls::RateLimitRequest { domain, descriptors, hits_addend: 1 },
        })
    }

    /// Decides a request the rate-limit service answered (or failed to).
    pub fn finish(
        &self,
        pending: Pending,
        answer: GlobalAnswer<'_>,
        store: &dyn crate::SharedStore,
        now_ms: u64,
    ) -> Decision {
        let mut evaluation = Evaluation {
            route: pending.route.as_deref(),
            statuses: pending.statuses,
            effort: pending.effort,
            taken: pending.taken,
        };
        let mut advisory_refusal = pending.advisory_refusal;
        let asked: Vec<&Limit> = pending.asked.iter().filter_map(|i| self.limits.get(*i)).collect();
        let response = match answer {
            GlobalAnswer::Response(bytes) => <rls::RateLimitResponse as prost::Message>::decode(bytes).ok(),
            GlobalAnswer::Failed => None,
        };
        let Some(response) = response.filter(|r| r.overall_code != Code::Unknown as i32) else {
            let on_error = self.global.as_ref().map(|g| g.on_error).unwrap_or_default();
            let enforced = asked.iter().find(|l| !l.advisory);
            return match (on_error, enforced) {
                (OnError::Deny, Some(limit)) => evaluation
                    .refuse(self, Reason::GlobalUnavailable, limit, store, now_ms)
                    .unwrap_or_else(|| evaluation.admitted(advisory_refusal)),
                _ => {
                    let mut decision = evaluation.admitted(advisory_refusal);
                    if decision.verdict == Verdict::Admitted {
                        decision.reason = Reason::GlobalUnavailable;
                    }
                    decision
                }
            };
        };
        for (i, limit) in asked.iter().enumerate() {
            let status = response.statuses.get(i);
            if let Some(status) = status.and_then(|s| global_status(limit, s)) {
                evaluation.statuses.push(status);
            }
            let over = match status {
                Some(status) => status.code == Code::OverLimit as i32,
                // No per-descriptor answer: the overall code holds for each.
                None => response.overall_code == Code::OverLimit as i32,
            };
            if over {
                match evaluation.refuse(self, Reason::GlobalOverLimit, limit, store, now_ms) {
                    Some(decision) => return decision,
                    None => {
                        advisory_refusal.get_or_insert((Reason::GlobalOverLimit, limit.name.clone()));
                    }
                }
            }
        }
        evaluation.admitted(advisory_refusal)
    }

    fn index_of(&self, limit: &Limit) -> usize {
        self.limits.iter().position(|l| std::ptr::eq(l, limit)).unwrap_or(usize::MAX)
    }

    /// The limit's key, or its fallback's, or why neither keys the request.
    fn key<'a>(&'a self, limit: &'a Limit, facts: &RequestFacts<'_>, route: Option<&str>) -> Keyed<'a> {
        let route = route.unwrap_or("defaults");
        if let Ok(entries) = key::entries(&limit.key, facts, route) {
            return Keyed::Limit(limit, entries);
        }
        match limit.fallback.and_then(|i| self.limits.get(i)) {
            Some(fallback) => match key::entries(&fallback.key, facts, route) {
                Ok(entries) => Keyed::Limit(fallback, entries),
                Err(Unkeyed) => Keyed::Refused(fallback, Reason::Unkeyed),
            },
            None => Keyed::Refused(limit, Reason::Unkeyed),
        }
    }

    fn take(
        &self,
        limit: &Limit,
        entries: &Entries,
        store: &dyn crate::SharedStore,
        now_ms: u64,
        evaluation: &mut Evaluation<'_>,
    ) -> Result<Take, TableError> {
        let (Some(table), Some(rate)) = (&limit.table, limit.rate) else { return Err(TableError::Full) };
        let id = key::key_id(&limit.name, entries);
        let (result, effort) = table.take(store, &id, now_ms);
        evaluation.effort.cas_retries += effort.cas_retries;
        evaluation.effort.reclaimed += effort.reclaimed;
        evaluation.effort.lock_waits += effort.lock_waits;
        if let Ok(take) = &result {
            if take.admitted {
                evaluation.taken.push((self.index_of(limit), id));
            }
            evaluation.statuses.push(LimitStatus {
                name: limit.name.clone(),
                quota: rate.quota(),
                window_seconds: rate.window_ms() / 1000,
                remaining: take.remaining,
                reset_seconds: take.reset_ms.div_ceil(1000),
                retry_after_seconds: take.retry_after_ms.div_ceil(1000),
                advisory: limit.advisory,
            });
        }
        result
    }
}

/// A limit's numbers as the service reported them.
fn global_status(limit: &Limit, status: &rls::DescriptorStatus) -> Option<LimitStatus> {
    let current = status.current_limit.as_ref()?;
    let window_seconds = rls::Unit::try_from(current.unit).ok().and_then(rls::Unit::seconds)?;
    let reset_seconds = status
        .duration_until_reset
        .as_ref()
        .map_or(window_seconds, |d| u64::try_from(d.seconds).unwrap_or(0) + u64::from(d.nanos > 0));
    let over = status.code == Code::OverLimit as i32;
    Some(LimitStatus {
        name: limit.name.clone(),
        quota: u64::from(current.requests_per_unit),
        window_seconds,
        remaining: u64::from(status.limit_remaining),
        reset_seconds,
        retry_after_seconds: if over { reset_seconds.max(1) } else { 0 },
        advisory: limit.advisory,
    })
}

/// A request's limits as they are applied.
struct Evaluation<'a> {
    route: Option<&'a str>,
    statuses: Vec<LimitStatus>,
    effort: Effort,
    taken: Vec<(usize, KeyId)>,
}

impl Evaluation<'_> {
    /// A refusal by `limit`: for an enforced limit, gives back the tokens taken and answers
    /// the decision; for an advisory one, `None` (the request goes on).
    fn refuse(
        &mut self,
        config: &RateLimitConfig,
        reason: Reason,
        limit: &Limit,
        store: &dyn crate::SharedStore,
        now_ms: u64,
    ) -> Option<Decision> {
        if limit.advisory {
            return None;
        }
        for (index, id) in self.taken.drain(..) {
            if let Some(table) = config.limits.get(index).and_then(|l| l.table.as_ref()) {
                let effort = table.give_back(store, &id, now_ms);
                self.effort.cas_retries += effort.cas_retries;
            }
        }
        Some(Decision::refused(reason, limit, self.route, std::mem::take(&mut self.statuses), self.effort))
    }

    fn admitted(&mut self, advisory_refusal: Option<(Reason, String)>) -> Decision {
        let (verdict, reason, limit) = match advisory_refusal {
            Some((reason, limit)) => (Verdict::AdvisoryLimited, reason, Some(limit)),
            None => (Verdict::Admitted, Reason::WithinLimits, None),
        };
        Decision {
            verdict,
            reason,
            limit,
            route: self.route.map(str::to_owned),
            statuses: std::mem::take(&mut self.statuses),
            effort: self.effort,
        }
    }
}
