//! The audit stage. It does nothing while the request runs; when the stream ends (`on_log`,
//! which Envoy calls for every stream, also those an earlier filter answered or the client
//! abandoned), it reads what Envoy knows, takes the other stages' decisions (from this module's
//! own stages, else from filter state), and the core builds, samples and chains the record. It
//! goes to Envoy's log, several records per log call ([`LogBatch`]), and to the collector's
//! queue; the per-VM service writes what waited too long and drains the queue on the root's
//! timer ([`AuditService`]), so the request path never waits for the collector.

mod metrics;
mod service;

use std::cell::{Cell, RefCell};

use proxy_wasm::traits::HttpContext;
use zt_core::audit::{
    AuditConfig, Chain, Dropped, Handed, HandedIdentity, LogBatch, Outbox, RecordLogLevel, StageRecord, StreamFacts,
};
use zt_core::filter_state::{AUTHZ_DECISION, IDENTITY, JWT_DECISION, RATELIMIT_DECISION};
use zt_core::identity_source::IdentitySource;

pub use service::AuditService;

use crate::metrics::Histogram;
use crate::pipeline::{Pass, Stages};
use crate::{property, property_string, property_u64};
use metrics::AuditMetrics;

/// The name this stage logs under.
const FILTER: &str = "zt-audit";

/// The key of `filter_metadata.zt` by which a route names its audit rule.
const ROUTE_METADATA_KEY: &str = "audit_route";

/// What one worker VM's streams share: its chain and its queue. Envoy runs a worker's
/// callbacks one at a time, so the `RefCell` is never contended.
struct Worker {
    chain: Chain,
    log: Option<LogBatch>,
    outbox: Option<Outbox>,
    /// A per-worker sequence for sampling requests that carry no request id.
    draws: u64,
}

pub struct AuditStage {
    config: AuditConfig,
    metrics: AuditMetrics,
    worker: RefCell<Worker>,
    /// Whether this VM has told the operator that Envoy's log level drops its records.
    told_below_level: Cell<bool>,
    /// `zt_audit.latency_us`, when the configuration asks: a record's work at stream end.
    latency: Option<Histogram>,
}

impl AuditStage {
    /// Starts the VM's chain; `None` (logged) when it cannot.
    pub fn new(config: AuditConfig) -> Option<Self> {
        let mut random = [0u8; 16];
        // Without randomness two workers' chains could share an id: refuse rather than mix them.
        if let Err(error) = getrandom::fill(&mut random) {
            log::error!("{FILTER}: no random source for the chain id: {error}");
            return None;
        }
        // The chain key comes from the VM's environment (WASI `environ_get`), which Envoy fills
        // from `vm_config.environment_variables` and Istio from `vmConfig.env`: the key stays
        // out of the plugin configuration, which the admin interface shows.
        let chain = match config.chain(random, |name| std::env::var_os(name).map(|v| v.into_encoded_bytes())) {
            Ok(chain) => chain,
            Err(error) => {
                log::error!("{FILTER}: invalid configuration: {error}");
                return None;
            }
        };
        let outbox = config.collector().map(Outbox::new);
        log::info!(
            "{FILTER}: configured (chain {}, prev {}, log {}, collector {})",
            chain.id(),
            chain.alg().as_str(),
            config.log(),
            config.collector().map_or("none", |c| c.cluster.as_str())
        );
        let log = config.log().then(|| config.log_batch());
        let worker = RefCell::new(Worker { chain, log, outbox, draws: 0 });
        let latency = crate::metrics::latency_histogram("audit", config.latency_histogram());
        Some(Self { config, metrics: AuditMetrics::define(), worker, told_below_level: Cell::new(false), latency })
    }

    /// Writes records (one per line) to Envoy's log at the configured level. Envoy drops a
    /// message below its level for Wasm without a word (Istio's proxies run at `warning`), so
    /// the level is asked first, once per log call: records it would drop are counted
    /// (`zt_audit.log.below_level`) and the operator is told, at `error`, how to keep them.
    fn write_log(&self, text: &str) {
        let level = self.config.log_level();
        let host = proxy_wasm::hostcalls::get_log_level().ok();
        if host.is_some_and(|host| host as u32 > host_level(level) as u32) {
            self.metrics.below_log_level(text.lines().count());
            if !self.told_below_level.replace(true) {
                log::error!(
                    "{FILTER}: Envoy's log level for Wasm ({host:?}) drops audit records written at {}: set the \
                     audit configuration's log_level to warning (Istio's proxy default), or Envoy's \
                     --component-log-level wasm:{} (Istio: the sidecar.istio.io/componentLogLevel annotation); \
                     counted in zt_audit.log.below_level",
                    level.as_str(),
                    level.as_str()
                );
            }
            return;
        }
        match level {
            RecordLogLevel::Info => log::info!("{text}"),
            RecordLogLevel::Warning => log::warn!("{text}"),
            RecordLogLevel::Error => log::error!("{text}"),
        }
    }

    /// The stream ended: one record, timed when the configuration asks.
    pub fn on_log<const M: u8>(&self, http: &dyn HttpContext, stages: &Stages<M>, pass: &Pass) {
        let Some(histogram) = self.latency else { return self.record(http, stages, pass) };
        let started = crate::now_ns(http);
        self.record(http, stages, pass);
        histogram.record(crate::now_ns(http).saturating_sub(started) / 1_000);
    }

    fn record<const M: u8>(&self, http: &dyn HttpContext, stages: &Stages<M>, pass: &Pass) {
        let facts = self.facts(http, stages, pass);
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
                "{FILTER}: route metadata filter_metadata.zt.{ROUTE_METADATA_KEY} names rule {rule:?}, which the \
                 configuration does not define: recorded with the defaults"
            );
        }
        let worker = &mut *worker;
        if let Some(text) = worker.log.as_mut().and_then(|log| log.push(&sealed, facts.now_ns / 1_000_000)) {
            self.write_log(&text);
        }
        if let Some(outbox) = worker.outbox.as_mut() {
            let dropped = outbox.push(&sealed, &draft, &worker.chain, facts.now_ns);
            report_drops(&self.metrics, worker.chain.id(), dropped);
        }
    }

    fn facts<const M: u8>(&self, http: &dyn HttpContext, stages: &Stages<M>, pass: &Pass) -> StreamFacts {
        let header =
            |name: &str| pass.facts.request_header(name).map(|value| String::from_utf8_lossy(value).into_owned());
        let headers = self
            .config
            .headers()
            .iter()
            .filter_map(|name| pass.facts.request_header(name).map(|value| (name.clone(), value.to_vec())))
            .collect();
        // A stage of this module hands its result in memory; without that stage, an earlier
        // filter's is read from filter state, or jwt_authn's from the stream's metadata.
        let identity = match (stages.jwt(), &stages.identity_source) {
            (Some(_), _) => pass.identity.clone().map(HandedIdentity::Verified),
            (None, IdentitySource::ZtJwt) => property(&[IDENTITY]).map(HandedIdentity::FilterState),
            (None, IdentitySource::JwtAuthn(payloads)) => match pass.facts.adopted_identity(payloads) {
                Ok(identity) => identity.cloned().map(Ok).map(HandedIdentity::Adopted),
                Err(why) => Some(HandedIdentity::Adopted(Err(why.clone()))),
            },
        };
        let handed = |present: bool, record: Option<&StageRecord>, key: &str| match present {
            true => record.cloned().map(Handed::Stage),
            false => property(&[key]).map(Handed::FilterState),
        };
        StreamFacts {
            start_ns: property_u64(&["request", "time"]),
            now_ns: crate::now_ns(http),
            // Envoy's `request.id`, `request.host`, `request.method` and `request.path` are these
            // request headers, as the request's stages saw them (one read for all of them).
            request_id: header("x-request-id"),
            traceparent: header("traceparent"),
            source: pass.facts.addresses(),
            peer_uri_san: pass.facts.peer_uri_san().map(str::to_owned),
            authority: header(":authority"),
            method: header(":method"),
            path: header(":path"),
            route_name: pass.facts.route_name().map(str::to_owned),
            // Always: a route naming an undefined rule is an anomaly, rules or none.
            route_choice: pass.facts.route_rule(ROUTE_METADATA_KEY).map(str::to_owned),
            cluster: property_string(&["xds", "cluster_name"]),
            status: property_u64(&["response", "code"]),
            flags: property_u64(&["response", "flags"]).unwrap_or(0),
            details: property_string(&["response", "code_details"]),
            duration_ns: property_u64(&["request", "duration"]),
            bytes_in: property_u64(&["request", "size"]),
            bytes_out: property_u64(&["response", "size"]),
            headers,
            identity,
            jwt: handed(stages.jwt().is_some(), pass.jwt_record.as_ref(), JWT_DECISION),
            authz: handed(stages.authz().is_some(), pass.authz_record.as_ref(), AUTHZ_DECISION),
            ratelimit: handed(stages.ratelimit().is_some(), pass.ratelimit_record.as_ref(), RATELIMIT_DECISION),
        }
    }
}

/// Writes the records that waited their longest for Envoy's log; called on every tick of the
/// root's timer, whichever service set its period.
pub fn write_due_log(stage: &AuditStage, now_ms: u64) {
    let due = stage.worker.borrow_mut().log.as_mut().and_then(|log| log.due(now_ms));
    if let Some(text) = due {
        stage.write_log(&text);
    }
}

/// The host's level of a record level.
fn host_level(level: RecordLogLevel) -> proxy_wasm::types::LogLevel {
    use proxy_wasm::types::LogLevel;
    match level {
        RecordLogLevel::Info => LogLevel::Info,
        RecordLogLevel::Warning => LogLevel::Warn,
        RecordLogLevel::Error => LogLevel::Error,
    }
}

/// Every record given up on is counted and logged with the part of the chain it was, so that
/// the gap a verifier finds in the collector's copy is explained (Envoy's log keeps them all).
fn report_drops(metrics: &AuditMetrics, chain: &str, dropped: Option<Dropped>) {
    if let Some(d) = dropped {
        metrics.dropped(d.count);
        log::warn!(
            "{FILTER}: dropped {} records of chain {chain} for the collector (seq {}-{}): it was slow or down",
            d.count,
            d.first_seq,
            d.last_seq
        );
    }
}
