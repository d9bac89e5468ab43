//! The orchestration, written once: the stages a module runs, in order, in one HTTP context.
//! Each single filter is this pipeline with one stage; the suite is all four. A stage reads the
//! request facts it needs, decides with the core, and continues, answers locally, or waits for
//! a callout or for keys; the pipeline resumes it where it waited.
//!
//! How stages hand on identity and decisions ([`Handoff`]): inside one module, in memory, typed;
//! between single modules, through Envoy filter state (which clients cannot set).

mod facts;
mod http;
mod root;

use std::borrow::Cow;
use std::cell::RefCell;
use std::rc::Rc;

use proxy_wasm::traits::HttpContext;
use proxy_wasm::types::Action;
use zt_core::audit::{AuditConfig, StageRecord};
use zt_core::authz::AuthzConfig;
use zt_core::filter_state::{AUTHZ_DECISION, IDENTITY, JWT_DECISION, RATELIMIT_DECISION, SUITE as SUITE_STATE};
use zt_core::identity_source::IdentitySource;
use zt_core::jwt::{Identity, JwtFilterConfig, VerifiedToken};
use zt_core::ratelimit::RateLimitConfig;
use zt_core::secrets::{SecretScope, resolve_env};
use zt_core::suite::{Principal, SuiteConfig, SuiteState};
use zt_core::{ConfigError, LocalReply};

pub use facts::Facts;
pub use root::PipelineRoot;

use crate::audit::AuditStage;
use crate::authz::AuthzStage;
use crate::jwt::{Attempt, JwtRequest, JwtStage};
use crate::metrics::Histogram;
use crate::ratelimit::{RateLimitRequest, RateLimitStage};

/// The stages a module is built with, as bits: the module's const parameter `M`. A stage
/// whose bit is clear is compiled out of the module (its code is unreachable), so a single
/// filter carries its own stage only.
pub const JWT: u8 = 1;
pub const AUTHZ: u8 = 2;
pub const RATELIMIT: u8 = 4;
pub const AUDIT: u8 = 8;
pub const SUITE: u8 = JWT | AUTHZ | RATELIMIT | AUDIT;

/// The root context of the module built with stages `M`, for [`crate::start`].
pub fn root<const M: u8>(context_id: u32) -> Box<dyn proxy_wasm::traits::RootContext> {
    Box::new(PipelineRoot::<M>::new(context_id))
}

/// Which module this is: its configuration's shape, its name in logs, and how its stages hand
/// results on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Module {
    Jwt,
    Authz,
    RateLimit,
    Audit,
    Suite,
}

impl Module {
    /// The module built with stages `m`: one stage, or all of them.
    pub const fn of(m: u8) -> Module {
        match m {
            JWT => Module::Jwt,
            AUTHZ => Module::Authz,
            RATELIMIT => Module::RateLimit,
            AUDIT => Module::Audit,
            _ => Module::Suite,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Module::Jwt => "zt-jwt",
            Module::Authz => "zt-authz",
            Module::RateLimit => "zt-ratelimit",
            Module::Audit => "zt-audit",
            Module::Suite => "zt-suite",
        }
    }

    fn handoff(self) -> Handoff {
        match self {
            Module::Suite => Handoff::InMemory,
            _ => Handoff::FilterState,
        }
    }
}

/// The module's configuration: a single filter's is that filter's schema, the suite's has a
/// section per stage. Branches on the constant `M`, so only the module's own parsers are linked.
fn parse<const M: u8>(bytes: &[u8]) -> Result<SuiteConfig, ConfigError> {
    let resolved = with_secrets::<M>(bytes)?;
    let bytes = resolved.as_deref().unwrap_or(bytes);
    let none = SuiteConfig {
        jwt: None,
        authz: None,
        ratelimit: None,
        audit: None,
        filter_state: false,
        identity_source: IdentitySource::ZtJwt,
    };
    Ok(match M {
        JWT => SuiteConfig { jwt: Some(JwtFilterConfig::from_json(bytes)?), ..none },
        AUTHZ => {
            let authz = AuthzConfig::from_json(bytes)?;
            SuiteConfig { identity_source: authz.identity_source().clone(), authz: Some(authz), ..none }
        }
        RATELIMIT => {
            let ratelimit = RateLimitConfig::from_json(bytes)?;
            SuiteConfig { identity_source: ratelimit.identity_source().clone(), ratelimit: Some(ratelimit), ..none }
        }
        AUDIT => {
            let audit = AuditConfig::from_json(bytes)?;
            SuiteConfig { identity_source: audit.identity_source().clone(), audit: Some(audit), ..none }
        }
        _ => SuiteConfig::from_json(bytes)?,
    })
}

/// The configuration with its secret fields' `{"env": "NAME"}` replaced by the VM's environment
/// variables ([`zt_core::secrets`]); `None` when nothing was replaced, so the parser reads the
/// bytes as the operator wrote them (and a text that is no JSON gets the parser's own error).
fn with_secrets<const M: u8>(bytes: &[u8]) -> Result<Option<Vec<u8>>, ConfigError> {
    let scope = match M {
        JWT => SecretScope::Jwt,
        AUDIT => SecretScope::Audit,
        AUTHZ | RATELIMIT => return Ok(None),
        _ => SecretScope::Suite,
    };
    let Ok(mut config) = serde_json::from_slice::<serde_json::Value>(bytes) else { return Ok(None) };
    // WASI's environment: Envoy's `vm_config.environment_variables`, Istio's `vmConfig.env`.
    if !resolve_env(&mut config, scope, &|name, _| std::env::var(name).ok())? {
        return Ok(None);
    }
    serde_json::to_vec(&config).map(Some).map_err(|e| ConfigError::new("(root)", e.to_string()))
}

/// How identity and decisions travel between stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handoff {
    /// Single modules: each stage writes its results to filter state for the next filter, and a
    /// stage reads what an earlier filter wrote there.
    FilterState,
    /// The suite: results stay in the request's [`Pass`]; nothing is written or read back.
    InMemory,
}

/// One VM's stages, configured once. A stage is reached through its accessor, which answers
/// `None` for a stage the module is built without: constant in `M`, so its code drops out.
pub struct Stages<const M: u8> {
    pub handoff: Handoff,
    /// The suite's `filter_state` option: the results also go to one filter-state entry.
    pub publishes_state: bool,
    /// Without a JWT stage, where the caller comes from: an earlier zt-jwt's filter state, or
    /// what Envoy's `jwt_authn` verified.
    pub identity_source: IdentitySource,
    /// The request stages' latency histograms, for those whose configuration asks.
    pub latency: StageLatency,
    jwt: Option<JwtStage>,
    authz: Option<AuthzStage>,
    ratelimit: Option<RateLimitStage>,
    audit: Option<AuditStage>,
}

impl<const M: u8> Stages<M> {
    pub fn jwt(&self) -> Option<&JwtStage> {
        if M & JWT == 0 { None } else { self.jwt.as_ref() }
    }

    pub fn authz(&self) -> Option<&AuthzStage> {
        if M & AUTHZ == 0 { None } else { self.authz.as_ref() }
    }

    pub fn ratelimit(&self) -> Option<&RateLimitStage> {
        if M & RATELIMIT == 0 { None } else { self.ratelimit.as_ref() }
    }

    pub fn audit(&self) -> Option<&AuditStage> {
        if M & AUDIT == 0 { None } else { self.audit.as_ref() }
    }
}

/// The latency histograms of the stages that decide on the request (audit keeps its own).
#[derive(Debug, Clone, Copy, Default)]
pub struct StageLatency {
    pub jwt: Option<Histogram>,
    pub authz: Option<Histogram>,
    pub ratelimit: Option<Histogram>,
}

impl StageLatency {
    pub(super) fn of(&self, stage: Deciding) -> Option<Histogram> {
        match stage {
            Deciding::Jwt => self.jwt,
            Deciding::Authz => self.authz,
            Deciding::RateLimit => self.ratelimit,
        }
    }
}

/// A stage that decides on the request before it goes upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deciding {
    Jwt,
    Authz,
    RateLimit,
}

impl Next {
    fn deciding(self) -> Option<Deciding> {
        match self {
            Next::Jwt(_) => Some(Deciding::Jwt),
            Next::Authz => Some(Deciding::Authz),
            Next::RateLimit => Some(Deciding::RateLimit),
            Next::Upstream => None,
        }
    }
}

/// The stage a request runs next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Jwt(Attempt),
    Authz,
    RateLimit,
    /// Every stage let the request through.
    Upstream,
}

/// What a stage did with the request.
pub enum Flow {
    /// On to the next stage.
    Continue,
    /// Answered locally (the reply is sent), or paused for a callout or keys: the request waits.
    Stop,
}

/// One request's way through the stages: where it is, what each stage asked to remember, and
/// what the stages decided, for the later ones and for the audit record.
pub struct Pass {
    pub context_id: u32,
    pub next: Next,
    /// What the stages read from Envoy, each fact once.
    pub facts: Facts,
    pub jwt: JwtRequest,
    pub ratelimit: RateLimitRequest,
    /// The identity the JWT stage of this module verified.
    pub identity: Option<Rc<VerifiedToken>>,
    pub jwt_record: Option<StageRecord>,
    pub authz_record: Option<StageRecord>,
    pub ratelimit_record: Option<StageRecord>,
    /// Which stage began deciding when, for its latency histogram: kept while it waits.
    pub stage_started: Option<(Deciding, u64)>,
}

pub type SharedPass = Rc<RefCell<Pass>>;

/// The verified identity, for a stage that reads it: the one this module's JWT stage verified,
/// in memory; else the one an earlier JWT filter left in filter state, or the payload Envoy's
/// `jwt_authn` verified, as the configuration's `identity_source` says. `Err` says why that
/// holds something that is not an identity: a broken chain, which the caller refuses.
pub fn identity<'p, const M: u8>(stages: &Stages<M>, pass: &'p Pass) -> Result<Option<Cow<'p, Identity>>, String> {
    if stages.jwt().is_some() {
        return Ok(pass.identity.as_ref().map(|token| Cow::Borrowed(&token.identity)));
    }
    match &stages.identity_source {
        IdentitySource::ZtJwt => {
            let identity = crate::verified_identity().map_err(|why| format!("filter state {IDENTITY}: {why}"))?;
            Ok(identity.map(Cow::Owned))
        }
        IdentitySource::JwtAuthn(payloads) => match pass.facts.adopted_identity(payloads) {
            Ok(identity) => Ok(identity.map(Cow::Borrowed)),
            Err(why) => Err(why.to_string()),
        },
    }
}

impl Pass {
    /// Writes what the stages know so far to the suite's filter-state entry
    /// ([`zt_core::suite::SuiteState`]), for Envoy's access log and later filters.
    pub fn publish_state(&self) {
        // An adopted caller is named when a stage read it; the entry never costs a read of its own.
        let adopted = self.facts.adopted_identity_read().and_then(|read| read.ok().flatten());
        let state = SuiteState {
            identity: self.identity.as_ref().map(|token| &token.identity).or(adopted).map(Principal::of),
            jwt: self.jwt_record.as_ref(),
            authz: self.authz_record.as_ref(),
            ratelimit: self.ratelimit_record.as_ref(),
        };
        if !serde_json::to_vec(&state).is_ok_and(|bytes| crate::set_filter_state(SUITE_STATE, &bytes).is_ok()) {
            log::warn!("zt-suite: cannot record the decisions in filter state {SUITE_STATE}");
        }
    }

    /// Keeps a stage's decision record for the later stages of this module (the audit stage)
    /// and, between single filters, writes it to the stage's filter-state entry for the next.
    pub fn hand_on(&mut self, handoff: Handoff, record: StageRecord) {
        let (slot, entry, stage) = match &record {
            StageRecord::Jwt(_) => (&mut self.jwt_record, JWT_DECISION, "zt-jwt"),
            StageRecord::Authz(_) => (&mut self.authz_record, AUTHZ_DECISION, "zt-authz"),
            StageRecord::RateLimit(_) => (&mut self.ratelimit_record, RATELIMIT_DECISION, "zt-ratelimit"),
        };
        if handoff == Handoff::FilterState
            && !serde_json::to_vec(&record).is_ok_and(|bytes| crate::set_filter_state(entry, &bytes).is_ok())
        {
            log::warn!("{stage}: cannot record the decision in filter state {entry}");
        }
        *slot = Some(record);
    }

    /// Answers a request a stage could not evaluate (its method, path or identity unreadable):
    /// the stage's record of it is handed on, the client gets `status` and `{"error": code}`.
    pub fn refuse_unevaluated(
        &mut self,
        http: &dyn HttpContext,
        handoff: Handoff,
        record: StageRecord,
        status: u16,
        code: &str,
    ) -> Flow {
        self.hand_on(handoff, record);
        crate::send_reply(http, &LocalReply::json(status, Vec::new(), &serde_json::json!({"error": code})));
        Flow::Stop
    }

    fn new(context_id: u32) -> Self {
        Self {
            context_id,
            next: Next::Jwt(Attempt::First),
            facts: Facts::default(),
            jwt: JwtRequest::default(),
            ratelimit: RateLimitRequest::default(),
            identity: None,
            jwt_record: None,
            authz_record: None,
            ratelimit_record: None,
            stage_started: None,
        }
    }

    /// Whether `stage` has handed on its decision on this request.
    fn decided(&self, stage: Deciding) -> bool {
        match stage {
            Deciding::Jwt => self.jwt_record.is_some(),
            Deciding::Authz => self.authz_record.is_some(),
            Deciding::RateLimit => self.ratelimit_record.is_some(),
        }
    }
}

/// Runs the request's remaining stages from `pass.next`, in the HTTP context in effect (the
/// request's own, or the root's after it switched to a held request). `Continue` lets the
/// request go upstream; `Pause` means a stage answered it or it waits. Every pass ends by
/// publishing what is decided so far (the suite's `filter_state` option), so that the entry is
/// in place before a later filter or the access log looks, whichever callback ran the stages.
pub fn run<const M: u8>(http: &dyn HttpContext, stages: &Stages<M>, shared: &SharedPass) -> Action {
    let action = run_stages(http, stages, shared);
    publish_state(stages, &shared.borrow());
    action
}

/// The suite's filter-state entry, when its configuration asks for one.
pub fn publish_state<const M: u8>(stages: &Stages<M>, pass: &Pass) {
    if stages.publishes_state {
        pass.publish_state();
    }
}

fn run_stages<const M: u8>(http: &dyn HttpContext, stages: &Stages<M>, shared: &SharedPass) -> Action {
    shared.borrow_mut().facts.clock_moved();
    loop {
        let next = shared.borrow().next;
        let deciding = next.deciding();
        let latency = deciding.and_then(|stage| stages.latency.of(stage).map(|histogram| (stage, histogram)));
        if let Some((stage, _)) = latency {
            // Read at the stage's first entry only: a stage that waits keeps its start.
            let mut pass = shared.borrow_mut();
            if pass.stage_started.is_none_or(|(started, _)| started != stage) {
                pass.stage_started = Some((stage, clock_ns()));
            }
        }
        let (flow, after) = match next {
            Next::Jwt(attempt) => match stages.jwt() {
                Some(stage) => (stage.on_request(http, stages.handoff, shared, attempt), Next::Authz),
                None => (Flow::Continue, Next::Authz),
            },
            Next::Authz => match stages.authz() {
                Some(stage) => (stage.on_request(http, stages, &mut shared.borrow_mut()), Next::RateLimit),
                None => (Flow::Continue, Next::RateLimit),
            },
            Next::RateLimit => match stages.ratelimit() {
                Some(stage) => (stage.on_request(http, stages, &mut shared.borrow_mut()), Next::Upstream),
                None => (Flow::Continue, Next::Upstream),
            },
            Next::Upstream => return Action::Continue,
        };
        let ended = latency.and_then(|(stage, histogram)| record_latency(histogram, &mut shared.borrow_mut(), stage));
        match flow {
            Flow::Continue => {
                let mut pass = shared.borrow_mut();
                pass.next = after;
                // The clock read that ended this stage starts the next one, when it is timed too.
                if let (Some(now), Some(stage)) = (ended, after.deciding())
                    && stages.latency.of(stage).is_some()
                {
                    pass.stage_started = Some((stage, now));
                }
            }
            Flow::Stop => return Action::Pause,
        }
    }
}

/// Records a stage's time once it decided (not while it waits), in whole microseconds; the
/// clock read that ended it, when it recorded.
pub(super) fn record_latency(histogram: Histogram, pass: &mut Pass, stage: Deciding) -> Option<u64> {
    if !pass.decided(stage) {
        return None;
    }
    let (_, started) = pass.stage_started.take_if(|(started, _)| *started == stage)?;
    let now = clock_ns();
    histogram.record(now.saturating_sub(started) / 1_000);
    Some(now)
}

/// The host clock now, nanoseconds since the Unix epoch (a fresh read, unlike the pass's).
fn clock_ns() -> u64 {
    proxy_wasm::hostcalls::get_current_time().map_or(0, crate::since_epoch_ns)
}
