//! The root context: loads and validates the configuration once per VM, and keeps remote
//! keys fresh with a timer that adopts keys other workers fetched and starts the fetches the
//! core says are due. The first fetch is left to the timer, not made in `on_configure`: Envoy
//! also configures a VM on its main thread, whose calls made there may never be answered.
//! Requests held for first keys ([`Waiting`]) are decided here once keys arrive or their wait
//! is over.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};
use zt_core::jwt::{
    Authenticator, FetchOutcome, FetchRequest, HostVerifier, InModuleVerifier, JwtFilterConfig, SignatureVerifier,
    SignatureVerifierChoice, host_crypto_works,
};
use zt_proxy::{EnvoyHostCrypto, EnvoySharedData};

use crate::FILTER;
use crate::decide::{Attempt, Step, decide};
use crate::http::JwtAuthHttp;
use crate::jwks;
use crate::metrics::JwtMetrics;
use crate::waiting::Waiting;

#[derive(Default)]
pub struct JwtAuthRoot {
    /// This root context's id: the effective context to return to after deciding held
    /// requests in theirs.
    id: u32,
    authenticator: Option<Rc<Authenticator>>,
    metrics: Option<Rc<JwtMetrics>>,
    /// Fetches sent and not yet answered, by callout token.
    fetches: HashMap<u32, FetchRequest>,
    /// Every remote provider got keys once: the timer is back to its normal period.
    settled: bool,
    /// Requests held for their provider's first keys.
    waiting: Rc<Waiting>,
}

impl Context for JwtAuthRoot {
    fn on_http_call_response(&mut self, token_id: u32, _num_headers: usize, body_size: usize, _num_trailers: usize) {
        let (Some(request), Some(authenticator), Some(metrics)) =
            (self.fetches.remove(&token_id), self.authenticator.clone(), self.metrics.clone())
        else {
            return;
        };
        if let FetchOutcome::Next(next) = jwks::answer(self, &authenticator, &metrics, &request, body_size) {
            self.send(&authenticator, &metrics, next);
        }
        self.wake_held(&authenticator, &metrics);
    }
}

impl RootContext for JwtAuthRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let Some(config) = zt_proxy::load_configuration(self, FILTER, JwtFilterConfig::from_json) else {
            return false;
        };
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
        let authenticator = Rc::new(authenticator);
        let metrics = Rc::new(JwtMetrics::define());
        if authenticator.has_remote_keys() {
            self.set_tick_period(FIRST_KEYS_TICK);
        }
        self.authenticator = Some(authenticator);
        self.metrics = Some(metrics);
        true
    }

    fn on_tick(&mut self) {
        if let (Some(authenticator), Some(metrics)) = (self.authenticator.clone(), self.metrics.clone()) {
            self.fetch_due(&authenticator, &metrics);
            if !self.settled && authenticator.every_remote_provider_has_keys() {
                self.settled = true;
                self.set_tick_period(TICK);
            }
            self.wake_held(&authenticator, &metrics);
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        // Without a valid configuration Envoy never creates streams; `None` stays closed anyway.
        let authenticator = Rc::clone(self.authenticator.as_ref()?);
        let metrics = Rc::clone(self.metrics.as_ref()?);
        let waiting = Rc::clone(&self.waiting);
        Some(Box::new(JwtAuthHttp { context_id, authenticator, metrics, waiting, refetch: None }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// How often remote keys are looked after; the schedule itself is the core's. Until every
/// remote provider has keys (requests are held meanwhile), the timer runs faster: a held
/// request in a worker that did not fetch waits at most this long after another published.
const TICK: Duration = Duration::from_secs(1);
const FIRST_KEYS_TICK: Duration = Duration::from_millis(100);

impl JwtAuthRoot {
    pub fn new(id: u32) -> Self {
        Self { id, ..Self::default() }
    }

    fn fetch_due(&mut self, authenticator: &Authenticator, metrics: &JwtMetrics) {
        for request in authenticator.poll_remote_keys(&EnvoySharedData, zt_proxy::now(self)) {
            self.send(authenticator, metrics, request);
        }
    }

    /// Decides the held requests whose provider has keys now (or whose fetch failed here) or
    /// whose wait is over, each in its own context: `proxy_set_effective_context` makes every
    /// host call of [`decide`] act for that request, as if its own context made it. Called last
    /// in a root callback, and returns to the root context before it ends.
    fn wake_held(&self, authenticator: &Authenticator, metrics: &JwtMetrics) {
        if self.waiting.is_empty() {
            return;
        }
        let due = self.waiting.take_due(zt_proxy::now_ms(self), |provider| authenticator.keys_settled(provider));
        for context_id in due {
            // A stream that ended meanwhile is gone: nothing to decide.
            if hostcalls::set_effective_context(context_id).is_err() {
                continue;
            }
            if let Step::Done(Action::Continue) = decide(&HeldRequest, authenticator, metrics, Attempt::Woken) {
                let _ = hostcalls::resume_http_request();
            }
        }
        // Back to the root: a host call made for the root later in this callback (a timer
        // period, a fetch) must not land on a request's context.
        if hostcalls::set_effective_context(self.id).is_err() {
            log::error!("{FILTER}: cannot return to the root context after deciding held requests");
        }
    }

    fn send(&mut self, authenticator: &Authenticator, metrics: &JwtMetrics, request: FetchRequest) {
        if let Some(token) = jwks::send(self, authenticator, metrics, &request) {
            self.fetches.insert(token, request);
        }
    }
}

/// The HTTP context in effect after `proxy_set_effective_context`: the SDK's request calls go
/// to the host for whichever context is in effect, so this stands for the held request.
struct HeldRequest;

impl Context for HeldRequest {}
impl HttpContext for HeldRequest {}
