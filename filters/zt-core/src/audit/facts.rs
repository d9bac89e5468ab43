//! What the adapter reads from Envoy when a stream ends, as plain values. Text that was not
//! UTF-8 arrives converted lossily: an audit record describes the request, it does not route it.

use std::rc::Rc;

use serde::Serialize;

use super::record::Outcome;
use crate::address::SourceAddresses;
use crate::identity_source::AdoptError;
use crate::jwt::{Identity, VerifiedToken};
use crate::{authz, jwt, ratelimit};

/// What an earlier stage handed on: as another module wrote it to filter state (raw JSON,
/// read back and checked), or as a stage of the same module decided it (typed, never parsed).
#[derive(Debug, Clone)]
pub enum Handed<T> {
    FilterState(Vec<u8>),
    Stage(T),
}

/// The caller as the audit stage learns it.
#[derive(Debug, Clone)]
pub enum HandedIdentity {
    /// An earlier zt-jwt filter's entry (raw JSON, read back and checked).
    FilterState(Vec<u8>),
    /// This module's JWT stage verified it.
    Verified(Rc<VerifiedToken>),
    /// Envoy's `jwt_authn` verified it (`identity_source`), or what was there did not decode.
    Adopted(Result<Identity, AdoptError>),
}

/// One stage's decision record, as the stage made it.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum StageRecord {
    Jwt(jwt::DecisionRecord),
    Authz(authz::DecisionRecord),
    RateLimit(ratelimit::DecisionRecord),
}

impl StageRecord {
    /// What the decision weighs in the request's outcome.
    pub fn outcome(&self) -> Outcome {
        match self {
            StageRecord::Jwt(record) => match record.decision {
                jwt::Verdict::Allow | jwt::Verdict::Anonymous => Outcome::Allow,
                jwt::Verdict::AdvisoryDeny => Outcome::Advisory,
                jwt::Verdict::Deny => Outcome::Deny,
            },
            StageRecord::Authz(record) => match record.decision {
                authz::Verdict::Allow => Outcome::Allow,
                authz::Verdict::AdvisoryDeny => Outcome::Advisory,
                authz::Verdict::Deny => Outcome::Deny,
            },
            StageRecord::RateLimit(record) => match record.decision {
                ratelimit::Verdict::Admitted => Outcome::Allow,
                ratelimit::Verdict::AdvisoryLimited => Outcome::Advisory,
                ratelimit::Verdict::Limited => Outcome::Limited,
            },
        }
    }
}

/// The facts of one ended stream. Every field is optional: a request an earlier filter
/// answered, or whose client went away, lacks some of them, and the record says what it can.
#[derive(Debug, Clone, Default)]
pub struct StreamFacts {
    /// `request.time`, nanoseconds since the Unix epoch.
    pub start_ns: Option<u64>,
    /// When the record is made (the host clock), nanoseconds since the Unix epoch.
    pub now_ns: u64,
    pub request_id: Option<String>,
    pub traceparent: Option<String>,
    /// The connection's direct peer and Envoy's remote address, told apart.
    pub source: SourceAddresses,
    /// `connection.uri_san_peer_certificate`.
    pub peer_uri_san: Option<String>,
    pub authority: Option<String>,
    pub method: Option<String>,
    /// `:path` with its query.
    pub path: Option<String>,
    pub route_name: Option<String>,
    /// Route metadata `filter_metadata.zt.audit_route`.
    pub route_choice: Option<String>,
    pub cluster: Option<String>,
    pub status: Option<u64>,
    /// `response.flags`, Envoy's bitmask.
    pub flags: u64,
    pub details: Option<String>,
    pub duration_ns: Option<u64>,
    pub bytes_in: Option<u64>,
    pub bytes_out: Option<u64>,
    /// The configured request headers that were present, with their values.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The verified identity and the decisions of the JWT, authorization and rate-limit stages.
    pub identity: Option<HandedIdentity>,
    pub jwt: Option<Handed<StageRecord>>,
    pub authz: Option<Handed<StageRecord>>,
    pub ratelimit: Option<Handed<StageRecord>>,
}
