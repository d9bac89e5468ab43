//! From the operator's JSON to the checked [`AuthzConfig`]: every value parsed once, every
//! reference resolved, every error naming its JSON path
//! (`policies.orders-read.rules[0].when[1].claim: needs exactly one operator`). Nothing bad is
//! dropped silently; nothing here runs per request.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::cidr::Cidr;
use super::condition::{ClaimTest, Condition, HeaderTest, PeerPath, Request, ScopeTest, Scopes};
use super::condition_json::{ClaimJson, ClaimPathJson, ConditionJson, HeaderJson, PeerJson, ScopesJson};
use super::config::{Action, AuthzConfigJson, PolicyJson};
use super::matchers::parse_header_name;
use super::time_window::TimeWindow;
use super::{DEFAULT_DENY, Inputs, istio};
use crate::config_error::ConfigError;
use crate::identity_source::{self, IdentitySource};
use crate::routes::{RouteSpec, RouteTable, check_name, list};
use crate::spiffe::{SpiffeId, check_path_prefix, check_trust_domain};

/// The validated configuration of the authorization filter.
#[derive(Debug, Clone)]
pub struct AuthzConfig {
    pub(crate) realm: String,
    pub(crate) environment: Option<String>,
    pub(crate) advisory: bool,
    pub(crate) scope_claim: Option<Vec<String>>,
    pub(crate) policies: Vec<Policy>,
    /// Indices into `policies`; `None` when the configuration has no `defaults`.
    pub(crate) defaults: Option<Vec<usize>>,
    pub(crate) routes: RouteTable,
    pub(crate) inputs: Inputs,
    /// Where the caller comes from ([`crate::identity_source`]).
    pub(crate) identity_source: IdentitySource,
    pub(crate) latency_histogram: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Policy {
    pub(crate) id: String,
    pub(crate) action: Action,
    pub(crate) advisory: bool,
    /// One condition per Istio rule; the policy matches when any holds.
    pub(crate) rules: Vec<Condition>,
    pub(crate) reads_identity: bool,
    /// Which request facts its rules read (the addresses, to refuse when one is unknown).
    pub(crate) inputs: Inputs,
}

impl AuthzConfig {
    /// Parses and validates the plugin configuration bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        compile(ConfigError::parse_json::<AuthzConfigJson>(bytes)?)
    }

    /// Where the verified caller comes from: zt-jwt's filter state or `jwt_authn`'s metadata.
    pub fn identity_source(&self) -> &IdentitySource {
        &self.identity_source
    }

    /// Whether the stage's time per request goes to its latency histogram.
    pub fn latency_histogram(&self) -> bool {
        self.latency_histogram
    }

    /// Realm for `WWW-Authenticate`, to hand to [`super::denial`].
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The filter instance's `environment` label, if configured.
    pub fn environment(&self) -> Option<&str> {
        self.environment.as_deref()
    }

    /// Whether the whole filter runs as a dry run (`advisory: true`).
    pub fn advisory(&self) -> bool {
        self.advisory
    }

    /// Which request facts any policy or route rule reads: the adapter skips the host calls for
    /// the others and leaves them `None`.
    pub fn inputs(&self) -> Inputs {
        self.inputs
    }
}

impl Policy {
    pub(crate) fn matches(&self, request: &Request<'_>, scopes: Scopes) -> bool {
        self.rules.iter().any(|rule| rule.eval(request, scopes))
    }
}

/// What compiling a condition may depend on beyond the condition itself.
pub(crate) struct Context<'a> {
    pub(crate) environment: Option<&'a str>,
}

pub(crate) fn err(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::new(path, message)
}

fn compile(json: AuthzConfigJson) -> Result<AuthzConfig, ConfigError> {
    // The realm is sent inside a quoted string of `WWW-Authenticate` (RFC 6750 §3).
    if json.realm.is_empty() || !json.realm.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\') {
        return Err(err("realm", "must be non-empty printable ASCII without `\"` or `\\`"));
    }
    if json.environment.as_deref().is_some_and(str::is_empty) {
        return Err(err("environment", "must not be empty (omit it for none)"));
    }
    let scope_claim = json.scope_claim.as_ref().map(|claim| claim_path(claim, "scope_claim")).transpose()?;
    let context = Context { environment: json.environment.as_deref() };
    let mut policies = Vec::with_capacity(json.policies.len());
    let mut index = BTreeMap::new();
    for (id, policy_json) in &json.policies {
        let path = format!("policies.{id}");
        check_name(id).map_err(|why| err(&path, why))?;
        if id == DEFAULT_DENY {
            return Err(err(
                path,
                format!("`{DEFAULT_DENY}` is reserved for the decision taken when no policy allows"),
            ));
        }
        index.insert(id.as_str(), policies.len());
        policies.push(policy(id, policy_json, &path, &context)?);
    }
    let defaults = match &json.defaults {
        Some(defaults) if defaults.policies.is_empty() => {
            return Err(err("defaults.policies", "must not be empty (omit `defaults` for none)"));
        }
        Some(defaults) => Some(resolve_policies(&defaults.policies, &[], &index, "defaults.policies")?),
        None => None,
    };
    let specs: Vec<RouteSpec<'_>> = json
        .routes
        .iter()
        .map(|r| RouteSpec {
            name: &r.name,
            route_names: r.route_names.as_deref(),
            matcher: r.matcher.as_ref(),
            items: &r.policies,
            inherit_defaults: r.inherit_defaults,
        })
        .collect();
    let routes = RouteTable::compile(&specs, "policies", defaults.as_deref(), |ids, inherited, path| {
        let effective = resolve_policies(ids, inherited, &index, path)?;
        if effective.is_empty() {
            return Err(err(
                path,
                "no policy is in effect: list one, or inherit `defaults` (a DENY policy with rules [{}] \
                 refuses every request)",
            ));
        }
        Ok(effective)
    })?;
    let mut used = vec![false; policies.len()];
    for i in defaults.iter().flatten().chain(routes.rules().flat_map(|rule| &rule.items)) {
        if let Some(slot) = used.get_mut(*i) {
            *slot = true;
        }
    }
    if let Some((id, _)) = index.iter().find(|(_, i)| !used.get(**i).copied().unwrap_or(false)) {
        return Err(err(format!("policies.{id}"), "is used by no route rule and not by `defaults` (a typo?)"));
    }
    let selection = routes.inputs();
    let mut inputs = Inputs { route_name: selection.route_name, authority: selection.authority, ..Inputs::default() };
    for rule in policies.iter().flat_map(|p| &p.rules) {
        rule.inputs(&mut inputs);
    }
    Ok(AuthzConfig {
        identity_source: identity_source::compile_field(json.identity_source)?,
        latency_histogram: json.latency_histogram,
        realm: json.realm,
        environment: json.environment,
        advisory: json.advisory,
        scope_claim,
        policies,
        defaults,
        routes,
        inputs,
    })
}

/// Policy ids to indices, refusing unknown ids and ids already in `inherited` or listed twice.
pub(crate) fn resolve_policies(
    ids: &[String],
    inherited: &[usize],
    index: &BTreeMap<&str, usize>,
    path: &str,
) -> Result<Vec<usize>, ConfigError> {
    let mut resolved = inherited.to_vec();
    for (i, id) in ids.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let policy = *index.get(id.as_str()).ok_or_else(|| err(&at, format!("no policy named `{id}`")))?;
        if resolved.contains(&policy) {
            return Err(err(at, format!("`{id}` is already in effect (listed twice, or inherited from `defaults`)")));
        }
        resolved.push(policy);
    }
    Ok(resolved)
}

fn policy(id: &str, json: &PolicyJson, path: &str, context: &Context<'_>) -> Result<Policy, ConfigError> {
    if json.rules.is_empty() {
        return Err(err(format!("{path}.rules"), "must not be empty (`[{}]` matches every request)"));
    }
    let rules = json
        .rules
        .iter()
        .enumerate()
        .map(|(i, rule)| istio::rule(rule, &format!("{path}.rules[{i}]"), context))
        .collect::<Result<Vec<_>, _>>()?;
    let reads_identity = rules.iter().any(Condition::reads_identity);
    let mut inputs = Inputs::default();
    rules.iter().for_each(|rule| rule.inputs(&mut inputs));
    Ok(Policy { id: id.to_owned(), action: json.action, advisory: json.advisory, rules, reads_identity, inputs })
}

fn non_empty(value: &str) -> Result<String, String> {
    if value.is_empty() { Err("must not be empty".to_owned()) } else { Ok(value.to_owned()) }
}

/// RFC 6749 §3.3 `scope-token`: printable ASCII without space, `"` or `\`, so that a scope can
/// be sent in the `scope` attribute of a challenge (RFC 6750 §3) as it is.
fn scope_token(value: &str) -> Result<String, String> {
    if value.is_empty() || !value.bytes().all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
    {
        return Err(format!("\"{value}\" is not a scope (RFC 6749 §3.3: printable ASCII, no space, `\"` or `\\`)"));
    }
    Ok(value.to_owned())
}

pub(crate) fn claim_path(json: &ClaimPathJson, path: &str) -> Result<Vec<String>, ConfigError> {
    let segments: Vec<String> = match json {
        ClaimPathJson::Dotted(dotted) => dotted.split('.').map(str::to_owned).collect(),
        ClaimPathJson::Segments(segments) => segments.clone(),
    };
    if segments.is_empty() || segments.iter().any(String::is_empty) {
        return Err(err(path, "needs non-empty member names (`org.team` or [\"org\", \"team\"])"));
    }
    Ok(segments)
}

/// Our condition objects; Istio's `{key, values}` goes to [`istio::when`].
pub(crate) fn condition(json: &ConditionJson, path: &str, context: &Context<'_>) -> Result<Condition, ConfigError> {
    let nested = |list: &[ConditionJson], name: &str| -> Result<Vec<Condition>, ConfigError> {
        if list.is_empty() {
            return Err(err(format!("{path}.{name}"), "must not be empty"));
        }
        list.iter().enumerate().map(|(i, c)| condition(c, &format!("{path}.{name}[{i}]"), context)).collect()
    };
    Ok(match json {
        ConditionJson::Istio { key, values, not_values } => {
            return istio::when(key, values.as_deref(), not_values.as_deref(), path);
        }
        ConditionJson::All(list) => Condition::All(nested(list, "all")?),
        ConditionJson::Any(list) => Condition::Any(nested(list, "any")?),
        ConditionJson::Not(inner) => Condition::Not(Box::new(condition(inner, &format!("{path}.not"), context)?)),
        ConditionJson::Scopes(scopes_json) => scopes(scopes_json, &format!("{path}.scopes"))?,
        ConditionJson::Claim(claim_json) => claim(claim_json, &format!("{path}.claim"))?,
        ConditionJson::Issuer(issuers) => Condition::Issuer(list(issuers, &format!("{path}.issuer"), non_empty)?),
        ConditionJson::Provider(names) => Condition::Provider(list(names, &format!("{path}.provider"), non_empty)?),
        ConditionJson::Peer(peer_json) => peer(peer_json, &format!("{path}.peer"))?,
        ConditionJson::SourceIp(ranges) => {
            Condition::SourceIp(list(ranges, &format!("{path}.source_ip"), Cidr::parse)?)
        }
        ConditionJson::RemoteIp(ranges) => {
            Condition::RemoteIp(list(ranges, &format!("{path}.remote_ip"), Cidr::parse)?)
        }
        ConditionJson::Header(header_json) => header(header_json, &format!("{path}.header"))?,
        ConditionJson::TimeWindow(window) => {
            let at = format!("{path}.time_window");
            let compiled = TimeWindow::new(window.days.as_deref(), &window.start, &window.end)
                .map_err(|(field, why)| err(format!("{at}.{field}"), why))?;
            Condition::TimeWindow(compiled)
        }
        ConditionJson::Environment(environment) => {
            let at = format!("{path}.environment");
            let label = context
                .environment
                .ok_or_else(|| err(&at, "needs the filter's `environment` label, which is not configured"))?;
            let claim = claim_path(&environment.claim, &format!("{at}.claim"))?;
            Condition::Claim { path: claim, test: ClaimTest::Is(label.to_owned()) }
        }
        ConditionJson::Authenticated(wanted) => Condition::Authenticated(*wanted),
    })
}

fn scopes(json: &ScopesJson, path: &str) -> Result<Condition, ConfigError> {
    let (scopes, all, field) = match (&json.all_of, &json.any_of) {
        (Some(scopes), None) => (scopes, true, "all_of"),
        (None, Some(scopes)) => (scopes, false, "any_of"),
        _ => return Err(err(path, "needs exactly one of `all_of` and `any_of`")),
    };
    Ok(Condition::Scopes(ScopeTest { scopes: list(scopes, &format!("{path}.{field}"), scope_token)?, all }))
}

fn claim(json: &ClaimJson, path: &str) -> Result<Condition, ConfigError> {
    let claim = claim_path(&json.path, &format!("{path}.path"))?;
    let not_null = |value: &serde_json::Value, at: String| {
        if value.is_null() { Err(err(at, "must not be null (use `exists`)")) } else { Ok(value.clone()) }
    };
    let compare = |ordering: Ordering, or_equal: bool, bound: f64| ClaimTest::Compare(ordering, or_equal, bound);
    let mut tests = Vec::new();
    if let Some(value) = &json.equals {
        tests.push(ClaimTest::Equals(not_null(value, format!("{path}.equals"))?));
    }
    if let Some(options) = &json.one_of {
        if options.is_empty() {
            return Err(err(format!("{path}.one_of"), "must not be empty"));
        }
        let checked = options.iter().enumerate().map(|(i, v)| not_null(v, format!("{path}.one_of[{i}]")));
        tests.push(ClaimTest::OneOf(checked.collect::<Result<_, _>>()?));
    }
    if let Some(prefix) = &json.prefix {
        tests.push(ClaimTest::Prefix(non_empty(prefix).map_err(|why| err(format!("{path}.prefix"), why))?));
    }
    if let Some(wanted) = json.exists {
        tests.push(ClaimTest::Exists(wanted));
    }
    tests.extend(json.gt.map(|n| compare(Ordering::Greater, false, n)));
    tests.extend(json.gte.map(|n| compare(Ordering::Greater, true, n)));
    tests.extend(json.lt.map(|n| compare(Ordering::Less, false, n)));
    tests.extend(json.lte.map(|n| compare(Ordering::Less, true, n)));
    if let Some(element) = &json.contains {
        tests.push(ClaimTest::Contains(not_null(element, format!("{path}.contains"))?));
    }
    match <[ClaimTest; 1]>::try_from(tests) {
        Ok([test]) => Ok(Condition::Claim { path: claim, test }),
        Err(_) => Err(err(
            path,
            "needs exactly one operator of `equals`, `one_of`, `prefix`, `exists`, `gt`, `gte`, `lt`, `lte`, `contains`",
        )),
    }
}

fn peer(json: &PeerJson, path: &str) -> Result<Condition, ConfigError> {
    if let Some(id) = &json.spiffe_id {
        if json.trust_domain.is_some() || json.path_prefix.is_some() {
            return Err(err(path, "`spiffe_id` excludes `trust_domain` and `path_prefix`"));
        }
        let parsed = SpiffeId::parse(id).map_err(|why| err(format!("{path}.spiffe_id"), format!("\"{id}\" {why}")))?;
        let path = PeerPath::Exact(parsed.path.to_owned());
        return Ok(Condition::Peer { trust_domain: parsed.trust_domain.to_owned(), path });
    }
    let trust_domain = json.trust_domain.as_deref().ok_or_else(|| err(path, "needs `spiffe_id` or `trust_domain`"))?;
    check_trust_domain(trust_domain)
        .map_err(|why| err(format!("{path}.trust_domain"), format!("\"{trust_domain}\" {why}")))?;
    let within = match &json.path_prefix {
        Some(prefix) => {
            check_path_prefix(prefix)
                .map_err(|why| err(format!("{path}.path_prefix"), format!("\"{prefix}\" {why}")))?;
            prefix.clone()
        }
        None => String::new(),
    };
    Ok(Condition::Peer { trust_domain: trust_domain.to_owned(), path: PeerPath::Within(within) })
}

fn header(json: &HeaderJson, path: &str) -> Result<Condition, ConfigError> {
    let name = parse_header_name(&json.name).map_err(|why| err(format!("{path}.name"), why))?;
    let test = match (&json.exact, &json.prefix, json.present) {
        (Some(exact), None, None) => HeaderTest::Exact(exact.as_bytes().to_vec()),
        (None, Some(prefix), None) => HeaderTest::Prefix(prefix.as_bytes().to_vec()),
        (None, None, Some(present)) => HeaderTest::Present(present),
        _ => return Err(err(path, "needs exactly one of `exact`, `prefix`, `present`")),
    };
    Ok(Condition::Header { name, test })
}
