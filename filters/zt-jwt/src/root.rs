//! The root context: loads and validates the configuration once per VM.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;
use zt_core::jwt::{
    Authenticator, HostVerifier, InModuleVerifier, JwtFilterConfig, SignatureVerifier, SignatureVerifierChoice,
    host_crypto_works,
};
use zt_proxy::EnvoyHostCrypto;

use crate::FILTER;
use crate::http::JwtAuthHttp;
use crate::metrics::JwtMetrics;

#[derive(Default)]
pub struct JwtAuthRoot {
    authenticator: Option<Rc<Authenticator>>,
    metrics: Option<Rc<JwtMetrics>>,
}

impl Context for JwtAuthRoot {}

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
        self.authenticator = Some(Rc::new(authenticator));
        self.metrics = Some(Rc::new(JwtMetrics::define()));
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        // Without a valid configuration Envoy never creates streams; `None` stays closed anyway.
        let authenticator = Rc::clone(self.authenticator.as_ref()?);
        let metrics = Rc::clone(self.metrics.as_ref()?);
        Some(Box::new(JwtAuthHttp { authenticator, metrics }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
