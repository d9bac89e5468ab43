//! What every filter repeats against the proxy-wasm host, written once: reading headers as
//! bytes, the host clock, filter state, local replies and configuration loading.
//!
//! This is the only shared crate that names `proxy-wasm`; the policy itself lives in
//! `zt-core` and never sees the host.

mod audit;
mod authz;
mod host_crypto;
pub mod http_call;
mod jwt;
mod metrics;
pub mod pipeline;
mod ratelimit;
mod route_metadata;
mod shared_data;

pub use host_crypto::EnvoyHostCrypto;
pub use metrics::Counter;
pub use shared_data::EnvoySharedData;

use std::time::UNIX_EPOCH;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{LogLevel, Status};
use zt_core::address::PEER_ADDRESS_FILTER_STATE;
use zt_core::filter_state::IDENTITY;
use zt_core::jwt::Identity;
use zt_core::{ConfigError, LocalReply, SourceAddresses, UnixSeconds};

/// A module's entry point: `root` makes its root context, the pipeline of its stages
/// ([`pipeline::root`]).
pub fn start(root: fn(u32) -> Box<dyn RootContext>) {
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(root);
}

// Stages read request headers as bytes (`pipeline::Facts::request_headers`): the SDK's `String`
// getters panic on a value that is not UTF-8, which would let a client kill the worker's VM.

/// The host's clock in whole seconds (the harness's test clock in tests, Envoy's in Envoy).
pub fn now(context: &dyn Context) -> UnixSeconds {
    let seconds = context.get_current_time().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    UnixSeconds(seconds)
}

/// The host's clock in milliseconds, for rate arithmetic finer than a second.
pub fn now_ms(context: &dyn Context) -> u64 {
    now_ns(context) / 1_000_000
}

/// The host's clock in nanoseconds.
pub fn now_ns(context: &dyn Context) -> u64 {
    since_epoch_ns(context.get_current_time())
}

/// A host time as nanoseconds since the Unix epoch (0 before it, saturating far after).
pub(crate) fn since_epoch_ns(time: std::time::SystemTime) -> u64 {
    let nanos = time.duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    u64::try_from(nanos).unwrap_or(u64::MAX)
}

/// The identity the JWT filter verified (filter state [`IDENTITY`]), if it let an
/// authenticated caller through. Only that filter can set it: an entry that does not parse
/// means a broken chain, and callers refuse the request.
pub fn verified_identity() -> Result<Option<Identity>, String> {
    match property(&[IDENTITY]) {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| format!("not an identity: {e}")),
    }
}

/// The request's addresses: the connection's direct peer and Envoy's remote address, told
/// apart as [`SourceAddresses`] explains (the peer from filter state
/// [`PEER_ADDRESS_FILTER_STATE`] when a `set_filter_state` filter wrote it, else from
/// `source.address` only when that is the connection's own address).
pub fn source_addresses() -> SourceAddresses {
    let source = property_string(&["source", "address"]);
    let peer = property_string(&["filter_state", PEER_ADDRESS_FILTER_STATE]);
    SourceAddresses::from_envoy(source.as_deref(), peer.as_deref())
}

/// Envoy's name of the route the request matched (`xds.route_name`).
pub fn route_name() -> Option<String> {
    property_string(&["xds", "route_name"])
}

/// Sets an Envoy filter-state entry that later filters of the same request read with
/// `get_property([name])`; clients cannot set it.
/// (The SDK's `Context::set_property` panics on a host error; this returns it.)
pub fn set_filter_state(name: &str, value: &[u8]) -> Result<(), Status> {
    proxy_wasm::hostcalls::set_property(vec![name], Some(value))
}

/// Reads a property (an Envoy attribute such as `["xds", "route_name"]`, or a filter-state
/// entry) as bytes; `None` when absent or unreadable.
pub fn property(path: &[&str]) -> Option<Vec<u8>> {
    proxy_wasm::hostcalls::get_property(path.to_vec()).ok().flatten()
}

/// The same, telling an absent property (`Ok(None)`) from a host that would not answer.
pub fn property_or_error(path: &[&str]) -> Result<Option<Vec<u8>>, Status> {
    proxy_wasm::hostcalls::get_property(path.to_vec())
}

/// A property that holds text, such as a route name or a string leaf of route metadata.
pub fn property_string(path: &[&str]) -> Option<String> {
    property(path).and_then(|bytes| String::from_utf8(bytes).ok())
}

/// A numeric property (`response.code`, `request.duration`, `request.time`): Envoy answers
/// integers, durations and timestamps as 8 bytes, little-endian (durations and timestamps in
/// nanoseconds). Anything else is `None`, as absent.
pub fn property_u64(path: &[&str]) -> Option<u64> {
    let bytes: [u8; 8] = property(path)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// Answers the request locally with a reply built by the core.
pub fn send_reply(http: &dyn HttpContext, reply: &LocalReply) {
    let headers: Vec<(&str, &str)> = reply.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    http.send_http_response(u32::from(reply.status), headers, Some(reply.body.as_bytes()));
}

/// Loads and validates the plugin configuration with `parse`. On failure logs the error, which
/// names the JSON path of the field, and answers `None`: `on_configure` then returns `false`
/// and Envoy refuses to start the filter.
pub fn load_configuration<T>(
    root: &dyn RootContext,
    filter: &str,
    parse: impl FnOnce(&[u8]) -> Result<T, ConfigError>,
) -> Option<T> {
    let bytes = root.get_plugin_configuration().unwrap_or_default();
    match parse(&bytes) {
        Ok(config) => Some(config),
        Err(error) => {
            log::error!("{filter}: invalid configuration: {error}");
            None
        }
    }
}
