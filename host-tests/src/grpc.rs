//! Unary gRPC calls (`proxy_grpc_call`, the Rust SDK's `dispatch_grpc_call`) answered from the
//! test's script, and the one place that says how Envoy 1.40 hands each answer to the guest.
//! Streams (`proxy_grpc_stream`) are not modelled: the crate refuses them (`INTERNAL_FAILURE`).
//!
//! Checked against Envoy 1.40.0 (`source/extensions/common/wasm/context.{h,cc}`,
//! `source/common/grpc/async_client_impl.cc`) and observed on its binary with the abi-probe
//! fixture and a local HTTP/2 server: a reply, a trailers-only error, a timeout, an unknown
//! cluster, a serialized `GrpcService`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use proxy_wasm_host::abi::v0_2_1::GrpcStatus;

use crate::services::lock;

/// gRPC status codes the harness delivers itself (grpc/doc/statuscodes.md).
const INTERNAL: u32 = 13;
const UNAVAILABLE: u32 = 14;
const UNIMPLEMENTED: u32 = 12;

/// A unary gRPC call a filter made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedGrpcCall {
    /// The cluster: the upstream argument as the filter passed it, or the
    /// `envoy_grpc.cluster_name` of a serialized `GrpcService`.
    pub cluster: String,
    pub service: String,
    pub method: String,
    /// The initial metadata in the order the filter gave it; values are bytes (`-bin` keys).
    pub initial_metadata: Vec<(String, Vec<u8>)>,
    /// The serialized request message.
    pub message: Vec<u8>,
    pub timeout: Duration,
}

impl RecordedGrpcCall {
    /// The first value of a metadata key, compared without case as HTTP/2 header names are.
    pub fn metadata(&self, name: &str) -> Option<&[u8]> {
        self.initial_metadata.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
    }
}

/// The answer a test scripts for a unary gRPC call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptedGrpc {
    /// Success with this serialized response message: `proxy_on_grpc_receive` with the message,
    /// and nothing after it (Envoy never closes a unary call that succeeded).
    Reply(Vec<u8>),
    /// The server ends the call with this status: `proxy_on_grpc_close` with `code`. As in
    /// Envoy 1.40, the guest reads the message with the response code details appended
    /// (`over limit{via_upstream}`, or `via_upstream` alone for an empty message), and code 0
    /// without a message is delivered as INTERNAL (13) with an empty message.
    Status { code: u32, message: String },
    /// The call's timeout passes first: what Envoy 1.40's gRPC client delivers then, which is
    /// `proxy_on_grpc_close` with UNAVAILABLE (14) and `upstream request timeout{response_timeout}`,
    /// not DEADLINE_EXCEEDED (4). Delivered at once; the test clock does not move.
    Timeout,
}

impl ScriptedGrpc {
    pub fn reply(message: impl Into<Vec<u8>>) -> Self {
        ScriptedGrpc::Reply(message.into())
    }

    pub fn status(code: u32, message: &str) -> Self {
        ScriptedGrpc::Status { code, message: message.to_owned() }
    }

    /// How Envoy 1.40 hands this answer to the guest: one callback, never both.
    pub(crate) fn delivery(self) -> GrpcDelivery {
        match self {
            // context.h GrpcCallClientHandler::onSuccessRaw -> Context::onGrpcReceiveWrapper:
            // proxy_on_grpc_receive, then the token is erased; onFailure is never called too.
            ScriptedGrpc::Reply(message) => GrpcDelivery::Receive(message),
            // async_client_impl.cc AsyncRequestImpl::onRemoteClose: OK without a message is
            // onFailure(Internal, EMPTY_STRING).
            ScriptedGrpc::Status { code: 0, .. } => GrpcDelivery::Close(GrpcStatus::new(INTERNAL, "")),
            // GrpcCallClientHandler::onFailure -> Context::onGrpcCloseWrapper(status, message),
            // the message passed through enhancedGrpcMessage (the stream's response code details,
            // `via_upstream` for an answer from the server).
            ScriptedGrpc::Status { code, message } => {
                let message = if message.is_empty() { "via_upstream".to_owned() } else { message + "{via_upstream}" };
                GrpcDelivery::Close(GrpcStatus::new(code, message))
            }
            // The router's response timeout sends a local reply (504, "upstream request timeout",
            // no gRPC status); for a gRPC request it is trailers-only with grpc-status
            // httpToGrpcStatus(504) = UNAVAILABLE. Observed on Envoy 1.40.0.
            ScriptedGrpc::Timeout => {
                GrpcDelivery::Close(GrpcStatus::new(UNAVAILABLE, "upstream request timeout{response_timeout}"))
            }
        }
    }
}

/// The callback a scripted answer arrives through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GrpcDelivery {
    Receive(Vec<u8>),
    Close(GrpcStatus),
}

/// The upstream argument of `proxy_grpc_call`, read as Envoy 1.40's `Context::grpcCall` reads
/// it: bytes that parse as an `envoy.config.core.v3.GrpcService` are one; anything else is a
/// cluster name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GrpcUpstream {
    /// A plain cluster name. Envoy refuses an unknown one with PARSE_FAILURE.
    Cluster(String),
    /// A `GrpcService` with `envoy_grpc`: Envoy skips the cluster check, and an unknown cluster
    /// then fails the call with INTERNAL_FAILURE.
    EnvoyGrpc(String),
    /// A `GrpcService` with `google_grpc`: Envoy makes the call with its Google gRPC client;
    /// not modelled.
    GoogleGrpc,
    /// Bytes that parse as a `GrpcService` naming no target: an empty name, or a name that
    /// happens to be valid protobuf (`envoy`, `xy`). Envoy 1.40 aborts: "panic: unset oneof".
    NoTarget,
}

#[derive(Clone, PartialEq, prost::Message)]
struct GrpcService {
    #[prost(message, optional, tag = "1")]
    envoy_grpc: Option<EnvoyGrpc>,
    #[prost(bytes = "vec", optional, tag = "2")]
    google_grpc: Option<Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct EnvoyGrpc {
    #[prost(string, tag = "1")]
    cluster_name: String,
}

pub(crate) fn upstream(bytes: &[u8]) -> GrpcUpstream {
    match <GrpcService as prost::Message>::decode(bytes) {
        Err(_) => GrpcUpstream::Cluster(String::from_utf8_lossy(bytes).into_owned()),
        Ok(GrpcService { envoy_grpc: Some(envoy), .. }) => GrpcUpstream::EnvoyGrpc(envoy.cluster_name),
        Ok(GrpcService { google_grpc: Some(_), .. }) => GrpcUpstream::GoogleGrpc,
        Ok(_) => GrpcUpstream::NoTarget,
    }
}

/// Answers in order: each call takes the next, and the last one repeats.
#[derive(Debug, Default)]
struct Sequence {
    answers: Vec<ScriptedGrpc>,
    taken: usize,
}

impl Sequence {
    fn next(&mut self) -> Option<ScriptedGrpc> {
        let answer = self.answers.get(self.taken).or(self.answers.last()).cloned();
        self.taken = self.taken.saturating_add(1);
        answer
    }
}

/// The scripted gRPC upstreams of one harness, and the calls made to them.
#[derive(Debug, Default)]
pub(crate) struct GrpcScripts {
    clusters: Mutex<HashMap<String, Sequence>>,
    methods: Mutex<HashMap<(String, String, String), Sequence>>,
    made: Mutex<Vec<RecordedGrpcCall>>,
}

impl GrpcScripts {
    pub(crate) fn script(&self, cluster: &str, answers: Vec<ScriptedGrpc>) {
        lock(&self.clusters).insert(cluster.to_owned(), Sequence { answers, taken: 0 });
    }

    /// One method of a cluster; it takes precedence over the cluster's script. Other methods
    /// answer UNIMPLEMENTED, as a gRPC server does, unless the cluster is scripted too.
    pub(crate) fn script_method(&self, cluster: &str, service: &str, method: &str, answer: ScriptedGrpc) {
        let key = (cluster.to_owned(), service.to_owned(), method.to_owned());
        lock(&self.methods).insert(key, Sequence { answers: vec![answer], taken: 0 });
        lock(&self.clusters)
            .entry(cluster.to_owned())
            .or_insert_with(|| Sequence { answers: vec![ScriptedGrpc::status(UNIMPLEMENTED, "")], taken: 0 });
    }

    pub(crate) fn knows(&self, cluster: &str) -> bool {
        lock(&self.clusters).contains_key(cluster)
    }

    /// Records the call and takes its answer; `None` (an empty sequence) leaves it unanswered.
    pub(crate) fn take_answer(&self, call: RecordedGrpcCall) -> Option<ScriptedGrpc> {
        let key = (call.cluster.clone(), call.service.clone(), call.method.clone());
        let answer = match lock(&self.methods).get_mut(&key) {
            Some(sequence) => sequence.next(),
            None => lock(&self.clusters).get_mut(&call.cluster).and_then(Sequence::next),
        };
        lock(&self.made).push(call);
        answer
    }

    pub(crate) fn made(&self) -> Vec<RecordedGrpcCall> {
        lock(&self.made).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(cluster: &str) -> Vec<u8> {
        prost::Message::encode_to_vec(&GrpcService {
            envoy_grpc: Some(EnvoyGrpc { cluster_name: cluster.to_owned() }),
            google_grpc: None,
        })
    }

    #[test]
    fn the_upstream_is_read_as_envoy_reads_it() {
        let cases: [(&[u8], GrpcUpstream); 6] = [
            (b"ratelimit", GrpcUpstream::Cluster("ratelimit".into())),
            (b"rate-limit.svc", GrpcUpstream::Cluster("rate-limit.svc".into())),
            (&service("ratelimit"), GrpcUpstream::EnvoyGrpc("ratelimit".into())),
            (b"\x12\x00", GrpcUpstream::GoogleGrpc),
            // Valid protobuf with no target: Envoy 1.40 aborts on these (observed for both names).
            (b"envoy", GrpcUpstream::NoTarget),
            (b"xy", GrpcUpstream::NoTarget),
        ];
        for (bytes, expected) in cases {
            assert_eq!(upstream(bytes), expected, "{}", String::from_utf8_lossy(bytes));
        }
        assert_eq!(upstream(b""), GrpcUpstream::NoTarget);
    }

    #[test]
    fn each_answer_is_one_callback_as_envoy_delivers_it() {
        let cases = [
            (ScriptedGrpc::reply("ok"), GrpcDelivery::Receive(b"ok".to_vec())),
            (
                ScriptedGrpc::status(8, "over limit"),
                GrpcDelivery::Close(GrpcStatus::new(8, "over limit{via_upstream}")),
            ),
            (ScriptedGrpc::status(7, ""), GrpcDelivery::Close(GrpcStatus::new(7, "via_upstream"))),
            (ScriptedGrpc::status(0, "fine"), GrpcDelivery::Close(GrpcStatus::new(13, ""))),
            (
                ScriptedGrpc::Timeout,
                GrpcDelivery::Close(GrpcStatus::new(14, "upstream request timeout{response_timeout}")),
            ),
        ];
        for (answer, expected) in cases {
            assert_eq!(answer.clone().delivery(), expected, "{answer:?}");
        }
    }

    #[test]
    fn a_sequence_is_taken_in_order_and_its_last_answer_repeats() {
        let scripts = GrpcScripts::default();
        scripts.script("rls", vec![ScriptedGrpc::reply("a"), ScriptedGrpc::reply("b")]);
        let call = |method: &str| RecordedGrpcCall {
            cluster: "rls".into(),
            service: "s".into(),
            method: method.into(),
            initial_metadata: Vec::new(),
            message: Vec::new(),
            timeout: Duration::ZERO,
        };
        let answers: Vec<_> = (0..3).map(|_| scripts.take_answer(call("m"))).collect();
        assert_eq!(
            answers,
            [Some(ScriptedGrpc::reply("a")), Some(ScriptedGrpc::reply("b")), Some(ScriptedGrpc::reply("b"))]
        );
        scripts.script_method("rls", "s", "Other", ScriptedGrpc::status(5, ""));
        assert_eq!(scripts.take_answer(call("Other")), Some(ScriptedGrpc::status(5, "")));
        assert_eq!(scripts.take_answer(call("m")), Some(ScriptedGrpc::reply("b")));
        scripts.script("silent", Vec::new());
        assert!(scripts.knows("silent"));
        assert_eq!(scripts.made().len(), 5);
    }
}
