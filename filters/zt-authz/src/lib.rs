//! The authorization filter: the pipeline of `zt_proxy` with one stage over `zt_core::authz`.
//!
//! It decides every request from the verified identity the JWT filter left in filter state
//! ([`zt_core::filter_state::IDENTITY`]), the mTLS peer, the source address and the request
//! itself; answers 401/403 itself on a denial; and records the decision in filter state
//! ([`zt_core::filter_state::AUTHZ_DECISION`]) for the audit filter. Default deny.

proxy_wasm::main! {{
    zt_proxy::start(zt_proxy::pipeline::root::<{ zt_proxy::pipeline::AUTHZ }>);
}}
