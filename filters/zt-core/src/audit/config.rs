//! The audit filter's configuration as the operator writes it (JSON). Every field has a safe
//! default; [`super::AuditConfig::from_json`] checks the values and names the path of a bad one.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::identity_source::IdentitySourceJson;
use crate::routes::RouteMatchJson;

use super::compile::RecordLogLevel;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditConfigJson {
    /// Default `"zt_jwt"`: the caller zt-jwt verified (its filter-state entry). `{"jwt_authn":
    /// [{"payload_in_metadata": "payload", "issuer": "https://...", "provider": "corp"}]}` takes
    /// the payload of that issuer Envoy's
    /// `jwt_authn` filter (or Istio's `RequestAuthentication`) verified, from the stream's
    /// dynamic metadata ([`crate::identity_source`]).
    #[serde(default)]
    pub(crate) identity_source: Option<IdentitySourceJson>,
    /// Share of ALLOWED requests recorded, 0.0 to 1.0. Default 1.0 (every request). Denials,
    /// limits and advisory decisions are always recorded whatever this says.
    #[serde(default)]
    pub(crate) sample_allowed: Option<f64>,
    /// Default `drop`: the query string can carry tokens, emails, search terms.
    #[serde(default)]
    pub(crate) query: Option<QueryJson>,
    /// Request headers copied into the record (lower-case names). Default none.
    #[serde(default)]
    pub(crate) headers: Vec<String>,
    /// Headers whose value is replaced by `[redacted]`, besides `authorization`,
    /// `proxy-authorization`, `cookie` and `set-cookie`, which always are.
    #[serde(default)]
    pub(crate) redact_headers: Vec<String>,
    /// Query parameters whose value is replaced by `[redacted]` when the query is kept, besides
    /// `access_token`, `id_token`, `refresh_token`, `token`, `code`, `client_secret`, `password`.
    #[serde(default)]
    pub(crate) redact_query_params: Vec<String>,
    #[serde(default)]
    pub(crate) identity: IdentityJson,
    /// Default true: one line per record in Envoy's log, after the marker `zt.audit.v1 `.
    #[serde(default)]
    pub(crate) log: Option<bool>,
    /// Default `info`: the level records are written at in Envoy's log (`info`, `warning`,
    /// `error`). Envoy drops what is below its level for the `wasm` component; Istio's proxies
    /// run at `warning`, where `info` records would never reach the log.
    #[serde(default)]
    pub(crate) log_level: Option<RecordLogLevel>,
    /// Default 32: records written to Envoy's log per log call (1: each as its stream ends).
    #[serde(default)]
    pub(crate) log_batch_records: Option<u64>,
    /// Default 200: the longest a record waits in its worker for the log call.
    #[serde(default)]
    pub(crate) log_batch_age_ms: Option<u64>,
    /// Default none: records go to Envoy's log only.
    #[serde(default)]
    pub(crate) collector: Option<CollectorJson>,
    /// Where the key of the chain comes from; default none: `prev` is then the plain SHA-256,
    /// which anyone who can edit the log can recompute. The key itself is never in this
    /// configuration (which Envoy's admin interface and Istio's WasmPlugin show): only the
    /// name of the environment variable of the Wasm VM that holds it.
    #[serde(default)]
    pub(crate) chain_key: Option<ChainKeyJson>,
    /// Per-route overrides of `sample_allowed` and `query`.
    #[serde(default)]
    pub(crate) routes: Vec<AuditRouteJson>,
    /// Default `false`. `true` records the stage's time on each request in the histogram
    /// `zt_audit.latency_us` (microseconds, the record's work when the stream ends); costs clock reads and a metric
    /// call per request.
    #[serde(default)]
    pub(crate) latency_histogram: bool,
}

/// `{"env": "ZT_AUDIT_CHAIN_KEY"}`: the chain key is the value of this environment variable
/// of the Wasm VM (Envoy: `vm_config.environment_variables`; Istio: `vmConfig.env`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChainKeyJson {
    /// The variable's name (required): letters, digits and `_`, not starting with a digit.
    pub(crate) env: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryJson {
    Drop,
    Keep,
}

/// What of the verified identity goes into the record.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IdentityJson {
    /// Further claims copied into `identity.claims` (top-level claim names). Default none.
    #[serde(default)]
    pub(crate) claims: Vec<String>,
    /// Fields (`sub`, `client_id`, `iss`) or copied claims recorded as
    /// `hmac-sha256:<hex>` of the value under `hash_key`. Default none.
    #[serde(default)]
    pub(crate) hash: Vec<String>,
    /// Fields (`sub`, `client_id`, `iss`, `scopes`) left out of the record. Default none.
    #[serde(default)]
    pub(crate) omit: Vec<String>,
    /// The HMAC key for `hash`, at least 32 bytes, required when `hash` is set: a plain hash of
    /// an email or a user id is reversed by trying candidates. Never logged.
    #[serde(default)]
    pub(crate) hash_key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CollectorJson {
    /// The Envoy cluster of the collector (required).
    pub(crate) cluster: String,
    /// `otlp` (default): OTLP/HTTP JSON `ExportLogsServiceRequest`; `ndjson`: one record per line.
    #[serde(default)]
    pub(crate) format: Option<FormatJson>,
    /// Default `/v1/logs` for OTLP, `/` for NDJSON.
    #[serde(default)]
    pub(crate) path: Option<String>,
    /// The `:authority` of the export requests. Default the cluster name.
    #[serde(default)]
    pub(crate) authority: Option<String>,
    /// Extra request headers (e.g. a collector API key). Values are never logged.
    #[serde(default)]
    pub(crate) headers: BTreeMap<String, String>,
    /// A batch is sent when it has this many records (default 100) ...
    #[serde(default)]
    pub(crate) batch_records: Option<u64>,
    /// ... or when its oldest record waited this long (default 1000 ms).
    #[serde(default)]
    pub(crate) batch_age_ms: Option<u64>,
    /// Records waiting per worker, at most (default 10,000); beyond, the oldest are dropped.
    #[serde(default)]
    pub(crate) queue_records: Option<u64>,
    /// Bytes of records waiting and in flight per worker, at most (default 8 MiB, 64 KiB to
    /// 1 GiB); beyond, the oldest are dropped, and a single record larger than this is dropped
    /// rather than queued. Raising it lets a long collector outage cost that much memory per
    /// worker.
    #[serde(default)]
    pub(crate) queue_bytes: Option<u64>,
    /// A checkpoint (chain id, `seq` and digest of the chain's last record) is queued after
    /// this many records since the last one (default 100, 1 to 1,000,000) ...
    #[serde(default)]
    pub(crate) checkpoint_records: Option<u64>,
    /// ... or when the oldest record since the last one is this old (default 5,000 ms, 100 to
    /// 3,600,000). Records after the last checkpoint that reached the collector can be cut from
    /// the log's tail unseen: these two bound that window.
    #[serde(default)]
    pub(crate) checkpoint_interval_ms: Option<u64>,
    /// A record not delivered after this long is dropped (default 60,000 ms).
    #[serde(default)]
    pub(crate) drop_after_ms: Option<u64>,
    /// Timeout of one export request (default 5,000 ms); a timeout counts as a failure.
    #[serde(default)]
    pub(crate) timeout_ms: Option<u64>,
    /// OTLP resource attribute `service.name` (default `zt-audit`).
    #[serde(default)]
    pub(crate) service_name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FormatJson {
    Otlp,
    Ndjson,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditRouteJson {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) route_names: Option<Vec<String>>,
    #[serde(default, rename = "match")]
    pub(crate) matcher: Option<RouteMatchJson>,
    #[serde(default)]
    pub(crate) sample_allowed: Option<f64>,
    #[serde(default)]
    pub(crate) query: Option<QueryJson>,
}
