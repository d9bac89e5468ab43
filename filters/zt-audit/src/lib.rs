//! The audit filter: a thin proxy-wasm adapter over `zt_core::audit`.
//!
//! It never touches a request: when a stream ends (`on_log`, which Envoy calls for every
//! stream, also those an earlier filter answered or the client abandoned) it reads what Envoy
//! and the other filters know, and writes one record to Envoy's log and to the collector's
//! queue. The queue is drained by a timer on the root context, so the request path never waits
//! for the collector.

mod http;
mod metrics;
mod root;

use proxy_wasm::traits::RootContext;
use proxy_wasm::types::LogLevel;

pub use root::AuditRoot;

/// The name this filter logs under.
pub(crate) const FILTER: &str = "zt-audit";

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(AuditRoot::default()) });
}}
