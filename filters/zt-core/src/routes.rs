//! Which route rule, and so which policies (authorization) or limits (rate limit), apply to a
//! request: one selection shared by the filters, so that a route means the same to each. Envoy
//! gives a Wasm filter no per-route configuration, so a rule is selected by what Envoy does
//! expose, most explicit first:
//!
//! 1. route metadata (`filter_metadata.zt.<filter>_route`, e.g. `authz_route`) naming a rule:
//!    that rule; a name the configuration does not define is refused by the filter, never a
//!    fallback that could be weaker. The metadata is read in every configuration, also one
//!    without rules: a route naming a rule that is not there is a configuration fault whatever
//!    else is configured;
//! 2. the Envoy route name (`xds.route_name`), through a hash map;
//! 3. the rules' `match`, most specific first: ranked at configuration time by path kind
//!    (exact, then template, then prefix, then none), then literal length, then how many of
//!    `hosts` and `methods` constrain it, then declared order. Exact paths are looked up in a
//!    hash map, so neither lookup grows with the number of rules;
//! 4. none: the `defaults` alone.

use hashbrown::HashMap;
use serde::Deserialize;

use crate::authz::matchers::{HostMatch, parse_method};
use crate::authz::path::RoutePath;
use crate::config_error::ConfigError;

/// A route rule as a filter's configuration declares it; each filter's JSON names the list of
/// what it applies in its own words (`policies`, `limits`).
pub(crate) struct RouteSpec<'a> {
    pub(crate) name: &'a str,
    pub(crate) route_names: Option<&'a [String]>,
    pub(crate) matcher: Option<&'a RouteMatchJson>,
    pub(crate) items: &'a [String],
    pub(crate) inherit_defaults: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RouteMatchJson {
    /// Default any. `:authority` values (Istio host syntax, case-insensitive, port ignored
    /// unless given).
    #[serde(default)]
    pub(crate) hosts: Option<Vec<String>>,
    /// Default any path.
    #[serde(default)]
    pub(crate) path: Option<RoutePathJson>,
    /// Default any method. Exact, case-sensitive.
    #[serde(default)]
    pub(crate) methods: Option<Vec<String>>,
}

/// Exactly one of the three.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoutePathJson {
    #[serde(default)]
    pub(crate) exact: Option<String>,
    #[serde(default)]
    pub(crate) prefix: Option<String>,
    /// Envoy `uri_template` syntax: `/users/{id}/orders/{*}`, `{path=**}` last only.
    #[serde(default)]
    pub(crate) template: Option<String>,
}

/// What route selection reads of a request. `path` is without its query.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RouteRequest<'a> {
    pub(crate) path: &'a str,
    pub(crate) method: &'a str,
    pub(crate) authority: Option<&'a str>,
}

/// The request facts selection reads, so that adapters skip the other host calls. Route
/// metadata is not among them: every configuration reads it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RouteInputs {
    pub(crate) route_name: bool,
    pub(crate) authority: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct RouteRule {
    pub(crate) name: String,
    /// Indices of what the rule applies (policies, limits): inherited defaults first, then the
    /// rule's own.
    pub(crate) items: Vec<usize>,
    matcher: Option<RouteMatch>,
}

#[derive(Debug, Clone)]
struct RouteMatch {
    hosts: Option<Vec<HostMatch>>,
    methods: Option<Vec<String>>,
    path: Option<RoutePath>,
}

/// Specificity, compared field by field: higher is selected first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    /// 3 exact, 2 template, 1 prefix, 0 no path.
    path_kind: u8,
    literal_len: usize,
    constraints: u8,
}

impl RouteMatch {
    fn matches(&self, request: &RouteRequest<'_>) -> bool {
        self.path.as_ref().is_none_or(|p| p.matches(request.path)) && self.matches_besides_path(request)
    }

    fn matches_besides_path(&self, request: &RouteRequest<'_>) -> bool {
        self.methods.as_ref().is_none_or(|methods| methods.iter().any(|m| m == request.method))
            && self.hosts.as_ref().is_none_or(|hosts| {
                request.authority.is_some_and(|authority| hosts.iter().any(|h| h.matches(authority)))
            })
    }

    fn rank(&self) -> Rank {
        let (path_kind, literal_len) = self.path.as_ref().map_or((0, 0), RoutePath::rank);
        let constraints = u8::from(self.hosts.is_some()) + u8::from(self.methods.is_some());
        Rank { path_kind, literal_len, constraints }
    }

    /// Whether every request `other` matches, `self` matches too. Conservative.
    fn covers(&self, other: &Self) -> bool {
        let hosts = match (&self.hosts, &other.hosts) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(ours), Some(theirs)) => theirs.iter().all(|t| ours.iter().any(|o| o.covers(t))),
        };
        let methods = match (&self.methods, &other.methods) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(ours), Some(theirs)) => theirs.iter().all(|t| ours.contains(t)),
        };
        let path = match (&self.path, &other.path) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(ours), Some(theirs)) => ours.covers(theirs),
        };
        hosts && methods && path
    }
}

/// Where what applies to a request comes from.
pub(crate) enum Selected<'a> {
    Rule(&'a RouteRule),
    /// No rule selected: the `defaults`.
    Defaults,
    /// Route metadata names a rule that does not exist.
    UnknownRule,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct RouteTable {
    rules: Vec<RouteRule>,
    by_name: HashMap<String, usize>,
    by_route_name: HashMap<String, usize>,
    /// Rules with an exact `match.path`, most specific first for each path.
    by_exact_path: HashMap<String, Vec<usize>>,
    /// Every other rule with a `match`, most specific first.
    ranked: Vec<usize>,
}

impl RouteTable {
    pub(crate) fn select(
        &self,
        choice: Option<&str>,
        route_name: Option<&str>,
        request: &RouteRequest<'_>,
    ) -> Selected<'_> {
        let rule = |i: &usize| self.rules.get(*i);
        if let Some(choice) = choice {
            return self.by_name.get(choice).and_then(rule).map_or(Selected::UnknownRule, Selected::Rule);
        }
        if let Some(found) = route_name.and_then(|name| self.by_route_name.get(name)).and_then(rule) {
            return Selected::Rule(found);
        }
        let exact = self
            .by_exact_path
            .get(request.path)
            .into_iter()
            .flatten()
            .filter_map(rule)
            .find(|r| r.matcher.as_ref().is_some_and(|m| m.matches_besides_path(request)));
        let found = exact.or_else(|| {
            self.ranked.iter().filter_map(rule).find(|r| r.matcher.as_ref().is_some_and(|m| m.matches(request)))
        });
        found.map_or(Selected::Defaults, Selected::Rule)
    }

    pub(crate) fn rules(&self) -> impl Iterator<Item = &RouteRule> {
        self.rules.iter()
    }

    /// The request facts selection reads besides route metadata, which is read always: a
    /// configuration without rules must still refuse a route that names one (one property
    /// read per request).
    pub(crate) fn inputs(&self) -> RouteInputs {
        let matchers = || self.rules.iter().filter_map(|r| r.matcher.as_ref());
        RouteInputs { route_name: !self.by_route_name.is_empty(), authority: matchers().any(|m| m.hosts.is_some()) }
    }

    /// Compiles the rules. `resolve(ids, inherited, path)` turns a rule's list (at JSON path
    /// `routes[i].<field>`) into indices after the inherited defaults, refusing what the
    /// filter refuses (unknown ids, duplicates, an empty result).
    pub(crate) fn compile(
        specs: &[RouteSpec<'_>],
        field: &str,
        defaults: Option<&[usize]>,
        resolve: impl Fn(&[String], &[usize], &str) -> Result<Vec<usize>, ConfigError>,
    ) -> Result<Self, ConfigError> {
        let mut table = Self::default();
        for (i, route) in specs.iter().enumerate() {
            let path = format!("routes[{i}]");
            check_name(route.name).map_err(|why| err(format!("{path}.name"), why))?;
            if let Some(j) = table.by_name.insert(route.name.to_owned(), i) {
                return Err(err(format!("{path}.name"), format!("duplicates routes[{j}].name `{}`", route.name)));
            }
            if let Some(names) = route.route_names {
                let names = list(names, &format!("{path}.route_names"), |n| {
                    if n.is_empty() { Err("must not be empty".to_owned()) } else { Ok(n.to_owned()) }
                })?;
                for (k, name) in names.into_iter().enumerate() {
                    if let Some(j) = table.by_route_name.insert(name.clone(), i) {
                        let owner = specs.get(j).map_or("", |r| r.name);
                        return Err(err(
                            format!("{path}.route_names[{k}]"),
                            format!("`{name}` is already listed by routes[{j}] (`{owner}`)"),
                        ));
                    }
                }
            }
            let matcher = route.matcher.map(|m| route_match(m, &format!("{path}.match"))).transpose()?;
            let inherited = if route.inherit_defaults { defaults.unwrap_or(&[]) } else { &[] };
            let items = resolve(route.items, inherited, &format!("{path}.{field}"))?;
            table.rules.push(RouteRule { name: route.name.to_owned(), items, matcher });
        }
        table.rank()?;
        Ok(table)
    }

    /// Orders the matched rules and refuses any whose `match` a higher-ranked rule covers: it
    /// could never be selected by a request, which is always a mistake.
    fn rank(&mut self) -> Result<(), ConfigError> {
        let mut order: Vec<(usize, Rank)> =
            (self.rules.iter().enumerate()).filter_map(|(i, r)| r.matcher.as_ref().map(|m| (i, m.rank()))).collect();
        // Stable: declared order breaks ties.
        order.sort_by_key(|&(_, rank)| std::cmp::Reverse(rank));
        let mut by_exact_path: HashMap<String, Vec<usize>> = HashMap::new();
        let mut ranked = Vec::new();
        let matcher = |i: usize| self.rules.get(i).and_then(|r| r.matcher.as_ref());
        for (i, _) in order {
            let Some(this) = matcher(i) else { continue };
            let exact = match &this.path {
                Some(RoutePath::Exact(exact)) => Some(exact),
                _ => None,
            };
            // An exact path can only be covered by a rule of the same exact path, all in its
            // bucket (templates hold a wildcard; exact paths rank first); any other rule only
            // by a higher-ranked non-exact one.
            let earlier = match exact {
                Some(exact) => by_exact_path.get(exact.as_str()).map_or(&[][..], Vec::as_slice),
                None => ranked.as_slice(),
            };
            if let Some(j) = earlier.iter().copied().find(|&j| matcher(j).is_some_and(|m| m.covers(this))) {
                let name = self.rules.get(j).map_or("", |r| r.name.as_str());
                return Err(err(
                    format!("routes[{i}].match"),
                    format!("is unreachable: every request it matches is selected first by routes[{j}] (`{name}`)"),
                ));
            }
            match exact {
                Some(exact) => by_exact_path.entry(exact.clone()).or_default().push(i),
                None => ranked.push(i),
            }
        }
        self.by_exact_path = by_exact_path;
        self.ranked = ranked;
        Ok(())
    }
}

fn route_match(json: &RouteMatchJson, path: &str) -> Result<RouteMatch, ConfigError> {
    let hosts = json.hosts.as_ref().map(|h| list(h, &format!("{path}.hosts"), HostMatch::parse)).transpose()?;
    let methods = json.methods.as_ref().map(|m| list(m, &format!("{path}.methods"), parse_method)).transpose()?;
    let route_path = json.path.as_ref().map(|p| route_path(p, &format!("{path}.path"))).transpose()?;
    Ok(RouteMatch { hosts, methods, path: route_path })
}

fn route_path(json: &RoutePathJson, path: &str) -> Result<RoutePath, ConfigError> {
    let (field, parsed) = match (&json.exact, &json.prefix, &json.template) {
        (Some(exact), None, None) => ("exact", RoutePath::exact(exact)),
        (None, Some(prefix), None) => ("prefix", RoutePath::prefix(prefix)),
        (None, None, Some(template)) => ("template", RoutePath::template(template)),
        _ => return Err(err(path, "needs exactly one of `exact`, `prefix`, `template`")),
    };
    parsed.map_err(|why| err(format!("{path}.{field}"), why))
}

/// Names (policy ids, limit names, route rule names) appear in JSON paths, metrics and
/// decision records.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)) {
        return Err(format!("\"{name}\" must be non-empty letters, digits, `-`, `_`, `.` or `:`"));
    }
    Ok(())
}

/// A non-empty list, each value parsed; errors name the value's index.
pub(crate) fn list<T>(
    values: &[String],
    path: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, ConfigError> {
    if values.is_empty() {
        return Err(err(path, "must not be empty"));
    }
    values.iter().enumerate().map(|(i, v)| parse(v).map_err(|why| err(format!("{path}[{i}]"), why))).collect()
}

fn err(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::new(path, message)
}
