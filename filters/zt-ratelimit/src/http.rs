//! The per-request context: read the facts the keys need (and only those), apply the local
//! limits, ask the rate-limit service when a global limit applies, then record the decision
//! and continue or answer. Admitted responses get the rate-limit header fields on the way back.

use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use zt_core::address::PEER_ADDRESS_FILTER_STATE;
use zt_core::filter_state::{IDENTITY, RATELIMIT_DECISION};
use zt_core::ratelimit::rls::{self, METHOD, SERVICE};
use zt_core::ratelimit::{
    Decision, GlobalAnswer, Pending, RateLimitConfig, Reason, RequestFacts, Step, Verdict, admitted_headers, refusal,
};
use zt_core::{LocalReply, SourceAddresses};
use zt_proxy::EnvoySharedData;

use crate::FILTER;
use crate::metrics::RateLimitMetrics;

/// The key of `filter_metadata.zt` by which a route names its rule.
const ROUTE_METADATA_KEY: &str = "ratelimit_route";

/// The largest `RateLimitResponse` read; a real one is a few hundred bytes.
const MAX_RESPONSE: usize = 64 * 1024;

pub struct RateLimitHttp {
    config: Rc<RateLimitConfig>,
    metrics: Rc<RateLimitMetrics>,
    /// The request waiting for the rate-limit service, by call token.
    pending: Option<(u32, Pending)>,
    /// Header fields to add to the response, when the request was admitted.
    response_headers: Vec<(String, String)>,
}

impl RateLimitHttp {
    pub fn new(config: Rc<RateLimitConfig>, metrics: Rc<RateLimitMetrics>) -> Self {
        Self { config, metrics, pending: None, response_headers: Vec::new() }
    }
}

impl Context for RateLimitHttp {
    fn on_grpc_call_response(&mut self, token_id: u32, status_code: u32, response_size: usize) {
        let Some((token, pending)) = self.pending.take() else { return };
        if token != token_id {
            self.pending = Some((token, pending));
            return;
        }
        let body = if status_code == 0 {
            self.get_grpc_call_response_body(0, response_size.min(MAX_RESPONSE)).unwrap_or_default()
        } else {
            Vec::new()
        };
        let answer = if status_code == 0 && response_size <= MAX_RESPONSE {
            GlobalAnswer::Response(&body)
        } else {
            log::warn!("{FILTER}: rate-limit service call failed (gRPC status {status_code})");
            self.metrics.global_error();
            GlobalAnswer::Failed
        };
        let config = Rc::clone(&self.config);
        let decision = config.finish(pending, answer, &EnvoySharedData, zt_proxy::now_ms(self));
        if decision.reason == Reason::GlobalUnavailable && status_code == 0 {
            log::warn!("{FILTER}: rate-limit service answered something unreadable");
            self.metrics.global_error();
        }
        if self.conclude(&decision) == Action::Continue {
            self.resume_http_request();
        }
    }
}

impl HttpContext for RateLimitHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let config = Rc::clone(&self.config);
        let inputs = config.inputs();
        let text = |name: &str| self.get_http_request_header_bytes(name).and_then(|b| String::from_utf8(b).ok());
        let (Some(method), Some(path)) = (text(":method"), text(":path")) else {
            return self.refuse(400, "bad_request", "the request's method or path is missing or not UTF-8");
        };
        let authority = if inputs.authority { text(":authority") } else { None };
        let headers: Vec<(String, Vec<u8>)> = inputs
            .headers
            .iter()
            .filter_map(|name| self.get_http_request_header_bytes(name).map(|value| (name.clone(), value)))
            .collect();
        let identity = if inputs.identity {
            match zt_proxy::verified_identity() {
                Ok(identity) => identity,
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
        if inputs.source && addresses.peer.is_none() {
            // The key falls back as `unkeyed` says; the forged address never keys a bucket.
            self.metrics.peer_address_unknown();
            log::warn!(
                "{FILTER}: a limit keys on the connection's peer address and Envoy gave only a header-derived \
                 one; set filter state {PEER_ADDRESS_FILTER_STATE} (see the README)"
            );
        }
        let facts = RequestFacts {
            route_name: route_name.as_deref(),
            route_choice: route_choice.as_deref(),
            authority: authority.as_deref(),
            method: &method,
            path: &path,
            headers: &headers,
            source: addresses.peer_ip(),
            remote: addresses.remote,
            identity: identity.as_ref(),
            now_ms: zt_proxy::now_ms(self),
        };
        match config.check(&facts, &EnvoySharedData) {
            Step::Decided(decision) => {
                if decision.reason == Reason::UnknownRouteRule {
                    log::error!(
                        "{FILTER}: route metadata filter_metadata.zt.{ROUTE_METADATA_KEY} names rule {:?}, which the \
                         configuration does not define: refused with 500",
                        route_choice.as_deref().unwrap_or_default()
                    );
                }
                self.conclude(&decision)
            }
            Step::AskGlobal(pending) => self.ask_global(pending),
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        for (name, value) in std::mem::take(&mut self.response_headers) {
            self.set_http_response_header(&name, Some(&value));
        }
        Action::Continue
    }
}

impl RateLimitHttp {
    fn ask_global(&mut self, pending: Pending) -> Action {
        let Some(global) = self.config.global() else {
            // Configuration guarantees a service for global limits; never pass unchecked.
            return self.refuse(500, "internal", "a global limit without a rate-limit service");
        };
        self.metrics.global_call();
        let call = self.dispatch_grpc_call(
            &rls::upstream(&global.cluster),
            SERVICE,
            METHOD,
            Vec::new(),
            Some(&pending.request()),
            Duration::from_millis(global.timeout_ms),
        );
        match call {
            Ok(token) => {
                self.pending = Some((token, pending));
                Action::Pause
            }
            Err(status) => {
                log::warn!("{FILTER}: cannot call the rate-limit service on cluster {}: {status:?}", global.cluster);
                self.metrics.global_error();
                let config = Rc::clone(&self.config);
                let decision = config.finish(pending, GlobalAnswer::Failed, &EnvoySharedData, zt_proxy::now_ms(self));
                self.conclude(&decision)
            }
        }
    }

    /// Records the decision, then answers a refusal or lets the request go on.
    fn conclude(&mut self, decision: &Decision) -> Action {
        self.metrics.record(decision);
        if zt_proxy::set_filter_state(RATELIMIT_DECISION, decision.record().to_string().as_bytes()).is_err() {
            log::warn!("{FILTER}: cannot record the decision in filter state {RATELIMIT_DECISION}");
        }
        let x_ratelimit = self.config.x_ratelimit();
        if let Some(reply) = refusal(decision, x_ratelimit) {
            log::debug!("{FILTER}: limited ({:?}, {})", decision.limit, decision.reason.as_str());
            zt_proxy::send_reply(self, &reply);
            return Action::Pause;
        }
        if decision.verdict == Verdict::AdvisoryLimited {
            log::info!("{FILTER}: advisory: would limit ({:?}, {})", decision.limit, decision.reason.as_str());
        }
        if self.config.headers_on_admitted() {
            self.response_headers = admitted_headers(decision, x_ratelimit);
        }
        Action::Continue
    }

    /// Refuses a request whose facts cannot be read; the log says why, the client gets a code.
    fn refuse(&self, status: u16, code: &str, why: &str) -> Action {
        log::warn!("{FILTER}: refused, request not evaluated: {why}");
        self.metrics.unreadable();
        let record =
            serde_json::json!({"decision": "limited", "reason": code, "limit": null, "remaining": null, "route": null});
        let _ = zt_proxy::set_filter_state(RATELIMIT_DECISION, record.to_string().as_bytes());
        zt_proxy::send_reply(self, &LocalReply::json(status, Vec::new(), &serde_json::json!({"error": code})));
        Action::Pause
    }
}
