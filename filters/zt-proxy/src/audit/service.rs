//! The audit stage's per-VM service: exports queued records to the collector on the root's
//! timer, one batch in flight.

use std::time::Duration;

use proxy_wasm::traits::Context;

use super::{AuditStage, FILTER, report_drops};

#[derive(Default)]
pub struct AuditService {
    /// The export in flight: its call token.
    export: Option<u32>,
}

impl AuditService {
    /// How often this service wants the root's timer, `None` without a collector: often enough
    /// that a full batch leaves within a quarter of the batch age.
    pub fn period(stage: &AuditStage) -> Option<Duration> {
        let collector = stage.config.collector()?;
        Some(Duration::from_millis((collector.batch_age_ms / 4).clamp(10, 1000)))
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
        let metrics = &stage.metrics;
        let now_ms = crate::now_ms(root);
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
