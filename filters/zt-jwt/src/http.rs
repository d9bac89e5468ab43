//! The per-request context: pick the route's requirement, one core call, then continue or
//! answer.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use zt_core::LocalReply;
use zt_core::filter_state::{IDENTITY, JWT_DECISION};
use zt_core::jwt::{Authenticator, Decision, JwtError, Requirement, claim_headers, denial};

use crate::FILTER;
use crate::metrics::JwtMetrics;

/// Where a route names its requirement: `metadata: {filter_metadata: {zt: {jwt_requirement: NAME}}}`.
const REQUIREMENT_METADATA: [&str; 5] = ["xds", "route_metadata", "filter_metadata", "zt", "jwt_requirement"];

pub struct JwtAuthHttp {
    pub(crate) authenticator: Rc<Authenticator>,
    pub(crate) metrics: Rc<JwtMetrics>,
}

impl Context for JwtAuthHttp {}

impl HttpContext for JwtAuthHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let authenticator = Rc::clone(&self.authenticator);
        // Claim headers come from verified tokens only: whatever a client sent is dropped first.
        for mapping in &authenticator.config.claim_headers {
            zt_proxy::remove_request_header(self, &mapping.header);
        }
        let requirement = match self.requirement(&authenticator) {
            Ok(requirement) => requirement,
            Err(error) => return self.deny(&authenticator, &error),
        };
        let headers = self.get_http_request_headers_bytes();
        let decision = requirement.decide(authenticator.authenticate(&headers, zt_proxy::now(self)));
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
                self.metrics.allowed.increment();
                self.continue_upstream(&authenticator)
            }
            Decision::AllowAnonymous { .. } => {
                self.metrics.anonymous.increment();
                self.continue_upstream(&authenticator)
            }
            Decision::AdvisoryDeny(error) => {
                self.metrics.advisory_denied.increment();
                self.metrics.denied(&error);
                log::info!("{FILTER}: advisory: would deny ({}): {error}", requirement.name);
                self.continue_upstream(&authenticator)
            }
            Decision::Deny(error) => self.deny(&authenticator, &error),
        }
    }
}

impl JwtAuthHttp {
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

    fn continue_upstream(&self, authenticator: &Authenticator) -> Action {
        if !authenticator.config.forward_token {
            for header in authenticator.config.token_headers() {
                zt_proxy::remove_request_header(self, header);
            }
        }
        Action::Continue
    }

    fn deny(&self, authenticator: &Authenticator, error: &JwtError) -> Action {
        self.metrics.denied(error);
        log::debug!("{FILTER}: denied: {error}");
        zt_proxy::send_reply(self, &denial(error, &authenticator.config.realm));
        Action::Pause
    }
}
