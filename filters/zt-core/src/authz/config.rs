//! The authorization filter's configuration as the operator writes it: serde structs only,
//! `deny_unknown_fields` on every one. Where the vocabulary is Istio's `AuthorizationPolicy`,
//! Istio's camelCase names are kept verbatim (`notPrincipals`, `ipBlocks`); our own fields are
//! snake_case. Conditions are in `condition_json.rs`; [`super::compile`] turns both into checked
//! types.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::condition_json::{ClaimPathJson, ConditionJson};
use crate::identity_source::IdentitySourceJson;
use crate::routes::RouteMatchJson;

/// The plugin configuration (`config.configuration` of the Envoy Wasm filter).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuthzConfigJson {
    /// Default `zt`. Realm of the `WWW-Authenticate` challenge (RFC 6750 §3) on 401 and 403.
    #[serde(default = "default_realm")]
    pub(crate) realm: String,
    /// Default none. A label of this filter instance (`production`) that `environment`
    /// conditions compare a claim with.
    #[serde(default)]
    pub(crate) environment: Option<String>,
    /// Default `false`. `true` is a dry run of the whole filter: every denial is recorded as
    /// `advisory_deny` and the request passes. Never leave it on once rolled out.
    #[serde(default)]
    pub(crate) advisory: bool,
    /// Default none: scopes come from the identity (`scope`, space-delimited, or `scp`). A claim
    /// path (`"permissions"`, `"realm_access.roles"`) holding a space-delimited string or an
    /// array of strings, for issuers that put scopes elsewhere.
    #[serde(default)]
    pub(crate) scope_claim: Option<ClaimPathJson>,
    /// Default `"zt_jwt"`: the caller zt-jwt verified (its filter-state entry). `{"jwt_authn":
    /// [{"payload_in_metadata": "payload", "issuer": "https://...", "provider": "corp"}]}` takes
    /// the payload of that issuer Envoy's
    /// `jwt_authn` filter (or Istio's `RequestAuthentication`) verified, from the stream's
    /// dynamic metadata ([`crate::identity_source`]).
    #[serde(default)]
    pub(crate) identity_source: Option<IdentitySourceJson>,
    /// Default none. Named policies, id → policy; each must be used by a route rule or by
    /// `defaults`.
    #[serde(default, deserialize_with = "unique_keys")]
    pub(crate) policies: BTreeMap<String, PolicyJson>,
    /// Default none: a request that no route rule selects is denied (`no_policy_matched`).
    #[serde(default)]
    pub(crate) defaults: Option<DefaultsJson>,
    /// Default none. Route rules: which policies apply to which requests.
    #[serde(default)]
    pub(crate) routes: Vec<RouteJson>,
    /// Default `false`. `true` records the stage's time on each request in the histogram
    /// `zt_authz.latency_us` (microseconds, from the stage's start to its decision, waits for keys or a service included); costs clock reads and a metric
    /// call per request.
    #[serde(default)]
    pub(crate) latency_histogram: bool,
}

fn default_realm() -> String {
    "zt".to_owned()
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DefaultsJson {
    /// Policies applied to requests that no route rule selects, and, before their own, to every
    /// route rule that inherits them. Not empty.
    pub(crate) policies: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RouteJson {
    /// Unique; route metadata (`filter_metadata.zt.authz_route`) selects the rule by it, and
    /// the decision record reports it.
    pub(crate) name: String,
    /// Default none. Envoy route names (`xds.route_name`) that select this rule; each name
    /// may appear in one rule only.
    #[serde(default)]
    pub(crate) route_names: Option<Vec<String>>,
    /// Default none: only metadata or a route name selects the rule.
    #[serde(default, rename = "match")]
    pub(crate) matcher: Option<RouteMatchJson>,
    /// Default none. Policy ids, after the inherited defaults.
    #[serde(default)]
    pub(crate) policies: Vec<String>,
    /// Default `true`: `defaults.policies` apply too (a default DENY keeps holding). `false`
    /// drops them for this rule.
    #[serde(default = "yes")]
    pub(crate) inherit_defaults: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PolicyJson {
    /// Required. `ALLOW`, `DENY` or `AUDIT` (Istio's words).
    pub(crate) action: Action,
    /// Default `false`. `true` evaluates and records the policy without enforcing it (see
    /// `decide.rs` for how advisory policies combine).
    #[serde(default)]
    pub(crate) advisory: bool,
    /// Required, not empty: the policy matches when any rule matches; `[{}]` matches every
    /// request.
    pub(crate) rules: Vec<RuleJson>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub(crate) enum Action {
    #[serde(rename = "ALLOW")]
    Allow,
    #[serde(rename = "DENY")]
    Deny,
    #[serde(rename = "AUDIT")]
    Audit,
}

/// Istio's `Rule`: `from`, `to` and `when` must all hold; absent ones place no constraint.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleJson {
    /// Some entry holds.
    #[serde(default)]
    pub(crate) from: Option<Vec<FromJson>>,
    /// Some entry holds.
    #[serde(default)]
    pub(crate) to: Option<Vec<ToJson>>,
    /// Every entry holds.
    #[serde(default)]
    pub(crate) when: Option<Vec<ConditionJson>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FromJson {
    pub(crate) source: SourceJson,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ToJson {
    pub(crate) operation: OperationJson,
}

/// Istio's `Source`: every field given holds; within one, some value matches (`notX`: none).
/// Every field is optional (absent: no constraint) and, when given, a non-empty list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct SourceJson {
    /// The mTLS peer's SPIFFE ID without `spiffe://`: `cluster.local/ns/shop/sa/web`.
    pub(crate) principals: Option<Vec<String>>,
    pub(crate) not_principals: Option<Vec<String>>,
    /// The identity's `<iss>/<sub>`.
    pub(crate) request_principals: Option<Vec<String>>,
    pub(crate) not_request_principals: Option<Vec<String>>,
    /// The `<ns>` of the peer's `/ns/<ns>/sa/<sa>` SPIFFE path.
    pub(crate) namespaces: Option<Vec<String>>,
    pub(crate) not_namespaces: Option<Vec<String>>,
    /// IPs or CIDRs, against the connection's direct peer (never `X-Forwarded-For`).
    pub(crate) ip_blocks: Option<Vec<String>>,
    pub(crate) not_ip_blocks: Option<Vec<String>>,
    /// IPs or CIDRs, against the remote (client) address Envoy derives from `X-Forwarded-For`
    /// by the listener's `use_remote_address` and `xff_num_trusted_hops`.
    pub(crate) remote_ip_blocks: Option<Vec<String>>,
    pub(crate) not_remote_ip_blocks: Option<Vec<String>>,
}

/// Istio's `Operation`. Every field is optional (absent: no constraint) and, when given, a
/// non-empty list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct OperationJson {
    /// `:authority`, case-insensitive; a value without a port matches any port.
    pub(crate) hosts: Option<Vec<String>>,
    pub(crate) not_hosts: Option<Vec<String>>,
    /// `:method`, exact and case-sensitive.
    pub(crate) methods: Option<Vec<String>>,
    pub(crate) not_methods: Option<Vec<String>>,
    /// `:path` without query and fragment: exact, `prefix*`, `*suffix`, `*`, or a template
    /// with `{*}` (one segment) and `{**}` (the rest, last only).
    pub(crate) paths: Option<Vec<String>>,
    pub(crate) not_paths: Option<Vec<String>>,
}

/// A JSON object into a map, refusing a key given twice: serde_json would keep the last one
/// and silently drop the first policy.
fn unique_keys<'de, D, T>(deserializer: D) -> Result<BTreeMap<String, T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Unique<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for Unique<T> {
        type Value = BTreeMap<String, T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object of policies by id")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(key) = map.next_key::<String>()? {
                if out.contains_key(&key) {
                    return Err(de::Error::custom(format!("`{key}` is defined twice")));
                }
                let value = map.next_value()?;
                out.insert(key, value);
            }
            Ok(out)
        }
    }
    deserializer.deserialize_map(Unique(std::marker::PhantomData))
}
