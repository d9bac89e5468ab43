//! Conditions as the operator writes them: Istio's `{"key", "values", "notValues"}` or one of
//! our condition objects (`{"scopes": …}`, `{"claim": …}`, `{"all": […]}` …). Serde only;
//! [`super::compile`] checks them.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::Value;

/// A `when` entry, or a nested condition: Istio's `{"key", "values", "notValues"}` or exactly
/// one of our condition objects. Deserialised by [`ConditionVisitor`].
#[derive(Debug)]
pub(crate) enum ConditionJson {
    Istio { key: String, values: Option<Vec<String>>, not_values: Option<Vec<String>> },
    All(Vec<ConditionJson>),
    Any(Vec<ConditionJson>),
    Not(Box<ConditionJson>),
    Scopes(ScopesJson),
    Claim(ClaimJson),
    Issuer(Vec<String>),
    Provider(Vec<String>),
    Peer(PeerJson),
    SourceIp(Vec<String>),
    RemoteIp(Vec<String>),
    Header(HeaderJson),
    TimeWindow(TimeWindowJson),
    Environment(EnvironmentJson),
    Authenticated(bool),
}

/// Exactly one of the two.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScopesJson {
    #[serde(default)]
    pub(crate) all_of: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) any_of: Option<Vec<String>>,
}

/// A claim path and exactly one operator. Numbers compare by value (`1` equals `1.0`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClaimJson {
    pub(crate) path: ClaimPathJson,
    /// The claim equals this JSON value (not `null`).
    #[serde(default, deserialize_with = "present")]
    pub(crate) equals: Option<Value>,
    /// The claim equals one of these.
    #[serde(default)]
    pub(crate) one_of: Option<Vec<Value>>,
    /// A string claim starts with this.
    #[serde(default)]
    pub(crate) prefix: Option<String>,
    /// `true`: present and not `null`; `false`: absent or `null` (with an identity).
    #[serde(default)]
    pub(crate) exists: Option<bool>,
    /// A number claim is greater than this.
    #[serde(default)]
    pub(crate) gt: Option<f64>,
    #[serde(default)]
    pub(crate) gte: Option<f64>,
    #[serde(default)]
    pub(crate) lt: Option<f64>,
    #[serde(default)]
    pub(crate) lte: Option<f64>,
    /// An array claim has an element equal to this.
    #[serde(default, deserialize_with = "present")]
    pub(crate) contains: Option<Value>,
}

/// `"org.team"` or `["org", "team.name"]` (for member names holding a dot).
#[derive(Debug, Deserialize)]
#[serde(untagged, expecting = "a claim path: a dot-separated string or an array of member names")]
pub(crate) enum ClaimPathJson {
    Dotted(String),
    Segments(Vec<String>),
}

/// Either `spiffe_id`, or `trust_domain` with an optional `path_prefix`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PeerJson {
    /// The peer's whole SPIFFE ID, e.g. `spiffe://cluster.local/ns/shop/sa/web`.
    #[serde(default)]
    pub(crate) spiffe_id: Option<String>,
    /// The peer's trust domain, e.g. `cluster.local`.
    #[serde(default)]
    pub(crate) trust_domain: Option<String>,
    /// Default any path. The path, segment-wise, is this or lies below it (`/ns/shop`).
    #[serde(default)]
    pub(crate) path_prefix: Option<String>,
}

/// A name and exactly one of `exact`, `prefix`, `present`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HeaderJson {
    /// Case-insensitive.
    pub(crate) name: String,
    /// Some value equals this, byte for byte.
    #[serde(default)]
    pub(crate) exact: Option<String>,
    /// Some value starts with this.
    #[serde(default)]
    pub(crate) prefix: Option<String>,
    /// `true`: the header is present (even empty); `false`: it is not.
    #[serde(default)]
    pub(crate) present: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TimeWindowJson {
    /// Default every day. `mon` … `sun`.
    #[serde(default)]
    pub(crate) days: Option<Vec<String>>,
    /// `HH:MM` UTC, inclusive.
    pub(crate) start: String,
    /// `HH:MM` UTC, exclusive; before `start` for a window spanning midnight.
    pub(crate) end: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EnvironmentJson {
    pub(crate) claim: ClaimPathJson,
}

/// `Some` for any value given, `null` included (`"equals": null` is refused by the compiler
/// with a clear message, not read as "absent").
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// The members a condition object may have. Deserialised as a field identifier, so that an
/// unknown member is reported at its own path (`when[0].scope`), as derived structs do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum ConditionField {
    Key,
    Values,
    #[serde(rename = "notValues")]
    NotValues,
    All,
    Any,
    Not,
    Scopes,
    Claim,
    Issuer,
    Provider,
    Peer,
    SourceIp,
    RemoteIp,
    Header,
    TimeWindow,
    Environment,
    Authenticated,
}

impl ConditionField {
    fn name(self) -> &'static str {
        match self {
            Self::Key => "key",
            Self::Values => "values",
            Self::NotValues => "notValues",
            Self::All => "all",
            Self::Any => "any",
            Self::Not => "not",
            Self::Scopes => "scopes",
            Self::Claim => "claim",
            Self::Issuer => "issuer",
            Self::Provider => "provider",
            Self::Peer => "peer",
            Self::SourceIp => "source_ip",
            Self::RemoteIp => "remote_ip",
            Self::Header => "header",
            Self::TimeWindow => "time_window",
            Self::Environment => "environment",
            Self::Authenticated => "authenticated",
        }
    }
}

impl<'de> Deserialize<'de> for ConditionJson {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ConditionVisitor)
    }
}

/// Reads a condition member by member rather than buffering it as a `Value` first: each member
/// is deserialised through the same deserializer, so an error deep inside a nested condition
/// keeps its exact JSON path (`when[0].all[1].claim.gt`), which buffering would lose.
struct ConditionVisitor;

impl<'de> Visitor<'de> for ConditionVisitor {
    type Value = ConditionJson;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a condition: Istio's {\"key\", \"values\"} or an object such as {\"scopes\": …}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ConditionJson, A::Error> {
        let mut key: Option<String> = None;
        let mut values: Option<Vec<String>> = None;
        let mut not_values: Option<Vec<String>> = None;
        // Our condition, with the member name it came from, for messages.
        let mut ours: Option<(ConditionField, ConditionJson)> = None;
        while let Some(field) = map.next_key::<ConditionField>()? {
            let condition = match field {
                ConditionField::Key => {
                    set_once(&mut key, map.next_value()?, "key")?;
                    continue;
                }
                ConditionField::Values => {
                    set_once(&mut values, map.next_value()?, "values")?;
                    continue;
                }
                ConditionField::NotValues => {
                    set_once(&mut not_values, map.next_value()?, "notValues")?;
                    continue;
                }
                ConditionField::All => ConditionJson::All(map.next_value()?),
                ConditionField::Any => ConditionJson::Any(map.next_value()?),
                ConditionField::Not => ConditionJson::Not(map.next_value()?),
                ConditionField::Scopes => ConditionJson::Scopes(map.next_value()?),
                ConditionField::Claim => ConditionJson::Claim(map.next_value()?),
                ConditionField::Issuer => ConditionJson::Issuer(map.next_value()?),
                ConditionField::Provider => ConditionJson::Provider(map.next_value()?),
                ConditionField::Peer => ConditionJson::Peer(map.next_value()?),
                ConditionField::SourceIp => ConditionJson::SourceIp(map.next_value()?),
                ConditionField::RemoteIp => ConditionJson::RemoteIp(map.next_value()?),
                ConditionField::Header => ConditionJson::Header(map.next_value()?),
                ConditionField::TimeWindow => ConditionJson::TimeWindow(map.next_value()?),
                ConditionField::Environment => ConditionJson::Environment(map.next_value()?),
                ConditionField::Authenticated => ConditionJson::Authenticated(map.next_value()?),
            };
            if let Some((first, _)) = &ours {
                return Err(de::Error::custom(format!(
                    "holds two conditions, `{}` and `{}`: write one per object and combine them with `all`",
                    first.name(),
                    field.name()
                )));
            }
            ours = Some((field, condition));
        }
        match (key, ours) {
            (Some(key), None) => Ok(ConditionJson::Istio { key, values, not_values }),
            (None, Some((_, condition))) if values.is_none() && not_values.is_none() => Ok(condition),
            (Some(_), Some((field, _))) => Err(de::Error::custom(format!(
                "mixes Istio's `key` with `{}`: write one condition per object",
                field.name()
            ))),
            (None, Some((field, _))) => Err(de::Error::custom(format!(
                "mixes Istio's `values`/`notValues` with `{}`: they belong to a `key`",
                field.name()
            ))),
            (None, None) if values.is_some() || not_values.is_some() => Err(de::Error::missing_field("key")),
            (None, None) => Err(de::Error::custom(
                "is an empty condition: give Istio's `key` and `values`, or one of `all`, `any`, `not`, `scopes`, \
                 `claim`, `issuer`, `provider`, `peer`, `source_ip`, `remote_ip`, `header`, `time_window`, `environment`, \
                 `authenticated`",
            )),
        }
    }
}

fn set_once<T, E: de::Error>(slot: &mut Option<T>, value: T, name: &'static str) -> Result<(), E> {
    if slot.is_some() {
        return Err(E::duplicate_field(name));
    }
    *slot = Some(value);
    Ok(())
}
