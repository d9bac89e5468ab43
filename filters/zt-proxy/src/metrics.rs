//! Counters through Envoy stats. Defined once per VM at configuration; a counter the host
//! refused to define is skipped rather than failing requests over bookkeeping.

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

#[derive(Debug, Clone, Copy)]
pub struct Counter(Option<u32>);

impl Counter {
    pub fn define(name: &str) -> Self {
        match hostcalls::define_metric(MetricType::Counter, name) {
            Ok(id) => Counter(Some(id)),
            Err(status) => {
                log::warn!("cannot define metric {name}: {status:?}");
                Counter(None)
            }
        }
    }

    pub fn increment(self) {
        self.add(1);
    }

    pub fn add(self, count: u64) {
        if let (Some(id), Ok(delta @ 1..)) = (self.0, i64::try_from(count)) {
            let _ = hostcalls::increment_metric(id, delta);
        }
    }
}

/// A histogram through Envoy stats: each recorded value is one sample.
#[derive(Debug, Clone, Copy)]
pub struct Histogram(Option<u32>);

impl Histogram {
    pub fn define(name: &str) -> Self {
        match hostcalls::define_metric(MetricType::Histogram, name) {
            Ok(id) => Histogram(Some(id)),
            Err(status) => {
                log::warn!("cannot define metric {name}: {status:?}");
                Histogram(None)
            }
        }
    }

    pub fn record(self, value: u64) {
        if let Some(id) = self.0 {
            let _ = hostcalls::record_metric(id, value);
        }
    }
}

/// A stage's latency histogram, `zt_<stage>.latency_us`, when its configuration asks for one.
pub fn latency_histogram(stage: &str, wanted: bool) -> Option<Histogram> {
    wanted.then(|| Histogram::define(&format!("zt_{stage}.latency_us")))
}

/// A configured name (a provider, a route rule, a policy) as one segment of a metric name, for
/// Envoy's tag extraction: a `.` would split it (and its label), so every character other than
/// an ASCII letter, digit, `_` or `-` becomes `_`.
pub fn metric_segment(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect()
}
