//! The root context: loads and validates the configuration once per VM, starts the VM's
//! chain, and exports queued records to the collector on a timer, one batch in flight.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;
use zt_core::audit::{AuditConfig, Chain, Dropped, Outbox};

use crate::FILTER;
use crate::http::AuditHttp;
use crate::metrics::AuditMetrics;

/// What one worker VM's streams share: its chain and its queue. Envoy runs a worker's
/// callbacks one at a time, so the `RefCell` is never contended.
pub struct Worker {
    pub chain: Chain,
    pub outbox: Option<Outbox>,
    /// A per-worker sequence for sampling requests that carry no request id.
    pub draws: u64,
}

pub type SharedWorker = Rc<RefCell<Worker>>;

#[derive(Default)]
pub struct AuditRoot {
    config: Option<Rc<AuditConfig>>,
    metrics: Option<Rc<AuditMetrics>>,
    worker: Option<SharedWorker>,
    /// The export in flight: its call token.
    export: Option<u32>,
}

impl Context for AuditRoot {
    fn on_http_call_response(&mut self, token_id: u32, _num_headers: usize, _body_size: usize, _trailers: usize) {
        if self.export != Some(token_id) {
            return;
        }
        self.export = None;
        let status = self.get_http_call_response_header(":status").and_then(|s| s.parse::<u16>().ok());
        let (Some(worker), Some(metrics)) = (&self.worker, &self.metrics) else { return };
        let mut worker = worker.borrow_mut();
        let worker = &mut *worker;
        let Some(outbox) = worker.outbox.as_mut() else { return };
        match status {
            Some(200..=299) => metrics.exported(outbox.delivered()),
            // No status: the call was reset, refused or timed out (Envoy answers no headers).
            _ => {
                log::warn!("{FILTER}: collector export failed (status {status:?}); records wait for a retry");
                metrics.failure();
                let dropped = outbox.failed(zt_proxy::now_ms(self));
                report_drops(metrics, worker.chain.id(), dropped);
            }
        }
    }
}

impl RootContext for AuditRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let Some(config) = zt_proxy::load_configuration(self, FILTER, AuditConfig::from_json) else {
            return false;
        };
        let mut random = [0u8; 16];
        // Without randomness two workers' chains could share an id: refuse rather than mix them.
        if let Err(error) = getrandom::fill(&mut random) {
            log::error!("{FILTER}: no random source for the chain id: {error}");
            return false;
        }
        // The chain key comes from the VM's environment (WASI `environ_get`), which Envoy fills
        // from `vm_config.environment_variables` and Istio from `vmConfig.env`: the key stays
        // out of the plugin configuration, which the admin interface shows.
        let chain = match config.chain(random, |name| std::env::var_os(name).map(|v| v.into_encoded_bytes())) {
            Ok(chain) => chain,
            Err(error) => {
                log::error!("{FILTER}: invalid configuration: {error}");
                return false;
            }
        };
        let outbox = config.collector().map(Outbox::new);
        if let Some(collector) = config.collector() {
            // Often enough that a full batch leaves within a quarter of the batch age.
            self.set_tick_period(Duration::from_millis((collector.batch_age_ms / 4).clamp(10, 1000)));
        }
        log::info!(
            "{FILTER}: configured (chain {}, prev {}, log {}, collector {})",
            chain.id(),
            chain.alg().as_str(),
            config.log(),
            config.collector().map_or("none", |c| c.cluster.as_str())
        );
        self.worker = Some(Rc::new(RefCell::new(Worker { chain, outbox, draws: 0 })));
        self.metrics = Some(Rc::new(AuditMetrics::define()));
        self.config = Some(Rc::new(config));
        true
    }

    fn on_tick(&mut self) {
        let (Some(config), Some(worker), Some(metrics)) = (&self.config, &self.worker, &self.metrics) else { return };
        let Some(collector) = config.collector() else { return };
        let now_ms = zt_proxy::now_ms(self);
        let mut worker = worker.borrow_mut();
        let worker = &mut *worker;
        let Some(outbox) = worker.outbox.as_mut() else { return };
        let chain = worker.chain.id();
        report_drops(metrics, chain, outbox.expire(now_ms));
        report_drops(metrics, chain, outbox.checkpoint_due(&worker.chain, now_ms.saturating_mul(1_000_000)));
        if self.export.is_some() {
            return;
        }
        let Some(batch) = outbox.take_batch(now_ms) else { return };
        let mut headers = vec![
            (":method", "POST"),
            (":path", collector.path.as_str()),
            (":authority", collector.authority.as_str()),
            ("content-type", collector.format.content_type()),
        ];
        headers.extend(collector.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        let timeout = Duration::from_millis(collector.timeout_ms);
        match self.dispatch_http_call(&collector.cluster, headers, Some(&batch.body), Vec::new(), timeout) {
            Ok(token) => {
                metrics.batch_sent();
                self.export = Some(token);
            }
            Err(status) => {
                log::warn!("{FILTER}: cannot call the collector on cluster {}: {status:?}", collector.cluster);
                metrics.failure();
                report_drops(metrics, chain, outbox.failed(now_ms));
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let config = Rc::clone(self.config.as_ref()?);
        let metrics = Rc::clone(self.metrics.as_ref()?);
        let worker = Rc::clone(self.worker.as_ref()?);
        Some(Box::new(AuditHttp::new(config, metrics, worker)))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// Every record given up on is counted and logged with the part of the chain it was, so that
/// the gap a verifier finds in the collector's copy is explained (Envoy's log keeps them all).
pub fn report_drops(metrics: &AuditMetrics, chain: &str, dropped: Option<Dropped>) {
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
