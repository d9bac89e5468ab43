//! One request's decision, written against whichever HTTP context is in effect: the request's
//! own context as it arrives, or the root context after it switched to a held request with
//! `proxy_set_effective_context` to decide it once keys arrived. Every call here goes to the
//! host for the context in effect, so the two paths are the same code.

use std::rc::Rc;

use proxy_wasm::traits::HttpContext;
use zt_core::audit::StageRecord;
use zt_core::filter_state::IDENTITY;
use zt_core::jwt::{
    Authenticator, Decision, FetchRequest, HeaderEdit, Identity, JwtError, KeysWait, KidRefetch, ProviderId,
    Requirement, claim_headers, denial, must_strip, payload_header_value, strip_token_edits,
};
use zt_core::{LocalReply, UnixSeconds};

use super::FILTER;
use super::metrics::JwtMetrics;
use crate::EnvoySharedData;
use crate::pipeline::{Facts, Flow, Handoff, Pass};

/// The key of `filter_metadata.zt` by which a route names its requirement.
const REQUIREMENT_METADATA_KEY: &str = "jwt_requirement";

/// How far a request's decision has come, which says what it may still wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// As the request arrives: it may be held for first keys, or refetch for an unknown `kid`.
    First,
    /// After a refetch for an unknown `kid`: decided with the keys there are.
    AfterRefetch,
    /// Woken after a hold: decided with the keys there are.
    Woken,
}

/// What a decision asks for next.
pub enum Step {
    /// Decided: continue, or stopped with the reply sent.
    Done(Flow),
    /// Refetch the keys for an unknown `kid`, then decide again.
    Refetch(FetchRequest),
    /// Hold the request for its provider's first keys, at most until this time (ms).
    Hold { provider: ProviderId, until_ms: u64 },
}

pub fn decide(
    http: &dyn HttpContext,
    authenticator: &Authenticator,
    metrics: &JwtMetrics,
    handoff: Handoff,
    pass: &mut Pass,
    attempt: Attempt,
) -> Step {
    let requirement = match requirement(authenticator, &pass.facts) {
        Ok(requirement) => requirement,
        Err(error) => return Step::Done(deny(http, authenticator, metrics, &error)),
    };
    let now = pass.facts.now();
    let headers = pass.facts.request_headers();
    let result = match &requirement.all_of {
        Some(all) => authenticator.authenticate_all(all, headers, now),
        None => authenticator.authenticate(headers, now),
    };
    if attempt == Attempt::First {
        match result {
            Err(JwtError::NoMatchingKey { provider }) => {
                match authenticator.unknown_kid(provider, &EnvoySharedData, now) {
                    KidRefetch::Synced => {
                        return decide(http, authenticator, metrics, handoff, pass, Attempt::AfterRefetch);
                    }
                    KidRefetch::Fetch(request) => return Step::Refetch(request),
                    KidRefetch::NotNow => {}
                }
            }
            Err(JwtError::KeysUnavailable { provider }) => {
                match authenticator.without_keys(provider, &EnvoySharedData, pass.facts.now_ms()) {
                    KeysWait::Synced => return decide(http, authenticator, metrics, handoff, pass, Attempt::Woken),
                    KeysWait::Hold { until_ms } => return Step::Hold { provider, until_ms },
                    KeysWait::Refuse => {}
                }
            }
            _ => {}
        }
    }
    let decision = requirement.decide(result);
    let strip = must_strip(authenticator.config.forward_token, requirement, &decision);
    pass.hand_on(handoff, StageRecord::Jwt(decision.record(requirement)));
    Step::Done(match decision {
        Decision::Allow(authenticated) => {
            let cache = if authenticated.cache_hit { metrics.cache_hit } else { metrics.cache_miss };
            cache.increment();
            if handoff == Handoff::FilterState
                && let Err(status) = crate::set_filter_state(IDENTITY, &authenticated.token.identity_json)
            {
                // Later filters would see no identity: refuse rather than pass it on.
                log::error!("{FILTER}: cannot set filter state {IDENTITY}: {status:?}");
                let reply = LocalReply::json(500, Vec::new(), &serde_json::json!({"error": "internal"}));
                crate::send_reply(http, &reply);
                return Step::Done(Flow::Stop);
            }
            pass.identity = Some(Rc::clone(&authenticated.token));
            for (header, value) in claim_headers(&authenticator.config.claim_headers, &authenticated.token.identity) {
                pass.facts.set_request_header(&header, Some(value.as_bytes()));
            }
            if let Some(header) = &authenticator.config.payload_header {
                let value = payload_header_value(&authenticated.token.identity);
                pass.facts.set_request_header(header, Some(value.as_bytes()));
            }
            let action = continue_upstream(&mut pass.facts, authenticator, strip);
            if let Some(profile) = &requirement.next_hop_token
                && !mint_next_hop_token(
                    http,
                    &mut pass.facts,
                    authenticator,
                    profile,
                    &authenticated.token.identity,
                    now,
                )
            {
                return Step::Done(Flow::Stop);
            }
            if let Some(counters) = metrics.provider(&authenticated.token.identity.provider) {
                counters.allowed.increment();
            }
            action
        }
        Decision::AllowAnonymous { .. } => {
            metrics.anonymous.increment();
            continue_upstream(&mut pass.facts, authenticator, strip)
        }
        Decision::AdvisoryDeny(error) => {
            metrics.advisory_denied.increment();
            metrics.denied(&error);
            log::info!("{FILTER}: advisory: would deny ({}): {error}", requirement.name);
            continue_upstream(&mut pass.facts, authenticator, strip)
        }
        Decision::Deny(error) => deny(http, authenticator, metrics, &error),
    })
}

/// The route's requirement. Route metadata is read always, so that a route naming a
/// requirement this configuration lacks is refused (500) also when it defines none; the route
/// name only when some requirement is selected by it.
fn requirement<'a>(authenticator: &'a Authenticator, facts: &Facts) -> Result<&'a Requirement, JwtError> {
    let requirements = &authenticator.config.requirements;
    let choice = facts.route_rule(REQUIREMENT_METADATA_KEY);
    let route = if requirements.selects_by_route_name() { facts.route_name() } else { None };
    let selected = requirements.select(route, choice);
    if let (Err(JwtError::UnknownRequirement), Some(choice)) = (&selected, &choice) {
        log::error!(
            "{FILTER}: route metadata filter_metadata.zt.jwt_requirement names requirement {choice:?}, which the \
             configuration does not define: refused with 500"
        );
    }
    selected
}

/// Removes the caller's token from every source when the core says so (`must_strip`): an
/// unverified token, or one a minted token replaces, never goes upstream.
fn continue_upstream(facts: &mut Facts, authenticator: &Authenticator, strip: bool) -> Flow {
    if strip {
        for edit in strip_token_edits(&authenticator.config.token_sources, facts.request_headers()) {
            match edit {
                HeaderEdit::Remove(name) => facts.set_request_header(&name, None),
                HeaderEdit::Set(name, value) => facts.set_request_header(&name, Some(&value)),
            }
        }
    }
    Flow::Continue
}

/// Sets `authorization` to a token minted for the route's profile. A failure answers 500:
/// the upstream expects a minted token, and the caller's must not stand in for it.
fn mint_next_hop_token(
    http: &dyn HttpContext,
    facts: &mut Facts,
    authenticator: &Authenticator,
    profile: &str,
    caller: &Identity,
    now: UnixSeconds,
) -> bool {
    let Some(next_hop) = &authenticator.config.next_hop else { return false };
    let mut jti = [0u8; 16];
    let minted = getrandom::fill(&mut jti)
        .map_err(|e| format!("no randomness for jti: {e}"))
        .and_then(|()| next_hop.mint(profile, caller, now, jti));
    match minted {
        Ok(token) => {
            facts.set_request_header("authorization", Some(format!("Bearer {token}").as_bytes()));
            true
        }
        Err(why) => {
            log::error!("{FILTER}: cannot mint the next-hop token ({profile}): {why}");
            let reply = LocalReply::json(500, Vec::new(), &serde_json::json!({"error": "internal"}));
            crate::send_reply(http, &reply);
            false
        }
    }
}

pub fn is_jwks_request(facts: &Facts, jwks_path: &str) -> bool {
    let path = facts.request_header(":path").map(|p| p.split(|b| *b == b'?').next().unwrap_or_default());
    facts.request_header(":method") == Some(b"GET".as_slice()) && path == Some(jwks_path.as_bytes())
}

fn deny(http: &dyn HttpContext, authenticator: &Authenticator, metrics: &JwtMetrics, error: &JwtError) -> Flow {
    metrics.denied(error);
    if let JwtError::KeysUnavailable { provider } = error {
        log::warn!(
            "{FILTER}: denied: provider {} has no keys (its JWKS fetch failed or did not answer in time)",
            authenticator.provider_name(*provider)
        );
    } else {
        log::debug!("{FILTER}: denied: {error}");
    }
    crate::send_reply(http, &denial(error, &authenticator.config.realm));
    Flow::Stop
}
