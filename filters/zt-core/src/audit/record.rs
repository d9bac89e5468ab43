//! One audit record from the facts of an ended stream: what is copied, what is redacted, and
//! the request's outcome. The rules of what may appear in a record live here and in
//! [`super::identity`]; nothing else decides it.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::compile::{AuditConfig, PPM, Recording};
use super::facts::{Handed, HandedIdentity, StageRecord, StreamFacts};
use super::flags::flag_names;
use super::identity::{ProjectedIdentity, project_identity};
use super::time::rfc3339_millis;
use crate::routes::{RouteRequest, Selected};

/// What replaces a redacted value: the field's presence stays visible, its value does not.
pub const REDACTED: &str = "[redacted]";

/// The request's outcome over every filter's decision, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Allow,
    /// Some filter would have refused it in advisory mode, and none refused it.
    Advisory,
    Limited,
    Deny,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Advisory => "advisory",
            Outcome::Limited => "limited",
            Outcome::Deny => "deny",
        }
    }

    /// One decision of one filter, as it wrote it to filter state.
    fn of_decision(decision: &str) -> Outcome {
        match decision {
            "deny" => Outcome::Deny,
            "limited" => Outcome::Limited,
            "advisory_deny" | "advisory_limited" => Outcome::Advisory,
            _ => Outcome::Allow,
        }
    }

    /// Without a decision of ours, what Envoy answered tells a refusal by another filter
    /// (native `jwt_authn`, `rbac`, `local_ratelimit`) from an allowed request.
    fn of_status(status: u64) -> Outcome {
        match status {
            401 | 403 => Outcome::Deny,
            429 => Outcome::Limited,
            _ => Outcome::Allow,
        }
    }
}

/// A record before it joins a chain: everything but `chain`, `seq` and `prev`.
#[derive(Debug, Clone, Serialize)]
pub struct Draft {
    time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    traceparent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<Source>,
    /// Envoy's remote address when it is not the peer's: the client a trusted proxy named in
    /// `X-Forwarded-For`, or, with a listener that trusts the header, whatever a client wrote.
    #[serde(skip_serializing_if = "Option::is_none")]
    remote: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    peer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    authority: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    route: Option<String>,
    /// The audit rule route metadata named that the configuration does not define (an
    /// anomaly: the defaults applied).
    #[serde(skip_serializing_if = "Option::is_none")]
    unknown_route_rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<String>,
    status: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    flags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes_in: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes_out: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity: Option<IdentityField>,
    #[serde(skip_serializing_if = "Decisions::is_empty")]
    decisions: Decisions,
    outcome: Outcome,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    headers: BTreeMap<String, String>,
    /// Set when filter state held something unreadable, or route metadata named an undefined
    /// rule: the record is then always kept.
    #[serde(skip)]
    anomaly: bool,
    #[serde(skip)]
    recording: Recording,
    #[serde(skip)]
    start_ns: u64,
}

/// The record's `identity`: what the configuration shows of it, or that filter state held
/// something unreadable.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
enum IdentityField {
    Projected(ProjectedIdentity),
    Unreadable { unreadable: bool },
}

/// The record's `decisions`, one per filter that decided, in name order. Serialised as they
/// are: a stage's typed record, or another module's record as read from filter state.
#[derive(Debug, Clone, Default, Serialize)]
struct Decisions {
    #[serde(skip_serializing_if = "Option::is_none")]
    authz: Option<DecisionField>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jwt: Option<DecisionField>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ratelimit: Option<DecisionField>,
}

impl Decisions {
    fn is_empty(&self) -> bool {
        self.authz.is_none() && self.jwt.is_none() && self.ratelimit.is_none()
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
enum DecisionField {
    Stage(StageRecord),
    FilterState(Value),
}

#[derive(Debug, Clone, Serialize)]
struct Source {
    address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
}

impl Draft {
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// Whether filter state held something unreadable (a broken chain of filters), or route
    /// metadata named an audit rule the configuration does not define.
    pub fn anomaly(&self) -> bool {
        self.anomaly
    }

    /// The undefined audit rule route metadata named, for the adapter's log line.
    pub fn unknown_route_rule(&self) -> Option<&str> {
        self.unknown_route_rule.as_deref()
    }

    pub fn status(&self) -> u64 {
        self.status
    }

    pub fn method(&self) -> Option<&str> {
        self.method.as_deref()
    }

    pub fn traceparent(&self) -> Option<&str> {
        self.traceparent.as_deref()
    }

    /// Request start, nanoseconds since the Unix epoch (the record time when Envoy had none).
    pub fn start_ns(&self) -> u64 {
        self.start_ns
    }

    /// Whether a request with this outcome is kept. Denials, limits, advisory decisions and
    /// anomalies always are; allowed requests by `sample_allowed`, decided by the request id
    /// when there is one (so that every proxy on the path keeps or skips the same request),
    /// else by `draw` (a per-worker sequence from the adapter).
    pub fn sampled(&self, draw: u64) -> bool {
        let ppm = self.recording.sample_ppm;
        if self.outcome != Outcome::Allow || self.anomaly || ppm >= PPM {
            return true;
        }
        let point = match &self.request_id {
            Some(id) => {
                let digest = <sha2::Sha256 as sha2::Digest>::digest(id.as_bytes());
                let mut first = [0u8; 8];
                first.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
                u64::from_be_bytes(first)
            }
            None => draw.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        };
        point % u64::from(PPM) < u64::from(ppm)
    }
}

impl AuditConfig {
    /// The record of an ended stream, before it joins the worker's chain.
    pub fn draft(&self, facts: &StreamFacts) -> Draft {
        let (path_only, query) = match facts.path.as_deref() {
            Some(path) => match path.split_once('?') {
                Some((path, query)) => (Some(path), Some(query)),
                None => (Some(path), None),
            },
            None => (None, None),
        };
        let (recording, unknown_route_rule) = self.recording(facts, path_only);
        let path = path_only.map(|p| match (query, recording.keep_query) {
            (Some(query), true) => format!("{p}?{}", self.redact_query(query)),
            _ => p.to_owned(),
        });
        // Audit never refuses: a route naming an undefined rule is recorded with the defaults
        // and kept as an anomaly, where the enforcing filters answer 500.
        let mut anomaly = unknown_route_rule.is_some();
        let mut outcome = Outcome::Allow;
        let mut decided = false;
        let mut decision = |handed: &Option<Handed<StageRecord>>| {
            let field = match handed.as_ref()? {
                Handed::Stage(stage) => {
                    outcome = outcome.max(stage.outcome());
                    decided = true;
                    DecisionField::Stage(stage.clone())
                }
                Handed::FilterState(raw) => {
                    let value = match serde_json::from_slice::<Value>(raw) {
                        Ok(value @ Value::Object(_)) => value,
                        _ => {
                            anomaly = true;
                            serde_json::json!({"decision": "unreadable"})
                        }
                    };
                    if let Some(decision) = value.get("decision").and_then(Value::as_str) {
                        outcome = outcome.max(Outcome::of_decision(decision));
                        decided = true;
                    }
                    DecisionField::FilterState(value)
                }
            };
            Some(field)
        };
        let decisions = Decisions {
            jwt: decision(&facts.jwt),
            authz: decision(&facts.authz),
            ratelimit: decision(&facts.ratelimit),
        };
        let status = facts.status.unwrap_or(0);
        if !decided {
            outcome = Outcome::of_status(status);
        }
        let identity = facts.identity.as_ref().map(|handed| {
            let projected = match handed {
                HandedIdentity::Verified(token) => Some(project_identity(&token.identity, &self.identity)),
                HandedIdentity::Adopted(adopted) => {
                    adopted.as_ref().ok().map(|identity| project_identity(identity, &self.identity))
                }
                HandedIdentity::FilterState(raw) => {
                    serde_json::from_slice(raw).ok().map(|identity| project_identity(&identity, &self.identity))
                }
            };
            projected.map_or_else(
                || {
                    anomaly = true;
                    IdentityField::Unreadable { unreadable: true }
                },
                IdentityField::Projected,
            )
        });
        Draft {
            time: rfc3339_millis(facts.start_ns.unwrap_or(facts.now_ns)),
            request_id: facts.request_id.clone(),
            traceparent: facts.traceparent.clone().filter(|t| is_traceparent(t)),
            source: facts.source.peer.map(|p| Source { address: p.ip.to_string(), port: p.port }),
            remote: facts.source.remote.filter(|r| Some(*r) != facts.source.peer_ip()).map(|r| r.to_string()),
            peer: facts.peer_uri_san.clone().filter(|p| p.starts_with("spiffe://")),
            authority: facts.authority.clone(),
            method: facts.method.clone(),
            path,
            route: facts.route_name.clone(),
            unknown_route_rule,
            cluster: facts.cluster.clone(),
            status,
            flags: flag_names(facts.flags),
            details: facts.details.clone(),
            // Microsecond resolution is plenty; f64 holds it exactly for centuries.
            #[allow(clippy::cast_precision_loss)]
            duration_ms: facts.duration_ns.map(|ns| (ns / 1000) as f64 / 1000.0),
            bytes_in: facts.bytes_in,
            bytes_out: facts.bytes_out,
            identity,
            decisions,
            outcome,
            headers: self.copied_headers(&facts.headers),
            anomaly,
            recording,
            start_ns: facts.start_ns.unwrap_or(facts.now_ns),
        }
    }

    /// The route's recording, and the rule route metadata named if the configuration lacks it.
    fn recording(&self, facts: &StreamFacts, path: Option<&str>) -> (Recording, Option<String>) {
        let request = RouteRequest {
            path: path.unwrap_or(""),
            method: facts.method.as_deref().unwrap_or(""),
            authority: facts.authority.as_deref(),
        };
        match self.routes.select(facts.route_choice.as_deref(), facts.route_name.as_deref(), &request) {
            Selected::Rule(rule) => (self.route_recording.get(&rule.name).copied().unwrap_or(self.defaults), None),
            Selected::Defaults => (self.defaults, None),
            // A record is never skipped for a wrong rule name; the defaults apply.
            Selected::UnknownRule => (self.defaults, facts.route_choice.clone()),
        }
    }

    fn redact_query(&self, query: &str) -> String {
        let pairs = query.split('&').map(|pair| {
            let name = pair.split_once('=').map_or(pair, |(name, _)| name);
            if self.redacted_params.iter().any(|p| p.eq_ignore_ascii_case(name)) {
                format!("{name}={REDACTED}")
            } else {
                pair.to_owned()
            }
        });
        pairs.collect::<Vec<_>>().join("&")
    }

    fn copied_headers(&self, present: &[(String, Vec<u8>)]) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (name, value) in present {
            let name = name.to_ascii_lowercase();
            if !self.headers.contains(&name) {
                continue;
            }
            let value = if self.redacted_headers.contains(&name) {
                REDACTED.to_owned()
            } else {
                String::from_utf8_lossy(value).into_owned()
            };
            out.insert(name, value);
        }
        out
    }
}

/// W3C Trace Context §3.2: `version-traceid-parentid-flags`, lower-case hex; only version 00's
/// shape is accepted, and all-zero ids are invalid.
fn is_traceparent(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    match parts.as_slice() {
        [version, trace, parent, flags] => {
            *version == "00"
                && hex(trace, 32)
                && hex(parent, 16)
                && hex(flags, 2)
                && trace.bytes().any(|b| b != b'0')
                && parent.bytes().any(|b| b != b'0')
        }
        _ => false,
    }
}

/// The trace and span ids of a well-formed `traceparent`.
pub(crate) fn trace_ids(traceparent: &str) -> Option<(&str, &str)> {
    let mut parts = traceparent.split('-');
    let (_, trace, span) = (parts.next()?, parts.next()?, parts.next()?);
    Some((trace, span))
}
