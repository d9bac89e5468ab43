//! The per-request context: pick the route's requirement, one core call, then continue or
//! answer. A token naming a `kid` the remote keys lack may pause the request for one
//! (rate-limited) refetch of the keys, then be verified again.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use zt_core::filter_state::{IDENTITY, JWT_DECISION};
use zt_core::jwt::{
    Authenticator, Decision, FetchOutcome, FetchRequest, HeaderEdit, Identity, JwtError, KidRefetch, Requirement,
    claim_headers, denial, must_strip, payload_header_value, strip_token_edits,
};
use zt_core::{LocalReply, UnixSeconds};
use zt_proxy::EnvoySharedData;

use crate::FILTER;
use crate::jwks;
use crate::metrics::JwtMetrics;

/// Where a route names its requirement: `metadata: {filter_metadata: {zt: {jwt_requirement: NAME}}}`.
const REQUIREMENT_METADATA: [&str; 5] = ["xds", "route_metadata", "filter_metadata", "zt", "jwt_requirement"];

pub struct JwtAuthHttp {
    pub(crate) authenticator: Rc<Authenticator>,
    pub(crate) metrics: Rc<JwtMetrics>,
    /// The key refetch this request waits for.
    pub(crate) refetch: Option<FetchRequest>,
}

impl Context for JwtAuthHttp {
    fn on_http_call_response(&mut self, _token_id: u32, _num_headers: usize, body_size: usize, _num_trailers: usize) {
        let Some(request) = self.refetch.take() else { return };
        let authenticator = Rc::clone(&self.authenticator);
        let outcome = jwks::answer(self, &authenticator, &self.metrics, &request, body_size);
        if let FetchOutcome::Next(next) = outcome
            && self.send_refetch(&authenticator, next)
        {
            return;
        }
        if self.decide(&authenticator, false) == Action::Continue {
            self.resume_http_request();
        }
    }
}

impl HttpContext for JwtAuthHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let authenticator = Rc::clone(&self.authenticator);
        if let Some(next_hop) = &authenticator.config.next_hop
            && self.is_jwks_request(&next_hop.jwks_path)
        {
            // The public keys of minted tokens: no credential needed to read them.
            zt_proxy::send_reply(self, next_hop.jwks_reply());
            return Action::Pause;
        }
        // Claim headers come from verified tokens only: whatever a client sent is dropped first.
        for mapping in &authenticator.config.claim_headers {
            zt_proxy::remove_request_header(self, &mapping.header);
        }
        if let Some(header) = &authenticator.config.payload_header {
            zt_proxy::remove_request_header(self, header);
        }
        self.decide(&authenticator, true)
    }
}

impl JwtAuthHttp {
    fn decide(&mut self, authenticator: &Authenticator, may_refetch: bool) -> Action {
        let requirement = match self.requirement(authenticator) {
            Ok(requirement) => requirement,
            Err(error) => return self.deny(authenticator, &error),
        };
        let headers = self.get_http_request_headers_bytes();
        let now = zt_proxy::now(self);
        let result = match &requirement.all_of {
            Some(all) => authenticator.authenticate_all(all, &headers, now),
            None => authenticator.authenticate(&headers, now),
        };
        if may_refetch && let Err(JwtError::NoMatchingKey { provider }) = result {
            match authenticator.unknown_kid(provider, &EnvoySharedData, now) {
                KidRefetch::Synced => return self.decide(authenticator, false),
                KidRefetch::Fetch(request) => {
                    if self.send_refetch(authenticator, request) {
                        return Action::Pause;
                    }
                }
                KidRefetch::NotNow => {}
            }
        }
        let decision = requirement.decide(result);
        let strip = must_strip(authenticator.config.forward_token, requirement, &decision);
        if zt_proxy::set_filter_state(JWT_DECISION, decision.record(requirement).to_string().as_bytes()).is_err() {
            log::warn!("{FILTER}: cannot record the decision in filter state {JWT_DECISION}");
        }
        match decision {
            Decision::Allow(authenticated) => {
                let cache = if authenticated.cache_hit { self.metrics.cache_hit } else { self.metrics.cache_miss };
                cache.increment();
                if let Err(status) = zt_proxy::set_filter_state(IDENTITY, &authenticated.token.identity_json) {
                    // Later filters would see no identity: refuse rather than pass it on.
                    log::error!("{FILTER}: cannot set filter state {IDENTITY}: {status:?}");
                    let reply = LocalReply::json(500, Vec::new(), &serde_json::json!({"error": "internal"}));
                    zt_proxy::send_reply(self, &reply);
                    return Action::Pause;
                }
                for (header, value) in claim_headers(&authenticator.config.claim_headers, &authenticated.token.identity)
                {
                    self.set_http_request_header(&header, Some(&value));
                }
                if let Some(header) = &authenticator.config.payload_header {
                    let value = payload_header_value(&authenticated.token.identity);
                    self.set_http_request_header(header, Some(&value));
                }
                let action = self.continue_upstream(authenticator, strip, &headers);
                if let Some(profile) = &requirement.next_hop_token
                    && !self.mint_next_hop_token(authenticator, profile, &authenticated.token.identity, now)
                {
                    return Action::Pause;
                }
                self.metrics.allowed.increment();
                action
            }
            Decision::AllowAnonymous { .. } => {
                self.metrics.anonymous.increment();
                self.continue_upstream(authenticator, strip, &headers)
            }
            Decision::AdvisoryDeny(error) => {
                self.metrics.advisory_denied.increment();
                self.metrics.denied(&error);
                log::info!("{FILTER}: advisory: would deny ({}): {error}", requirement.name);
                self.continue_upstream(authenticator, strip, &headers)
            }
            Decision::Deny(error) => self.deny(authenticator, &error),
        }
    }

    fn send_refetch(&mut self, authenticator: &Authenticator, request: FetchRequest) -> bool {
        let sent = jwks::send(self, authenticator, &self.metrics, &request).is_some();
        if sent {
            self.refetch = Some(request);
        }
        sent
    }

    /// The route's requirement; route facts are read only when some route can differ.
    fn requirement<'a>(&self, authenticator: &'a Authenticator) -> Result<&'a Requirement, JwtError> {
        let requirements = &authenticator.config.requirements;
        if !requirements.depend_on_route() {
            return Ok(&requirements.default);
        }
        let route = zt_proxy::property_string(&["xds", "route_name"]);
        let choice = zt_proxy::property_string(&REQUIREMENT_METADATA);
        requirements.select(route.as_deref(), choice.as_deref())
    }

    /// Removes the caller's token from every source when the core says so (`must_strip`): an
    /// unverified token, or one a minted token replaces, never goes upstream.
    fn continue_upstream(&self, authenticator: &Authenticator, strip: bool, headers: &[(String, Vec<u8>)]) -> Action {
        if strip {
            for edit in strip_token_edits(&authenticator.config.token_sources, headers) {
                match edit {
                    HeaderEdit::Remove(name) => zt_proxy::remove_request_header(self, &name),
                    HeaderEdit::Set(name, value) => self.set_http_request_header_bytes(&name, Some(&value)),
                }
            }
        }
        Action::Continue
    }

    /// Sets `authorization` to a token minted for the route's profile. A failure answers 500:
    /// the upstream expects a minted token, and the caller's must not stand in for it.
    fn mint_next_hop_token(
        &self,
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
                self.set_http_request_header("authorization", Some(&format!("Bearer {token}")));
                true
            }
            Err(why) => {
                log::error!("{FILTER}: cannot mint the next-hop token ({profile}): {why}");
                let reply = LocalReply::json(500, Vec::new(), &serde_json::json!({"error": "internal"}));
                zt_proxy::send_reply(self, &reply);
                false
            }
        }
    }

    fn is_jwks_request(&self, jwks_path: &str) -> bool {
        let method = self.get_http_request_header_bytes(":method");
        let path = self.get_http_request_header_bytes(":path");
        let path = path.as_deref().map(|p| p.split(|b| *b == b'?').next().unwrap_or_default());
        method.as_deref() == Some(b"GET".as_slice()) && path == Some(jwks_path.as_bytes())
    }

    fn deny(&self, authenticator: &Authenticator, error: &JwtError) -> Action {
        self.metrics.denied(error);
        if let JwtError::KeysUnavailable { provider } = error {
            log::warn!(
                "{FILTER}: denied: provider {} has no keys yet (its JWKS was never fetched successfully)",
                authenticator.provider_name(*provider)
            );
        } else {
            log::debug!("{FILTER}: denied: {error}");
        }
        zt_proxy::send_reply(self, &denial(error, &authenticator.config.realm));
        Action::Pause
    }
}
