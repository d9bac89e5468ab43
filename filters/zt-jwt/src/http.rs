//! The per-request context: one core call, then continue or answer.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use zt_core::LocalReply;
use zt_core::filter_state::IDENTITY;
use zt_core::jwt::{Authenticator, denial};

use crate::FILTER;
use crate::metrics::JwtMetrics;

pub struct JwtAuthHttp {
    pub(crate) authenticator: Rc<Authenticator>,
    pub(crate) metrics: Rc<JwtMetrics>,
}

impl Context for JwtAuthHttp {}

impl HttpContext for JwtAuthHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let headers = self.get_http_request_headers_bytes();
        let config = &self.authenticator.config;
        match self.authenticator.authenticate(&headers, zt_proxy::now(self)) {
            Ok(authenticated) => {
                let cache = if authenticated.cache_hit { self.metrics.cache_hit } else { self.metrics.cache_miss };
                cache.increment();
                if let Err(status) = zt_proxy::set_filter_state(IDENTITY, &authenticated.token.identity_json) {
                    // Later filters would see no identity: refuse rather than pass it on.
                    log::error!("{FILTER}: cannot set filter state {IDENTITY}: {status:?}");
                    zt_proxy::send_reply(
                        self,
                        &LocalReply::json(500, Vec::new(), &serde_json::json!({"error": "internal"})),
                    );
                    return Action::Pause;
                }
                if !config.forward_token {
                    for header in config.token_headers() {
                        zt_proxy::remove_request_header(self, header);
                    }
                }
                self.metrics.allowed.increment();
                Action::Continue
            }
            Err(error) => {
                self.metrics.denied(&error);
                log::debug!("{FILTER}: denied: {error}");
                zt_proxy::send_reply(self, &denial(&error, &config.realm));
                Action::Pause
            }
        }
    }
}
