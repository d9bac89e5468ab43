//! The harness: load filters as Envoy does (one VM each, configured once), send requests
//! through them in order, move the clock, and report what came out.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use proxy_wasm_host::Limits;
use proxy_wasm_host::abi::v0_2_1::types::{Action, LogLevel};
use proxy_wasm_host::abi::v0_2_1::{ContextId, Guest, GuestError, PluginConfig, StreamKind, VmServices};

use crate::HarnessError;
use crate::callouts::{self, RecordedCall, ScriptedCallouts, ScriptedResponse};
use crate::grpc::{RecordedGrpcCall, ScriptedGrpc};
use crate::modules;
use crate::request::{HostCall, LocalReply, Request, StreamData, pairs_text};
use crate::services::{HarnessStore, LogCapture, LogLine, TestClock, lock};

/// A filter to load: its module (file stem in the build directory) and Envoy's `config`.
#[derive(Debug, Clone)]
pub struct FilterSpec {
    pub module: String,
    pub name: String,
    pub root_id: String,
    pub vm_id: String,
    pub configuration: Vec<u8>,
    pub vm_configuration: Vec<u8>,
    /// The VM's environment as WASI shows it (Envoy: `vm_config.environment_variables`).
    pub environment: Vec<(String, String)>,
    /// What `proxy_get_log_level` answers (Envoy: its level for the `wasm` component); the
    /// log capture keeps every message whatever the level, with its level.
    pub log_level: LogLevel,
}

impl FilterSpec {
    /// `module` is the file stem (`zt_jwt`); name, root id and VM id default to it with dashes.
    pub fn new(module: &str, configuration: impl Into<Vec<u8>>) -> Self {
        let name = module.replace('_', "-");
        Self {
            module: module.to_owned(),
            root_id: name.clone(),
            vm_id: name.clone(),
            name,
            configuration: configuration.into(),
            vm_configuration: Vec::new(),
            environment: Vec::new(),
            log_level: LogLevel::Trace,
        }
    }

    /// The level Envoy would log the VM's messages from (Istio's proxies: `Warn`).
    pub fn log_level(mut self, level: LogLevel) -> Self {
        self.log_level = level;
        self
    }

    /// Adds an environment variable of the VM.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.environment.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn name(mut self, name: &str) -> Self {
        name.clone_into(&mut self.name);
        self
    }

    pub fn vm_id(mut self, vm_id: &str) -> Self {
        vm_id.clone_into(&mut self.vm_id);
        self
    }
}

struct LoadedFilter {
    name: String,
    guest: Guest,
    root: ContextId,
    last_tick_nanos: u64,
}

/// What happened to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every filter let it through; these are the headers and body the upstream receives.
    Upstream { headers: Vec<(String, Vec<u8>)>, body: Vec<u8> },
    /// A filter answered it (`send_local_response`).
    LocalReply(LocalReply),
    /// A filter's VM failed (trap, poisoned VM). Envoy with `FAIL_CLOSED` answers 503.
    VmFailed { filter: String, error: String },
    /// A filter paused the request and nothing resumed or answered it.
    Stalled { filter: String },
}

/// A request's outcome with what the filters left behind.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub outcome: Outcome,
    /// Filter state at the end of the request, keyed by the property path joined with `.`.
    pub filter_state: BTreeMap<String, Vec<u8>>,
    /// Response headers after the response callbacks, when the upstream answered.
    pub response_headers: Vec<(String, Vec<u8>)>,
    /// `verify_signature` calls made during the request.
    pub foreign_calls: usize,
    /// Every stream call the filters made into the host, in order (request path, response
    /// path, stream end).
    pub host_calls: Vec<HostCall>,
}

impl Exchange {
    /// The status the client sees: the upstream's, the local reply's, or 503 for a failed VM
    /// (Envoy's `FAIL_CLOSED`). `None` for a stalled request.
    pub fn status(&self) -> Option<u16> {
        match &self.outcome {
            Outcome::Upstream { .. } => Some(200),
            Outcome::LocalReply(reply) => Some(reply.status),
            Outcome::VmFailed { .. } => Some(503),
            Outcome::Stalled { .. } => None,
        }
    }

    pub fn local_reply(&self) -> Option<&LocalReply> {
        match &self.outcome {
            Outcome::LocalReply(reply) => Some(reply),
            _ => None,
        }
    }

    /// A header as the upstream receives it; `None` if absent or the request did not get there.
    pub fn upstream_header(&self, name: &str) -> Option<String> {
        match &self.outcome {
            Outcome::Upstream { headers, .. } => headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned()),
            _ => None,
        }
    }

    /// Every value of a header as the upstream receives it.
    pub fn upstream_header_values(&self, name: &str) -> Vec<String> {
        match &self.outcome {
            Outcome::Upstream { headers, .. } => headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                .collect(),
            _ => Vec::new(),
        }
    }

    pub fn reached_upstream(&self) -> bool {
        matches!(self.outcome, Outcome::Upstream { .. })
    }

    pub fn filter_state_text(&self, key: &str) -> Option<String> {
        self.filter_state.get(key).map(|v| String::from_utf8_lossy(v).into_owned())
    }
}

/// One test's Envoy: its filters, clock, logs, shared data, metrics and scripted upstreams.
pub struct Harness {
    clock: Arc<TestClock>,
    logs: Arc<LogCapture>,
    store: Arc<HarnessStore>,
    callouts: Arc<ScriptedCallouts>,
    offer_verify_signature: bool,
    filters: Vec<LoadedFilter>,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    pub fn new() -> Self {
        let logs: Arc<LogCapture> = Arc::default();
        let clock: Arc<TestClock> = Arc::default();
        Self {
            callouts: Arc::new(ScriptedCallouts::new(Arc::clone(&logs), Arc::clone(&clock))),
            clock,
            logs,
            store: Arc::new(HarnessStore::new()),
            offer_verify_signature: true,
            filters: Vec::new(),
        }
    }

    pub fn clock(&self) -> &TestClock {
        &self.clock
    }

    /// Behave like a host without Envoy's `verify_signature` (NotFound), from now on:
    /// call it before loading the filters, which probe for it when configured.
    pub fn withhold_verify_signature(&mut self) {
        self.offer_verify_signature = false;
    }

    /// Scripts the answer to every HTTP call to `cluster`. Calls to unscripted clusters are
    /// refused with BadArgument, as Envoy refuses a cluster it does not know.
    pub fn script_http(&self, cluster: &str, response: ScriptedResponse) {
        self.callouts.script(cluster, response);
    }

    /// Scripts the answer to calls for one `:path` of `cluster` (other paths answer 404 unless
    /// the cluster is scripted too).
    pub fn script_http_path(&self, cluster: &str, path: &str, response: ScriptedResponse) {
        self.callouts.script_path(cluster, path, response);
    }

    pub fn http_calls(&self) -> Vec<RecordedCall> {
        self.callouts.made()
    }

    /// Scripts the answer to every unary gRPC call (`proxy_grpc_call`) to `cluster`: the
    /// upstream argument as a plain cluster name, or the `envoy_grpc.cluster_name` of a
    /// serialized `GrpcService`. A call naming an unscripted cluster is refused as Envoy refuses
    /// it (PARSE_FAILURE for a plain name, INTERNAL_FAILURE for a `GrpcService`).
    pub fn script_grpc(&self, cluster: &str, answer: ScriptedGrpc) {
        self.callouts.grpc.script(cluster, vec![answer]);
    }

    /// Scripts answers in order: each call to `cluster` takes the next, and the last repeats
    /// (OK, then OVER_LIMIT from then on). An empty sequence leaves every call unanswered.
    pub fn script_grpc_sequence(&self, cluster: &str, answers: Vec<ScriptedGrpc>) {
        self.callouts.grpc.script(cluster, answers);
    }

    /// Scripts one method of `cluster`; it takes precedence over the cluster's script. Other
    /// methods answer UNIMPLEMENTED (12), as a gRPC server does, unless the cluster is scripted.
    pub fn script_grpc_method(&self, cluster: &str, service: &str, method: &str, answer: ScriptedGrpc) {
        self.callouts.grpc.script_method(cluster, service, method, answer);
    }

    /// The unary gRPC calls accepted so far, in order (refused ones are not recorded).
    pub fn grpc_calls(&self) -> Vec<RecordedGrpcCall> {
        self.callouts.grpc.made()
    }

    pub fn logs(&self) -> Vec<LogLine> {
        self.logs.lines()
    }

    /// Every log line, one per line: for `contains` checks and failure messages.
    pub fn log_text(&self) -> String {
        self.logs.lines().iter().map(|l| format!("{:?} {}", l.level, l.message)).collect::<Vec<_>>().join("\n")
    }

    pub fn metric(&self, name: &str) -> Option<i64> {
        self.store.metric(name)
    }

    /// Calls into the process-wide services so far, by ABI function (shared data, queues,
    /// metrics), and `proxy_log` as the number of lines logged.
    pub fn service_calls(&self) -> BTreeMap<&'static str, u64> {
        let mut calls = self.store.calls();
        calls.insert("proxy_log", u64::try_from(self.logs().len()).unwrap_or(u64::MAX));
        calls
    }

    /// The sum of the counters named `prefix` or `prefix.<more>`: a family and its labels
    /// (`zt_authz.denied.scope_missing` counts `zt_authz.denied.scope_missing.<route>.<policy>`).
    pub fn metric_sum(&self, prefix: &str) -> i64 {
        let names = self.metric_names();
        let within =
            |name: &String| name == prefix || name.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('.'));
        names.iter().filter(|name| within(name)).filter_map(|name| self.metric(name)).sum()
    }

    /// Every value a filter recorded in histogram `name`, in order.
    pub fn histogram(&self, name: &str) -> Vec<u64> {
        self.store.histogram(name)
    }

    pub fn metric_names(&self) -> Vec<String> {
        self.store.metric_names()
    }

    /// Loads, starts and configures a filter in its own VM, and appends it to the chain.
    /// `on_configure` answering false is `HarnessError::ConfigureRefused`: Envoy would refuse
    /// to start.
    pub fn load(&mut self, spec: FilterSpec) -> Result<(), HarnessError> {
        let (host, module) = modules::load(&spec.module)?;
        let services = VmServices::new(self.logs.clone())
            .with_clock(self.clock.clone())
            .with_shared(self.store.clone())
            .with_callouts(self.callouts.clone())
            .with_vm_id(spec.vm_id.clone().into_bytes())
            .with_vm_configuration(spec.vm_configuration.clone())
            .with_environment(
                spec.environment.iter().map(|(n, v)| (n.clone().into_bytes(), v.clone().into_bytes())).collect(),
            )
            .with_log_level(spec.log_level);
        let mut guest = Guest::new(&host, &module, services, &Limits::default()).map_err(runtime)?;
        let plugin = PluginConfig::new()
            .with_name(spec.name.clone().into_bytes())
            .with_root_id(spec.root_id.clone().into_bytes())
            .with_configuration(spec.configuration.clone());
        // Started by hand rather than with `Guest::start`, so that `on_configure` can reach
        // foreign functions (the JWT filter probes `verify_signature` there, as in Envoy).
        let (started, _) = guest.with(StreamData::for_root(self.offer_verify_signature), |scope| {
            let root = scope.on_context_create(None)?;
            let vm_started = scope.on_vm_start(root)?;
            let configured = vm_started && scope.on_configure(root, plugin)?;
            Ok::<_, GuestError>((root, configured))
        });
        let (root, configured) = started.map_err(runtime)?;
        if !configured {
            return Err(HarnessError::ConfigureRefused { filter: spec.name });
        }
        let mut filter = LoadedFilter { name: spec.name, guest, root, last_tick_nanos: self.clock.now_nanos() };
        self.deliver_root_callouts(&mut filter)?;
        self.filters.push(filter);
        Ok(())
    }

    /// Moves the clock forward, firing each root's `on_tick` as often as its period elapsed,
    /// and answering the HTTP and gRPC calls and queue items that the ticks produced.
    pub fn advance(&mut self, by: Duration) -> Result<(), HarnessError> {
        let end = self.clock.now_nanos().saturating_add(u64::try_from(by.as_nanos()).unwrap_or(u64::MAX));
        let mut filters = std::mem::take(&mut self.filters);
        let result = (|| {
            loop {
                // The next due tick across all filters, in time order.
                let due = filters
                    .iter()
                    .enumerate()
                    .filter_map(|(i, f)| {
                        let period = f.guest.tick_period(f.root)?;
                        let period = u64::try_from(period.as_nanos()).ok().filter(|p| *p > 0)?;
                        Some((f.last_tick_nanos.saturating_add(period), i))
                    })
                    .filter(|(at, _)| *at <= end)
                    .min();
                let Some((at, index)) = due else { break };
                self.clock.set_nanos(at);
                let Some(filter) = filters.get_mut(index) else { break };
                filter.last_tick_nanos = at;
                let root = filter.root;
                let (ticked, _) =
                    filter.guest.with(StreamData::for_root(self.offer_verify_signature), |scope| scope.on_tick(root));
                ticked.map_err(runtime)?;
                self.deliver_root_callouts(filter)?;
            }
            self.deliver_queues(&mut filters)
        })();
        self.filters = filters;
        self.clock.set_nanos(end);
        result
    }

    /// Sends a request through the chain, then (if it reached the upstream) the upstream's
    /// response back through the filters in reverse order, then ends the stream everywhere.
    pub fn send(&mut self, request: Request) -> Exchange {
        let started_nanos = self.clock.now_nanos();
        let mut data = StreamData::for_request(&request, self.offer_verify_signature);
        let mut streams: Vec<(usize, ContextId)> = Vec::new();
        let mut outcome = None;
        let has_body = request.body.is_some();
        for index in 0..self.filters.len() {
            data.continued = false;
            let callouts = Arc::clone(&self.callouts);
            let Some(filter) = self.filters.get_mut(index) else { break };
            let root = filter.root;
            let guest_id = filter.guest.id();
            data.current_filter.clone_from(&filter.name);
            let (result, back) = filter.guest.with(data, |scope| {
                let stream = scope.on_context_create(Some(root))?;
                scope.expect_stream_kind(stream, StreamKind::Http)?;
                let count = u32::try_from(scope.stream().request_headers_len()).unwrap_or(u32::MAX);
                let mut action = scope.on_request_headers(stream, count, !has_body)?;
                if action == Action::Pause && scope.stream().local_reply.is_none() {
                    callouts::deliver(scope, &callouts, guest_id)?;
                    if scope.stream().continued {
                        action = Action::Continue;
                    }
                }
                if action == Action::Continue && has_body && scope.stream().local_reply.is_none() {
                    let size = u32::try_from(scope.stream().request_body.len()).unwrap_or(u32::MAX);
                    action = scope.on_request_body(stream, size, true)?;
                }
                Ok::<_, GuestError>((stream, action))
            });
            data = back;
            match result {
                Err(error) => {
                    outcome = Some(Outcome::VmFailed { filter: filter.name.clone(), error: error.to_string() });
                    break;
                }
                Ok((stream, action)) => {
                    streams.push((index, stream));
                    if let Some(reply) = data.local_reply.clone() {
                        outcome = Some(Outcome::LocalReply(reply));
                        break;
                    }
                    if action == Action::Pause {
                        outcome = Some(Outcome::Stalled { filter: filter.name.clone() });
                        break;
                    }
                }
            }
        }
        let outcome = match outcome {
            Some(outcome) => outcome,
            None => {
                let upstream =
                    Outcome::Upstream { headers: pairs_text(&data.request_headers), body: data.request_body.clone() };
                data = self.run_response(data, &request, &streams);
                upstream
            }
        };
        data.set_log_attributes(&outcome, &request, started_nanos, self.clock.now_nanos());
        data = self.end_streams(data, &streams);
        Exchange {
            outcome,
            filter_state: data
                .filter_state
                .iter()
                .map(|(path, value)| {
                    let key =
                        path.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect::<Vec<_>>().join(".");
                    (key, value.clone())
                })
                .collect(),
            response_headers: pairs_text(&data.response_headers),
            foreign_calls: data.foreign_calls,
            host_calls: data.host_calls,
        }
    }

    fn run_response(&mut self, mut data: StreamData, request: &Request, streams: &[(usize, ContextId)]) -> StreamData {
        let mut headers = vec![(b":status".to_vec(), request.upstream_status.to_string().into_bytes())];
        headers.extend(request.upstream_headers.iter().cloned());
        data.response_headers = headers.into();
        for (index, stream) in streams.iter().rev() {
            let Some(filter) = self.filters.get_mut(*index) else { continue };
            let count = u32::try_from(data.response_headers_len()).unwrap_or(u32::MAX);
            data.current_filter.clone_from(&filter.name);
            let (_, back) = filter.guest.with(data, |scope| scope.on_response_headers(*stream, count, true));
            data = back;
        }
        data
    }

    /// `on_done`, `on_log` and `on_delete` for every stream context, as Envoy ends a stream.
    /// A filter the request never reached (an earlier one answered it) still logs: Envoy's
    /// `Context::log` creates its context first, so an audit filter sees every request.
    fn end_streams(&mut self, mut data: StreamData, streams: &[(usize, ContextId)]) -> StreamData {
        for index in 0..self.filters.len() {
            let Some(filter) = self.filters.get_mut(index) else { continue };
            if filter.guest.is_poisoned() {
                continue;
            }
            let root = filter.root;
            let created = streams.iter().find(|(i, _)| *i == index).map(|(_, stream)| *stream);
            data.current_filter.clone_from(&filter.name);
            let (_, back) = filter.guest.with(data, |scope| match created {
                Some(stream) => {
                    scope.on_done(stream)?;
                    scope.on_log(stream)?;
                    scope.on_delete(stream)
                }
                None => {
                    let stream = scope.on_context_create(Some(root))?;
                    scope.on_done(stream)?;
                    scope.on_log(stream)?;
                    scope.on_delete(stream)
                }
            });
            data = back;
        }
        data
    }

    fn deliver_root_callouts(&self, filter: &mut LoadedFilter) -> Result<(), HarnessError> {
        let callouts = Arc::clone(&self.callouts);
        let guest_id = filter.guest.id();
        let (result, _) = filter.guest.with(StreamData::for_root(self.offer_verify_signature), |scope| {
            callouts::deliver(scope, &callouts, guest_id)
        });
        result.map_err(runtime)
    }

    fn deliver_queues(&self, filters: &mut [LoadedFilter]) -> Result<(), HarnessError> {
        let queues: Vec<_> = std::mem::take(&mut *lock(&self.store.enqueued));
        // One `on_queue_ready` per item enqueued, as Envoy posts one per enqueue.
        for queue in queues {
            for filter in filters.iter_mut() {
                for root in filter.guest.queue_registrants(queue) {
                    let (result, _) = filter.guest.with(StreamData::for_root(self.offer_verify_signature), |scope| {
                        scope.on_queue_ready(root, queue)
                    });
                    result.map_err(runtime)?;
                }
            }
        }
        Ok(())
    }
}

fn runtime(error: GuestError) -> HarnessError {
    HarnessError::Runtime(error.to_string())
}
