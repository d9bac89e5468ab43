//! The rate-limit filter: the pipeline of `zt_proxy` with one stage over `zt_core::ratelimit`.
//!
//! Buckets live in Envoy's shared data, so every worker draws from the same ones; global
//! limits are asked of a rate-limit service over gRPC (`dispatch_grpc_call`). A refusal is
//! answered here (429 with `Retry-After`, `RateLimit`, `RateLimit-Policy`); the decision goes
//! to filter state ([`zt_core::filter_state::RATELIMIT_DECISION`]) for the audit filter.

proxy_wasm::main! {{
    zt_proxy::start(zt_proxy::pipeline::root::<{ zt_proxy::pipeline::RATELIMIT }>);
}}
