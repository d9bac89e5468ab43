//! The per-request context. It does nothing while the request runs; when the stream ends
//! (`on_log`), it reads the facts, and the core builds, samples and chains the record.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use zt_core::audit::{AuditConfig, LOG_MARKER, StreamFacts};
use zt_core::filter_state::{AUTHZ_DECISION, IDENTITY, JWT_DECISION, RATELIMIT_DECISION};
use zt_proxy::{property, property_string, property_u64};

use crate::metrics::AuditMetrics;
use crate::root::{SharedWorker, report_drops};

/// The key of `filter_metadata.zt` by which a route names its audit rule.
const ROUTE_METADATA_KEY: &str = "audit_route";

pub struct AuditHttp {
    config: Rc<AuditConfig>,
    metrics: Rc<AuditMetrics>,
    worker: SharedWorker,
}

impl AuditHttp {
    pub fn new(config: Rc<AuditConfig>, metrics: Rc<AuditMetrics>, worker: SharedWorker) -> Self {
        Self { config, metrics, worker }
    }

    fn facts(&self) -> StreamFacts {
        let text = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).into_owned();
        let header = |name: &str| self.get_http_request_header_bytes(name).map(text);
        let headers = self
            .config
            .headers()
            .iter()
            .filter_map(|name| self.get_http_request_header_bytes(name).map(|value| (name.clone(), value)))
            .collect();
        StreamFacts {
            start_ns: property_u64(&["request", "time"]),
            now_ns: zt_proxy::now_ns(self),
            request_id: property(&["request", "id"]).map(text),
            traceparent: header("traceparent"),
            source: zt_proxy::source_addresses(),
            peer_uri_san: property(&["connection", "uri_san_peer_certificate"]).map(text),
            authority: property(&["request", "host"]).map(text),
            method: property(&["request", "method"]).map(text),
            path: property(&["request", "path"]).map(text),
            route_name: zt_proxy::route_name(),
            // Always: a route naming an undefined rule is an anomaly, rules or none.
            route_choice: zt_proxy::route_rule_choice(ROUTE_METADATA_KEY),
            cluster: property_string(&["xds", "cluster_name"]),
            status: property_u64(&["response", "code"]),
            flags: property_u64(&["response", "flags"]).unwrap_or(0),
            details: property_string(&["response", "code_details"]),
            duration_ns: property_u64(&["request", "duration"]),
            bytes_in: property_u64(&["request", "size"]),
            bytes_out: property_u64(&["response", "size"]),
            headers,
            identity: property(&[IDENTITY]),
            jwt: property(&[JWT_DECISION]),
            authz: property(&[AUTHZ_DECISION]),
            ratelimit: property(&[RATELIMIT_DECISION]),
        }
    }
}

impl Context for AuditHttp {}

impl HttpContext for AuditHttp {
    fn on_log(&mut self) {
        let facts = self.facts();
        let draft = self.config.draft(&facts);
        let mut worker = self.worker.borrow_mut();
        worker.draws = worker.draws.wrapping_add(1);
        if !draft.sampled(worker.draws) {
            self.metrics.sampled_out();
            return;
        }
        let sealed = worker.chain.seal(&draft);
        self.metrics.recorded(draft.outcome());
        if draft.anomaly() {
            self.metrics.anomaly();
        }
        if let Some(rule) = draft.unknown_route_rule() {
            log::warn!(
                "{}: route metadata filter_metadata.zt.{ROUTE_METADATA_KEY} names rule {rule:?}, which the \
                 configuration does not define: recorded with the defaults",
                crate::FILTER
            );
        }
        if self.config.log() {
            log::info!("{LOG_MARKER}{}", sealed.text);
        }
        let worker = &mut *worker;
        if let Some(outbox) = worker.outbox.as_mut() {
            let dropped = outbox.push(&sealed, &draft, &worker.chain, facts.now_ns);
            report_drops(&self.metrics, worker.chain.id(), dropped);
        }
    }
}
