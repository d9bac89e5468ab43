//! The rate-limit filter's configuration as the operator writes it: serde structs only,
//! `deny_unknown_fields` on every one; [`super::compile`] checks them.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::identity_source::IdentitySourceJson;
use crate::routes::RouteMatchJson;

/// The plugin configuration (`config.configuration` of the Envoy Wasm filter).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RateLimitConfigJson {
    /// Default `"zt_jwt"`: the caller zt-jwt verified (its filter-state entry). `{"jwt_authn":
    /// [{"payload_in_metadata": "payload", "issuer": "https://...", "provider": "corp"}]}` takes
    /// the payload of that issuer Envoy's
    /// `jwt_authn` filter (or Istio's `RequestAuthentication`) verified, from the stream's
    /// dynamic metadata ([`crate::identity_source`]).
    #[serde(default)]
    pub(crate) identity_source: Option<IdentitySourceJson>,
    /// Named limits, name → limit; each used by a route rule, `defaults` or a fallback.
    pub(crate) limits: BTreeMap<String, LimitJson>,
    /// Required: the limits of requests no route rule selects, and (unless a rule says
    /// otherwise) of every rule. `{"limits": []}` says, explicitly, that such requests are
    /// not limited.
    pub(crate) defaults: DefaultsJson,
    /// Default none. Route rules, selected as the authorization filter selects its rules
    /// (route metadata `filter_metadata.zt.ratelimit_route`, Envoy route name, `match`).
    #[serde(default)]
    pub(crate) routes: Vec<RouteJson>,
    /// Default 10000. Buckets each local limit can hold at once: its table in shared memory
    /// has this many slots, created at start.
    #[serde(default = "default_max_keys")]
    pub(crate) max_keys: u64,
    /// Default 10. How often idle buckets are swept out of the tables.
    #[serde(default = "default_sweep_seconds")]
    pub(crate) sweep_seconds: u64,
    #[serde(default)]
    pub(crate) headers: HeadersJson,
    /// Required when a limit is `global` or `local_then_global`.
    #[serde(default)]
    pub(crate) global: Option<GlobalJson>,
    /// Default `false`. `true` records the stage's time on each request in the histogram
    /// `zt_ratelimit.latency_us` (microseconds, from the stage's start to its decision, waits for keys or a service included); costs clock reads and a metric
    /// call per request.
    #[serde(default)]
    pub(crate) latency_histogram: bool,
}

fn default_max_keys() -> u64 {
    10_000
}

fn default_sweep_seconds() -> u64 {
    10
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DefaultsJson {
    pub(crate) limits: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RouteJson {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) route_names: Option<Vec<String>>,
    #[serde(default, rename = "match")]
    pub(crate) matcher: Option<RouteMatchJson>,
    /// Limits applied after the inherited defaults. A rule with no limit in effect (`[]` and
    /// `inherit_defaults: false`) exempts its requests, explicitly.
    #[serde(default)]
    pub(crate) limits: Vec<String>,
    #[serde(default = "yes")]
    pub(crate) inherit_defaults: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LimitJson {
    /// Requests per window (`q` of `RateLimit-Policy`). Local limits only.
    #[serde(default)]
    pub(crate) quota: Option<u64>,
    /// The window over which `quota` refills (`w`). Local limits only.
    #[serde(default)]
    pub(crate) window_seconds: Option<u64>,
    /// Default `quota`. How many requests a full bucket admits at once.
    #[serde(default)]
    pub(crate) burst: Option<u64>,
    /// What the bucket is per: the values below, combined. `[]` is one bucket for all.
    pub(crate) key: Vec<KeyPartJson>,
    #[serde(default)]
    pub(crate) mode: Mode,
    /// Default `false`. Count and record, never refuse.
    #[serde(default)]
    pub(crate) advisory: bool,
    /// Default `deny`: a request whose key cannot be built (a claim or header it lacks) or
    /// placed (the table is full) is refused. `{"fallback": "<limit>"}` applies that limit
    /// instead.
    #[serde(default)]
    pub(crate) unkeyed: UnkeyedJson,
}

/// One value a bucket key is made of.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum KeyPartJson {
    /// A verified claim: `"sub"`, `"client_id"`, or a path `"org.id"` / `["org", "id"]`;
    /// strings, numbers and booleans only.
    Claim(ClaimPath),
    /// The JWT provider that verified the token.
    Provider,
    /// A request header's value (lower-case name).
    Header(String),
    /// The connection's direct peer address, never one taken from `X-Forwarded-For`. A
    /// request whose peer is unknown has no key (see `unkeyed`).
    SourceIp,
    /// The direct peer's network: `{"ipv4": 24, "ipv6": 64}`.
    SourcePrefix(PrefixJson),
    /// The remote (client) address Envoy derives from `X-Forwarded-For` by the listener's
    /// `use_remote_address` and `xff_num_trusted_hops`: the client behind trusted proxies. As
    /// forgeable as those settings allow (with Envoy's defaults, by any client).
    RemoteIp,
    /// The selected route rule's name (`defaults` for none).
    Route,
    /// The request method.
    Method,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum ClaimPath {
    Dotted(String),
    Segments(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PrefixJson {
    pub(crate) ipv4: u8,
    pub(crate) ipv6: u8,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Mode {
    /// Buckets in this Envoy's shared memory, exact across its workers.
    #[default]
    Local,
    /// Counted by the rate-limit service only.
    Global,
    /// The local bucket first; requests it admits are counted by the service too.
    LocalThenGlobal,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum UnkeyedJson {
    #[default]
    Deny,
    Fallback(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HeadersJson {
    /// Default `true`. `RateLimit-Policy` and `RateLimit` on admitted responses too (always on
    /// 429).
    #[serde(default = "yes")]
    pub(crate) on_admitted: bool,
    /// Default `false`. Also `X-RateLimit-Limit`, `-Remaining`, `-Reset` of the tightest limit,
    /// as Envoy's own rate-limit filters send them.
    #[serde(default)]
    pub(crate) x_ratelimit: bool,
}

impl Default for HeadersJson {
    fn default() -> Self {
        Self { on_admitted: true, x_ratelimit: false }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GlobalJson {
    /// The Envoy cluster of the rate-limit service (HTTP/2, gRPC).
    pub(crate) cluster: String,
    /// The `domain` of `ShouldRateLimit` (Limitador: the limits' `namespace`).
    pub(crate) domain: String,
    /// Default 100.
    #[serde(default = "default_timeout_ms")]
    pub(crate) timeout_ms: u64,
    /// Default `deny`: when the service fails or times out, enforced global limits refuse
    /// (503). `allow` lets the request through.
    #[serde(default)]
    pub(crate) on_error: OnError,
}

fn default_timeout_ms() -> u64 {
    100
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum OnError {
    #[default]
    Deny,
    Allow,
}
