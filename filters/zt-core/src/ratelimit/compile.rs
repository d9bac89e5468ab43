//! From the operator's JSON to the checked [`RateLimitConfig`]: every value parsed once, every
//! reference resolved, every error naming its JSON path (`limits.per-user.quota: ...`).

use std::collections::BTreeMap;

use super::Inputs;
use super::bucket::Rate;
use super::config::{ClaimPath, GlobalJson, KeyPartJson, LimitJson, Mode, OnError, RateLimitConfigJson, UnkeyedJson};
use super::table::Table;
use crate::authz::matchers::parse_header_name;
use crate::config_error::ConfigError;
use crate::identity_source::{self, IdentitySource};
use crate::routes::{RouteSpec, RouteTable, check_name};
use crate::shared_name::Definition;

/// Bounds that keep the arithmetic exact and the shared tables reasonable.
const MAX_QUOTA: u64 = 1_000_000_000;
const MAX_WINDOW_SECONDS: u64 = 366 * 86_400;
const MAX_KEYS: u64 = 1_000_000;

/// The validated configuration of the rate-limit filter.
#[derive(Debug, Clone)]
pub struct RateLimitConfig {
    pub(crate) limits: Vec<Limit>,
    pub(crate) defaults: Vec<usize>,
    pub(crate) routes: RouteTable,
    pub(crate) max_keys: u64,
    pub(crate) sweep_ms: u64,
    pub(crate) headers_on_admitted: bool,
    pub(crate) x_ratelimit: bool,
    pub(crate) global: Option<Global>,
    pub(crate) inputs: Inputs,
    /// Where the caller comes from ([`crate::identity_source`]).
    pub(crate) identity_source: IdentitySource,
    pub(crate) latency_histogram: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Limit {
    pub(crate) name: String,
    /// `None` for a global-only limit: the service holds its numbers.
    pub(crate) rate: Option<Rate>,
    pub(crate) table: Option<Table>,
    pub(crate) key: Vec<KeyPart>,
    pub(crate) mode: Mode,
    pub(crate) advisory: bool,
    /// Index of the limit applied instead when this one cannot key a request.
    pub(crate) fallback: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyPart {
    Claim(Vec<String>),
    Provider,
    Header(String),
    SourceIp,
    SourcePrefix { ipv4: u8, ipv6: u8 },
    RemoteIp,
    Route,
    Method,
}

#[derive(Debug, Clone)]
pub struct Global {
    pub cluster: String,
    pub domain: String,
    pub timeout_ms: u64,
    pub(crate) on_error: OnError,
}

impl RateLimitConfig {
    /// Parses and validates the plugin configuration bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        compile(ConfigError::parse_json::<RateLimitConfigJson>(bytes)?)
    }

    /// Where the verified caller comes from: zt-jwt's filter state or `jwt_authn`'s metadata.
    pub fn identity_source(&self) -> &IdentitySource {
        &self.identity_source
    }

    /// Whether the stage's time per request goes to its latency histogram.
    pub fn latency_histogram(&self) -> bool {
        self.latency_histogram
    }

    /// Which request facts the configuration reads; the adapter skips the other host calls.
    pub fn inputs(&self) -> &Inputs {
        &self.inputs
    }

    /// The rate-limit service, when some limit is global.
    pub fn global(&self) -> Option<&Global> {
        self.global.as_ref()
    }

    /// The shared tables of the local limits, to prepare at configuration and sweep on a timer.
    pub fn tables(&self) -> impl Iterator<Item = (&str, &Table)> {
        self.limits.iter().filter_map(|l| l.table.as_ref().map(|t| (l.name.as_str(), t)))
    }

    pub fn sweep_ms(&self) -> u64 {
        self.sweep_ms
    }

    /// Creates the shared tables' slots where missing; at configuration, before any request.
    pub fn prepare(&self, store: &dyn crate::SharedStore) -> Result<(), crate::StoreError> {
        self.tables().try_for_each(|(_, table)| table.prepare(store))
    }

    /// Slots per local limit's table.
    pub fn max_keys(&self) -> u64 {
        self.max_keys
    }

    /// Whether admitted responses carry `RateLimit-Policy` and `RateLimit` too.
    pub fn headers_on_admitted(&self) -> bool {
        self.headers_on_admitted
    }

    /// Whether responses carry `X-RateLimit-*` too.
    pub fn x_ratelimit(&self) -> bool {
        self.x_ratelimit
    }

    /// Limit names, for metrics.
    pub fn limit_names(&self) -> impl Iterator<Item = &str> {
        self.limits.iter().map(|l| l.name.as_str())
    }
}

fn err(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::new(path, message)
}

fn compile(json: RateLimitConfigJson) -> Result<RateLimitConfig, ConfigError> {
    if json.max_keys == 0 || json.max_keys > MAX_KEYS {
        return Err(err("max_keys", format!("must be 1 to {MAX_KEYS}")));
    }
    if json.sweep_seconds == 0 || json.sweep_seconds > 3600 {
        return Err(err("sweep_seconds", "must be 1 to 3600"));
    }
    let global = json.global.as_ref().map(global).transpose()?;
    let index: BTreeMap<&str, usize> = json.limits.keys().enumerate().map(|(i, name)| (name.as_str(), i)).collect();
    let mut limits = Vec::with_capacity(json.limits.len());
    for (name, limit_json) in &json.limits {
        let path = format!("limits.{name}");
        check_name(name).map_err(|why| err(&path, why))?;
        limits.push(limit(name, limit_json, &path, &index, global.is_some(), json.max_keys)?);
    }
    // A fallback must itself key every request it is given the chance to: no chains.
    for (name, limit_json) in &json.limits {
        if let UnkeyedJson::Fallback(target) = &limit_json.unkeyed
            && let Some(UnkeyedJson::Fallback(_)) = json.limits.get(target).map(|t| &t.unkeyed)
        {
            return Err(err(
                format!("limits.{name}.unkeyed.fallback"),
                format!("`{target}` has a fallback itself; a fallback must deny what it cannot key"),
            ));
        }
    }
    let resolve = |ids: &[String], inherited: &[usize], path: &str| {
        let mut resolved = inherited.to_vec();
        for (i, id) in ids.iter().enumerate() {
            let at = format!("{path}[{i}]");
            let limit = *index.get(id.as_str()).ok_or_else(|| err(&at, format!("no limit named `{id}`")))?;
            if resolved.contains(&limit) {
                return Err(err(at, format!("`{id}` is already in effect (listed twice, or inherited)")));
            }
            resolved.push(limit);
        }
        Ok(resolved)
    };
    let defaults = resolve(&json.defaults.limits, &[], "defaults.limits")?;
    let specs: Vec<RouteSpec<'_>> = json
        .routes
        .iter()
        .map(|r| RouteSpec {
            name: &r.name,
            route_names: r.route_names.as_deref(),
            matcher: r.matcher.as_ref(),
            items: &r.limits,
            inherit_defaults: r.inherit_defaults,
        })
        .collect();
    let routes = RouteTable::compile(&specs, "limits", Some(&defaults), resolve)?;
    let mut used = vec![false; limits.len()];
    let applied = defaults.iter().chain(routes.rules().flat_map(|rule| &rule.items));
    for i in applied.chain(limits.iter().filter_map(|l| l.fallback.as_ref())) {
        if let Some(slot) = used.get_mut(*i) {
            *slot = true;
        }
    }
    if let Some(limit) = limits.iter().zip(&used).find(|(_, used)| !**used).map(|(l, _)| l) {
        return Err(err(
            format!("limits.{}", limit.name),
            "is used by no route rule, not by `defaults` and not as a fallback (a typo?)",
        ));
    }
    let selection = routes.inputs();
    let mut inputs = Inputs { route_name: selection.route_name, authority: selection.authority, ..Inputs::default() };
    for part in limits.iter().flat_map(|l| &l.key) {
        match part {
            KeyPart::Claim(_) | KeyPart::Provider => inputs.identity = true,
            KeyPart::Header(name) => {
                if !inputs.headers.contains(name) {
                    inputs.headers.push(name.clone());
                }
            }
            KeyPart::SourceIp | KeyPart::SourcePrefix { .. } => inputs.source = true,
            KeyPart::RemoteIp => inputs.remote = true,
            KeyPart::Route | KeyPart::Method => {}
        }
    }
    Ok(RateLimitConfig {
        identity_source: identity_source::compile_field(json.identity_source)?,
        latency_histogram: json.latency_histogram,
        limits,
        defaults,
        routes,
        max_keys: json.max_keys,
        sweep_ms: json.sweep_seconds * 1000,
        headers_on_admitted: json.headers.on_admitted,
        x_ratelimit: json.headers.x_ratelimit,
        global,
        inputs,
    })
}

fn global(json: &GlobalJson) -> Result<Global, ConfigError> {
    if json.cluster.is_empty() || json.cluster.len() > 100 {
        return Err(err("global.cluster", "must be 1 to 100 bytes"));
    }
    if json.domain.is_empty() {
        return Err(err("global.domain", "must not be empty"));
    }
    if json.timeout_ms == 0 || json.timeout_ms > 60_000 {
        return Err(err("global.timeout_ms", "must be 1 to 60000"));
    }
    Ok(Global {
        cluster: json.cluster.clone(),
        domain: json.domain.clone(),
        timeout_ms: json.timeout_ms,
        on_error: json.on_error,
    })
}

fn limit(
    name: &str,
    json: &LimitJson,
    path: &str,
    index: &BTreeMap<&str, usize>,
    has_global: bool,
    max_keys: u64,
) -> Result<Limit, ConfigError> {
    let rate = match json.mode {
        Mode::Global => {
            for (field, set) in [
                ("quota", json.quota.is_some()),
                ("window_seconds", json.window_seconds.is_some()),
                ("burst", json.burst.is_some()),
            ] {
                if set {
                    return Err(err(
                        format!("{path}.{field}"),
                        "a `global` limit's numbers are the rate-limit service's; remove it",
                    ));
                }
            }
            None
        }
        Mode::Local | Mode::LocalThenGlobal => Some(rate(json, path)?),
    };
    if json.mode != Mode::Local && !has_global {
        return Err(err(format!("{path}.mode"), "needs the top-level `global` (the rate-limit service)"));
    }
    let key = json
        .key
        .iter()
        .enumerate()
        .map(|(i, part)| key_part(part, &format!("{path}.key[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, part) in key.iter().enumerate() {
        if key.iter().take(i).any(|earlier| earlier == part) {
            return Err(err(format!("{path}.key[{i}]"), "is listed twice"));
        }
    }
    let fallback = match &json.unkeyed {
        UnkeyedJson::Deny => None,
        UnkeyedJson::Fallback(target) => {
            let at = format!("{path}.unkeyed.fallback");
            if target == name {
                return Err(err(at, "a limit cannot fall back to itself"));
            }
            Some(*index.get(target.as_str()).ok_or_else(|| err(&at, format!("no limit named `{target}`")))?)
        }
    };
    Ok(Limit {
        name: name.to_owned(),
        rate,
        table: rate.map(|rate| Table::new(name, table_definition(&key, json.mode, json.advisory), max_keys, rate)),
        key,
        mode: json.mode,
        advisory: json.advisory,
        fallback,
    })
}

/// What, besides its slots and rate, makes a limit's buckets what they are, for the name of its
/// shared table: the key spec (what a bucket is per), the mode and whether it is advisory. The
/// fallback is left out: it applies another limit's table, never this one's. A new key part
/// must be encoded here with a tag of its own.
fn table_definition(key: &[KeyPart], mode: Mode, advisory: bool) -> Definition {
    let mut definition = Definition::new("zt-ratelimit.table/1");
    definition.field(match mode {
        Mode::Local => b"local",
        Mode::Global => b"global",
        Mode::LocalThenGlobal => b"local_then_global",
    });
    definition.number(u64::from(advisory)).number(key.len() as u64);
    for part in key {
        match part {
            KeyPart::Claim(path) => {
                definition.field(b"claim").number(path.len() as u64);
                for segment in path {
                    definition.field(segment.as_bytes());
                }
            }
            KeyPart::Provider => {
                definition.field(b"provider");
            }
            KeyPart::Header(name) => {
                definition.field(b"header").field(name.as_bytes());
            }
            KeyPart::SourceIp => {
                definition.field(b"source_ip");
            }
            KeyPart::SourcePrefix { ipv4, ipv6 } => {
                definition.field(b"source_prefix").number(u64::from(*ipv4)).number(u64::from(*ipv6));
            }
            KeyPart::RemoteIp => {
                definition.field(b"remote_ip");
            }
            KeyPart::Route => {
                definition.field(b"route");
            }
            KeyPart::Method => {
                definition.field(b"method");
            }
        }
    }
    definition
}

fn rate(json: &LimitJson, path: &str) -> Result<Rate, ConfigError> {
    let quota = json.quota.ok_or_else(|| err(format!("{path}.quota"), "is required for a local limit"))?;
    if quota == 0 || quota > MAX_QUOTA {
        return Err(err(format!("{path}.quota"), format!("must be 1 to {MAX_QUOTA}")));
    }
    let window =
        json.window_seconds.ok_or_else(|| err(format!("{path}.window_seconds"), "is required for a local limit"))?;
    if window == 0 || window > MAX_WINDOW_SECONDS {
        return Err(err(format!("{path}.window_seconds"), format!("must be 1 to {MAX_WINDOW_SECONDS}")));
    }
    let burst = json.burst.unwrap_or(quota);
    if burst == 0 || burst > MAX_QUOTA {
        return Err(err(format!("{path}.burst"), format!("must be 1 to {MAX_QUOTA}")));
    }
    Rate::new(quota, window * 1000, burst)
        .ok_or_else(|| err(path, "quota, burst and window_seconds are too large together"))
}

fn key_part(json: &KeyPartJson, path: &str) -> Result<KeyPart, ConfigError> {
    Ok(match json {
        KeyPartJson::Claim(claim) => {
            let segments: Vec<String> = match claim {
                ClaimPath::Dotted(dotted) => dotted.split('.').map(str::to_owned).collect(),
                ClaimPath::Segments(segments) => segments.clone(),
            };
            if segments.is_empty() || segments.iter().any(String::is_empty) {
                return Err(err(format!("{path}.claim"), "must be a claim name or a path of non-empty names"));
            }
            KeyPart::Claim(segments)
        }
        KeyPartJson::Provider => KeyPart::Provider,
        KeyPartJson::Header(name) => {
            KeyPart::Header(parse_header_name(name).map_err(|why| err(format!("{path}.header"), why))?)
        }
        KeyPartJson::SourceIp => KeyPart::SourceIp,
        KeyPartJson::SourcePrefix(prefix) => {
            if prefix.ipv4 == 0 || prefix.ipv4 > 32 {
                return Err(err(format!("{path}.source_prefix.ipv4"), "must be 1 to 32"));
            }
            if prefix.ipv6 == 0 || prefix.ipv6 > 128 {
                return Err(err(format!("{path}.source_prefix.ipv6"), "must be 1 to 128"));
            }
            KeyPart::SourcePrefix { ipv4: prefix.ipv4, ipv6: prefix.ipv6 }
        }
        KeyPartJson::RemoteIp => KeyPart::RemoteIp,
        KeyPartJson::Route => KeyPart::Route,
        KeyPartJson::Method => KeyPart::Method,
    })
}
