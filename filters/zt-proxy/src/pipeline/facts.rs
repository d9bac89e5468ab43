//! What stages read from Envoy about the request, each fact read at most once per request and
//! only when a stage asks: in the suite, the JWT, authorization, rate-limit and audit stages
//! share one read of the request headers, of the route's metadata, name and addresses.

use std::cell::OnceCell;

use proxy_wasm::types::MapType;
use zt_core::SourceAddresses;
use zt_core::identity_source::{AdoptError, JwtAuthnPayload, adopt};
use zt_core::jwt::Identity;

use crate::route_metadata::RouteMetadata;

/// A request's headers as Envoy holds them: lower-case names, values as bytes, in order.
pub type Headers = Vec<(String, Vec<u8>)>;

#[derive(Default)]
pub struct Facts {
    /// The host clock when this pass of the stages began, nanoseconds since the Unix epoch.
    now_ns: OnceCell<u64>,
    request_headers: OnceCell<Headers>,
    /// A request header edit the host refused: the request must not go on as if it was made.
    header_edit_failed: bool,
    route_metadata: OnceCell<RouteMetadata>,
    route_name: OnceCell<Option<String>>,
    addresses: OnceCell<SourceAddresses>,
    peer_uri_san: OnceCell<Option<String>>,
    /// The caller Envoy's `jwt_authn` verified, read once for every stage that asks.
    adopted_identity: OnceCell<Result<Option<Identity>, AdoptError>>,
}

impl Facts {
    /// Every request header, read in one host call when a stage first asks (a call per header
    /// costs a host round trip each, and the stages together look at a dozen). A stage that
    /// changes a request header does so through [`Facts::set_request_header`], so that the
    /// stages after it see the request as a later filter would.
    pub fn request_headers(&self) -> &Headers {
        self.request_headers
            .get_or_init(|| proxy_wasm::hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default())
    }

    /// A request header's first value, as Envoy's own lookup answers it.
    pub fn request_header(&self, name: &str) -> Option<&[u8]> {
        self.request_headers().iter().find(|(n, _)| n == name).map(|(_, value)| value.as_slice())
    }

    /// A request header's first value as text; `None` when absent or not UTF-8.
    pub fn request_header_text(&self, name: &str) -> Option<&str> {
        self.request_header(name).and_then(|value| std::str::from_utf8(value).ok())
    }

    /// Sets (or with `None` removes every value of) a request header in Envoy and in what the
    /// later stages read. A host error is logged and remembered ([`Facts::header_edit_failed`]):
    /// the stage that made the edit refuses the request rather than pass on a forged claim
    /// header or an unverified token.
    pub fn set_request_header(&mut self, name: &str, value: Option<&[u8]>) {
        if let Err(status) = proxy_wasm::hostcalls::set_map_value_bytes(MapType::HttpRequestHeaders, name, value) {
            log::error!("cannot set request header {name}: {status:?}");
            self.header_edit_failed = true;
            return;
        }
        let Some(headers) = self.request_headers.get_mut() else { return };
        headers.retain(|(n, _)| n != name);
        if let Some(value) = value {
            headers.push((name.to_owned(), value.to_vec()));
        }
    }

    /// Whether a request header edit failed in this request.
    pub fn header_edit_failed(&self) -> bool {
        self.header_edit_failed
    }

    /// Removes every value of a request header; no host call when the request has none.
    pub fn remove_request_header(&mut self, name: &str) {
        if self.request_header(name).is_some() {
            self.set_request_header(name, None);
        }
    }

    /// The host clock, read once for the stages that decide the request together; a request
    /// that waited reads it again when it goes on ([`Facts::clock_moved`]).
    pub fn now_ns(&self) -> u64 {
        *self.now_ns.get_or_init(|| proxy_wasm::hostcalls::get_current_time().map_or(0, crate::since_epoch_ns))
    }

    pub fn now_ms(&self) -> u64 {
        self.now_ns() / 1_000_000
    }

    pub fn now(&self) -> zt_core::UnixSeconds {
        zt_core::UnixSeconds(self.now_ns() / 1_000_000_000)
    }

    /// The stages go on after a wait (keys, the rate-limit service): time has passed.
    pub fn clock_moved(&mut self) {
        self.now_ns = OnceCell::new();
    }

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

    /// The caller Envoy's `jwt_authn` verified and left in the stream's dynamic metadata (the
    /// `metadata` attribute, one read for the whole namespace): the first of `payloads` present.
    /// A stream without that metadata has an anonymous caller.
    pub fn adopted_identity(&self, payloads: &[JwtAuthnPayload]) -> Result<Option<&Identity>, &AdoptError> {
        self.adopted_identity
            .get_or_init(|| match crate::property_or_error(&["metadata"]) {
                Ok(Some(metadata)) => adopt(&metadata, payloads),
                Ok(None) => Ok(None),
                // Not the same as no metadata: an unreadable caller is refused, not anonymous.
                Err(_) => Err(AdoptError::Unreadable),
            })
            .as_ref()
            .map(Option::as_ref)
    }

    /// The adopted caller if a stage already read it; never a host call.
    pub fn adopted_identity_read(&self) -> Option<Result<Option<&Identity>, &AdoptError>> {
        self.adopted_identity.get().map(|read| read.as_ref().map(Option::as_ref))
    }
}
