//! The one condition tree every policy compiles to, Istio's fields and our condition objects
//! alike, and its evaluation: a plain recursive match over [`Condition`] against a
//! [`Request`]. Two-valued, like Istio: a condition on the identity, the peer or the source is
//! false when the request has none.

use std::cmp::Ordering;
use std::net::IpAddr;

use serde_json::Value;

use super::cidr::{Cidr, any_contains};
use super::matchers::{HostMatch, StringMatch};
use super::path::{PathMatch, strip_query};
use super::time_window::TimeWindow;
use super::{Inputs, RequestFacts};
use crate::jwt::Identity;
use crate::routes::RouteRequest;
use crate::spiffe::SpiffeId;
use crate::time::UnixSeconds;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Condition {
    /// Every one holds; `All([])` always holds (Istio's empty rule `{}`).
    All(Vec<Condition>),
    /// Some one holds.
    Any(Vec<Condition>),
    Not(Box<Condition>),
    /// Istio `principals`, `source.principal`: the peer ID without `spiffe://`.
    PeerPrincipal(Vec<StringMatch>),
    /// Istio `namespaces`, `source.namespace`: `<ns>` of the peer's `/ns/<ns>/...` path.
    PeerNamespace(Vec<StringMatch>),
    /// `peer`: the trust domain, and the path exactly or segment-wise below a prefix.
    Peer {
        trust_domain: String,
        path: PeerPath,
    },
    SourceIp(Vec<Cidr>),
    /// Istio `remoteIpBlocks`, `remote.ip`; our `remote_ip`: the remote (client) address.
    RemoteIp(Vec<Cidr>),
    Host(Vec<HostMatch>),
    Method(Vec<String>),
    Path(Vec<PathMatch>),
    Header {
        name: String,
        test: HeaderTest,
    },
    TimeWindow(TimeWindow),
    /// `true`: an identity is present; `false`: none is.
    Authenticated(bool),
    /// Istio `requestPrincipals`, `request.auth.principal`: `<iss>/<sub>`.
    RequestPrincipal(Vec<StringMatch>),
    Issuer(Vec<String>),
    Provider(Vec<String>),
    /// Istio `request.auth.audiences`.
    Audience(Vec<StringMatch>),
    /// A claim by its path of object members.
    Claim {
        path: Vec<String>,
        test: ClaimTest,
    },
    Scopes(ScopeTest),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PeerPath {
    Exact(String),
    /// Segment-wise: see [`SpiffeId::path_within`]. The empty prefix admits every path.
    Within(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeaderTest {
    /// Istio `request.headers[...]`: some value matches one of these.
    Istio(Vec<StringMatch>),
    Exact(Vec<u8>),
    Prefix(Vec<u8>),
    /// `true`: some value is present (possibly empty); `false`: none is.
    Present(bool),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ClaimTest {
    /// Istio `request.auth.claims[...]`: the claim, or some element of an array claim, as text
    /// (numbers and booleans as their JSON text) matches one of these.
    Istio(Vec<StringMatch>),
    Equals(Value),
    OneOf(Vec<Value>),
    /// A string claim starts with this.
    Prefix(String),
    /// `true`: present and not `null`; `false`: absent or `null`.
    Exists(bool),
    /// A number claim compares so with this number (`gt`: claim > value).
    Compare(Ordering, bool, f64),
    /// An array claim has an element equal to this.
    Contains(Value),
    /// `environment`: a string claim equal to this, or an array claim containing it.
    Is(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScopeTest {
    pub(crate) scopes: Vec<String>,
    /// `all_of` when true, `any_of` when false.
    pub(crate) all: bool,
}

/// How scope conditions evaluate: normally, or as if the caller held every scope, to find out
/// on a denial whether scopes alone were missing (RFC 6750 §3.1 `insufficient_scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scopes {
    Checked,
    Granted,
}

/// The facts of one request, prepared once for every condition: the path without its query,
/// the peer's SPIFFE ID parsed, the scopes' source chosen.
pub(crate) struct Request<'a> {
    pub(crate) path: &'a str,
    pub(crate) method: &'a str,
    pub(crate) authority: Option<&'a str>,
    pub(crate) headers: &'a [(String, Vec<u8>)],
    pub(crate) source: Option<IpAddr>,
    pub(crate) remote: Option<IpAddr>,
    /// The raw URI SAN, for Istio's principal (the ID without its scheme), and parsed. A SAN
    /// that is not a valid SPIFFE ID counts as no peer.
    pub(crate) peer: Option<(&'a str, SpiffeId<'a>)>,
    /// The SPIFFE ID of a JWT-SVID the JWT filter verified ([`Identity::spiffe_id`]), the same way.
    pub(crate) svid: Option<(&'a str, SpiffeId<'a>)>,
    pub(crate) identity: Option<&'a Identity>,
    pub(crate) now: UnixSeconds,
    /// `scope_claim`'s path, or `None` for [`Identity::scopes`].
    pub(crate) scope_claim: Option<&'a [String]>,
}

impl<'a> Request<'a> {
    pub(crate) fn route(&self) -> RouteRequest<'a> {
        RouteRequest { path: self.path, method: self.method, authority: self.authority }
    }

    pub(crate) fn new(facts: &RequestFacts<'a>, scope_claim: Option<&'a [String]>) -> Self {
        let parsed = |id: &'a str| SpiffeId::parse(id).ok().map(|parsed| (id, parsed));
        let peer = facts.peer_uri_san.and_then(parsed);
        let svid = facts.identity.and_then(|identity| identity.spiffe_id.as_deref()).and_then(parsed);
        Self {
            path: strip_query(facts.path),
            method: facts.method,
            authority: facts.authority,
            headers: facts.headers,
            source: facts.source,
            remote: facts.remote,
            peer,
            svid,
            identity: facts.identity,
            now: facts.now,
            scope_claim,
        }
    }

    /// The caller's workload identities: the mTLS peer's and a verified JWT-SVID's. A peer
    /// condition holds when either matches, so one policy admits a workload whichever it
    /// presents; neither credential alone is worth more than it was without the other.
    fn workloads(&self) -> impl Iterator<Item = (&'a str, SpiffeId<'a>)> {
        self.peer.into_iter().chain(self.svid)
    }

    fn has_scope(&self, identity: &Identity, scope: &str) -> bool {
        let Some(path) = self.scope_claim else { return identity.scopes.iter().any(|s| s == scope) };
        match claim(identity, path) {
            // RFC 8693 §4.2: a space-delimited string; `scp`-style claims are arrays.
            Some(Value::String(s)) => s.split(' ').any(|s| s == scope),
            Some(Value::Array(items)) => items.iter().any(|item| item.as_str() == Some(scope)),
            _ => false,
        }
    }
}

/// The value at `path` of the identity's claims, descending through objects.
pub(crate) fn claim<'i>(identity: &'i Identity, path: &[String]) -> Option<&'i Value> {
    let (first, rest) = path.split_first()?;
    rest.iter().try_fold(identity.claims.get(first)?, |value, member| value.as_object()?.get(member))
}

impl Condition {
    pub(crate) fn eval(&self, request: &Request<'_>, scopes: Scopes) -> bool {
        let id = request.identity;
        match self {
            Self::All(all) => all.iter().all(|c| c.eval(request, scopes)),
            Self::Any(any) => any.iter().any(|c| c.eval(request, scopes)),
            Self::Not(inner) => !inner.eval(request, scopes),
            Self::PeerPrincipal(values) => {
                request.workloads().any(|(san, _)| values.iter().any(|v| v.matches(SpiffeId::principal(san))))
            }
            Self::PeerNamespace(values) => {
                request.workloads().filter_map(|(_, id)| id.namespace()).any(|ns| values.iter().any(|v| v.matches(ns)))
            }
            Self::Peer { trust_domain, path } => request.workloads().any(|(_, id)| {
                id.trust_domain == trust_domain
                    && match path {
                        PeerPath::Exact(exact) => id.path == exact,
                        PeerPath::Within(prefix) => id.path_within(prefix),
                    }
            }),
            Self::SourceIp(ranges) => any_contains(ranges, request.source),
            Self::RemoteIp(ranges) => any_contains(ranges, request.remote),
            Self::Host(hosts) => request.authority.is_some_and(|a| hosts.iter().any(|h| h.matches(a))),
            Self::Method(methods) => methods.iter().any(|m| m == request.method),
            Self::Path(paths) => paths.iter().any(|p| p.matches(request.path)),
            Self::Header { name, test } => header(request.headers, name, test),
            Self::TimeWindow(window) => window.contains(request.now),
            Self::Authenticated(wanted) => id.is_some() == *wanted,
            Self::RequestPrincipal(values) => id.is_some_and(|id| {
                id.sub.as_deref().is_some_and(|sub| values.iter().any(|v| v.matches_parts(&[&id.iss, "/", sub])))
            }),
            Self::Issuer(issuers) => id.is_some_and(|id| issuers.contains(&id.iss)),
            Self::Provider(providers) => id.is_some_and(|id| providers.contains(&id.provider)),
            Self::Audience(values) => id.is_some_and(|id| id.aud.iter().any(|a| values.iter().any(|v| v.matches(a)))),
            Self::Claim { path, test } => id.is_some_and(|id| claim_test(claim(id, path), test)),
            Self::Scopes(test) => id.is_some_and(|id| {
                scopes == Scopes::Granted || {
                    let has = |s: &String| request.has_scope(id, s);
                    if test.all { test.scopes.iter().all(has) } else { test.scopes.iter().any(has) }
                }
            }),
        }
    }

    /// The scope lists of the scope conditions that do not hold, in order, each scope once:
    /// what a caller would need for a policy that matches once its scopes are granted.
    pub(crate) fn missing_scopes(&self, request: &Request<'_>, out: &mut Vec<String>) {
        match self {
            Self::All(all) | Self::Any(all) => all.iter().for_each(|c| c.missing_scopes(request, out)),
            Self::Not(inner) => inner.missing_scopes(request, out),
            Self::Scopes(test) if !self.eval(request, Scopes::Checked) => {
                for scope in &test.scopes {
                    if !out.contains(scope) {
                        out.push(scope.clone());
                    }
                }
            }
            _ => {}
        }
    }

    /// Records which request facts this condition reads.
    pub(crate) fn inputs(&self, inputs: &mut Inputs) {
        match self {
            Self::All(all) | Self::Any(all) => all.iter().for_each(|c| c.inputs(inputs)),
            Self::Not(inner) => inner.inputs(inputs),
            Self::PeerPrincipal(_) | Self::PeerNamespace(_) | Self::Peer { .. } => inputs.peer = true,
            Self::SourceIp(_) => inputs.source = true,
            Self::RemoteIp(_) => inputs.remote = true,
            Self::Host(_) => inputs.authority = true,
            Self::Header { .. } => inputs.headers = true,
            Self::Method(_) | Self::Path(_) | Self::TimeWindow(_) => {}
            Self::Authenticated(_)
            | Self::RequestPrincipal(_)
            | Self::Issuer(_)
            | Self::Provider(_)
            | Self::Audience(_)
            | Self::Claim { .. }
            | Self::Scopes(_) => inputs.identity = true,
        }
    }

    /// Whether the condition depends on the caller's identity anywhere (negated too): such a
    /// policy could have matched had the caller authenticated.
    pub(crate) fn reads_identity(&self) -> bool {
        let mut inputs = Inputs::default();
        self.inputs(&mut inputs);
        inputs.identity
    }
}

fn header(headers: &[(String, Vec<u8>)], name: &str, test: &HeaderTest) -> bool {
    // A header may occur more than once (RFC 9110 §5.3); any one value may satisfy the test.
    let mut values = headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice());
    match test {
        HeaderTest::Istio(patterns) => values.any(|v| patterns.iter().any(|p| p.matches_bytes(v))),
        HeaderTest::Exact(exact) => values.any(|v| v == exact.as_slice()),
        HeaderTest::Prefix(prefix) => values.any(|v| v.starts_with(prefix)),
        HeaderTest::Present(wanted) => values.next().is_some() == *wanted,
    }
}

fn claim_test(value: Option<&Value>, test: &ClaimTest) -> bool {
    match test {
        ClaimTest::Exists(wanted) => value.is_some_and(|v| !v.is_null()) == *wanted,
        ClaimTest::Istio(patterns) => value.is_some_and(|value| match value {
            Value::Array(items) => items.iter().any(|item| istio_claim(item, patterns)),
            other => istio_claim(other, patterns),
        }),
        ClaimTest::Equals(expected) => value.is_some_and(|v| json_eq(v, expected)),
        ClaimTest::OneOf(options) => value.is_some_and(|v| options.iter().any(|o| json_eq(v, o))),
        ClaimTest::Prefix(prefix) => value.and_then(Value::as_str).is_some_and(|s| s.starts_with(prefix.as_str())),
        ClaimTest::Compare(ordering, or_equal, bound) => value.and_then(Value::as_f64).is_some_and(|n| {
            n.partial_cmp(bound).is_some_and(|o| o == *ordering || (*or_equal && o == Ordering::Equal))
        }),
        ClaimTest::Contains(element) => {
            value.and_then(Value::as_array).is_some_and(|items| items.iter().any(|item| json_eq(item, element)))
        }
        ClaimTest::Is(expected) => value.is_some_and(|value| match value {
            Value::String(s) => s == expected,
            Value::Array(items) => items.iter().any(|item| item.as_str() == Some(expected)),
            _ => false,
        }),
    }
}

fn istio_claim(value: &Value, patterns: &[StringMatch]) -> bool {
    let text = match value {
        Value::String(s) => std::borrow::Cow::Borrowed(s.as_str()),
        Value::Number(n) => std::borrow::Cow::Owned(n.to_string()),
        Value::Bool(b) => std::borrow::Cow::Borrowed(if *b { "true" } else { "false" }),
        Value::Null | Value::Array(_) | Value::Object(_) => return false,
    };
    patterns.iter().any(|p| p.matches(&text))
}

/// JSON equality where numbers compare by value: a token's `1.0` is the configuration's `1`.
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
            (Some(x), Some(y), _, _) => x == y,
            (_, _, Some(x), Some(y)) => x == y,
            _ => x.as_f64().zip(y.as_f64()).is_some_and(|(x, y)| x == y),
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_eq(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}
