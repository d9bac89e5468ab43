//! The root context of every module: loads and validates the configuration once per VM,
//! builds the stages, runs their per-VM services on one timer, routes each callout answer to
//! the service that made it, and decides requests held for keys once they may go on.

use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};

use super::http::PipelineHttp;
use super::{AUDIT, AUTHZ, JWT, Module, RATELIMIT, SharedPass, StageLatency, Stages, parse, run};
use crate::audit::{AuditService, AuditStage};
use crate::authz::AuthzStage;
use crate::jwt::{JwtService, JwtStage};
use crate::ratelimit::{RateLimitService, RateLimitStage};

/// The root context of the module built with stages `M`.
pub struct PipelineRoot<const M: u8> {
    /// This root context's id: the effective context to return to after deciding held
    /// requests in theirs.
    id: u32,
    stages: Option<Rc<Stages<M>>>,
    jwt: JwtService,
    ratelimit: Option<RateLimitService>,
    audit: AuditService,
    /// The timer's period, the shortest any service asks for.
    period: Option<Duration>,
    /// When each service (JWT, rate limit, audit) is next due, in ms of the host clock.
    due_ms: [u64; 3],
}

impl<const M: u8> PipelineRoot<M> {
    const MODULE: Module = Module::of(M);

    pub fn new(id: u32) -> Self {
        Self {
            id,
            stages: None,
            jwt: JwtService::default(),
            ratelimit: None,
            audit: AuditService::default(),
            period: None,
            due_ms: [0; 3],
        }
    }

    /// Each service's own period: the JWT service's shortens while keys are awaited.
    fn periods(&self, stages: &Stages<M>) -> [Option<Duration>; 3] {
        [
            stages.jwt().and_then(|stage| self.jwt.period(stage)),
            stages.ratelimit().map(RateLimitService::period),
            stages.audit().and_then(AuditService::period),
        ]
    }

    /// Sets the timer to the shortest period any service wants; a service whose period is not
    /// up yet is skipped on a tick.
    fn schedule(&mut self, stages: &Stages<M>, now_ms: u64, restart: [bool; 3]) {
        let periods = self.periods(stages);
        for ((due, period), restart) in self.due_ms.iter_mut().zip(periods).zip(restart) {
            if let (Some(period), true) = (period, restart) {
                *due = now_ms.saturating_add(u64::try_from(period.as_millis()).unwrap_or(u64::MAX));
            }
        }
        let shortest = periods.into_iter().flatten().min();
        if shortest != self.period {
            self.period = shortest;
            self.set_tick_period(shortest.unwrap_or(Duration::ZERO));
        }
    }

    /// Goes on with held requests in their own contexts: `proxy_set_effective_context` makes
    /// every host call act for that request, as if its own context made it. Called last in a
    /// root callback, and returns to the root context before it ends.
    fn wake(&self, stages: &Stages<M>, passes: Vec<SharedPass>) {
        if passes.is_empty() {
            return;
        }
        for pass in passes {
            let context_id = pass.borrow().context_id;
            // A stream that ended meanwhile is gone: nothing to decide.
            if hostcalls::set_effective_context(context_id).is_err() {
                continue;
            }
            if run(&HeldRequest, stages, &pass) == Action::Continue {
                let _ = hostcalls::resume_http_request();
            }
        }
        // Back to the root: a host call made for the root later in this callback (a timer
        // period, a fetch) must not land on a request's context.
        if hostcalls::set_effective_context(self.id).is_err() {
            log::error!("{}: cannot return to the root context after deciding held requests", Self::MODULE.name());
        }
    }
}

impl<const M: u8> Context for PipelineRoot<M> {
    fn on_done(&mut self) -> bool {
        if let Some(stage) = self.stages.as_ref().and_then(|stages| stages.audit()) {
            self.audit.on_done(stage);
        }
        true
    }

    fn on_http_call_response(&mut self, token_id: u32, _num_headers: usize, body_size: usize, _num_trailers: usize) {
        let Some(stages) = self.stages.clone() else { return };
        if let Some(stage) = stages.jwt()
            && self.jwt.owns(token_id)
        {
            let mut jwt = std::mem::take(&mut self.jwt);
            let woken = jwt.on_fetch_answer(self, stage, token_id, body_size);
            self.jwt = jwt;
            self.wake(&stages, woken);
        } else if let Some(stage) = stages.audit()
            && self.audit.owns(token_id)
        {
            let mut audit = std::mem::take(&mut self.audit);
            audit.on_export_answer(self, stage);
            self.audit = audit;
        }
    }
}

impl<const M: u8> RootContext for PipelineRoot<M> {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let module = Self::MODULE;
        let Some(config) = crate::load_configuration(self, module.name(), parse::<M>) else {
            return false;
        };
        // Each constructor behind its constant bit, so a module links its own stages only.
        let audit = match config.audit.filter(|_| M & AUDIT != 0).map(AuditStage::new) {
            Some(None) => return false,
            Some(Some(stage)) => Some(stage),
            None => None,
        };
        let ratelimit = config.ratelimit.filter(|_| M & RATELIMIT != 0).map(RateLimitStage::new);
        if let Some(stage) = &ratelimit {
            let Some(service) = RateLimitService::start(stage) else { return false };
            self.ratelimit = Some(service);
        }
        let wants = |stage: &str, on: bool| crate::metrics::latency_histogram(stage, on);
        let latency = StageLatency {
            jwt: config.jwt.as_ref().filter(|_| M & JWT != 0).and_then(|c| wants("jwt", c.latency_histogram)),
            authz: config.authz.as_ref().filter(|_| M & AUTHZ != 0).and_then(|c| wants("authz", c.latency_histogram())),
            ratelimit: ratelimit.as_ref().and_then(|stage| wants("ratelimit", stage.config().latency_histogram())),
        };
        let stages = Rc::new(Stages::<M> {
            handoff: module.handoff(),
            publishes_state: config.filter_state,
            identity_source: config.identity_source,
            latency,
            jwt: config.jwt.filter(|_| M & JWT != 0).map(JwtStage::new),
            authz: config.authz.filter(|_| M & AUTHZ != 0).map(AuthzStage::new),
            ratelimit,
            audit,
        });
        if module == Module::Suite {
            let on = |present: bool, name: &'static str| present.then_some(name);
            let sections: Vec<&str> = [
                on(stages.jwt().is_some(), "jwt"),
                on(stages.authz().is_some(), "authz"),
                on(stages.ratelimit().is_some(), "ratelimit"),
                on(stages.audit().is_some(), "audit"),
            ]
            .into_iter()
            .flatten()
            .collect();
            log::info!("{}: configured stages {}", module.name(), sections.join(" -> "));
        }
        self.schedule(&stages, crate::now_ms(self), [true; 3]);
        self.stages = Some(stages);
        true
    }

    fn on_tick(&mut self) {
        let Some(stages) = self.stages.clone() else { return };
        let now_ms = crate::now_ms(self);
        let due = self.due_ms.map(|due| now_ms >= due);
        let mut woken = Vec::new();
        if let (Some(stage), true) = (stages.jwt(), due[0]) {
            let mut jwt = std::mem::take(&mut self.jwt);
            woken = jwt.on_tick(self, stage);
            self.jwt = jwt;
        }
        if let (Some(stage), Some(service), true) = (stages.ratelimit(), &self.ratelimit, due[1]) {
            service.on_tick(self, stage);
        }
        if let Some(stage) = stages.audit() {
            crate::audit::write_due_log(stage, now_ms);
        }
        if let (Some(stage), true) = (stages.audit(), due[2]) {
            let mut audit = std::mem::take(&mut self.audit);
            audit.on_tick(self, stage);
            self.audit = audit;
        }
        self.schedule(&stages, now_ms, due);
        self.wake(&stages, woken);
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        // Without a valid configuration Envoy never creates streams; `None` stays closed anyway.
        let stages = Rc::clone(self.stages.as_ref()?);
        Some(Box::new(PipelineHttp::<M>::new(context_id, stages)))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// The HTTP context in effect after `proxy_set_effective_context`: the SDK's request calls go
/// to the host for whichever context is in effect, so this stands for the held request.
struct HeldRequest;

impl Context for HeldRequest {}
impl HttpContext for HeldRequest {}
