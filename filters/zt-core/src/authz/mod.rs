//! Authorization: the pure logic behind the authorization filter.
//!
//! [`AuthzConfig::from_json`] checks the configuration (Istio `AuthorizationPolicy` rules plus
//! our own conditions, and route rules choosing which policies apply);
//! [`AuthzConfig::authorize`] takes the [`RequestFacts`] the adapter read and answers a
//! [`Decision`]; [`denial`] turns a denial into the response. Default deny. Nothing here reads
//! the host, a clock or a header on its own: every fact comes in as a value.

mod cidr;
mod compile;
mod condition;
mod condition_json;
mod config;
mod decide;
mod istio;
pub(crate) mod matchers;
pub(crate) mod path;
mod response;
mod time_window;

use std::net::IpAddr;

pub use compile::AuthzConfig;
pub use decide::{AuthzReason, Decision, DecisionRecord, Verdict};
pub use response::denial;

use crate::jwt::Identity;
use crate::time::UnixSeconds;

/// The policy id of a decision no policy took: nothing allowed the request.
pub const DEFAULT_DENY: &str = "default-deny";

/// What the adapter read about one request. Facts that [`AuthzConfig::inputs`] says no policy
/// reads may be left `None` (or empty) to spare host calls.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    /// Envoy's route name (`xds.route_name`).
    pub route_name: Option<&'a str>,
    /// The route rule named by route metadata (`filter_metadata.zt.authz_route`). `None` when
    /// the route has no such metadata; any other value must name a rule, or the request is
    /// denied.
    pub route_choice: Option<&'a str>,
    /// `:authority`.
    pub authority: Option<&'a str>,
    /// `:method`.
    pub method: &'a str,
    /// `:path`, query and fragment included: they are cut off here before matching.
    pub path: &'a str,
    /// Request headers, names in lowercase, values as bytes.
    pub headers: &'a [(String, Vec<u8>)],
    /// The direct peer of the connection ([`crate::address::SourceAddresses::peer`]), never an
    /// address taken from `X-Forwarded-For`. `None` when unknown: a configuration that reads it
    /// ([`Inputs::source`]) then denies with `peer_address_unknown`.
    pub source: Option<IpAddr>,
    /// Envoy's downstream remote address ([`crate::address::SourceAddresses::remote`]): the
    /// client behind the proxies the listener trusts (`xff_num_trusted_hops`).
    pub remote: Option<IpAddr>,
    /// The mTLS peer certificate's URI SAN (`connection.uri_san_peer_certificate`), e.g.
    /// `spiffe://cluster.local/ns/shop/sa/web`.
    pub peer_uri_san: Option<&'a str>,
    /// The identity the JWT filter verified (filter state [`crate::filter_state::IDENTITY`]).
    pub identity: Option<&'a Identity>,
    pub now: UnixSeconds,
}

impl<'a> RequestFacts<'a> {
    /// A request with only its method, path and time known; set the other fields as read.
    pub fn new(method: &'a str, path: &'a str, now: UnixSeconds) -> Self {
        Self {
            route_name: None,
            route_choice: None,
            authority: None,
            method,
            path,
            headers: &[],
            source: None,
            remote: None,
            peer_uri_san: None,
            identity: None,
            now,
        }
    }
}

impl Inputs {
    /// Whether the identity must be read: for identity conditions, and for peer conditions,
    /// which a verified JWT-SVID satisfies as an mTLS peer would.
    pub fn reads_identity(&self) -> bool {
        self.identity || self.peer
    }
}

/// Which request facts the configuration reads, so that the adapter reads only those from the
/// host. `:method`, `:path` and route metadata (`filter_metadata.zt.authz_route`: a route
/// naming a rule the configuration lacks is refused also when it defines no rules) are always
/// needed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Inputs {
    /// Envoy's route name: some rule lists `route_names`.
    pub route_name: bool,
    /// `:authority`: some rule or policy constrains hosts.
    pub authority: bool,
    /// Request headers: some policy has a header condition.
    pub headers: bool,
    /// The direct peer's address: some policy has `ipBlocks`, `source.ip` or `source_ip`.
    pub source: bool,
    /// The remote address: some policy has `remoteIpBlocks`, `remote.ip` or `remote_ip`.
    pub remote: bool,
    /// The peer's URI SAN: some policy has a principal, namespace or peer condition. These
    /// read the identity too, for a JWT-SVID's SPIFFE ID ([`Inputs::reads_identity`]).
    pub peer: bool,
    /// The verified identity: some policy reads it.
    pub identity: bool,
}

#[cfg(test)]
mod tests;
