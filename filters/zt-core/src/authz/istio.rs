//! Istio's `AuthorizationPolicy` rule vocabulary (`from.source`, `to.operation`, `when` keys)
//! compiled into [`Condition`] leaves, with Istio's semantics: within a rule `from`, `to` and
//! `when` are ANDed; the entries of `from` (or `to`) are ORed; the fields of one `source` (or
//! `operation`) are ANDed; the values of one field are ORed; `notX` holds when none matches.
//! See <https://istio.io/latest/docs/reference/config/security/authorization-policy/>.

use super::cidr::Cidr;
use super::compile::{Context, condition, err};
use super::condition::{ClaimTest, Condition, HeaderTest};
use super::config::{OperationJson, RuleJson, SourceJson};
use super::matchers::{HostMatch, StringMatch, parse_header_name, parse_method};
use super::path::PathMatch;
use crate::config_error::ConfigError;
use crate::routes::list;

/// One rule of a policy.
pub(crate) fn rule(json: &RuleJson, path: &str, context: &Context<'_>) -> Result<Condition, ConfigError> {
    let mut all = Vec::new();
    // An empty list is refused rather than read as Istio reads it ("no constraint"): written
    // out, `from: []` looks like "from nobody", the opposite.
    if let Some(from) = &json.from {
        if from.is_empty() {
            return Err(err(format!("{path}.from"), "must not be empty (omit it for any source)"));
        }
        let sources = from.iter().enumerate().map(|(i, f)| source(&f.source, &format!("{path}.from[{i}].source")));
        all.push(any(sources.collect::<Result<_, _>>()?));
    }
    if let Some(to) = &json.to {
        if to.is_empty() {
            return Err(err(format!("{path}.to"), "must not be empty (omit it for any operation)"));
        }
        let operations =
            to.iter().enumerate().map(|(i, t)| operation(&t.operation, &format!("{path}.to[{i}].operation")));
        all.push(any(operations.collect::<Result<_, _>>()?));
    }
    if let Some(when) = &json.when {
        if when.is_empty() {
            return Err(err(format!("{path}.when"), "must not be empty (omit it for no condition)"));
        }
        for (i, c) in when.iter().enumerate() {
            all.push(condition(c, &format!("{path}.when[{i}]"), context)?);
        }
    }
    Ok(and(all))
}

fn source(json: &SourceJson, path: &str) -> Result<Condition, ConfigError> {
    let (peer, request, namespace) = (
        Leaf::Strings(Condition::PeerPrincipal),
        Leaf::Strings(Condition::RequestPrincipal),
        Leaf::Strings(Condition::PeerNamespace),
    );
    let mut all = Vec::new();
    let mut field = |values: &Option<Vec<String>>, name: &str, negate: bool, leaf: &Leaf| {
        push_field(&mut all, values.as_deref(), &format!("{path}.{name}"), negate, leaf)
    };
    field(&json.principals, "principals", false, &peer)?;
    field(&json.not_principals, "notPrincipals", true, &peer)?;
    field(&json.request_principals, "requestPrincipals", false, &request)?;
    field(&json.not_request_principals, "notRequestPrincipals", true, &request)?;
    field(&json.namespaces, "namespaces", false, &namespace)?;
    field(&json.not_namespaces, "notNamespaces", true, &namespace)?;
    field(&json.ip_blocks, "ipBlocks", false, &Leaf::Cidrs)?;
    field(&json.not_ip_blocks, "notIpBlocks", true, &Leaf::Cidrs)?;
    field(&json.remote_ip_blocks, "remoteIpBlocks", false, &Leaf::RemoteCidrs)?;
    field(&json.not_remote_ip_blocks, "notRemoteIpBlocks", true, &Leaf::RemoteCidrs)?;
    Ok(and(all))
}

fn operation(json: &OperationJson, path: &str) -> Result<Condition, ConfigError> {
    let mut all = Vec::new();
    let mut field = |values: &Option<Vec<String>>, name: &str, negate: bool, leaf: &Leaf| {
        push_field(&mut all, values.as_deref(), &format!("{path}.{name}"), negate, leaf)
    };
    field(&json.hosts, "hosts", false, &Leaf::Hosts)?;
    field(&json.not_hosts, "notHosts", true, &Leaf::Hosts)?;
    field(&json.methods, "methods", false, &Leaf::Methods)?;
    field(&json.not_methods, "notMethods", true, &Leaf::Methods)?;
    field(&json.paths, "paths", false, &Leaf::Paths)?;
    field(&json.not_paths, "notPaths", true, &Leaf::Paths)?;
    Ok(and(all))
}

/// How the values of one Istio field become a leaf.
enum Leaf {
    /// Istio string matching, then this leaf.
    Strings(fn(Vec<StringMatch>) -> Condition),
    /// The direct peer's address.
    Cidrs,
    /// The remote (client) address.
    RemoteCidrs,
    Hosts,
    Methods,
    Paths,
    Claim(Vec<String>),
    Header(String),
}

impl Leaf {
    fn build(&self, values: &[String], path: &str) -> Result<Condition, ConfigError> {
        Ok(match self {
            Self::Strings(leaf) => leaf(list(values, path, StringMatch::parse)?),
            Self::Cidrs => Condition::SourceIp(list(values, path, Cidr::parse)?),
            Self::RemoteCidrs => Condition::RemoteIp(list(values, path, Cidr::parse)?),
            Self::Hosts => Condition::Host(list(values, path, HostMatch::parse)?),
            Self::Methods => Condition::Method(list(values, path, parse_method)?),
            Self::Paths => Condition::Path(list(values, path, PathMatch::parse)?),
            Self::Claim(claim) => Condition::Claim {
                path: claim.clone(),
                test: ClaimTest::Istio(list(values, path, StringMatch::parse)?),
            },
            Self::Header(name) => Condition::Header {
                name: name.clone(),
                test: HeaderTest::Istio(list(values, path, StringMatch::parse)?),
            },
        })
    }
}

fn push_field(
    all: &mut Vec<Condition>,
    values: Option<&[String]>,
    path: &str,
    negate: bool,
    leaf: &Leaf,
) -> Result<(), ConfigError> {
    let Some(values) = values else { return Ok(()) };
    let condition = leaf.build(values, path)?;
    all.push(if negate { Condition::Not(Box::new(condition)) } else { condition });
    Ok(())
}

/// The `when` keys supported, Istio's names.
const KEYS: &str = "request.auth.claims[...], request.auth.principal, request.auth.audiences, \
                    request.auth.presenter, request.headers[...], source.ip, remote.ip, source.principal, source.namespace";

/// Istio's `{"key", "values", "notValues"}`.
pub(crate) fn when(
    key: &str,
    values: Option<&[String]>,
    not_values: Option<&[String]>,
    path: &str,
) -> Result<Condition, ConfigError> {
    let leaf = parse_key(key).map_err(|why| err(format!("{path}.key"), why))?;
    if values.is_none() && not_values.is_none() {
        return Err(err(path, "needs `values` or `notValues`"));
    }
    let mut all = Vec::new();
    push_field(&mut all, values, &format!("{path}.values"), false, &leaf)?;
    push_field(&mut all, not_values, &format!("{path}.notValues"), true, &leaf)?;
    Ok(and(all))
}

fn parse_key(key: &str) -> Result<Leaf, String> {
    let unknown = || format!("unknown key \"{key}\"; supported: {KEYS}");
    Ok(match key {
        "request.auth.principal" => Leaf::Strings(Condition::RequestPrincipal),
        "request.auth.audiences" => Leaf::Strings(Condition::Audience),
        // OpenID Connect Core §2: `azp`, the party the token was issued to.
        "request.auth.presenter" => Leaf::Claim(vec!["azp".to_owned()]),
        "source.ip" => Leaf::Cidrs,
        "remote.ip" => Leaf::RemoteCidrs,
        "source.principal" => Leaf::Strings(Condition::PeerPrincipal),
        "source.namespace" => Leaf::Strings(Condition::PeerNamespace),
        _ => {
            if let Some(brackets) = key.strip_prefix("request.auth.claims") {
                Leaf::Claim(bracketed(brackets).ok_or_else(unknown)?)
            } else if let Some(brackets) = key.strip_prefix("request.headers") {
                let names = bracketed(brackets).ok_or_else(unknown)?;
                let [name] = names.as_slice() else { return Err(format!("\"{key}\" must name one header")) };
                Leaf::Header(parse_header_name(name)?)
            } else {
                return Err(unknown());
            }
        }
    })
}

/// `[a][b]` → `["a", "b"]`: at least one non-empty name, nothing around the brackets.
fn bracketed(mut text: &str) -> Option<Vec<String>> {
    let mut names = Vec::new();
    while !text.is_empty() {
        let (name, rest) = text.strip_prefix('[')?.split_once(']')?;
        if name.is_empty() || name.contains('[') {
            return None;
        }
        names.push(name.to_owned());
        text = rest;
    }
    (!names.is_empty()).then_some(names)
}

fn and(mut all: Vec<Condition>) -> Condition {
    if all.len() == 1
        && let Some(only) = all.pop()
    {
        return only;
    }
    Condition::All(all)
}

fn any(mut list: Vec<Condition>) -> Condition {
    if list.len() == 1
        && let Some(only) = list.pop()
    {
        return only;
    }
    Condition::Any(list)
}
