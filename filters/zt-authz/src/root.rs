//! The root context: loads and validates the configuration once per VM. A configuration error
//! (it names the JSON path) makes `on_configure` answer `false`, and Envoy refuses the filter.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;
use zt_core::authz::AuthzConfig;

use crate::FILTER;
use crate::http::AuthzHttp;
use crate::metrics::AuthzMetrics;

#[derive(Default)]
pub struct AuthzRoot {
    config: Option<Rc<AuthzConfig>>,
    metrics: Option<Rc<AuthzMetrics>>,
}

impl Context for AuthzRoot {}

impl RootContext for AuthzRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let Some(config) = zt_proxy::load_configuration(self, FILTER, AuthzConfig::from_json) else {
            return false;
        };
        log::info!("{FILTER}: configured{}", if config.advisory() { " (advisory: nothing is denied)" } else { "" });
        self.config = Some(Rc::new(config));
        self.metrics = Some(Rc::new(AuthzMetrics::define()));
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let config = Rc::clone(self.config.as_ref()?);
        let metrics = Rc::clone(self.metrics.as_ref()?);
        Some(Box::new(AuthzHttp { config, metrics }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
