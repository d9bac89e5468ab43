//! The JWT stage's per-VM service: keeps remote keys fresh on the root's timer, adopting keys
//! other workers fetched and starting the fetches the core says are due, and says which held
//! requests to decide once keys arrive or their wait is over. The first fetch is left to the
//! timer, not made in `on_configure`: Envoy also configures a VM on its main thread, whose
//! calls made there may never be answered.

use std::collections::HashMap;
use std::time::Duration;

use proxy_wasm::traits::Context;
use zt_core::jwt::{FetchOutcome, FetchRequest};

use super::{JwtStage, jwks};
use crate::EnvoySharedData;
use crate::pipeline::SharedPass;

/// How often remote keys are looked after; the schedule itself is the core's. Until every
/// remote provider has keys (requests are held meanwhile), the timer runs faster: a held
/// request in a worker that did not fetch waits at most this long after another published.
const TICK: Duration = Duration::from_secs(1);
const FIRST_KEYS_TICK: Duration = Duration::from_millis(100);

#[derive(Default)]
pub struct JwtService {
    /// Fetches sent and not yet answered, by callout token.
    fetches: HashMap<u32, FetchRequest>,
    /// Every remote provider got keys once: the timer is back to its normal period.
    settled: bool,
}

impl JwtService {
    /// How often this service wants the root's timer, `None` without remote keys.
    pub fn period(&self, stage: &JwtStage) -> Option<Duration> {
        match (stage.authenticator.has_remote_keys(), self.settled) {
            (false, _) => None,
            (true, false) => Some(FIRST_KEYS_TICK),
            (true, true) => Some(TICK),
        }
    }

    /// Adopts published keys and starts due fetches; answers the held requests to decide now.
    pub fn on_tick(&mut self, root: &dyn Context, stage: &JwtStage) -> Vec<SharedPass> {
        for request in stage.authenticator.poll_remote_keys(&EnvoySharedData, crate::now(root)) {
            self.send(root, stage, request);
        }
        if !self.settled && stage.authenticator.every_remote_provider_has_keys() {
            self.settled = true;
        }
        self.due(root, stage)
    }

    /// Whether the callout answer is one of this service's fetches.
    pub fn owns(&self, token: u32) -> bool {
        self.fetches.contains_key(&token)
    }

    /// A fetch's answer; answers the held requests to decide now.
    pub fn on_fetch_answer(
        &mut self,
        root: &dyn Context,
        stage: &JwtStage,
        token: u32,
        body_size: usize,
    ) -> Vec<SharedPass> {
        let Some(request) = self.fetches.remove(&token) else { return Vec::new() };
        if let FetchOutcome::Next(next) = jwks::answer(root, &stage.authenticator, &stage.metrics, &request, body_size)
        {
            self.send(root, stage, next);
        }
        self.due(root, stage)
    }

    /// The held requests whose provider has keys now (or whose fetch failed here), or whose
    /// wait is over.
    fn due(&self, root: &dyn Context, stage: &JwtStage) -> Vec<SharedPass> {
        if stage.waiting.is_empty() {
            return Vec::new();
        }
        stage.waiting.take_due(crate::now_ms(root), |provider| stage.authenticator.keys_settled(provider))
    }

    fn send(&mut self, root: &dyn Context, stage: &JwtStage, request: FetchRequest) {
        if let Some(token) = jwks::send(root, &stage.authenticator, &stage.metrics, &request) {
            self.fetches.insert(token, request);
        }
    }
}
