//! A proxy-wasm host for tests: loads the compiled filter modules into wasmtime and drives them
//! through the real ABI (0.2.1) with Envoy's semantics, one VM per filter, chained as Envoy
//! chains HTTP filters. See README.md for the API and for where it follows and departs from
//! Envoy.
//!
//! ```no_run
//! use zt_host_tests::{FilterSpec, Harness, Request};
//! let mut envoy = Harness::new();
//! envoy.load(FilterSpec::new("zt_jwt", r#"{"providers": []}"#)).unwrap_err();
//! let exchange = envoy.send(Request::get("/x").header("authorization", "Bearer abc"));
//! assert!(!exchange.reached_upstream());
//! ```

mod callouts;
pub mod envoy_crypto;
mod grpc;
mod harness;
mod layout;
mod metadata;
mod modules;
mod request;
mod services;

use std::path::PathBuf;

pub use callouts::{RecordedCall, ScriptedResponse};
pub use grpc::{RecordedGrpcCall, ScriptedGrpc};
pub use harness::{Exchange, FilterSpec, Harness, Outcome};
pub use layout::Layout;
pub use modules::{module_path, wasm_dir};
pub use proxy_wasm_host::abi::v0_2_1::types::LogLevel;
pub use request::{HostCall, HostCallKind, LocalReply, Request};
pub use services::{LogLine, TestClock};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HarnessError {
    /// The module file is not there: the release modules were not built.
    ModuleMissing(PathBuf),
    /// `on_configure` answered false: Envoy would refuse to start the filter.
    ConfigureRefused { filter: String },
    /// The runtime failed (compilation, instantiation, a trap during start).
    Runtime(String),
}

impl std::fmt::Display for HarnessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HarnessError::ModuleMissing(path) => {
                write!(f, "module {} is missing: build the modules first: make build build-fixtures", path.display())
            }
            HarnessError::ConfigureRefused { filter } => write!(f, "{filter}: on_configure answered false"),
            HarnessError::Runtime(message) => write!(f, "runtime: {message}"),
        }
    }
}

impl std::error::Error for HarnessError {}
