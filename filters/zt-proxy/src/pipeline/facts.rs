//! What stages read from Envoy about the request, each fact read at most once per request and
//! only when a stage asks: in the suite, the authorization, rate-limit and audit stages share
//! one read of the route's metadata, name and addresses.

use std::cell::OnceCell;

use zt_core::SourceAddresses;

use crate::route_metadata::RouteMetadata;

#[derive(Default)]
pub struct Facts {
    route_metadata: OnceCell<RouteMetadata>,
    route_name: OnceCell<Option<String>>,
    addresses: OnceCell<SourceAddresses>,
    peer_uri_san: OnceCell<Option<String>>,
}

impl Facts {
    /// The rule the route names for a stage under `filter_metadata.zt.<key>`.
    pub fn route_rule(&self, key: &str) -> Option<&str> {
        self.route_metadata.get_or_init(RouteMetadata::read).rule(key)
    }

    /// Envoy's name of the route the request matched (`xds.route_name`).
    pub fn route_name(&self) -> Option<&str> {
        self.route_name.get_or_init(crate::route_name).as_deref()
    }

    /// The connection's direct peer and Envoy's remote address ([`crate::source_addresses`]).
    pub fn addresses(&self) -> SourceAddresses {
        *self.addresses.get_or_init(crate::source_addresses)
    }

    /// The mTLS peer certificate's URI SAN (`connection.uri_san_peer_certificate`).
    pub fn peer_uri_san(&self) -> Option<&str> {
        self.peer_uri_san.get_or_init(|| crate::property_string(&["connection", "uri_san_peer_certificate"])).as_deref()
    }
}
