//! The authorization filter: a thin proxy-wasm adapter over `zt_core::authz`.
//!
//! It decides every request from the verified identity the JWT filter left in filter state
//! ([`zt_core::filter_state::IDENTITY`]), the mTLS peer, the source address and the request
//! itself; answers 401/403 itself on a denial; and records the decision in filter state
//! ([`zt_core::filter_state::AUTHZ_DECISION`]) for the audit filter. Default deny.

mod http;
mod metrics;
mod root;

use proxy_wasm::traits::RootContext;
use proxy_wasm::types::LogLevel;

pub use root::AuthzRoot;

/// The name this filter logs under.
pub(crate) const FILTER: &str = "zt-authz";

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(AuthzRoot::default()) });
}}
