//! The audit filter: the pipeline of `zt_proxy` with one stage over `zt_core::audit`.
//!
//! It never touches a request: when a stream ends (`on_log`, which Envoy calls for every
//! stream, also those an earlier filter answered or the client abandoned) it reads what Envoy
//! and the other filters know, and writes one record to Envoy's log and to the collector's
//! queue. The queue is drained by a timer on the root context, so the request path never waits
//! for the collector.

proxy_wasm::main! {{
    zt_proxy::start(zt_proxy::pipeline::root::<{ zt_proxy::pipeline::AUDIT }>);
}}
