//! Outbound HTTP GETs through an Envoy cluster (`dispatch_http_call`) and reading their answers.

use std::time::Duration;

use proxy_wasm::traits::Context;
use proxy_wasm::types::Status;

/// Sends `GET path` with `:authority` to `cluster`; the answer arrives in the calling context's
/// `on_http_call_response` under the returned token.
pub fn get(context: &dyn Context, cluster: &str, authority: &str, path: &str, timeout_ms: u64) -> Result<u32, Status> {
    let headers = vec![(":method", "GET"), (":path", path), (":authority", authority), ("accept", "application/json")];
    context.dispatch_http_call(cluster, headers, None, vec![], Duration::from_millis(timeout_ms))
}

/// The status and body of the answer being delivered, bounded by `max_body`; `None` when the
/// call failed (Envoy delivers no headers on reset or timeout). A body over the bound is
/// returned at the bound plus one byte, so the caller can tell it was too large.
pub fn response(context: &dyn Context, body_size: usize, max_body: usize) -> Option<(u16, Vec<u8>)> {
    let status = context.get_http_call_response_header_bytes(":status")?;
    let status = std::str::from_utf8(&status).ok()?.parse::<u16>().ok()?;
    let length = body_size.min(max_body.saturating_add(1));
    let body =
        if length == 0 { Vec::new() } else { context.get_http_call_response_body(0, length).unwrap_or_default() };
    Some((status, body))
}
