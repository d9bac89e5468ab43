//! The audit stage's per-VM service, on the root's timer: writes the records that waited their
//! longest for Envoy's log, and exports queued records to the collector, one batch in flight.

use std::time::Duration;

use proxy_wasm::traits::Context;
use zt_core::audit::LogBatch;

use super::{AuditStage, FILTER, report_drops};

#[derive(Default)]
pub struct AuditService {
    /// The export in flight: its call token.
    export: Option<u32>,
}

impl AuditService {
    /// How often this service wants the root's timer, `None` when nothing waits: for the log,
    /// within half a batch age; for the collector, within a quarter of its batch age.
    pub fn period(stage: &AuditStage) -> Option<Duration> {
        let log = stage.worker.borrow().log.as_ref().and_then(LogBatch::check_every_ms);
        let export = stage.config.collector().map(|collector| (collector.batch_age_ms / 4).clamp(10, 1000));
        log.into_iter().chain(export).min().map(Duration::from_millis)
    }

    /// The VM stops (Envoy drains the plugin or shuts down): what waits for the log is written,
    /// and the records of streams that end after this are written as they come.
    pub fn on_done(&self, stage: &AuditStage) {
        let held = stage.worker.borrow_mut().log.as_mut().and_then(LogBatch::stop);
        if let Some(text) = held {
            stage.write_log(&text);
        }
    }

    /// Whether the callout answer is this service's export.
    pub fn owns(&self, token: u32) -> bool {
        self.export == Some(token)
    }

    pub fn on_export_answer(&mut self, root: &dyn Context, stage: &AuditStage) {
        self.export = None;
        let status = root.get_http_call_response_header(":status").and_then(|s| s.parse::<u16>().ok());
        let mut worker = stage.worker.borrow_mut();
        let worker = &mut *worker;
        let Some(outbox) = worker.outbox.as_mut() else { return };
        match status {
            Some(200..=299) => stage.metrics.exported(outbox.delivered()),
            // No status: the call was reset, refused or timed out (Envoy answers no headers).
            _ => {
                log::warn!("{FILTER}: collector export failed (status {status:?}); records wait for a retry");
                stage.metrics.failure();
                let dropped = outbox.failed(crate::now_ms(root));
                report_drops(&stage.metrics, worker.chain.id(), dropped);
            }
        }
    }

    pub fn on_tick(&mut self, root: &dyn Context, stage: &AuditStage) {
        let Some(collector) = stage.config.collector() else { return };
        let now_ms = crate::now_ms(root);
        let metrics = &stage.metrics;
        let mut worker = stage.worker.borrow_mut();
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
        match root.dispatch_http_call(&collector.cluster, headers, Some(&batch.body), Vec::new(), timeout) {
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
}
