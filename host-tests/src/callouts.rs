//! Calls the filters make to other services, HTTP (`proxy_http_call`) and unary gRPC
//! (`proxy_grpc_call`), answered from the test's script, and their delivery back through the
//! callbacks Envoy uses. Nothing here reaches a network.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proxy_wasm_host::abi::v0_2_1::types::LogLevel;
use proxy_wasm_host::abi::v0_2_1::{
    CallScope, CalloutId, Callouts, GrpcCall, GrpcOpenRefusal, GuestError, GuestId, HeaderPairs, HttpCall,
    HttpCallRefusal, HttpCallResponse, Invocation,
};

use crate::grpc::{self, GrpcDelivery, GrpcScripts, GrpcUpstream, RecordedGrpcCall, ScriptedGrpc};
use crate::request::StreamData;
use crate::services::{LogCapture, TestClock, lock};

/// An HTTP call a filter made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedCall {
    pub cluster: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout: Duration,
}

impl RecordedCall {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// The answer a test scripts for calls to a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptedResponse {
    Reply {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// The call fails (Envoy delivers a response with no headers: reset, timeout).
    Fail,
    /// A slow upstream: the call stays open, unanswered, until the test scripts another
    /// answer (the call's timeout is then modelled by scripting `Fail`).
    Hold,
    /// `reply`, `after` the call was made: the test clock moves on by `after` before the answer
    /// is delivered, as Envoy's would while the upstream works.
    After {
        after: Duration,
        reply: Box<ScriptedResponse>,
    },
}

impl ScriptedResponse {
    pub fn ok(body: impl Into<Vec<u8>>) -> Self {
        ScriptedResponse::Reply { status: 200, headers: Vec::new(), body: body.into() }
    }

    pub fn status(status: u16, body: impl Into<Vec<u8>>) -> Self {
        ScriptedResponse::Reply { status, headers: Vec::new(), body: body.into() }
    }
}

/// A callout accepted and not yet answered.
pub(crate) struct Pending {
    call: Invocation,
    callout: CalloutId,
    answer: Answer,
}

enum Answer {
    /// Looked up in the script when delivered.
    Http(RecordedCall),
    /// Taken from the script when the call was made, so that a sequence follows the call order.
    Grpc(ScriptedGrpc),
}

/// The scripted upstreams of one harness and the callouts waiting for delivery.
pub(crate) struct ScriptedCallouts {
    clock: Arc<TestClock>,
    script: Mutex<HashMap<String, ScriptedResponse>>,
    paths: Mutex<HashMap<(String, String), ScriptedResponse>>,
    pub(crate) grpc: GrpcScripts,
    pending: Mutex<Vec<Pending>>,
    made: Mutex<Vec<RecordedCall>>,
    logs: Arc<LogCapture>,
}

impl ScriptedCallouts {
    pub(crate) fn new(logs: Arc<LogCapture>, clock: Arc<TestClock>) -> Self {
        Self {
            clock,
            script: Mutex::default(),
            paths: Mutex::default(),
            grpc: GrpcScripts::default(),
            pending: Mutex::default(),
            made: Mutex::default(),
            logs,
        }
    }

    pub(crate) fn script(&self, cluster: &str, response: ScriptedResponse) {
        lock(&self.script).insert(cluster.to_owned(), response);
    }

    /// Scripts one path of a cluster; it takes precedence over the cluster's script.
    pub(crate) fn script_path(&self, cluster: &str, path: &str, response: ScriptedResponse) {
        lock(&self.paths).insert((cluster.to_owned(), path.to_owned()), response);
        lock(&self.script).entry(cluster.to_owned()).or_insert(ScriptedResponse::Reply {
            status: 404,
            headers: Vec::new(),
            body: Vec::new(),
        });
    }

    fn response_for(&self, call: &RecordedCall) -> Option<ScriptedResponse> {
        let path = (call.cluster.clone(), call.header(":path").unwrap_or_default().to_owned());
        lock(&self.paths).get(&path).cloned().or_else(|| lock(&self.script).get(&call.cluster).cloned())
    }

    pub(crate) fn made(&self) -> Vec<RecordedCall> {
        lock(&self.made).clone()
    }

    /// Takes this guest's pending callouts, in the order they were made.
    fn take_pending(&self, guest: GuestId) -> Vec<Pending> {
        let mut pending = lock(&self.pending);
        let (mine, others): (Vec<_>, Vec<_>) = pending.drain(..).partition(|p| p.call.guest == guest);
        *pending = others;
        mine
    }

    /// The cluster a gRPC call names, or Envoy 1.40's refusal of it.
    fn grpc_cluster(&self, upstream: &[u8]) -> Result<String, GrpcOpenRefusal> {
        let known = |name: String| if self.grpc.knows(&name) { Some(name) } else { None };
        match grpc::upstream(upstream) {
            // context.cc Context::grpcCall: no thread-local cluster -> WasmResult::ParseFailure,
            // which the Rust SDK returns as Err(Status::ParseFailure).
            GrpcUpstream::Cluster(name) => known(name).ok_or(GrpcOpenRefusal::UnknownUpstream),
            // The parsed form skips the cluster check; sendRaw then fails at once ("Cluster not
            // available") and grpcCall answers InternalFailure (observed on 1.40.0).
            GrpcUpstream::EnvoyGrpc(name) => known(name).ok_or(GrpcOpenRefusal::Failed),
            GrpcUpstream::GoogleGrpc => {
                let text = "harness: a GrpcService with google_grpc is not modelled; the call is refused";
                self.logs.note(LogLevel::Error, text.to_owned());
                Err(GrpcOpenRefusal::Failed)
            }
            GrpcUpstream::NoTarget => {
                let name = String::from_utf8_lossy(upstream);
                let text = format!(
                    "harness: Envoy 1.40 aborts on this call (\"panic: unset oneof\"): the upstream {name:?} parses \
                     as an envoy.config.core.v3.GrpcService naming no target; name the cluster otherwise or pass \
                     a serialized GrpcService"
                );
                self.logs.note(LogLevel::Critical, text);
                Err(GrpcOpenRefusal::Failed)
            }
        }
    }
}

impl Callouts for ScriptedCallouts {
    fn http_call(&self, call: Invocation, callout: CalloutId, request: HttpCall<'_>) -> Result<(), HttpCallRefusal> {
        let cluster = String::from_utf8_lossy(&request.upstream).into_owned();
        // Envoy answers BadArgument for a cluster it does not know; a scripted cluster is known.
        if !lock(&self.script).contains_key(&cluster) {
            return Err(HttpCallRefusal::UnknownUpstream);
        }
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let recorded = RecordedCall {
            cluster,
            headers: request.headers.iter().map(|(n, v)| (text(n), text(v))).collect(),
            body: request.body.to_vec(),
            timeout: request.timeout,
        };
        lock(&self.made).push(recorded.clone());
        lock(&self.pending).push(Pending { call, callout, answer: Answer::Http(recorded) });
        Ok(())
    }

    fn grpc_call(&self, call: Invocation, callout: CalloutId, request: GrpcCall<'_>) -> Result<(), GrpcOpenRefusal> {
        let cluster = self.grpc_cluster(&request.upstream)?;
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let recorded = RecordedGrpcCall {
            cluster,
            service: text(&request.service),
            method: text(&request.method),
            initial_metadata: request.initial_metadata.iter().map(|(n, v)| (text(n), v.to_vec())).collect(),
            message: request.message.to_vec(),
            timeout: request.timeout,
        };
        // An empty sequence leaves the call open and unanswered.
        if let Some(answer) = self.grpc.take_answer(recorded) {
            lock(&self.pending).push(Pending { call, callout, answer: Answer::Grpc(answer) });
        }
        Ok(())
    }

    /// `proxy_grpc_cancel`, and `proxy_grpc_close` of a call: Envoy cancels the request and
    /// delivers nothing for it.
    fn grpc_cancel(&self, call: Invocation, callout: CalloutId) {
        lock(&self.pending).retain(|p| !(p.call.guest == call.guest && p.callout == callout));
    }
}

/// Answers every pending callout of this guest from the script, through the callback Envoy
/// uses for it, in the order the calls were made. Answers can make new calls; they are answered
/// too, up to a bound.
pub(crate) fn deliver(
    scope: &mut CallScope<'_, StreamData>,
    callouts: &ScriptedCallouts,
    guest: GuestId,
) -> Result<(), GuestError> {
    let mut held = Vec::new();
    let delivered = deliver_rounds(scope, callouts, guest, &mut held);
    lock(&callouts.pending).extend(held);
    delivered
}

fn deliver_rounds(
    scope: &mut CallScope<'_, StreamData>,
    callouts: &ScriptedCallouts,
    guest: GuestId,
    held: &mut Vec<Pending>,
) -> Result<(), GuestError> {
    for _ in 0..16 {
        let mine = callouts.take_pending(guest);
        if mine.is_empty() {
            return Ok(());
        }
        for Pending { call, callout, answer } in mine {
            // The context that made it was deleted meanwhile: Envoy cancels a deleted context's
            // requests (Context::~Context) and delivers nothing.
            if scope.guest().open_callout(callout).is_none() {
                continue;
            }
            match answer {
                Answer::Http(recorded) if callouts.response_for(&recorded) == Some(ScriptedResponse::Hold) => {
                    held.push(Pending { call, callout, answer: Answer::Http(recorded) });
                }
                Answer::Http(recorded) => {
                    let mut scripted = callouts.response_for(&recorded);
                    if let Some(ScriptedResponse::After { after, reply }) = scripted {
                        let later = u64::try_from(after.as_nanos()).unwrap_or(u64::MAX);
                        callouts.clock.set_nanos(callouts.clock.now_nanos().saturating_add(later));
                        scripted = Some(*reply);
                    }
                    let response = match scripted {
                        Some(ScriptedResponse::Reply { status, headers, body }) => {
                            let mut pairs: HeaderPairs<'static> =
                                vec![(b":status".to_vec().into(), status.to_string().into_bytes().into())];
                            pairs.extend(
                                headers.into_iter().map(|(n, v)| (n.into_bytes().into(), v.into_bytes().into())),
                            );
                            HttpCallResponse::received(pairs).with_body(body)
                        }
                        Some(ScriptedResponse::Fail | ScriptedResponse::Hold | ScriptedResponse::After { .. })
                        | None => HttpCallResponse::failed(),
                    };
                    scope.on_http_call_response(call.context, callout, response)?;
                }
                Answer::Grpc(answer) => match answer.delivery() {
                    GrpcDelivery::Receive(message) => {
                        scope.on_grpc_receive(call.context, callout, Cow::Owned(message))?
                    }
                    GrpcDelivery::Close(status) => scope.on_grpc_close(call.context, callout, status)?,
                },
            }
        }
    }
    Ok(())
}
