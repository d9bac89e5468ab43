//! The JWT verification filter: the pipeline of `zt_proxy` with one stage over `zt_core::jwt`.
//!
//! It verifies the bearer token of every request, answers 401 itself when that fails, and
//! hands the verified identity to later filters through Envoy filter state
//! ([`zt_core::filter_state::IDENTITY`]), never through a request header.

proxy_wasm::main! {{
    zt_proxy::start(zt_proxy::pipeline::root::<{ zt_proxy::pipeline::JWT }>);
}}
