//! The JWT stage: strip what clients must not send, then one decision ([`decide`]) and what it
//! asks for next: a refetch of the keys for an unknown `kid` (the request paused for one
//! rate-limited fetch, then decided again), or a hold until the provider's first keys arrive
//! ([`Waiting`]). Its per-VM service keeps remote keys fresh ([`JwtService`]).

mod decide;
mod jwks;
mod metrics;
mod service;
mod waiting;

use std::rc::Rc;

use proxy_wasm::traits::HttpContext;
use zt_core::LocalReply;
use zt_core::jwt::{
    Authenticator, FetchOutcome, FetchRequest, HostVerifier, InModuleVerifier, JwtFilterConfig, SignatureVerifier,
    SignatureVerifierChoice, host_crypto_works,
};

pub use decide::Attempt;
pub use service::JwtService;

use crate::EnvoyHostCrypto;
use crate::pipeline::{Flow, Handoff, Next, SharedPass};
use decide::{Step, decide, is_jwks_request};
use metrics::JwtMetrics;
use waiting::{MAX_HELD, Waiting};

/// The name this stage logs under.
const FILTER: &str = "zt-jwt";

/// The JWT stage of one VM.
pub struct JwtStage {
    authenticator: Rc<Authenticator>,
    metrics: JwtMetrics,
    /// Requests held for their provider's first keys.
    waiting: Waiting,
}

/// What the JWT stage remembers of one request between callbacks.
#[derive(Default)]
pub struct JwtRequest {
    /// The key refetch this request waits for.
    refetch: Option<FetchRequest>,
}

impl JwtStage {
    pub fn new(config: JwtFilterConfig) -> Self {
        let verifier: Box<dyn SignatureVerifier> = match config.signature_verifier {
            // Probed once per VM: the host must accept a known signature and refuse a bad one.
            SignatureVerifierChoice::Auto if host_crypto_works(&EnvoyHostCrypto) => {
                Box::new(HostVerifier::new(EnvoyHostCrypto))
            }
            SignatureVerifierChoice::Auto | SignatureVerifierChoice::InModule => Box::new(InModuleVerifier),
        };
        let authenticator = Authenticator::new(config, verifier);
        log::info!(
            "{FILTER}: configured {} provider(s); signatures verified {}",
            authenticator.config.providers.len(),
            authenticator.verifier_name()
        );
        let metrics = JwtMetrics::define(authenticator.config.providers.iter().map(|provider| provider.name.as_str()));
        Self { authenticator: Rc::new(authenticator), metrics, waiting: Waiting::default() }
    }

    pub fn authenticator(&self) -> &Authenticator {
        &self.authenticator
    }

    /// The request as it arrives (`First`), or again after a refetch or a hold.
    pub fn on_request(&self, http: &dyn HttpContext, handoff: Handoff, shared: &SharedPass, attempt: Attempt) -> Flow {
        let authenticator = Rc::clone(&self.authenticator);
        if attempt == Attempt::First {
            if let Some(next_hop) = &authenticator.config.next_hop
                && is_jwks_request(&shared.borrow().facts, &next_hop.jwks_path)
            {
                // The public keys of minted tokens: no credential needed to read them.
                crate::send_reply(http, next_hop.jwks_reply());
                return Flow::Stop;
            }
            // Claim headers come from verified tokens only: whatever a client sent is dropped first.
            let facts = &mut shared.borrow_mut().facts;
            for mapping in &authenticator.config.claim_headers {
                facts.remove_request_header(&mapping.header);
            }
            if let Some(header) = &authenticator.config.payload_header {
                facts.remove_request_header(header);
            }
        }
        self.step(http, handoff, shared, attempt)
    }

    /// The answer to this request's key refetch: decides again with the keys there are.
    pub fn on_refetch_answer(
        &self,
        http: &dyn HttpContext,
        handoff: Handoff,
        shared: &SharedPass,
        body_size: usize,
    ) -> Flow {
        let Some(request) = shared.borrow_mut().jwt.refetch.take() else { return Flow::Stop };
        let outcome = jwks::answer(http, &self.authenticator, &self.metrics, &request, body_size);
        if let FetchOutcome::Next(next) = outcome
            && self.send_refetch(http, shared, next)
        {
            return Flow::Stop;
        }
        self.step(http, handoff, shared, Attempt::AfterRefetch)
    }

    /// The request's stream ended: a held request is not woken any more.
    pub fn on_done(&self, context_id: u32) {
        self.waiting.forget(context_id);
    }

    /// Decides, and carries out what the decision asks for next.
    fn step(&self, http: &dyn HttpContext, handoff: Handoff, shared: &SharedPass, attempt: Attempt) -> Flow {
        let step = decide(http, &self.authenticator, &self.metrics, handoff, &mut shared.borrow_mut(), attempt);
        match step {
            Step::Done(Flow::Continue) if shared.borrow().facts.header_edit_failed() => {
                // A claim header not replaced or a token not stripped must not reach the upstream.
                let reply = LocalReply::json(500, Vec::new(), &serde_json::json!({"error": "internal"}));
                crate::send_reply(http, &reply);
                Flow::Stop
            }
            Step::Done(flow) => flow,
            Step::Refetch(request) => {
                if self.send_refetch(http, shared, request) {
                    shared.borrow_mut().next = Next::Jwt(Attempt::AfterRefetch);
                    Flow::Stop
                } else {
                    self.step(http, handoff, shared, Attempt::AfterRefetch)
                }
            }
            Step::Hold { provider, until_ms } => {
                let context_id = shared.borrow().context_id;
                if self.waiting.hold(context_id, Rc::clone(shared), provider, until_ms) {
                    self.metrics.held_for_keys.increment();
                    shared.borrow_mut().next = Next::Jwt(Attempt::Woken);
                    Flow::Stop
                } else {
                    log::warn!("{FILTER}: {MAX_HELD} requests already wait for keys: this one is decided now");
                    self.step(http, handoff, shared, Attempt::Woken)
                }
            }
        }
    }

    fn send_refetch(&self, http: &dyn HttpContext, shared: &SharedPass, request: FetchRequest) -> bool {
        let sent = jwks::send(http, &self.authenticator, &self.metrics, &request).is_some();
        if sent {
            shared.borrow_mut().jwt.refetch = Some(request);
        }
        sent
    }
}
