//! The root context: loads and validates the configuration once per VM, and keeps remote
//! keys fresh with a timer that adopts keys other workers fetched and starts the fetches the
//! core says are due. The first fetch is left to the timer, not made in `on_configure`: Envoy
//! also configures a VM on its main thread, whose calls made there may never be answered.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;
use zt_core::jwt::{
    Authenticator, FetchOutcome, FetchRequest, HostVerifier, InModuleVerifier, JwtFilterConfig, SignatureVerifier,
    SignatureVerifierChoice, host_crypto_works,
};
use zt_proxy::{EnvoyHostCrypto, EnvoySharedData};

use crate::FILTER;
use crate::http::JwtAuthHttp;
use crate::jwks;
use crate::metrics::JwtMetrics;

#[derive(Default)]
pub struct JwtAuthRoot {
    authenticator: Option<Rc<Authenticator>>,
    metrics: Option<Rc<JwtMetrics>>,
    /// Fetches sent and not yet answered, by callout token.
    fetches: HashMap<u32, FetchRequest>,
    /// Every remote provider got keys once: the timer is back to its normal period.
    settled: bool,
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
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        // Without a valid configuration Envoy never creates streams; `None` stays closed anyway.
        let authenticator = Rc::clone(self.authenticator.as_ref()?);
        let metrics = Rc::clone(self.metrics.as_ref()?);
        Some(Box::new(JwtAuthHttp { authenticator, metrics, refetch: None }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// How often remote keys are looked after; the schedule itself is the core's. Until every
/// remote provider has keys (requests fail closed meanwhile), the timer runs faster.
const TICK: Duration = Duration::from_secs(1);
const FIRST_KEYS_TICK: Duration = Duration::from_millis(200);

impl JwtAuthRoot {
    fn fetch_due(&mut self, authenticator: &Authenticator, metrics: &JwtMetrics) {
        for request in authenticator.poll_remote_keys(&EnvoySharedData, zt_proxy::now(self)) {
            self.send(authenticator, metrics, request);
        }
    }

    fn send(&mut self, authenticator: &Authenticator, metrics: &JwtMetrics, request: FetchRequest) {
        if let Some(token) = jwks::send(self, authenticator, metrics, &request) {
            self.fetches.insert(token, request);
        }
    }
}
