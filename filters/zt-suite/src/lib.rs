//! The whole suite as one filter: the pipeline of `zt_proxy` with every stage a configuration
//! section names (`jwt`, `authz`, `ratelimit`, `audit`), run in one HTTP context. Identity and
//! decisions pass between the stages in memory, never written to filter state and read back
//! (one entry is written for Envoy's own filters when the configuration asks), and each request
//! fact is read from Envoy by the stages that need it.

proxy_wasm::main! {{
    zt_proxy::start(zt_proxy::pipeline::root::<{ zt_proxy::pipeline::SUITE }>);
}}
