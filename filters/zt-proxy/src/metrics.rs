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
