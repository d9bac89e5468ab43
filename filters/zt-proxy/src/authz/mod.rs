//! The authorization stage: read the facts the configuration needs (and only those, to spare
//! host calls), one core call, then record the decision and continue or answer.

mod metrics;

use proxy_wasm::traits::HttpContext;
use zt_core::SourceAddresses;
use zt_core::address::PEER_ADDRESS_FILTER_STATE;
use zt_core::audit::StageRecord;
use zt_core::authz::{AuthzConfig, AuthzReason, Decision, DecisionRecord, RequestFacts, Verdict, denial};

use crate::pipeline::{self, Flow, Pass, Stages};
use metrics::AuthzMetrics;

/// The name this stage logs under.
const FILTER: &str = "zt-authz";

/// The key of `filter_metadata.zt` by which a route names its rule.
const ROUTE_METADATA_KEY: &str = "authz_route";

pub struct AuthzStage {
    config: AuthzConfig,
    metrics: AuthzMetrics,
}

impl AuthzStage {
    pub fn new(config: AuthzConfig) -> Self {
        log::info!("{FILTER}: configured{}", if config.advisory() { " (advisory: nothing is denied)" } else { "" });
        Self { config, metrics: AuthzMetrics::define() }
    }

    pub fn on_request<const M: u8>(&self, http: &dyn HttpContext, stages: &Stages<M>, pass: &mut Pass) -> Flow {
        let config = &self.config;
        let inputs = config.inputs();
        let headers = if inputs.headers { pass.facts.request_headers().clone() } else { Vec::new() };
        let header = |name: &str| pass.facts.request_header_text(name).map(str::to_owned);
        let (Some(method), Some(path)) = (header(":method"), header(":path")) else {
            return self.refuse(
                http,
                stages,
                pass,
                400,
                "bad_request",
                "the request's method or path is missing or not UTF-8",
            );
        };
        let authority = if inputs.authority { header(":authority") } else { None };
        let identity = if inputs.reads_identity() {
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
        let peer = if inputs.peer { pass.facts.peer_uri_san() } else { None };
        let facts = RequestFacts {
            route_name,
            route_choice,
            authority: authority.as_deref(),
            method: &method,
            path: &path,
            headers: &headers,
            source: addresses.peer_ip(),
            remote: addresses.remote,
            peer_uri_san: peer,
            identity: identity.as_deref(),
            now: pass.facts.now(),
        };
        let decision = config.authorize(&facts);
        if decision.reason == AuthzReason::UnknownRouteRule {
            log::error!(
                "{FILTER}: route metadata filter_metadata.zt.{ROUTE_METADATA_KEY} names rule {:?}, which the \
                 configuration does not define: refused with 500",
                route_choice.unwrap_or_default()
            );
        }
        self.record(stages, pass, &decision);
        match decision.verdict {
            Verdict::Allow => Flow::Continue,
            Verdict::AdvisoryDeny => {
                log::info!("{FILTER}: advisory: would deny ({}, {})", decision.policy, decision.reason.as_str());
                Flow::Continue
            }
            Verdict::Deny if decision.reason == AuthzReason::PeerAddressUnknown => {
                // The listener derived the address from a header and nothing names the peer:
                // an operator must see this, it refuses every request of such a policy.
                log::warn!(
                    "{FILTER}: denied: a policy reads the connection's peer address and Envoy gave only a \
                     header-derived one; set filter state {PEER_ADDRESS_FILTER_STATE} (see the README)"
                );
                crate::send_reply(http, &denial(&decision, config.realm()));
                Flow::Stop
            }
            Verdict::Deny => {
                log::debug!("{FILTER}: denied ({}, {})", decision.policy, decision.reason.as_str());
                crate::send_reply(http, &denial(&decision, config.realm()));
                Flow::Stop
            }
        }
    }

    fn record<const M: u8>(&self, stages: &Stages<M>, pass: &mut Pass, decision: &Decision) {
        self.metrics.record(decision);
        pass.hand_on(stages.handoff, StageRecord::Authz(decision.record()));
    }

    /// Denies a request whose facts cannot be read; the log says why, the client gets a code.
    fn refuse<const M: u8>(
        &self,
        http: &dyn HttpContext,
        stages: &Stages<M>,
        pass: &mut Pass,
        status: u16,
        code: &'static str,
        why: &str,
    ) -> Flow {
        log::warn!("{FILTER}: denied, request not evaluated: {why}");
        self.metrics.unreadable();
        let record = StageRecord::Authz(DecisionRecord::unevaluated(code));
        pass.refuse_unevaluated(http, stages.handoff, record, status, code)
    }
}
