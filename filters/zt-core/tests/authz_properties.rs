//! Property tests of the authorization filter: any bytes or JSON as configuration and any
//! request facts never panic, and no request is allowed unless an ALLOW policy in effect
//! matches it.
//!
//! The second property needs to know, independently of the engine, which policies match a
//! request. The configurations are therefore generated from a small model ([`PolicyModel`])
//! over a fixed vocabulary of requests, whose meaning this file states on its own (a table of
//! which address each `ipBlocks` entry contains, which principal each SAN has, ...), and the
//! model's answer (Istio's combination, as `decide.rs` documents it) is compared with
//! [`AuthzConfig::authorize`].
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::net::IpAddr;

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use zt_core::UnixSeconds;
use zt_core::authz::{AuthzConfig, RequestFacts, Verdict};
use zt_core::jwt::Identity;

// The request vocabulary.

const METHODS: [&str; 3] = ["GET", "POST", "DELETE"];
const PATHS: [&str; 5] = ["/a", "/a/b", "/b", "/admin/x", "/a?debug=1"];
const SOURCES: [Option<&str>; 7] = [
    None,
    Some("10.1.2.3"),
    Some("10.9.9.9"),
    Some("192.168.1.1"),
    Some("127.0.0.1"),
    Some("::1"),
    Some("2001:db8::5"),
];
/// URI SANs; the last is not a SPIFFE ID and so counts as no peer.
const SANS: [Option<&str>; 5] = [
    None,
    Some("spiffe://cluster.local/ns/shop/sa/web"),
    Some("spiffe://cluster.local/ns/pay/sa/api"),
    Some("spiffe://other.org/ns/shop/sa/web"),
    Some("not a spiffe id"),
];
/// `x-env` header values (`None`: no such header).
const ENVS: [Option<&[u8]>; 4] = [None, Some(b"prod"), Some(b"dev"), Some(b"\xffprod")];
/// Identities: issuer, subject, `scope`.
const IDENTITIES: [Option<(&str, Option<&str>, &str)>; 4] = [
    None,
    Some(("https://a", Some("alice"), "read write")),
    Some(("https://b", Some("bob"), "read")),
    Some(("https://a", None, "")),
];

/// `ipBlocks` entries and which of [`SOURCES`] each contains, written out rather than computed.
const BLOCKS: [(&str, &[&str]); 6] = [
    ("10.0.0.0/8", &["10.1.2.3", "10.9.9.9"]),
    ("10.1.2.3", &["10.1.2.3"]),
    ("192.168.0.0/16", &["192.168.1.1"]),
    ("127.0.0.1/32", &["127.0.0.1"]),
    ("::1/128", &["::1"]),
    ("2001:db8::/32", &["2001:db8::5"]),
];
/// Istio principals (SPIFFE ID without `spiffe://`), exact or `prefix*`.
const PRINCIPALS: [&str; 4] =
    ["cluster.local/ns/shop/sa/web", "cluster.local/ns/pay/sa/api", "cluster.local/*", "other.org/*"];
const NAMESPACES: [&str; 2] = ["shop", "pay"];
const REQUEST_PRINCIPALS: [&str; 3] = ["https://a/alice", "https://b/bob", "https://a/*"];
const PATH_PATTERNS: [&str; 4] = ["/a", "/a*", "/admin/*", "/b"];
const SCOPES: [&str; 3] = ["read", "write", "admin"];

#[derive(Debug, Clone, Copy)]
struct Req {
    method: usize,
    path: usize,
    source: usize,
    san: usize,
    env: usize,
    identity: usize,
    /// Seconds since the epoch.
    now: u64,
    /// Whether Envoy's route name is `r1` (the generated route rule's).
    on_route: bool,
}

impl Req {
    fn strategy() -> impl Strategy<Value = Req> {
        (
            0..METHODS.len(),
            0..PATHS.len(),
            0..SOURCES.len(),
            0..SANS.len(),
            0..ENVS.len(),
            0..IDENTITIES.len(),
            0u64..4_000_000_000,
            any::<bool>(),
        )
            .prop_map(|(method, path, source, san, env, identity, now, on_route)| Req {
                method,
                path,
                source,
                san,
                env,
                identity,
                now,
                on_route,
            })
    }

    fn source(&self) -> Option<&'static str> {
        SOURCES[self.source]
    }

    fn principal(&self) -> Option<&'static str> {
        SANS[self.san].and_then(|san| san.strip_prefix("spiffe://"))
    }

    fn namespace(&self) -> Option<&'static str> {
        self.principal().and_then(|p| p.split('/').nth(2))
    }

    fn identity(&self) -> Option<(&'static str, Option<&'static str>, &'static str)> {
        IDENTITIES[self.identity]
    }

    fn path(&self) -> &'static str {
        PATHS[self.path].split('?').next().unwrap()
    }

    fn minute_of_day(&self) -> u64 {
        self.now % 86_400 / 60
    }
}

/// Istio's string match as this file reads it: exact, or `prefix*`.
fn string_match(pattern: &str, value: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => value.starts_with(prefix),
        None => pattern == value,
    }
}

/// One leaf of a rule, with its Istio or condition-object spelling.
#[derive(Debug, Clone)]
enum Leaf {
    Methods(Vec<usize>),
    Paths(Vec<usize>),
    IpBlocks(Vec<usize>),
    Principals(Vec<usize>),
    Namespaces(Vec<usize>),
    RequestPrincipals(Vec<usize>),
    /// `request.headers[x-env]` (Istio `when`).
    EnvHeader(Vec<&'static str>),
    /// `{"header": {"name": "x-env", "present": b}}`.
    EnvPresent(bool),
    /// `{"scopes": {"all_of" | "any_of": [...]}}`.
    Scopes {
        all: bool,
        scopes: Vec<usize>,
    },
    Authenticated(bool),
    /// `{"peer": {"trust_domain": "cluster.local", "path_prefix": ...}}`.
    PeerWithin(&'static str),
    /// `{"time_window": {"start", "end"}}`, minutes of the day, `start != end`.
    Window(u64, u64),
    /// `{"source_ip": [...]}`.
    SourceIp(Vec<usize>),
}

impl Leaf {
    fn strategy() -> impl Strategy<Value = Leaf> {
        let some = |n: usize| prop::collection::vec(0..n, 1..3);
        prop_oneof![
            some(METHODS.len()).prop_map(Leaf::Methods),
            some(PATH_PATTERNS.len()).prop_map(Leaf::Paths),
            some(BLOCKS.len()).prop_map(Leaf::IpBlocks),
            some(PRINCIPALS.len()).prop_map(Leaf::Principals),
            some(NAMESPACES.len()).prop_map(Leaf::Namespaces),
            some(REQUEST_PRINCIPALS.len()).prop_map(Leaf::RequestPrincipals),
            prop::collection::vec(prop_oneof![Just("prod"), Just("dev"), Just("pr*")], 1..3).prop_map(Leaf::EnvHeader),
            any::<bool>().prop_map(Leaf::EnvPresent),
            (any::<bool>(), some(SCOPES.len())).prop_map(|(all, scopes)| Leaf::Scopes { all, scopes }),
            any::<bool>().prop_map(Leaf::Authenticated),
            prop_oneof![Just(""), Just("/ns/shop"), Just("/ns/pay/sa/api")].prop_map(Leaf::PeerWithin),
            (0u64..1440, 0u64..1440).prop_filter("start != end", |(s, e)| s != e).prop_map(|(s, e)| Leaf::Window(s, e)),
            some(BLOCKS.len()).prop_map(Leaf::SourceIp),
        ]
    }

    /// Whether the leaf holds for the request: this file's reading of Istio's semantics
    /// (two-valued: a leaf on an absent fact is false).
    fn holds(&self, r: &Req) -> bool {
        match self {
            Leaf::Methods(m) => m.iter().any(|&i| METHODS[i] == METHODS[r.method]),
            Leaf::Paths(p) => p.iter().any(|&i| string_match(PATH_PATTERNS[i], r.path())),
            Leaf::IpBlocks(b) | Leaf::SourceIp(b) => {
                r.source().is_some_and(|ip| b.iter().any(|&i| BLOCKS[i].1.contains(&ip)))
            }
            Leaf::Principals(p) => r.principal().is_some_and(|pr| p.iter().any(|&i| string_match(PRINCIPALS[i], pr))),
            Leaf::Namespaces(n) => r.namespace().is_some_and(|ns| n.iter().any(|&i| NAMESPACES[i] == ns)),
            Leaf::RequestPrincipals(p) => r.identity().is_some_and(|(iss, sub, _)| {
                sub.is_some_and(|sub| p.iter().any(|&i| string_match(REQUEST_PRINCIPALS[i], &format!("{iss}/{sub}"))))
            }),
            Leaf::EnvHeader(values) => ENVS[r.env]
                .and_then(|v| std::str::from_utf8(v).ok())
                .is_some_and(|v| values.iter().any(|p| string_match(p, v))),
            Leaf::EnvPresent(wanted) => ENVS[r.env].is_some() == *wanted,
            Leaf::Scopes { all, scopes } => r.identity().is_some_and(|(_, _, granted)| {
                let has = |&i: &usize| granted.split(' ').any(|g| g == SCOPES[i]);
                if *all { scopes.iter().all(has) } else { scopes.iter().any(has) }
            }),
            Leaf::Authenticated(wanted) => r.identity().is_some() == *wanted,
            Leaf::PeerWithin(prefix) => r.principal().is_some_and(|p| {
                let Some(path) = p.strip_prefix("cluster.local") else { return false };
                prefix.is_empty() || path == *prefix || path.starts_with(&format!("{prefix}/"))
            }),
            Leaf::Window(start, end) => {
                let m = r.minute_of_day();
                if start < end { (*start..*end).contains(&m) } else { m >= *start || m < *end }
            }
        }
    }

    fn names(list: &[usize], table: &[&str]) -> Value {
        json!(list.iter().map(|&i| table[i]).collect::<Vec<_>>())
    }

    fn blocks(list: &[usize]) -> Value {
        json!(list.iter().map(|&i| BLOCKS[i].0).collect::<Vec<_>>())
    }

    /// The leaf as a `when` condition object, `None` for the leaves only `to`/`from` can say.
    fn condition(&self) -> Option<Value> {
        let hhmm = |m: u64| format!("{:02}:{:02}", m / 60, m % 60);
        Some(match self {
            Leaf::Methods(_)
            | Leaf::Paths(_)
            | Leaf::IpBlocks(_)
            | Leaf::Namespaces(_)
            | Leaf::RequestPrincipals(_) => {
                return None;
            }
            Leaf::Principals(p) => json!({"key": "source.principal", "values": Self::names(p, &PRINCIPALS)}),
            Leaf::EnvHeader(values) => json!({"key": "request.headers[x-env]", "values": values}),
            Leaf::EnvPresent(present) => json!({"header": {"name": "x-env", "present": present}}),
            Leaf::Scopes { all, scopes } => {
                json!({"scopes": {if *all { "all_of" } else { "any_of" }: Self::names(scopes, &SCOPES)}})
            }
            Leaf::Authenticated(wanted) => json!({"authenticated": wanted}),
            Leaf::PeerWithin("") => json!({"peer": {"trust_domain": "cluster.local"}}),
            Leaf::PeerWithin(prefix) => json!({"peer": {"trust_domain": "cluster.local", "path_prefix": prefix}}),
            Leaf::Window(start, end) => json!({"time_window": {"start": hhmm(*start), "end": hhmm(*end)}}),
            Leaf::SourceIp(b) => json!({"source_ip": Self::blocks(b)}),
        })
    }
}

/// A `when` condition: a leaf, or `all`/`any`/`not` over conditions.
#[derive(Debug, Clone)]
enum Cond {
    Leaf(Leaf),
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
}

impl Cond {
    fn strategy() -> impl Strategy<Value = Cond> {
        let leaf = Leaf::strategy().prop_filter_map("a condition object", |l| l.condition().map(|_| Cond::Leaf(l)));
        leaf.prop_recursive(3, 12, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 1..3).prop_map(Cond::All),
                prop::collection::vec(inner.clone(), 1..3).prop_map(Cond::Any),
                inner.prop_map(|c| Cond::Not(Box::new(c))),
            ]
        })
    }

    /// Whether the condition reads the source address.
    fn reads_source(&self) -> bool {
        match self {
            Cond::Leaf(l) => matches!(l, Leaf::IpBlocks(_) | Leaf::SourceIp(_)),
            Cond::All(list) | Cond::Any(list) => list.iter().any(Cond::reads_source),
            Cond::Not(c) => c.reads_source(),
        }
    }

    fn holds(&self, r: &Req) -> bool {
        match self {
            Cond::Leaf(l) => l.holds(r),
            Cond::All(all) => all.iter().all(|c| c.holds(r)),
            Cond::Any(any) => any.iter().any(|c| c.holds(r)),
            Cond::Not(c) => !c.holds(r),
        }
    }

    fn json(&self) -> Value {
        match self {
            Cond::Leaf(l) => l.condition().unwrap(),
            Cond::All(all) => json!({"all": all.iter().map(Cond::json).collect::<Vec<_>>()}),
            Cond::Any(any) => json!({"any": any.iter().map(Cond::json).collect::<Vec<_>>()}),
            Cond::Not(c) => json!({"not": c.json()}),
        }
    }
}

/// One Istio operation or source field: the leaf, and whether it is the `notX` form.
type Field = Option<(Vec<usize>, bool)>;

fn field() -> impl Strategy<Value = Field> {
    prop::option::weighted(0.4, (prop::collection::vec(0usize..8, 1..3), any::<bool>()))
}

/// Istio's `Operation` (methods, paths) or `Source` (ipBlocks, principals, namespaces,
/// requestPrincipals): each field present or not, plain or negated.
#[derive(Debug, Clone)]
struct Entry {
    fields: Vec<Field>,
}

const OPERATION: [(&str, &str); 2] = [("methods", "notMethods"), ("paths", "notPaths")];
const SOURCE: [(&str, &str); 4] = [
    ("ipBlocks", "notIpBlocks"),
    ("principals", "notPrincipals"),
    ("namespaces", "notNamespaces"),
    ("requestPrincipals", "notRequestPrincipals"),
];

impl Entry {
    fn strategy(n: usize) -> impl Strategy<Value = Entry> {
        prop::collection::vec(field(), n).prop_map(|fields| Entry { fields })
    }

    /// The leaf of field `i` of an operation (`source: false`) or a source entry.
    fn leaf(source: bool, i: usize, values: &[usize]) -> Leaf {
        let within = |n: usize| values.iter().map(|v| v % n).collect::<Vec<_>>();
        match (source, i) {
            (false, 0) => Leaf::Methods(within(METHODS.len())),
            (false, _) => Leaf::Paths(within(PATH_PATTERNS.len())),
            (true, 0) => Leaf::IpBlocks(within(BLOCKS.len())),
            (true, 1) => Leaf::Principals(within(PRINCIPALS.len())),
            (true, 2) => Leaf::Namespaces(within(NAMESPACES.len())),
            (true, _) => Leaf::RequestPrincipals(within(REQUEST_PRINCIPALS.len())),
        }
    }

    fn holds(&self, source: bool, r: &Req) -> bool {
        self.fields.iter().enumerate().all(|(i, f)| match f {
            None => true,
            Some((values, negated)) => Self::leaf(source, i, values).holds(r) != *negated,
        })
    }

    fn json(&self, source: bool) -> Value {
        let names: &[(&str, &str)] = if source { &SOURCE } else { &OPERATION };
        let mut object = Map::new();
        for (i, f) in self.fields.iter().enumerate() {
            let Some((values, negated)) = f else { continue };
            let name = if *negated { names[i].1 } else { names[i].0 };
            let values = match Self::leaf(source, i, values) {
                Leaf::Methods(v) => Leaf::names(&v, &METHODS),
                Leaf::Paths(v) => Leaf::names(&v, &PATH_PATTERNS),
                Leaf::IpBlocks(v) => Leaf::blocks(&v),
                Leaf::Principals(v) => Leaf::names(&v, &PRINCIPALS),
                Leaf::Namespaces(v) => Leaf::names(&v, &NAMESPACES),
                Leaf::RequestPrincipals(v) => Leaf::names(&v, &REQUEST_PRINCIPALS),
                other => unreachable!("{other:?}"),
            };
            object.insert(name.to_owned(), values);
        }
        Value::Object(object)
    }
}

/// Istio's rule: some `to` entry, some `from` entry and every `when` condition hold.
#[derive(Debug, Clone)]
struct Rule {
    to: Option<Vec<Entry>>,
    from: Option<Vec<Entry>>,
    when: Option<Vec<Cond>>,
}

impl Rule {
    fn strategy() -> impl Strategy<Value = Rule> {
        (
            prop::option::of(prop::collection::vec(Entry::strategy(OPERATION.len()), 1..3)),
            prop::option::of(prop::collection::vec(Entry::strategy(SOURCE.len()), 1..3)),
            prop::option::of(prop::collection::vec(Cond::strategy(), 1..3)),
        )
            .prop_map(|(to, from, when)| Rule { to, from, when })
    }

    fn holds(&self, r: &Req) -> bool {
        self.to.as_ref().is_none_or(|to| to.iter().any(|e| e.holds(false, r)))
            && self.from.as_ref().is_none_or(|from| from.iter().any(|e| e.holds(true, r)))
            && self.when.as_ref().is_none_or(|when| when.iter().all(|c| c.holds(r)))
    }

    fn json(&self) -> Value {
        let mut object = Map::new();
        if let Some(to) = &self.to {
            object
                .insert("to".into(), json!(to.iter().map(|e| json!({"operation": e.json(false)})).collect::<Vec<_>>()));
        }
        if let Some(from) = &self.from {
            object
                .insert("from".into(), json!(from.iter().map(|e| json!({"source": e.json(true)})).collect::<Vec<_>>()));
        }
        if let Some(when) = &self.when {
            object.insert("when".into(), json!(when.iter().map(Cond::json).collect::<Vec<_>>()));
        }
        Value::Object(object)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Allow,
    Deny,
    Audit,
}

#[derive(Debug, Clone)]
struct PolicyModel {
    action: Action,
    advisory: bool,
    rules: Vec<Rule>,
}

impl PolicyModel {
    fn strategy() -> impl Strategy<Value = PolicyModel> {
        (
            prop_oneof![3 => Just(Action::Allow), 2 => Just(Action::Deny), 1 => Just(Action::Audit)],
            prop::bool::weighted(0.2),
            prop::collection::vec(Rule::strategy(), 1..3),
        )
            .prop_map(|(action, advisory, rules)| PolicyModel { action, advisory, rules })
    }

    fn matches(&self, r: &Req) -> bool {
        self.rules.iter().any(|rule| rule.holds(r))
    }

    /// Whether some rule reads the source address (`ipBlocks`, `notIpBlocks`, `source_ip`).
    fn reads_source(&self) -> bool {
        self.rules.iter().any(|rule| {
            rule.from.iter().flatten().any(|entry| entry.fields.first().is_some_and(Option::is_some))
                || rule.when.iter().flatten().any(Cond::reads_source)
        })
    }
}

/// A whole configuration: every policy in `defaults`, in order; optionally a route rule for
/// Envoy route `r1` with its own policies (by index) and no inherited defaults.
#[derive(Debug, Clone)]
struct Model {
    policies: Vec<PolicyModel>,
    route: Option<Vec<usize>>,
    advisory: bool,
}

fn id(i: usize) -> String {
    format!("p{i}")
}

impl Model {
    fn strategy() -> impl Strategy<Value = Model> {
        (prop::collection::vec(PolicyModel::strategy(), 1..5), any::<bool>(), prop::bool::weighted(0.15))
            .prop_flat_map(|(policies, routed, advisory)| {
                let n = policies.len();
                let route = if routed {
                    prop::sample::subsequence((0..n).collect::<Vec<_>>(), 1..=n).prop_map(Some).boxed()
                } else {
                    Just(None).boxed()
                };
                (Just(policies), route, Just(advisory))
            })
            .prop_map(|(policies, route, advisory)| Model { policies, route, advisory })
    }

    fn json(&self) -> Value {
        let policies: Map<String, Value> = self
            .policies
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let action = match p.action {
                    Action::Allow => "ALLOW",
                    Action::Deny => "DENY",
                    Action::Audit => "AUDIT",
                };
                let rules: Vec<Value> = p.rules.iter().map(Rule::json).collect();
                (id(i), json!({"action": action, "advisory": p.advisory, "rules": rules}))
            })
            .collect();
        let ids: Vec<String> = (0..self.policies.len()).map(id).collect();
        let routes = match &self.route {
            Some(route) => json!([{"name": "r1", "route_names": ["r1"], "inherit_defaults": false,
                "policies": route.iter().map(|&i| id(i)).collect::<Vec<_>>()}]),
            None => json!([]),
        };
        json!({"advisory": self.advisory, "policies": policies, "defaults": {"policies": ids}, "routes": routes})
    }

    fn in_effect(&self, r: &Req) -> Vec<usize> {
        match (&self.route, r.on_route) {
            (Some(route), true) => route.clone(),
            _ => (0..self.policies.len()).collect(),
        }
    }

    /// The verdict by Istio's combination as `decide.rs` documents it, and the ALLOW policies
    /// that match.
    fn expected(&self, r: &Req) -> (Verdict, Vec<String>) {
        let effect: Vec<(usize, &PolicyModel)> =
            self.in_effect(r).into_iter().map(|i| (i, &self.policies[i])).collect();
        let matching = |action: Action, advisory: bool| {
            effect.iter().any(|(_, p)| p.action == action && p.advisory == advisory && p.matches(r))
        };
        let exists =
            |action: Action, advisory: bool| effect.iter().any(|(_, p)| p.action == action && p.advisory == advisory);
        let allows =
            effect.iter().filter(|(_, p)| p.action == Action::Allow && p.matches(r)).map(|(i, _)| id(*i)).collect();
        // A policy in effect reads an address the request lacks: refused unevaluated, since a
        // missing address would be outside every `notIpBlocks` range.
        // An enforced DENY that matches denies too.
        let unknown_source = r.source().is_none() && effect.iter().any(|(_, p)| p.reads_source());
        let verdict = if unknown_source || matching(Action::Deny, false) {
            Verdict::Deny
        } else if matching(Action::Allow, false) {
            if matching(Action::Deny, true) { Verdict::AdvisoryDeny } else { Verdict::Allow }
        } else if exists(Action::Allow, false) {
            Verdict::Deny
        } else if exists(Action::Allow, true) {
            if matching(Action::Deny, true) {
                Verdict::AdvisoryDeny
            } else if matching(Action::Allow, true) {
                Verdict::Allow
            } else {
                Verdict::AdvisoryDeny
            }
        } else {
            Verdict::Deny
        };
        let verdict = if self.advisory && verdict == Verdict::Deny { Verdict::AdvisoryDeny } else { verdict };
        (verdict, allows)
    }
}

fn identity(r: &Req) -> Option<Identity> {
    r.identity().map(|(iss, sub, scope)| {
        let mut claims = Map::new();
        claims.insert("iss".into(), json!(iss));
        if let Some(sub) = sub {
            claims.insert("sub".into(), json!(sub));
        }
        claims.insert("scope".into(), json!(scope));
        Identity::from_claims("p", claims)
    })
}

fn authorize(config: &AuthzConfig, r: &Req) -> zt_core::authz::Decision {
    let headers: Vec<(String, Vec<u8>)> = ENVS[r.env].map(|v| ("x-env".to_owned(), v.to_vec())).into_iter().collect();
    let identity = identity(r);
    let mut facts = RequestFacts::new(METHODS[r.method], PATHS[r.path], UnixSeconds(r.now));
    facts.route_name = r.on_route.then_some("r1");
    facts.headers = &headers;
    facts.source = r.source().map(|s| s.parse::<IpAddr>().unwrap());
    facts.peer_uri_san = SANS[r.san];
    facts.identity = identity.as_ref();
    config.authorize(&facts)
}

/// Arbitrary JSON values, nested a few levels, with the configuration's own member names
/// mixed in so that the parser gets past its first checks.
fn any_json() -> impl Strategy<Value = Value> {
    let names = prop_oneof![
        Just("policies".to_owned()),
        Just("defaults".to_owned()),
        Just("routes".to_owned()),
        Just("action".to_owned()),
        Just("rules".to_owned()),
        Just("when".to_owned()),
        Just("from".to_owned()),
        Just("to".to_owned()),
        Just("key".to_owned()),
        Just("values".to_owned()),
        "[a-z_]{0,10}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        prop_oneof![Just("ALLOW".to_owned()), Just("*".to_owned()), Just("10.0.0.0/8".to_owned()), ".{0,12}"]
            .prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((names.clone(), inner), 0..5).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A configuration using every kind of condition, for requests of arbitrary content.
const RICH: &str = r#"{
  "scope_claim": "perms",
  "environment": "prod",
  "policies": {
    "deny-admin": {"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin/*"], "notMethods": ["GET"]}}]}]},
    "audit": {"action": "AUDIT", "rules": [{"when": [{"key": "request.auth.claims[org][id]", "values": ["1*"]}]}]},
    "allow": {"action": "ALLOW", "rules": [
      {"from": [{"source": {"ipBlocks": ["10.0.0.0/8", "::1"], "principals": ["cluster.local/*"]}}],
       "to": [{"operation": {"hosts": ["api.example.com"], "paths": ["/v1/{*}/items/{**}"]}}]},
      {"when": [{"all": [{"scopes": {"any_of": ["read"]}}, {"claim": {"path": "level", "gte": 3}}]},
                {"any": [{"header": {"name": "x-env", "prefix": "pr"}}, {"not": {"time_window": {"start": "22:00", "end": "06:00"}}}]},
                {"environment": {"claim": "env"}},
                {"peer": {"trust_domain": "cluster.local", "path_prefix": "/ns/shop"}},
                {"key": "request.auth.principal", "values": ["https://a/*"]}]}]}
  },
  "defaults": {"policies": ["deny-admin", "audit", "allow"]},
  "routes": [{"name": "r1", "route_names": ["r1"], "match": {"path": {"prefix": "/v1"}}, "policies": []}]
}"#;

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn verdicts_agree_with_an_independent_reading_of_the_policies(model in Model::strategy(), requests in prop::collection::vec(Req::strategy(), 1..8)) {
        let text = model.json().to_string();
        let config = AuthzConfig::from_json(text.as_bytes())
            .map_err(|e| TestCaseError::fail(format!("generated configuration refused: {e}\n{text}")))?;
        for r in &requests {
            let decision = authorize(&config, r);
            let (expected, allows) = model.expected(r);
            // The property of the issue, stated on its own: allow only through a matching ALLOW.
            if decision.verdict == Verdict::Allow {
                prop_assert!(allows.contains(&decision.policy), "allowed by {} which does not match {r:?}\n{text}", decision.policy);
            }
            prop_assert_eq!(decision.verdict, expected, "request {:?}\n{}", r, text);
        }
    }

    #[test]
    fn a_configuration_no_allow_can_match_denies_everything(model in Model::strategy(), r in Req::strategy()) {
        // Every ALLOW rule gets a `when` no request meets: nothing may be allowed, whatever
        // else the configuration says.
        let mut model = model;
        for policy in model.policies.iter_mut().filter(|p| p.action == Action::Allow) {
            for rule in &mut policy.rules {
                let never = Cond::All(vec![Cond::Leaf(Leaf::Authenticated(true)), Cond::Leaf(Leaf::Authenticated(false))]);
                rule.when.get_or_insert_with(Vec::new).push(never);
            }
        }
        let config = AuthzConfig::from_json(model.json().to_string().as_bytes()).unwrap();
        prop_assert_ne!(authorize(&config, &r).verdict, Verdict::Allow);
    }

    #[test]
    fn arbitrary_configuration_bytes_never_panic(bytes in any::<Vec<u8>>()) {
        let _ = AuthzConfig::from_json(&bytes);
    }

    #[test]
    fn arbitrary_configuration_json_never_panics(value in any_json()) {
        let _ = AuthzConfig::from_json(value.to_string().as_bytes());
        let _ = AuthzConfig::from_json(json!({"policies": {"p": value}, "defaults": {"policies": ["p"]}}).to_string().as_bytes());
        let _ = AuthzConfig::from_json(json!({"policies": {"p": {"action": "ALLOW", "rules": [{"when": [value]}]}},
            "defaults": {"policies": ["p"]}}).to_string().as_bytes());
    }

    #[test]
    fn arbitrary_request_facts_never_panic(
        method in ".{0,8}",
        path in "(/[a-z0-9%.{}*]{0,6}){0,4}(\\?.{0,8})?|.{0,20}",
        authority in prop::option::of(".{0,20}"),
        headers in prop::collection::vec(("[a-z-]{1,8}", any::<Vec<u8>>()), 0..4),
        source in prop::option::of(any::<IpAddr>()),
        san in prop::option::of("spiffe://[a-z.]{0,10}(/[a-z]{0,4}){0,5}|.{0,20}"),
        claims in prop::collection::vec(("[a-z]{1,6}", any_json()), 0..4),
        now in any::<u64>(),
        route_name in prop::option::of(prop_oneof![Just("r1".to_owned()), ".{0,4}"]),
        route_choice in prop::option::of(prop_oneof![Just("r1".to_owned()), ".{0,4}"]),
    ) {
        let config = AuthzConfig::from_json(RICH.as_bytes()).unwrap();
        let identity = (!claims.is_empty()).then(|| Identity::from_claims("p", claims.into_iter().collect()));
        let mut facts = RequestFacts::new(&method, &path, UnixSeconds(now));
        facts.route_name = route_name.as_deref();
        facts.route_choice = route_choice.as_deref();
        facts.authority = authority.as_deref();
        facts.headers = &headers;
        facts.source = source;
        facts.peer_uri_san = san.as_deref();
        facts.identity = identity.as_ref();
        let decision = config.authorize(&facts);
        // Only the one ALLOW policy can allow.
        prop_assert!(decision.verdict != Verdict::Allow || decision.policy == "allow");
        let _ = zt_core::authz::denial(&decision, config.realm());
    }
}
