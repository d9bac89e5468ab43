//! The audit filter's metrics, all in one place. Envoy shows them as `wasmcustom.zt_audit.*`.

use crate::Counter;
use zt_core::audit::Outcome;

pub struct AuditMetrics {
    /// Records written, by outcome.
    records: [(Outcome, Counter); 4],
    /// Allowed requests not recorded because of `sample_allowed`.
    sampled_out: Counter,
    /// Records whose filter state held something unreadable.
    anomalies: Counter,
    exported: Counter,
    batches: Counter,
    failures: Counter,
    dropped: Counter,
    /// Records not written because Envoy's log level for Wasm is above the records' level.
    below_log_level: Counter,
}

impl AuditMetrics {
    pub fn define() -> Self {
        let outcome = |o: Outcome| (o, Counter::define(&format!("zt_audit.records.{}", o.as_str())));
        Self {
            records: [
                outcome(Outcome::Allow),
                outcome(Outcome::Advisory),
                outcome(Outcome::Limited),
                outcome(Outcome::Deny),
            ],
            sampled_out: Counter::define("zt_audit.sampled_out"),
            anomalies: Counter::define("zt_audit.anomalies"),
            exported: Counter::define("zt_audit.collector.exported"),
            batches: Counter::define("zt_audit.collector.batches"),
            failures: Counter::define("zt_audit.collector.failures"),
            dropped: Counter::define("zt_audit.collector.dropped"),
            below_log_level: Counter::define("zt_audit.log.below_level"),
        }
    }

    pub fn recorded(&self, outcome: Outcome) {
        if let Some((_, counter)) = self.records.iter().find(|(o, _)| *o == outcome) {
            counter.increment();
        }
    }

    pub fn sampled_out(&self) {
        self.sampled_out.increment();
    }

    pub fn anomaly(&self) {
        self.anomalies.increment();
    }

    pub fn batch_sent(&self) {
        self.batches.increment();
    }

    pub fn exported(&self, records: usize) {
        self.exported.add(u64::try_from(records).unwrap_or(u64::MAX));
    }

    pub fn failure(&self) {
        self.failures.increment();
    }

    pub fn dropped(&self, records: u64) {
        self.dropped.add(records);
    }

    pub fn below_log_level(&self, records: usize) {
        self.below_log_level.add(u64::try_from(records).unwrap_or(u64::MAX));
    }
}
