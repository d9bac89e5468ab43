//! Where a request came from, in the two meanings a policy may want, told apart so that a
//! client's `X-Forwarded-For` can never pass for the connection it arrived on.
//!
//! - The **peer**: the direct peer of the downstream connection (Istio's `source.ip`,
//!   `ipBlocks`). Only the connection gives it.
//! - The **remote** address: Envoy's downstream remote address, which the listener derives from
//!   `X-Forwarded-For` (or an original-IP detection extension) according to `use_remote_address`
//!   and `xff_num_trusted_hops` (Istio's `remote.ip`, `remoteIpBlocks`). It is only as
//!   trustworthy as those settings: with Envoy's default (`use_remote_address: false`) it is
//!   whatever the client wrote last in `X-Forwarded-For`.
//!
//! What Envoy 1.40 gives a Wasm filter (checked on the real binary; see the README of zt-authz):
//! `source.address` is the remote address; when the listener took it from a header it carries
//! port 0 (`10.1.2.3:0`), and an `X-Forwarded-For` entry with a port is not taken at all. A
//! connection's address always has a non-zero port. No attribute names the direct peer, but
//! Envoy's `set_filter_state` filter can store `%DOWNSTREAM_DIRECT_REMOTE_ADDRESS%` under
//! [`PEER_ADDRESS_FILTER_STATE`], which no client can set; the filters read it first.

use std::net::{IpAddr, SocketAddr};

/// The filter-state entry (`envoy.string`) holding the connection's direct peer, written by
/// Envoy's `set_filter_state` HTTP filter from `%DOWNSTREAM_DIRECT_REMOTE_ADDRESS%`.
pub const PEER_ADDRESS_FILTER_STATE: &str = "zt.peer_address";

/// Where the direct peer's address came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerSource {
    /// The filter-state entry [`PEER_ADDRESS_FILTER_STATE`].
    FilterState,
    /// `source.address` with a port: the connection's own address, not a header's.
    Connection,
}

/// The direct peer of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub ip: IpAddr,
    /// `None` when the filter-state entry held an address without a port.
    pub port: Option<u16>,
    pub from: PeerSource,
}

/// The request's addresses as the proxy reported them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SourceAddresses {
    /// The direct peer; `None` when the proxy gave no address known to be the connection's
    /// (the remote address came from a header and no filter state names the peer). A policy
    /// on the peer must then refuse to decide, never fall back to the remote address.
    pub peer: Option<Peer>,
    /// Envoy's downstream remote address (any port), `None` when absent or not an IP address
    /// (a Unix socket, an internal listener).
    pub remote: Option<IpAddr>,
}

impl SourceAddresses {
    /// From Envoy's answers: `source.address` and the [`PEER_ADDRESS_FILTER_STATE`] entry, each
    /// `ip:port`, `[v6]:port` or a bare address.
    pub fn from_envoy(source_address: Option<&str>, peer_filter_state: Option<&str>) -> Self {
        let remote = source_address.and_then(parse);
        let from_state = peer_filter_state.and_then(parse).map(|(ip, port)| Peer {
            ip,
            port: port.filter(|p| *p != 0),
            from: PeerSource::FilterState,
        });
        // Port 0 (or none) is how Envoy marks an address it read from a header.
        let from_connection = remote.and_then(|(ip, port)| match port {
            Some(port) if port != 0 => Some(Peer { ip, port: Some(port), from: PeerSource::Connection }),
            _ => None,
        });
        Self { peer: from_state.or(from_connection), remote: remote.map(|(ip, _)| ip) }
    }

    /// The direct peer's IP address, if known.
    pub fn peer_ip(&self) -> Option<IpAddr> {
        self.peer.map(|peer| peer.ip)
    }
}

fn parse(text: &str) -> Option<(IpAddr, Option<u16>)> {
    let text = text.trim();
    if let Ok(socket) = text.parse::<SocketAddr>() {
        return Some((socket.ip(), Some(socket.port())));
    }
    text.parse::<IpAddr>().ok().map(|ip| (ip, None))
}

#[cfg(test)]
mod tests {
    use wasm_bindgen_test::wasm_bindgen_test;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_connection_address_is_the_peer_and_the_remote_address() {
        let addresses = SourceAddresses::from_envoy(Some("127.0.0.1:45710"), None);
        assert_eq!(addresses.peer, Some(Peer { ip: ip("127.0.0.1"), port: Some(45710), from: PeerSource::Connection }));
        assert_eq!(addresses.remote, Some(ip("127.0.0.1")));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_header_derived_address_is_never_the_peer() {
        // Envoy 1.40 with `use_remote_address: false` and `X-Forwarded-For: 10.1.2.3`.
        let addresses = SourceAddresses::from_envoy(Some("10.1.2.3:0"), None);
        assert_eq!(addresses.peer, None);
        assert_eq!(addresses.remote, Some(ip("10.1.2.3")));
        let bare = SourceAddresses::from_envoy(Some("10.1.2.3"), None);
        assert_eq!(bare.peer, None);
        assert_eq!(bare.remote, Some(ip("10.1.2.3")));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn the_filter_state_entry_names_the_peer_whatever_the_remote_address() {
        let addresses = SourceAddresses::from_envoy(Some("10.1.2.3:0"), Some("127.0.0.1:5000"));
        assert_eq!(addresses.peer, Some(Peer { ip: ip("127.0.0.1"), port: Some(5000), from: PeerSource::FilterState }));
        assert_eq!(addresses.remote, Some(ip("10.1.2.3")));
        let v6 = SourceAddresses::from_envoy(Some("[2001:db8::1]:443"), Some("[2001:db8::2]:5000"));
        assert_eq!(v6.peer_ip(), Some(ip("2001:db8::2")));
        let bare = SourceAddresses::from_envoy(None, Some("192.0.2.7"));
        assert_eq!(bare.peer, Some(Peer { ip: ip("192.0.2.7"), port: None, from: PeerSource::FilterState }));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn an_unreadable_filter_state_entry_falls_back_to_the_connection_only() {
        let addresses = SourceAddresses::from_envoy(Some("127.0.0.1:45710"), Some("garbage"));
        assert_eq!(addresses.peer.map(|p| p.from), Some(PeerSource::Connection));
        let forged = SourceAddresses::from_envoy(Some("10.1.2.3:0"), Some("garbage"));
        assert_eq!(forged.peer, None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn no_address_or_not_an_ip_address_is_nothing() {
        assert_eq!(SourceAddresses::from_envoy(None, None), SourceAddresses::default());
        let pipe = SourceAddresses::from_envoy(Some("/var/run/envoy.sock"), None);
        assert_eq!(pipe, SourceAddresses::default());
        let internal = SourceAddresses::from_envoy(Some("envoy://internal_listener/"), None);
        assert_eq!(internal, SourceAddresses::default());
    }
}
