//! From the operator's JSON to the checked [`AuditConfig`]: every value parsed once, every
//! error naming its JSON path (`collector.batch_records: ...`).

use std::collections::BTreeMap;

use super::chain::{Chain, ChainKey};
use super::config::{AuditConfigJson, ChainKeyJson, CollectorJson, FormatJson, IdentityJson, QueryJson};
use super::log_batch::LogBatch;
use crate::authz::matchers::parse_header_name;
use crate::config_error::ConfigError;
use crate::identity_source::{self, IdentitySource};
use crate::routes::{RouteSpec, RouteTable};

/// Sampling is in parts per million: exact, no floats on the request path.
pub(crate) const PPM: u32 = 1_000_000;

/// Always redacted, whatever the configuration: they carry credentials.
const ALWAYS_REDACTED_HEADERS: [&str; 4] = ["authorization", "proxy-authorization", "cookie", "set-cookie"];
/// Query parameters that carry credentials (OAuth 2.0 RFC 6749 §4.1.2, RFC 6750 §2.3).
const ALWAYS_REDACTED_PARAMS: [&str; 7] =
    ["access_token", "id_token", "refresh_token", "token", "code", "client_secret", "password"];
/// Identity fields the record has besides the copied claims.
const IDENTITY_FIELDS: [&str; 4] = ["sub", "client_id", "iss", "scopes"];
const MIN_HASH_KEY: usize = 32;

/// The validated configuration of the audit filter.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    pub(crate) defaults: Recording,
    pub(crate) routes: RouteTable,
    /// Per route rule name, what it overrides.
    pub(crate) route_recording: BTreeMap<String, Recording>,
    pub(crate) headers: Vec<String>,
    pub(crate) redacted_headers: Vec<String>,
    pub(crate) redacted_params: Vec<String>,
    pub(crate) identity: IdentityRules,
    pub(crate) log: bool,
    pub(crate) log_level: RecordLogLevel,
    pub(crate) log_batch_records: u32,
    pub(crate) log_batch_age_ms: u64,
    pub(crate) collector: Option<Collector>,
    /// The environment variable holding the chain key, when the chain is keyed.
    pub(crate) chain_key_env: Option<String>,
    /// Where the caller comes from ([`crate::identity_source`]).
    pub(crate) identity_source: IdentitySource,
    pub(crate) latency_histogram: bool,
}

/// The level records are written at in Envoy's log, by Envoy's names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordLogLevel {
    #[default]
    Info,
    Warning,
    Error,
}

impl RecordLogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordLogLevel::Info => "info",
            RecordLogLevel::Warning => "warning",
            RecordLogLevel::Error => "error",
        }
    }
}

/// What a route rule can change: how much is sampled and whether the query is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Recording {
    pub(crate) sample_ppm: u32,
    pub(crate) keep_query: bool,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct IdentityRules {
    pub(crate) claims: Vec<String>,
    pub(crate) hash: Vec<String>,
    pub(crate) omit: Vec<String>,
    pub(crate) hash_key: Option<Vec<u8>>,
}

/// Where and how records are exported over HTTP.
#[derive(Clone)]
pub struct Collector {
    pub cluster: String,
    pub format: Format,
    pub path: String,
    pub authority: String,
    pub headers: Vec<(String, String)>,
    pub batch_records: usize,
    pub batch_age_ms: u64,
    pub queue_records: usize,
    pub queue_bytes: usize,
    pub drop_after_ms: u64,
    pub checkpoint_records: u64,
    pub checkpoint_interval_ms: u64,
    pub timeout_ms: u64,
    pub service_name: String,
}

impl std::fmt::Debug for Collector {
    // The extra headers may hold a collector's API key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector").field("cluster", &self.cluster).field("format", &self.format).finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OTLP/HTTP with the JSON encoding: `ExportLogsServiceRequest` posted to `/v1/logs`.
    Otlp,
    /// One record per line, `application/x-ndjson`.
    Ndjson,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Otlp => "application/json",
            Format::Ndjson => "application/x-ndjson",
        }
    }
}

impl AuditConfig {
    /// Parses and validates the plugin configuration bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        compile(ConfigError::parse_json::<AuditConfigJson>(bytes)?)
    }

    /// Where the verified caller comes from: zt-jwt's filter state or `jwt_authn`'s metadata.
    pub fn identity_source(&self) -> &IdentitySource {
        &self.identity_source
    }

    /// Whether the stage's time per request goes to its latency histogram.
    pub fn latency_histogram(&self) -> bool {
        self.latency_histogram
    }

    pub fn collector(&self) -> Option<&Collector> {
        self.collector.as_ref()
    }

    /// Whether records go to Envoy's log.
    pub fn log(&self) -> bool {
        self.log
    }

    /// The level records are written at in Envoy's log.
    pub fn log_level(&self) -> RecordLogLevel {
        self.log_level
    }

    /// The worker's batch of records for Envoy's log.
    pub fn log_batch(&self) -> LogBatch {
        LogBatch::new(self.log_batch_records, self.log_batch_age_ms)
    }

    /// Request headers copied into the record.
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// The environment variable that must hold the chain key, when the chain is keyed.
    pub fn chain_key_env(&self) -> Option<&str> {
        self.chain_key_env.as_deref()
    }

    /// The worker's chain: keyed when `chain_key` is configured, with the key read by `env`
    /// (the VM's environment). A configured key that is absent or too short is an error naming
    /// the field: falling back to an unkeyed chain would leave the operator believing the log
    /// is protected when it is not.
    pub fn chain(&self, random: [u8; 16], env: impl FnOnce(&str) -> Option<Vec<u8>>) -> Result<Chain, ConfigError> {
        let Some(name) = &self.chain_key_env else { return Ok(Chain::new(random)) };
        let secret = env(name).ok_or_else(|| {
            ConfigError::new("chain_key.env", format!("the environment variable {name} is not set in the Wasm VM"))
        })?;
        let key = ChainKey::from_secret(&secret)
            .map_err(|why| ConfigError::new("chain_key.env", format!("{name}: {why}")))?;
        Ok(Chain::keyed(random, key))
    }
}

fn compile(json: AuditConfigJson) -> Result<AuditConfig, ConfigError> {
    let defaults = Recording {
        sample_ppm: sample(json.sample_allowed, "sample_allowed")?.unwrap_or(PPM),
        keep_query: json.query == Some(QueryJson::Keep),
    };
    let specs: Vec<RouteSpec<'_>> = json
        .routes
        .iter()
        .map(|r| RouteSpec {
            name: &r.name,
            route_names: r.route_names.as_deref(),
            matcher: r.matcher.as_ref(),
            items: &[],
            inherit_defaults: false,
        })
        .collect();
    let routes = RouteTable::compile(&specs, "routes", None, |_, _, _| Ok(Vec::new()))?;
    let mut route_recording = BTreeMap::new();
    for (i, route) in json.routes.iter().enumerate() {
        let recording = Recording {
            sample_ppm: sample(route.sample_allowed, &format!("routes[{i}].sample_allowed"))?
                .unwrap_or(defaults.sample_ppm),
            keep_query: route.query.map_or(defaults.keep_query, |q| q == QueryJson::Keep),
        };
        route_recording.insert(route.name.clone(), recording);
    }
    let headers = header_names(&json.headers, "headers")?;
    let mut redacted_headers = header_names(&json.redact_headers, "redact_headers")?;
    redacted_headers.extend(ALWAYS_REDACTED_HEADERS.iter().map(|h| (*h).to_owned()));
    let mut redacted_params = json.redact_query_params.clone();
    if let Some(i) = redacted_params.iter().position(String::is_empty) {
        return Err(ConfigError::new(format!("redact_query_params[{i}]"), "must not be empty"));
    }
    redacted_params.extend(ALWAYS_REDACTED_PARAMS.iter().map(|p| (*p).to_owned()));
    Ok(AuditConfig {
        identity_source: identity_source::compile_field(json.identity_source)?,
        latency_histogram: json.latency_histogram,
        defaults,
        routes,
        route_recording,
        headers,
        redacted_headers,
        redacted_params,
        identity: identity_rules(json.identity)?,
        log: json.log.unwrap_or(true),
        log_level: json.log_level.unwrap_or_default(),
        log_batch_records: bounded(json.log_batch_records, 32, 1, 1024, "log_batch_records")?,
        log_batch_age_ms: u64::from(bounded(json.log_batch_age_ms, 200, 10, 10_000, "log_batch_age_ms")?),
        collector: json.collector.map(collector).transpose()?,
        chain_key_env: json.chain_key.map(chain_key_env).transpose()?,
    })
}

/// An optional count with its default, refused outside `min..=max` with the field named.
fn bounded(value: Option<u64>, default: u32, min: u32, max: u32, field: &str) -> Result<u32, ConfigError> {
    let value = value.unwrap_or(u64::from(default));
    u32::try_from(value)
        .ok()
        .filter(|v| (min..=max).contains(v))
        .ok_or_else(|| ConfigError::new(field, format!("{value} is not between {min} and {max}")))
}

/// A POSIX environment variable name (IEEE Std 1003.1, "Environment Variables"), as Envoy
/// and Kubernetes accept them.
fn chain_key_env(json: ChainKeyJson) -> Result<String, ConfigError> {
    let name = json.env;
    let valid = name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid {
        return Err(ConfigError::new(
            "chain_key.env",
            format!("{name:?} is not an environment variable name (letters, digits and _, not starting with a digit)"),
        ));
    }
    Ok(name)
}

fn sample(value: Option<f64>, path: &str) -> Result<Option<u32>, ConfigError> {
    let Some(value) = value else { return Ok(None) };
    if !(0.0..=1.0).contains(&value) {
        return Err(ConfigError::new(path, format!("{value} is not between 0.0 and 1.0")));
    }
    // In range, so the product fits; rounding to the nearest part per million.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(Some((value * f64::from(PPM)).round() as u32))
}

fn header_names(names: &[String], field: &str) -> Result<Vec<String>, ConfigError> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let parsed = parse_header_name(name).map_err(|why| ConfigError::new(format!("{field}[{i}]"), why))?;
            if parsed.starts_with(':') {
                return Err(ConfigError::new(
                    format!("{field}[{i}]"),
                    "pseudo-headers are recorded as their own fields (method, path, authority)",
                ));
            }
            Ok(parsed)
        })
        .collect()
}

fn identity_rules(json: IdentityJson) -> Result<IdentityRules, ConfigError> {
    for (i, claim) in json.claims.iter().enumerate() {
        if claim.is_empty() || IDENTITY_FIELDS.contains(&claim.as_str()) {
            return Err(ConfigError::new(
                format!("identity.claims[{i}]"),
                format!("\"{claim}\" is empty or recorded already (sub, client_id, iss, scopes)"),
            ));
        }
    }
    for (i, name) in json.hash.iter().enumerate() {
        let hashable = ["sub", "client_id", "iss"].contains(&name.as_str()) || json.claims.contains(name);
        if !hashable {
            return Err(ConfigError::new(
                format!("identity.hash[{i}]"),
                format!("\"{name}\" is neither sub, client_id, iss nor one of identity.claims"),
            ));
        }
    }
    for (i, name) in json.omit.iter().enumerate() {
        if !IDENTITY_FIELDS.contains(&name.as_str()) {
            return Err(ConfigError::new(
                format!("identity.omit[{i}]"),
                format!("\"{name}\" is not one of sub, client_id, iss, scopes (claims are only recorded when listed)"),
            ));
        }
        if json.hash.contains(name) {
            return Err(ConfigError::new(
                format!("identity.omit[{i}]"),
                format!("\"{name}\" is also in identity.hash"),
            ));
        }
    }
    let hash_key = match (&json.hash_key, json.hash.is_empty()) {
        (Some(key), _) if key.len() < MIN_HASH_KEY => {
            return Err(ConfigError::new("identity.hash_key", format!("must be at least {MIN_HASH_KEY} bytes")));
        }
        (None, false) => {
            return Err(ConfigError::new(
                "identity.hash_key",
                "is required when identity.hash is set (a plain hash of a user id is reversed by guessing)",
            ));
        }
        (key, _) => key.as_ref().map(|k| k.as_bytes().to_vec()),
    };
    Ok(IdentityRules { claims: json.claims, hash: json.hash, omit: json.omit, hash_key })
}

fn collector(json: CollectorJson) -> Result<Collector, ConfigError> {
    let err = |field: &str, why: String| ConfigError::new(format!("collector.{field}"), why);
    if json.cluster.is_empty() || json.cluster.len() > 255 {
        return Err(err("cluster", "must be an Envoy cluster name (1 to 255 bytes)".to_owned()));
    }
    let format = match json.format.unwrap_or(FormatJson::Otlp) {
        FormatJson::Otlp => Format::Otlp,
        FormatJson::Ndjson => Format::Ndjson,
    };
    let path = json.path.unwrap_or_else(|| if format == Format::Otlp { "/v1/logs" } else { "/" }.to_owned());
    if !path.starts_with('/') || path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(err("path", format!("\"{path}\" is not an absolute request path")));
    }
    let number = |value: Option<u64>, default: u64, min: u64, max: u64, field: &str| {
        let value = value.unwrap_or(default);
        if (min..=max).contains(&value) {
            Ok(value)
        } else {
            Err(err(field, format!("{value} is not between {min} and {max}")))
        }
    };
    let batch_records = number(json.batch_records, 100, 1, 10_000, "batch_records")?;
    let batch_age_ms = number(json.batch_age_ms, 1_000, 10, 60_000, "batch_age_ms")?;
    let queue_records = number(json.queue_records, 10_000, batch_records, 1_000_000, "queue_records")?;
    let queue_bytes = number(json.queue_bytes, 8 << 20, 64 << 10, 1 << 30, "queue_bytes")?;
    let drop_after_ms = number(json.drop_after_ms, 60_000, batch_age_ms, 3_600_000, "drop_after_ms")?;
    let checkpoint_records = number(json.checkpoint_records, 100, 1, 1_000_000, "checkpoint_records")?;
    let checkpoint_interval_ms = number(json.checkpoint_interval_ms, 5_000, 100, 3_600_000, "checkpoint_interval_ms")?;
    let timeout_ms = number(json.timeout_ms, 5_000, 1, 60_000, "timeout_ms")?;
    let mut headers = Vec::new();
    for (name, value) in json.headers {
        let field = format!("collector.headers.{name}");
        let parsed = parse_header_name(&name).map_err(|why| ConfigError::new(&field, why))?;
        if parsed.starts_with(':') || ["content-type", "content-length", "host"].contains(&parsed.as_str()) {
            return Err(ConfigError::new(field, "is set by the filter"));
        }
        if value.bytes().any(|b| b.is_ascii_control()) {
            return Err(ConfigError::new(field, "holds a control character"));
        }
        headers.push((parsed, value));
    }
    let service_name = json.service_name.unwrap_or_else(|| "zt-audit".to_owned());
    if service_name.is_empty() {
        return Err(err("service_name", "must not be empty".to_owned()));
    }
    Ok(Collector {
        authority: json.authority.unwrap_or_else(|| json.cluster.clone()),
        cluster: json.cluster,
        format,
        path,
        headers,
        // Bounded above by the checks, so they fit a usize on every target.
        batch_records: usize::try_from(batch_records).unwrap_or(usize::MAX),
        batch_age_ms,
        queue_records: usize::try_from(queue_records).unwrap_or(usize::MAX),
        queue_bytes: usize::try_from(queue_bytes).unwrap_or(usize::MAX),
        drop_after_ms,
        checkpoint_records,
        checkpoint_interval_ms,
        timeout_ms,
        service_name,
    })
}
