//! Policy logic of the zero-trust filter suite, free of any proxy-wasm dependency.
//!
//! Every decision lives here so that it is unit-tested natively and as Wasm; the filter crates
//! only read inputs from the host, call one function of this crate and map its answer back.
//! Time comes in as a value ([`UnixSeconds`]); nothing here reads a clock, the network or a
//! random source on its own.
#![forbid(unsafe_code)]

pub mod address;
pub mod audit;
pub mod authz;
pub mod config_error;
pub mod filter_state;
pub mod identity_source;
pub mod jwt;
pub mod ratelimit;
pub mod reply;
mod routes;
pub mod secrets;
mod shared_name;
pub mod shared_store;
pub(crate) mod spiffe;
pub mod suite;
pub mod time;

pub use address::{Peer, PeerSource, SourceAddresses};
pub use config_error::ConfigError;
pub use reply::LocalReply;
pub use shared_store::{SharedStore, StoreError};
pub use time::UnixSeconds;
