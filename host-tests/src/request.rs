//! One request as the filters see it through the ABI: header maps, bodies, Envoy's attributes
//! and filter state, and what the filters did to it (local reply, continue).

use std::collections::BTreeMap;

use proxy_wasm_host::abi::v0_2_1::types::{BufferType, MapType, Status, StreamType};
use proxy_wasm_host::abi::v0_2_1::{Access, ForeignCall, Invocation, LocalResponse, StreamState};
use proxy_wasm_host::{Buffer, HeaderMap, HeaderMapExt, VecHeaderMap};

use crate::envoy_crypto;
use crate::harness::Outcome;
use crate::metadata;

/// A request a test sends through the chain, built like a scenario.
#[derive(Debug, Clone)]
pub struct Request {
    pub(crate) headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub(crate) body: Option<Vec<u8>>,
    pub(crate) trailers: Vec<(Vec<u8>, Vec<u8>)>,
    pub(crate) attributes: Vec<(Vec<Vec<u8>>, Vec<u8>)>,
    pub(crate) upstream_status: u16,
    pub(crate) upstream_headers: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Request {
    /// A request with Envoy's pseudo-headers; `source.address` is `127.0.0.1:45710` unless set.
    pub fn new(method: &str, path: &str) -> Self {
        let pairs = [(":method", method), (":path", path), (":authority", "example.com"), (":scheme", "http")];
        Self {
            headers: pairs.iter().map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec())).collect(),
            body: None,
            trailers: Vec::new(),
            attributes: vec![(segments("source.address"), b"127.0.0.1:45710".to_vec())],
            upstream_status: 200,
            upstream_headers: Vec::new(),
        }
    }

    pub fn get(path: &str) -> Self {
        Self::new("GET", path)
    }

    pub fn post(path: &str, body: impl Into<Vec<u8>>) -> Self {
        let mut request = Self::new("POST", path);
        request.body = Some(body.into());
        request
    }

    /// Adds a header; bytes, so a test can send values that are not UTF-8.
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers.push((name.to_ascii_lowercase().into_bytes(), value.as_ref().to_vec()));
        self
    }

    pub fn trailer(mut self, name: &str, value: &str) -> Self {
        self.trailers.push((name.as_bytes().to_vec(), value.as_bytes().to_vec()));
        self
    }

    /// Sets an Envoy attribute by its dotted path (`source.address`,
    /// `connection.uri_san_peer_certificate`, `xds.cluster_name`, ...).
    pub fn attribute(mut self, path: &str, value: impl AsRef<[u8]>) -> Self {
        let path = segments(path);
        self.attributes.retain(|(p, _)| *p != path);
        self.attributes.push((path, value.as_ref().to_vec()));
        self
    }

    /// The request as Envoy presents it when the listener took the remote address from
    /// `X-Forwarded-For` (`use_remote_address: false`, or trusted hops): `source.address` is
    /// that address with port 0, and the header is there.
    pub fn forwarded_for(self, ip: &str) -> Self {
        let address = if ip.contains(':') { format!("[{ip}]:0") } else { format!("{ip}:0") };
        self.header("x-forwarded-for", ip).attribute("source.address", address)
    }

    /// The filter-state entry `zt.peer_address` that Envoy's `set_filter_state` filter writes
    /// from `%DOWNSTREAM_DIRECT_REMOTE_ADDRESS%`, read as `filter_state.zt.peer_address`.
    pub fn peer_address_state(mut self, address: &str) -> Self {
        let path = vec![b"filter_state".to_vec(), b"zt.peer_address".to_vec()];
        self.attributes.retain(|(p, _)| *p != path);
        self.attributes.push((path, address.as_bytes().to_vec()));
        self
    }

    pub fn route_name(self, name: &str) -> Self {
        self.attribute("xds.route_name", name)
    }

    /// A string leaf of the route's metadata, `filter_metadata.<namespace>.<key>`, as Envoy
    /// answers `xds.route_metadata.filter_metadata.<namespace>.<key>` (the text), and within
    /// the whole namespace, which Envoy answers in proxy-wasm's map encoding.
    pub fn route_metadata(mut self, namespace: &str, key: &str, value: &str) -> Self {
        let namespace_path =
            ["xds", "route_metadata", "filter_metadata", namespace].map(|s| s.as_bytes().to_vec()).to_vec();
        let mut path = namespace_path.clone();
        path.push(key.as_bytes().to_vec());
        self.attributes.retain(|(p, _)| *p != path && *p != namespace_path);
        self.attributes.push((path, value.as_bytes().to_vec()));
        let leaves = self.attributes.iter().filter_map(|(p, v)| match p.split_last() {
            Some((key, parent)) if parent == namespace_path.as_slice() => Some((key.as_slice(), v.as_slice())),
            _ => None,
        });
        let encoded = metadata::map_encoding(leaves);
        self.attributes.push((namespace_path, encoded));
        self
    }

    /// What Envoy's `jwt_authn` filter leaves when it verified a token of a provider with
    /// `payload_in_metadata: key`: the payload under `envoy.filters.http.jwt_authn.<key>` in the
    /// stream's dynamic metadata (the `metadata` attribute).
    pub fn jwt_authn_payload(self, key: &str, claims: &serde_json::Value) -> Self {
        let namespace = serde_json::json!({ key: claims });
        self.attribute("metadata", metadata::dynamic_metadata(&[("envoy.filters.http.jwt_authn", &namespace)]))
    }

    /// The status and headers the upstream answers with, when the request gets there.
    pub fn upstream_response(mut self, status: u16, headers: &[(&str, &str)]) -> Self {
        self.upstream_status = status;
        self.upstream_headers = headers.iter().map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec())).collect();
        self
    }
}

fn segments(path: &str) -> Vec<Vec<u8>> {
    path.split('.').map(|s| s.as_bytes().to_vec()).collect()
}

/// A reply a filter sent with `send_local_response`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub details: String,
}

impl LocalReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The host side of one request, lent to each filter in turn (and, empty, to root contexts).
#[derive(Debug, Default)]
pub struct StreamData {
    pub(crate) request_headers: VecHeaderMap,
    pub(crate) request_body: Vec<u8>,
    pub(crate) request_trailers: VecHeaderMap,
    pub(crate) response_headers: VecHeaderMap,
    pub(crate) response_body: Vec<u8>,
    pub(crate) response_trailers: VecHeaderMap,
    pub(crate) attributes: Vec<(Vec<Vec<u8>>, Vec<u8>)>,
    /// Envoy filter state: set by one filter, read by the later ones of the same request.
    pub(crate) filter_state: BTreeMap<Vec<Vec<u8>>, Vec<u8>>,
    pub(crate) local_reply: Option<LocalReply>,
    pub(crate) continued: bool,
    pub(crate) offer_verify_signature: bool,
    pub(crate) foreign_calls: usize,
    /// The filter the host is lending this stream to now (its configured name), for [`HostCall`].
    pub(crate) current_filter: String,
    /// Every stream call a filter made, in order: what a host-call diet is measured by.
    pub(crate) host_calls: Vec<HostCall>,
}

/// One call of a filter into the host about its stream, as the harness saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCall {
    /// The filter's configured name.
    pub filter: String,
    pub kind: HostCallKind,
    /// The property path joined with `.`, or the header map's name.
    pub target: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HostCallKind {
    /// `proxy_get_property`: an attribute or filter state.
    GetProperty,
    /// `proxy_set_property`: filter state.
    SetProperty,
    /// Any header-map call: a header read, the whole map, an add, a replace, a removal.
    HeaderMap,
    /// `proxy_call_foreign_function`.
    ForeignFunction,
}

impl StreamData {
    fn record(&mut self, kind: HostCallKind, target: String) {
        self.host_calls.push(HostCall { filter: self.current_filter.clone(), kind, target });
    }
}

fn joined(path: &[&[u8]]) -> String {
    path.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect::<Vec<_>>().join(".")
}

impl StreamData {
    pub(crate) fn for_request(request: &Request, offer_verify_signature: bool) -> Self {
        Self {
            request_headers: VecHeaderMap::from(request.headers.clone()),
            request_body: request.body.clone().unwrap_or_default(),
            request_trailers: VecHeaderMap::from(request.trailers.clone()),
            attributes: request.attributes.clone(),
            offer_verify_signature,
            ..Self::default()
        }
    }

    pub(crate) fn for_root(offer_verify_signature: bool) -> Self {
        Self { offer_verify_signature, ..Self::default() }
    }

    /// What Envoy knows when the stream ends and `on_log` runs, as Envoy encodes it (integers,
    /// timestamps and durations as 8 bytes little-endian, nanoseconds), unless the test set it.
    pub(crate) fn set_log_attributes(&mut self, outcome: &Outcome, request: &Request, start_ns: u64, end_ns: u64) {
        let (code, details): (Option<u16>, &str) = match outcome {
            Outcome::Upstream { .. } => (Some(request.upstream_status), "via_upstream"),
            Outcome::LocalReply(reply) => (Some(reply.status), reply.details.as_str()),
            Outcome::VmFailed { .. } => (Some(503), "wasm_fail_stream"),
            Outcome::Stalled { .. } => (None, ""),
        };
        let mut derived: Vec<(&str, Vec<u8>)> = vec![
            ("request.time", start_ns.to_le_bytes().to_vec()),
            ("request.duration", end_ns.saturating_sub(start_ns).to_le_bytes().to_vec()),
            ("request.size", (self.request_body.len() as u64).to_le_bytes().to_vec()),
        ];
        if let Some(code) = code {
            derived.push(("response.code", u64::from(code).to_le_bytes().to_vec()));
            derived.push(("response.code_details", details.as_bytes().to_vec()));
        }
        for (path, value) in derived {
            let path = segments(path);
            if !self.attributes.iter().any(|(p, _)| *p == path) {
                self.attributes.push((path, value));
            }
        }
    }

    pub(crate) fn request_headers_len(&self) -> usize {
        self.request_headers.len()
    }

    pub(crate) fn response_headers_len(&self) -> usize {
        self.response_headers.len()
    }

    /// Envoy's `request.*` attributes, derived from the request headers.
    fn request_attribute(&self, name: &[u8]) -> Option<Vec<u8>> {
        let header = |h: &[u8]| self.request_headers.get(h).map(|v| v.to_vec());
        match name {
            b"path" => header(b":path"),
            b"url_path" => header(b":path").map(|p| p.split(|b| *b == b'?').next().unwrap_or_default().to_vec()),
            b"query" => header(b":path").map(|p| p.splitn(2, |b| *b == b'?').nth(1).unwrap_or_default().to_vec()),
            b"method" => header(b":method"),
            b"host" => header(b":authority"),
            b"scheme" => header(b":scheme"),
            b"id" => header(b"x-request-id"),
            b"referer" => header(b"referer"),
            b"useragent" => header(b"user-agent"),
            _ => None,
        }
    }
}

impl StreamState for StreamData {
    fn header_map(&mut self, _: Invocation, _: Access, map: MapType) -> Result<&mut dyn HeaderMap, Status> {
        self.record(HostCallKind::HeaderMap, format!("{map:?}"));
        Ok(match map {
            MapType::HttpRequestHeaders => &mut self.request_headers,
            MapType::HttpRequestTrailers => &mut self.request_trailers,
            MapType::HttpResponseHeaders => &mut self.response_headers,
            MapType::HttpResponseTrailers => &mut self.response_trailers,
            _ => return Err(Status::NotFound),
        })
    }

    fn buffer(&mut self, _: Invocation, _: Access, buffer: BufferType) -> Result<&mut dyn Buffer, Status> {
        Ok(match buffer {
            BufferType::HttpRequestBody => &mut self.request_body,
            BufferType::HttpResponseBody => &mut self.response_body,
            _ => return Err(Status::NotFound),
        })
    }

    fn continue_stream(&mut self, _: Invocation, stream: StreamType) -> Result<(), Status> {
        if stream == StreamType::HttpRequest {
            self.continued = true;
        }
        Ok(())
    }

    fn close_stream(&mut self, _: Invocation, _: StreamType) -> Result<(), Status> {
        Ok(())
    }

    fn send_local_response(&mut self, _: Invocation, response: LocalResponse<'_>) -> Result<(), Status> {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        self.local_reply = Some(LocalReply {
            status: u16::try_from(response.status_code).map_err(|_| Status::BadArgument)?,
            headers: response.headers.iter().map(|(n, v)| (text(n), text(v))).collect(),
            body: response.body.to_vec(),
            details: text(&response.status_code_details),
        });
        Ok(())
    }

    fn property(&mut self, _: Invocation, path: &[&[u8]], out: &mut Vec<u8>) -> Result<(), Status> {
        self.record(HostCallKind::GetProperty, joined(path));
        let path: Vec<Vec<u8>> = path.iter().map(|s| s.to_vec()).collect();
        let value = self
            .filter_state
            .get(&path)
            .cloned()
            .or_else(|| self.attributes.iter().find(|(p, _)| *p == path).map(|(_, v)| v.clone()))
            .or_else(|| match path.as_slice() {
                [first, name] if first == b"request" => self.request_attribute(name),
                _ => None,
            });
        match value {
            Some(value) => {
                out.extend_from_slice(&value);
                Ok(())
            }
            None => Err(Status::NotFound),
        }
    }

    fn set_property(&mut self, _: Invocation, path: &[&[u8]], value: &[u8]) -> Result<(), Status> {
        self.record(HostCallKind::SetProperty, joined(path));
        let path: Vec<Vec<u8>> = path.iter().map(|s| s.to_vec()).collect();
        // Envoy's attributes are read-only; anything else becomes filter state.
        if self.attributes.iter().any(|(p, _)| *p == path) || path.first().is_some_and(|f| f == b"request") {
            return Err(Status::BadArgument);
        }
        self.filter_state.insert(path, value.to_vec());
        Ok(())
    }

    fn call_foreign_function(
        &mut self,
        _: Invocation,
        request: ForeignCall<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), Status> {
        self.record(HostCallKind::ForeignFunction, String::from_utf8_lossy(request.name.as_ref()).into_owned());
        if !self.offer_verify_signature || request.name.as_ref() != envoy_crypto::NAME.as_bytes() {
            return Err(Status::NotFound);
        }
        self.foreign_calls += 1;
        out.extend(envoy_crypto::verify_signature(&request.arguments)?);
        Ok(())
    }
}

pub(crate) fn pairs_text(map: &VecHeaderMap) -> Vec<(String, Vec<u8>)> {
    map.pairs().into_iter().map(|(n, v)| (String::from_utf8_lossy(&n).into_owned(), v)).collect()
}
