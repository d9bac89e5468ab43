//! The root context: loads and validates the configuration once per VM, creates the shared
//! bucket tables before any request, and sweeps idle buckets on a timer.

use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;
use zt_core::ratelimit::RateLimitConfig;
use zt_core::ratelimit::table::SweepSchedule;
use zt_proxy::EnvoySharedData;

use crate::FILTER;
use crate::http::RateLimitHttp;
use crate::metrics::RateLimitMetrics;

/// Slots each sweep examines; bounds the work one tick does on a worker thread.
const SWEEP_CHUNK: u64 = 1024;

#[derive(Default)]
pub struct RateLimitRoot {
    config: Option<Rc<RateLimitConfig>>,
    metrics: Option<Rc<RateLimitMetrics>>,
    schedules: Vec<SweepSchedule>,
}

impl Context for RateLimitRoot {}

impl RootContext for RateLimitRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let Some(config) = zt_proxy::load_configuration(self, FILTER, RateLimitConfig::from_json) else {
            return false;
        };
        // Every slot exists before the first request, so that all bucket writes are CAS.
        if let Err(error) = config.prepare(&EnvoySharedData) {
            log::error!("{FILTER}: cannot create the bucket tables in shared data: {error:?}");
            return false;
        }
        self.schedules = config.tables().map(|(_, table)| SweepSchedule::new(table)).collect();
        let tick = Duration::from_millis(config.sweep_ms().clamp(1000, 60_000) / 2);
        self.set_tick_period(tick);
        log::info!(
            "{FILTER}: configured ({} limits, {} slots per local limit)",
            config.limit_names().count(),
            config.max_keys()
        );
        self.metrics = Some(Rc::new(RateLimitMetrics::define(&config)));
        self.config = Some(Rc::new(config));
        true
    }

    fn on_tick(&mut self) {
        let (Some(config), Some(metrics)) = (&self.config, &self.metrics) else { return };
        let now_ms = zt_proxy::now_ms(self);
        for ((_, table), schedule) in config.tables().zip(&self.schedules) {
            let chunk = SWEEP_CHUNK.min(table.slots());
            if let Some(start) = schedule.claim(&EnvoySharedData, now_ms, config.sweep_ms(), chunk, table.slots()) {
                metrics.evicted(table.sweep(&EnvoySharedData, start, chunk, now_ms));
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let config = Rc::clone(self.config.as_ref()?);
        let metrics = Rc::clone(self.metrics.as_ref()?);
        Some(Box::new(RateLimitHttp::new(config, metrics)))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
