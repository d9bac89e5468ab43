//! The per-request context: strip what clients must not send, then one decision
//! ([`decide`]) and what it asks for next: a refetch of the keys for an unknown `kid` (the
//! request paused for one rate-limited fetch, then decided again), or a hold until the
//! provider's first keys arrive ([`Waiting`]).

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use zt_core::jwt::{Authenticator, FetchOutcome, FetchRequest};

use crate::FILTER;
use crate::decide::{Attempt, Step, decide, is_jwks_request};
use crate::jwks;
use crate::metrics::JwtMetrics;
use crate::waiting::{MAX_HELD, Waiting};

pub struct JwtAuthHttp {
    pub(crate) context_id: u32,
    pub(crate) authenticator: Rc<Authenticator>,
    pub(crate) metrics: Rc<JwtMetrics>,
    pub(crate) waiting: Rc<Waiting>,
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
        if self.step(Attempt::AfterRefetch) == Action::Continue {
            self.resume_http_request();
        }
    }

    fn on_done(&mut self) -> bool {
        self.waiting.forget(self.context_id);
        true
    }
}

impl HttpContext for JwtAuthHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let authenticator = Rc::clone(&self.authenticator);
        if let Some(next_hop) = &authenticator.config.next_hop
            && is_jwks_request(self, &next_hop.jwks_path)
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
        self.step(Attempt::First)
    }
}

impl JwtAuthHttp {
    /// Decides, and carries out what the decision asks for next.
    fn step(&mut self, attempt: Attempt) -> Action {
        let authenticator = Rc::clone(&self.authenticator);
        match decide(self, &authenticator, &self.metrics, attempt) {
            Step::Done(action) => action,
            Step::Refetch(request) => {
                if self.send_refetch(&authenticator, request) {
                    Action::Pause
                } else {
                    self.step(Attempt::AfterRefetch)
                }
            }
            Step::Hold { provider, until_ms } => {
                if self.waiting.hold(self.context_id, provider, until_ms) {
                    self.metrics.held_for_keys.increment();
                    Action::Pause
                } else {
                    log::warn!("{FILTER}: {MAX_HELD} requests already wait for keys: this one is decided now");
                    self.step(Attempt::Woken)
                }
            }
        }
    }

    fn send_refetch(&mut self, authenticator: &Authenticator, request: FetchRequest) -> bool {
        let sent = jwks::send(self, authenticator, &self.metrics, &request).is_some();
        if sent {
            self.refetch = Some(request);
        }
        sent
    }
}
