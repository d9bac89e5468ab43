//! The rate-limit filter: a thin proxy-wasm adapter over `zt_core::ratelimit`.
//!
//! Buckets live in Envoy's shared data, so every worker draws from the same ones; global
//! limits are asked of a rate-limit service over gRPC (`dispatch_grpc_call`). A refusal is
//! answered here (429 with `Retry-After`, `RateLimit`, `RateLimit-Policy`); the decision goes
//! to filter state ([`zt_core::filter_state::RATELIMIT_DECISION`]) for the audit filter.

mod http;
mod metrics;
mod root;

use proxy_wasm::traits::RootContext;
use proxy_wasm::types::LogLevel;

pub use root::RateLimitRoot;

/// The name this filter logs under.
pub(crate) const FILTER: &str = "zt-ratelimit";

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(RateLimitRoot::default()) });
}}
