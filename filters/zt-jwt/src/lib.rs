//! The JWT verification filter: a thin proxy-wasm adapter over `zt_core::jwt`.
//!
//! It verifies the bearer token of every request, answers 401 itself when that fails, and
//! hands the verified identity to later filters through Envoy filter state
//! ([`zt_core::filter_state::IDENTITY`]), never through a request header.

mod decide;
mod http;
mod jwks;
mod metrics;
mod root;
mod waiting;

use proxy_wasm::traits::RootContext;
use proxy_wasm::types::LogLevel;

pub use root::JwtAuthRoot;

/// The name this filter logs under.
pub(crate) const FILTER: &str = "zt-jwt";

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> { Box::new(JwtAuthRoot::new(context_id)) });
}}
