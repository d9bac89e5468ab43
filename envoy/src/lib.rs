//! Test bed for running the filters in a real Envoy (layer 3 of the test suite, and `make demo`).
//!
//! It renders the Envoy configurations in `envoy/configs/`, runs a local echo upstream, starts
//! Envoy on loopback ports under a guard that always kills it, speaks just enough HTTP/1.1 to
//! assert answers, and mints JWTs with freshly generated keys. It never touches shipped filter
//! code: the filters are loaded as the compiled `.wasm` files Envoy itself would load.

pub mod bench;
pub mod collector;
pub mod demo;
mod echo;
mod error;
pub mod full_chain;
mod http;
pub mod otlp;
mod paths;
mod process;
pub mod ratelimit;
mod render;
mod tokens;
pub mod zero_trust;

pub use echo::{EchoUpstream, Echoed};
pub use error::BedError;
pub use http::{Response, get};
pub use paths::{configs_dir, envoy_binary, shipped_configs, wasm_dir, workspace_root, ztctl};
pub use process::{Envoy, Heap, Started, Surroundings, validate, validate_with};
pub(crate) use render::wasm_filter;
pub use render::{Ports, render, render_with, template, with_the_suite, yaml_string};
pub use tokens::{
    AUDIENCE, Alg, ISSUER, KeySet, REALM, SUBJECT, TokenLifetime, jwt_oidc_plugin_config, jwt_plugin_config, tamper,
    write_private,
};
