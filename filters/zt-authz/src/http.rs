//! The per-request context: read the facts the configuration needs (and only those, to spare
//! host calls), one core call, then record the decision and continue or answer.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use zt_core::address::PEER_ADDRESS_FILTER_STATE;
use zt_core::authz::{AuthzConfig, AuthzReason, Decision, RequestFacts, Verdict, denial};
use zt_core::filter_state::{AUTHZ_DECISION, IDENTITY};
use zt_core::{LocalReply, SourceAddresses};

use crate::FILTER;
use crate::metrics::AuthzMetrics;

/// The key of `filter_metadata.zt` by which a route names its rule.
const ROUTE_METADATA_KEY: &str = "authz_route";

pub struct AuthzHttp {
    pub(crate) config: Rc<AuthzConfig>,
    pub(crate) metrics: Rc<AuthzMetrics>,
}

impl Context for AuthzHttp {}

impl HttpContext for AuthzHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let config = Rc::clone(&self.config);
        let inputs = config.inputs();
        let headers = if inputs.headers { self.get_http_request_headers_bytes() } else { Vec::new() };
        let header = |name: &str| match inputs.headers {
            true => headers.iter().find(|(n, _)| n == name).map(|(_, value)| value.clone()),
            false => self.get_http_request_header_bytes(name),
        };
        let (Some(method), Some(path)) = (text(header(":method")), text(header(":path"))) else {
            return self.refuse(400, "bad_request", "the request's method or path is missing or not UTF-8");
        };
        let authority = if inputs.authority { text(header(":authority")) } else { None };
        let identity = if inputs.reads_identity() {
            match zt_proxy::verified_identity() {
                Ok(identity) => identity,
                // Only the JWT filter can set it: unreadable means a broken chain, never a pass.
                Err(why) => return self.refuse(500, "internal", &format!("filter state {IDENTITY}: {why}")),
            }
        } else {
            None
        };
        let route_name = if inputs.route_name { zt_proxy::route_name() } else { None };
        // Always: a route naming a rule this configuration lacks is refused, rules or none.
        let route_choice = zt_proxy::route_rule_choice(ROUTE_METADATA_KEY);
        let addresses =
            if inputs.source || inputs.remote { zt_proxy::source_addresses() } else { SourceAddresses::default() };
        let peer =
            if inputs.peer { zt_proxy::property_string(&["connection", "uri_san_peer_certificate"]) } else { None };
        let facts = RequestFacts {
            route_name: route_name.as_deref(),
            route_choice: route_choice.as_deref(),
            authority: authority.as_deref(),
            method: &method,
            path: &path,
            headers: &headers,
            source: addresses.peer_ip(),
            remote: addresses.remote,
            peer_uri_san: peer.as_deref(),
            identity: identity.as_ref(),
            now: zt_proxy::now(self),
        };
        let decision = config.authorize(&facts);
        if decision.reason == AuthzReason::UnknownRouteRule {
            log::error!(
                "{FILTER}: route metadata filter_metadata.zt.{ROUTE_METADATA_KEY} names rule {:?}, which the \
                 configuration does not define: refused with 500",
                route_choice.as_deref().unwrap_or_default()
            );
        }
        self.record(&decision);
        match decision.verdict {
            Verdict::Allow => Action::Continue,
            Verdict::AdvisoryDeny => {
                log::info!("{FILTER}: advisory: would deny ({}, {})", decision.policy, decision.reason.as_str());
                Action::Continue
            }
            Verdict::Deny if decision.reason == AuthzReason::PeerAddressUnknown => {
                // The listener derived the address from a header and nothing names the peer:
                // an operator must see this, it refuses every request of such a policy.
                log::warn!(
                    "{FILTER}: denied: a policy reads the connection's peer address and Envoy gave only a \
                     header-derived one; set filter state {PEER_ADDRESS_FILTER_STATE} (see the README)"
                );
                zt_proxy::send_reply(self, &denial(&decision, config.realm()));
                Action::Pause
            }
            Verdict::Deny => {
                log::debug!("{FILTER}: denied ({}, {})", decision.policy, decision.reason.as_str());
                zt_proxy::send_reply(self, &denial(&decision, config.realm()));
                Action::Pause
            }
        }
    }
}

impl AuthzHttp {
    fn record(&self, decision: &Decision) {
        self.metrics.record(decision);
        if zt_proxy::set_filter_state(AUTHZ_DECISION, decision.record().to_string().as_bytes()).is_err() {
            log::warn!("{FILTER}: cannot record the decision in filter state {AUTHZ_DECISION}");
        }
    }

    /// Denies a request whose facts cannot be read; the log says why, the client gets a code.
    fn refuse(&self, status: u16, code: &str, why: &str) -> Action {
        log::warn!("{FILTER}: denied, request not evaluated: {why}");
        self.metrics.unreadable();
        let record =
            serde_json::json!({"decision": "deny", "policy": null, "reason": code, "route": null, "audit": []});
        let _ = zt_proxy::set_filter_state(AUTHZ_DECISION, record.to_string().as_bytes());
        zt_proxy::send_reply(self, &LocalReply::json(status, Vec::new(), &serde_json::json!({"error": code})));
        Action::Pause
    }
}

fn text(bytes: Option<Vec<u8>>) -> Option<String> {
    bytes.and_then(|bytes| String::from_utf8(bytes).ok())
}
