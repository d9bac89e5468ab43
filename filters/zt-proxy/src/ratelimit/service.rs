//! The rate-limit stage's per-VM service: creates the shared bucket tables before any request
//! and sweeps idle buckets on the root's timer.

use std::time::Duration;

use proxy_wasm::traits::Context;
use zt_core::ratelimit::table::SweepSchedule;

use super::{FILTER, RateLimitStage};
use crate::EnvoySharedData;

/// Slots each sweep examines; bounds the work one tick does on a worker thread.
const SWEEP_CHUNK: u64 = 1024;

pub struct RateLimitService {
    schedules: Vec<SweepSchedule>,
}

impl RateLimitService {
    /// Creates every slot before the first request, so that all bucket writes are CAS; `None`
    /// (logged) when shared data refuses.
    pub fn start(stage: &RateLimitStage) -> Option<Self> {
        let config = stage.config();
        if let Err(error) = config.prepare(&EnvoySharedData) {
            log::error!("{FILTER}: cannot create the bucket tables in shared data: {error:?}");
            return None;
        }
        Some(Self { schedules: config.tables().map(|(_, table)| SweepSchedule::new(table)).collect() })
    }

    pub fn period(stage: &RateLimitStage) -> Duration {
        Duration::from_millis(stage.config().sweep_ms().clamp(1000, 60_000) / 2)
    }

    pub fn on_tick(&self, root: &dyn Context, stage: &RateLimitStage) {
        let config = stage.config();
        let now_ms = crate::now_ms(root);
        for ((_, table), schedule) in config.tables().zip(&self.schedules) {
            let chunk = SWEEP_CHUNK.min(table.slots());
            if let Some(start) = schedule.claim(&EnvoySharedData, now_ms, config.sweep_ms(), chunk, table.slots()) {
                stage.metrics.evicted(table.sweep(&EnvoySharedData, start, chunk, now_ms));
            }
        }
    }
}
