//! The rate-limit stage: read the facts the keys need (and only those), apply the local
//! limits, ask the rate-limit service when a global limit applies, then record the decision
//! and continue or answer. Admitted responses get the rate-limit header fields on the way back.
//! Its per-VM service sweeps idle buckets ([`RateLimitService`]).

mod metrics;
mod service;

use std::time::Duration;

use proxy_wasm::traits::HttpContext;
use zt_core::SourceAddresses;
use zt_core::address::PEER_ADDRESS_FILTER_STATE;
use zt_core::audit::StageRecord;
use zt_core::ratelimit::rls::{self, METHOD, SERVICE};
use zt_core::ratelimit::{
    Decision, DecisionRecord, GlobalAnswer, Pending, RateLimitConfig, Reason, RequestFacts, Step, Verdict,
    admitted_headers, refusal,
};

pub use service::RateLimitService;

use crate::EnvoySharedData;
use crate::pipeline::{self, Flow, Pass, Stages};
use metrics::RateLimitMetrics;

/// The name this stage logs under.
const FILTER: &str = "zt-ratelimit";

/// The key of `filter_metadata.zt` by which a route names its rule.
const ROUTE_METADATA_KEY: &str = "ratelimit_route";

/// The largest `RateLimitResponse` read; a real one is a few hundred bytes.
const MAX_RESPONSE: usize = 64 * 1024;

pub struct RateLimitStage {
    config: RateLimitConfig,
    metrics: RateLimitMetrics,
}

/// What the rate-limit stage remembers of one request between callbacks.
#[derive(Default)]
pub struct RateLimitRequest {
    /// The request waiting for the rate-limit service, by call token.
    pending: Option<(u32, Pending)>,
    /// Header fields to add to the response, when the request was admitted.
    response_headers: Vec<(String, String)>,
}

impl RateLimitStage {
    pub fn new(config: RateLimitConfig) -> Self {
        log::info!(
            "{FILTER}: configured ({} limits, {} slots per local limit)",
            config.limit_names().count(),
            config.max_keys()
        );
        let metrics = RateLimitMetrics::define(&config);
        Self { config, metrics }
    }

    pub fn config(&self) -> &RateLimitConfig {
        &self.config
    }

    /// The rate-limit service's answer: `None` when it is not this request's call.
    pub fn on_global_answer<const M: u8>(
        &self,
        http: &dyn HttpContext,
        stages: &Stages<M>,
        pass: &mut Pass,
        token_id: u32,
        status_code: u32,
        response_size: usize,
    ) -> Option<Flow> {
        let (token, pending) = pass.ratelimit.pending.take()?;
        if token != token_id {
            pass.ratelimit.pending = Some((token, pending));
            return None;
        }
        let body = if status_code == 0 {
            http.get_grpc_call_response_body(0, response_size.min(MAX_RESPONSE)).unwrap_or_default()
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
        let decision = self.config.finish(pending, answer, &EnvoySharedData, crate::now_ms(http));
        if decision.reason == Reason::GlobalUnavailable && status_code == 0 {
            log::warn!("{FILTER}: rate-limit service answered something unreadable");
            self.metrics.global_error();
        }
        Some(self.conclude(http, stages, pass, &decision))
    }

    pub fn on_request<const M: u8>(&self, http: &dyn HttpContext, stages: &Stages<M>, pass: &mut Pass) -> Flow {
        let config = &self.config;
        let inputs = config.inputs();
        let text = |name: &str| pass.facts.request_header_text(name).map(str::to_owned);
        let (Some(method), Some(path)) = (text(":method"), text(":path")) else {
            let why = "the request's method or path is missing or not UTF-8";
            return self.refuse(http, stages, pass, 400, "bad_request", why);
        };
        let authority = if inputs.authority { text(":authority") } else { None };
        let headers: Vec<(String, Vec<u8>)> = inputs
            .headers
            .iter()
            .filter_map(|name| pass.facts.request_header(name).map(|value| (name.clone(), value.to_vec())))
            .collect();
        let identity = if inputs.identity {
            match pipeline::identity(stages, pass) {
                Ok(identity) => identity,
                // Only a JWT filter sets it: unreadable means a broken chain, never a pass.
                Err(why) => return self.refuse(http, stages, pass, 500, "internal", &why),
            }
        } else {
            None
        };
        let route_name = if inputs.route_name { pass.facts.route_name() } else { None };
        // Always: a route naming a rule this configuration lacks is refused, rules or none.
        let route_choice = pass.facts.route_rule(ROUTE_METADATA_KEY);
        let addresses =
            if inputs.source || inputs.remote { pass.facts.addresses() } else { SourceAddresses::default() };
        if inputs.source && addresses.peer.is_none() {
            // The key falls back as `unkeyed` says; the forged address never keys a bucket.
            self.metrics.peer_address_unknown();
            log::warn!(
                "{FILTER}: a limit keys on the connection's peer address and Envoy gave only a header-derived \
                 one; set filter state {PEER_ADDRESS_FILTER_STATE} (see the README)"
            );
        }
        let facts = RequestFacts {
            route_name,
            route_choice,
            authority: authority.as_deref(),
            method: &method,
            path: &path,
            headers: &headers,
            source: addresses.peer_ip(),
            remote: addresses.remote,
            identity: identity.as_deref(),
            now_ms: pass.facts.now_ms(),
        };
        match config.check(&facts, &EnvoySharedData) {
            Step::Decided(decision) => {
                if decision.reason == Reason::UnknownRouteRule {
                    log::error!(
                        "{FILTER}: route metadata filter_metadata.zt.{ROUTE_METADATA_KEY} names rule {:?}, which the \
                         configuration does not define: refused with 500",
                        route_choice.unwrap_or_default()
                    );
                }
                self.conclude(http, stages, pass, &decision)
            }
            Step::AskGlobal(pending) => self.ask_global(http, stages, pass, pending),
        }
    }

    /// Adds the rate-limit header fields to an admitted request's response.
    pub fn on_response_headers(&self, http: &dyn HttpContext, pass: &mut Pass) {
        for (name, value) in std::mem::take(&mut pass.ratelimit.response_headers) {
            http.set_http_response_header(&name, Some(&value));
        }
    }

    fn ask_global<const M: u8>(
        &self,
        http: &dyn HttpContext,
        stages: &Stages<M>,
        pass: &mut Pass,
        pending: Pending,
    ) -> Flow {
        let Some(global) = self.config.global() else {
            // Configuration guarantees a service for global limits; never pass unchecked.
            return self.refuse(http, stages, pass, 500, "internal", "a global limit without a rate-limit service");
        };
        self.metrics.global_call();
        let call = http.dispatch_grpc_call(
            &rls::upstream(&global.cluster),
            SERVICE,
            METHOD,
            Vec::new(),
            Some(&pending.request()),
            Duration::from_millis(global.timeout_ms),
        );
        match call {
            Ok(token) => {
                pass.ratelimit.pending = Some((token, pending));
                Flow::Stop
            }
            Err(status) => {
                log::warn!("{FILTER}: cannot call the rate-limit service on cluster {}: {status:?}", global.cluster);
                self.metrics.global_error();
                let decision = self.config.finish(pending, GlobalAnswer::Failed, &EnvoySharedData, crate::now_ms(http));
                self.conclude(http, stages, pass, &decision)
            }
        }
    }

    /// Records the decision, then answers a refusal or lets the request go on.
    fn conclude<const M: u8>(
        &self,
        http: &dyn HttpContext,
        stages: &Stages<M>,
        pass: &mut Pass,
        decision: &Decision,
    ) -> Flow {
        self.metrics.record(decision);
        pass.hand_on(stages.handoff, StageRecord::RateLimit(decision.record()));
        let x_ratelimit = self.config.x_ratelimit();
        if let Some(reply) = refusal(decision, x_ratelimit) {
            log::debug!("{FILTER}: limited ({:?}, {})", decision.limit, decision.reason.as_str());
            crate::send_reply(http, &reply);
            return Flow::Stop;
        }
        if decision.verdict == Verdict::AdvisoryLimited {
            log::info!("{FILTER}: advisory: would limit ({:?}, {})", decision.limit, decision.reason.as_str());
        }
        if self.config.headers_on_admitted() {
            pass.ratelimit.response_headers = admitted_headers(decision, x_ratelimit);
        }
        Flow::Continue
    }

    /// Refuses a request whose facts cannot be read; the log says why, the client gets a code.
    fn refuse<const M: u8>(
        &self,
        http: &dyn HttpContext,
        stages: &Stages<M>,
        pass: &mut Pass,
        status: u16,
        code: &'static str,
        why: &str,
    ) -> Flow {
        log::warn!("{FILTER}: refused, request not evaluated: {why}");
        self.metrics.unreadable();
        let record = StageRecord::RateLimit(DecisionRecord::unevaluated(code));
        pass.refuse_unevaluated(http, stages.handoff, record, status, code)
    }
}
