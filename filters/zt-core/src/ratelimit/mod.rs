//! Rate limiting: token buckets per identity, route or address, exact across Envoy's workers
//! (buckets in shared memory, CAS-updated), and optionally counted by a rate-limit service
//! (Envoy's RLS protocol: Limitador, envoyproxy/ratelimit) shared by several Envoys.
//!
//! Where each rule lives:
//! - the bucket arithmetic: `bucket.rs`; the shared table of buckets: `table.rs`;
//! - what a bucket is per (the key): `key.rs`;
//! - which limits apply to a request: the shared route selection (`crate::routes`);
//! - how the limits of a request combine into one decision: `decide.rs`;
//! - what the client is told (429, `RateLimit`, `RateLimit-Policy`, `Retry-After`):
//!   `response.rs`;
//! - the rate-limit service's messages: `rls.rs`.

use std::net::IpAddr;

use crate::jwt::Identity;

pub mod bucket;
mod compile;
mod config;
mod decide;
mod key;
mod response;
pub mod rls;
pub mod table;

pub use compile::{Global, RateLimitConfig};
pub use decide::{Decision, DecisionRecord, GlobalAnswer, LimitStatus, Pending, Reason, Step, Verdict};
pub use response::{admitted_headers, refusal};

/// What the adapter read of a request. Facts the configuration does not read
/// ([`RateLimitConfig::inputs`]) may be left empty.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    pub route_name: Option<&'a str>,
    /// `filter_metadata.zt.ratelimit_route` of the route: names a route rule.
    pub route_choice: Option<&'a str>,
    pub authority: Option<&'a str>,
    pub method: &'a str,
    pub path: &'a str,
    /// The headers named in [`Inputs::headers`], lower-case names.
    pub headers: &'a [(String, Vec<u8>)],
    /// The connection's direct peer ([`crate::address::SourceAddresses::peer`]); `None` when
    /// unknown, and then `source_ip` and `source_prefix` key nothing.
    pub source: Option<IpAddr>,
    /// Envoy's remote address ([`crate::address::SourceAddresses::remote`]), for `remote_ip`.
    pub remote: Option<IpAddr>,
    pub identity: Option<&'a Identity>,
    /// The host's clock in milliseconds.
    pub now_ms: u64,
}

/// Which request facts the configuration reads, so that the adapter reads only those. Route
/// metadata (`filter_metadata.zt.ratelimit_route`) is read always: a route naming a rule the
/// configuration lacks is refused also when it defines no rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    pub route_name: bool,
    pub authority: bool,
    /// Header names some key uses.
    pub headers: Vec<String>,
    /// The direct peer's address: some key is `source_ip` or `source_prefix`.
    pub source: bool,
    /// The remote address: some key is `remote_ip`.
    pub remote: bool,
    pub identity: bool,
}

#[cfg(test)]
mod tests;
