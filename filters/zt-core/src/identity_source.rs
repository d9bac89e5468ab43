//! Where the authorization, rate-limit and audit filters take the verified caller from: zt-jwt's
//! filter-state entry (the default), or the payload Envoy's own `jwt_authn` filter verified and
//! left in the stream's dynamic metadata (`payload_in_metadata`), which is also what Istio's
//! `RequestAuthentication` configures. The second lets a team keep the JWT verification it has
//! and adopt the other filters one at a time.
//!
//! Only `jwt_authn` writes its own metadata namespace, and only after it verified the token: a
//! client cannot set dynamic metadata. When `jwt_authn` let a request through without a token
//! (`allow_missing`), or is not in the chain at all, the namespace is absent and the caller is
//! anonymous: rules that need an identity then deny.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Map, Number, Value};

use crate::ConfigError;
use crate::jwt::Identity;

/// Envoy's metadata namespace of its JWT filter.
pub const JWT_AUTHN_NAMESPACE: &str = "envoy.filters.http.jwt_authn";

/// The configuration field, the same in the authorization, rate-limit and audit filters and at
/// the top of the suite's configuration.
pub const FIELD: &str = "identity_source";

/// Where the verified caller comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum IdentitySource {
    /// zt-jwt's filter-state entry [`crate::filter_state::IDENTITY`] (in the suite, its own JWT
    /// stage).
    #[default]
    ZtJwt,
    /// `jwt_authn`'s verified payloads, tried in this order; the first present names the caller.
    JwtAuthn(Vec<JwtAuthnPayload>),
}

/// One `jwt_authn` provider's payload in the stream's dynamic metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtAuthnPayload {
    /// The provider's `payload_in_metadata` (Istio: `payload`, the same for every `jwtRules` entry).
    pub payload_in_metadata: String,
    /// The `iss` the payload must carry. Required: where several issuers share one key (Istio),
    /// a token of another issuer jwt_authn accepts must not pass for this provider's caller.
    pub issuer: String,
    /// The identity's `provider` (what rules, rate-limit keys and records call it); the key
    /// unless given.
    pub provider: String,
}

/// The field as the operator writes it: `"zt_jwt"`, or
/// `{"jwt_authn": [{"payload_in_metadata": "...", "issuer": "...", "provider": "..."}]}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub(crate) enum IdentitySourceJson {
    ZtJwt,
    JwtAuthn(Vec<JwtAuthnPayloadJson>),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct JwtAuthnPayloadJson {
    payload_in_metadata: String,
    issuer: String,
    #[serde(default)]
    provider: Option<String>,
}

impl IdentitySourceJson {
    /// Checks the field; errors name paths under `at` (the field's own path).
    pub(crate) fn compile(self, at: &str) -> Result<IdentitySource, ConfigError> {
        let payloads = match self {
            IdentitySourceJson::ZtJwt => return Ok(IdentitySource::ZtJwt),
            IdentitySourceJson::JwtAuthn(payloads) => payloads,
        };
        if payloads.is_empty() {
            return Err(ConfigError::new(format!("{at}.jwt_authn"), "must name at least one payload_in_metadata"));
        }
        let mut compiled: Vec<JwtAuthnPayload> = Vec::with_capacity(payloads.len());
        for (index, payload) in payloads.into_iter().enumerate() {
            let path = format!("{at}.jwt_authn[{index}]");
            if payload.payload_in_metadata.is_empty() {
                return Err(ConfigError::new(format!("{path}.payload_in_metadata"), "must not be empty"));
            }
            if payload.issuer.is_empty() {
                return Err(ConfigError::new(format!("{path}.issuer"), "must not be empty"));
            }
            if compiled
                .iter()
                .any(|c| c.payload_in_metadata == payload.payload_in_metadata && c.issuer == payload.issuer)
            {
                return Err(ConfigError::new(format!("{path}.issuer"), "named twice for this payload_in_metadata"));
            }
            if payload.provider.as_deref() == Some("") {
                return Err(ConfigError::new(format!("{path}.provider"), "must not be empty"));
            }
            let provider = payload.provider.unwrap_or_else(|| payload.payload_in_metadata.clone());
            let JwtAuthnPayloadJson { payload_in_metadata, issuer, .. } = payload;
            compiled.push(JwtAuthnPayload { payload_in_metadata, issuer, provider });
        }
        Ok(IdentitySource::JwtAuthn(compiled))
    }
}

/// The optional field of a filter's configuration, checked.
pub(crate) fn compile_field(field: Option<IdentitySourceJson>) -> Result<IdentitySource, ConfigError> {
    field.map_or(Ok(IdentitySource::ZtJwt), |json| json.compile(FIELD))
}

/// The field as the suite holds it beside its sections, checked; errors name paths under it.
pub(crate) fn from_value(value: &Value) -> Result<IdentitySource, ConfigError> {
    let bytes = serde_json::to_vec(value).map_err(|e| ConfigError::new(FIELD, e.to_string()))?;
    let json = ConfigError::parse_json::<IdentitySourceJson>(&bytes).map_err(|e| {
        let path = if e.path == "(root)" { FIELD.to_owned() } else { format!("{FIELD}.{}", e.path) };
        ConfigError::new(path, e.message)
    })?;
    json.compile(FIELD)
}

/// Why the stream's metadata gave no identity although it holds one: a broken deployment,
/// which the enforcing filters refuse rather than treat the caller as anonymous.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdoptError {
    /// The `metadata` attribute is not a serialized `envoy.config.core.v3.Metadata`.
    NotMetadata,
    /// The payload under this key is not a JSON object.
    NotAnObject(String),
    /// A payload is there, of an issuer no entry names: jwt_authn accepts an issuer these
    /// filters were not told about.
    UnknownIssuer(String),
    /// Envoy did not answer the `metadata` attribute.
    Unreadable,
}

impl std::fmt::Display for AdoptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdoptError::NotMetadata => write!(f, "the stream's dynamic metadata does not decode"),
            AdoptError::NotAnObject(key) => {
                write!(f, "metadata {JWT_AUTHN_NAMESPACE}.{key} is not a token payload")
            }
            AdoptError::UnknownIssuer(key) => write!(
                f,
                "metadata {JWT_AUTHN_NAMESPACE}.{key} holds a payload whose iss no identity_source entry names"
            ),
            AdoptError::Unreadable => write!(f, "the stream's dynamic metadata cannot be read"),
        }
    }
}

/// The caller `jwt_authn` verified, from the stream's dynamic metadata as Envoy answers the
/// `metadata` attribute (a serialized `envoy.config.core.v3.Metadata`): the first entry of
/// `payloads` whose key holds a payload of its issuer. `None` when no configured key holds a
/// payload (no token, or no `jwt_authn` before this filter); an error when one does but of an
/// issuer no entry names.
pub fn adopt(metadata: &[u8], payloads: &[JwtAuthnPayload]) -> Result<Option<Identity>, AdoptError> {
    let metadata = <proto::Metadata as prost::Message>::decode(metadata).map_err(|_| AdoptError::NotMetadata)?;
    let Some(namespace) = metadata.filter_metadata.get(JWT_AUTHN_NAMESPACE) else { return Ok(None) };
    let mut unnamed = None;
    for payload in payloads {
        let Some(value) = namespace.fields.get(&payload.payload_in_metadata) else { continue };
        let Some(proto::Kind::Struct(claims)) = &value.kind else {
            return Err(AdoptError::NotAnObject(payload.payload_in_metadata.clone()));
        };
        let issuer = claims.fields.get("iss").and_then(|iss| match &iss.kind {
            Some(proto::Kind::String(iss)) => Some(iss.as_str()),
            _ => None,
        });
        if issuer != Some(payload.issuer.as_str()) {
            unnamed.get_or_insert_with(|| payload.payload_in_metadata.clone());
            continue;
        }
        let mut identity = Identity::from_claims(&payload.provider, object(claims));
        // The claims are what jwt_authn verified; no SPIFFE provider vouched for `sub`.
        identity.spiffe_id = None;
        return Ok(Some(identity));
    }
    unnamed.map_or(Ok(None), |key| Err(AdoptError::UnknownIssuer(key)))
}

fn object(fields: &proto::Struct) -> Map<String, Value> {
    fields.fields.iter().map(|(name, value)| (name.clone(), json(value))).collect()
}

/// A `google.protobuf.Value` as the JSON the token carried. Struct numbers are doubles; a whole
/// number within ±2^53 was an integer in the token (`exp`, `iat`, ids) and becomes one again,
/// so that rules comparing it with an integer match as they would on zt-jwt's identity.
fn json(value: &proto::Value) -> Value {
    match &value.kind {
        None | Some(proto::Kind::Null(_)) => Value::Null,
        Some(proto::Kind::Number(n)) => number(*n),
        Some(proto::Kind::String(s)) => Value::String(s.clone()),
        Some(proto::Kind::Bool(b)) => Value::Bool(*b),
        Some(proto::Kind::Struct(s)) => Value::Object(object(s)),
        Some(proto::Kind::List(list)) => Value::Array(list.values.iter().map(json).collect()),
    }
}

fn number(n: f64) -> Value {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if n.fract() == 0.0 && n.abs() <= EXACT {
        // In range and whole: the conversion is exact.
        #[allow(clippy::cast_possible_truncation)]
        return Value::Number(Number::from(n as i64));
    }
    Number::from_f64(n).map_or(Value::Null, Value::Number)
}

/// The protobuf messages Envoy serializes the `metadata` attribute as:
/// `envoy.config.core.v3.Metadata` and the `google.protobuf.Struct` family it holds.
mod proto {
    use super::HashMap;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Metadata {
        #[prost(map = "string, message", tag = "1")]
        pub filter_metadata: HashMap<String, Struct>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Struct {
        #[prost(map = "string, message", tag = "1")]
        pub fields: HashMap<String, Value>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Value {
        #[prost(oneof = "Kind", tags = "1, 2, 3, 4, 5, 6")]
        pub kind: Option<Kind>,
    }

    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Kind {
        #[prost(int32, tag = "1")]
        Null(i32),
        #[prost(double, tag = "2")]
        Number(f64),
        #[prost(string, tag = "3")]
        String(String),
        #[prost(bool, tag = "4")]
        Bool(bool),
        #[prost(message, tag = "5")]
        Struct(Struct),
        #[prost(message, tag = "6")]
        List(ListValue),
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ListValue {
        #[prost(message, repeated, tag = "1")]
        pub values: Vec<Value>,
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use serde_json::json;
    use wasm_bindgen_test::wasm_bindgen_test;

    use super::*;

    /// What Envoy 1.40 answered for the `metadata` attribute after `jwt_authn` (provider with
    /// `payload_in_metadata: corp_payload`) verified an HS256 token with claims `iss`, `sub`,
    /// `iat`, `nbf`, `exp`, `scope: "read write"`, `roles: ["admin", "dev"]`,
    /// `org: {"id": 7, "name": "x"}`, `n: 3` and `flag: true` (read with the abi-probe fixture).
    const ENVOY_METADATA: &str = "CpYCChxlbnZveS5maWx0ZXJzLmh0dHAuand0X2F1dGhuEvUBCvIBCgxjb3JwX3BheWxvYWQS4QEq3gEKHQoDaXNzEhYaFGh0dHBzOi8vY29ycC5leGFtcGxlChsKBXJvbGVzEhIyEAoHGgVhZG1pbgoFGgNkZXYKDgoDc3ViEgcaBWFsaWNlChAKA25iZhIJEQAAALOqxdpBCgoKBGZsYWcSAiABChAKA2lhdBIJEQAAALOqxdpBChAKA2V4cBIJEQAAAP6qxdpBCicKA29yZxIgKh4KCwoEbmFtZRIDGgF4Cg8KAmlkEgkRAAAAAAAAHEAKFQoFc2NvcGUSDBoKcmVhZCB3cml0ZQoOCgFuEgkRAAAAAAAACEA=";

    fn envoy_metadata() -> Vec<u8> {
        base64::engine::general_purpose::STANDARD.decode(ENVOY_METADATA).unwrap()
    }

    const CORP: &str = "https://corp.example";

    fn payloads(keys: &[(&str, &str)]) -> Vec<JwtAuthnPayload> {
        issued(&keys.iter().map(|(key, provider)| (*key, CORP, *provider)).collect::<Vec<_>>())
    }

    fn issued(entries: &[(&str, &str, &str)]) -> Vec<JwtAuthnPayload> {
        entries
            .iter()
            .map(|(key, issuer, provider)| JwtAuthnPayload {
                payload_in_metadata: (*key).into(),
                issuer: (*issuer).into(),
                provider: (*provider).into(),
            })
            .collect()
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn reads_the_payload_envoy_left_with_its_types() {
        let identity = adopt(&envoy_metadata(), &payloads(&[("corp_payload", "corp")])).unwrap().unwrap();
        assert_eq!(identity.provider, "corp");
        assert_eq!(identity.iss, "https://corp.example");
        assert_eq!(identity.sub.as_deref(), Some("alice"));
        assert_eq!(identity.scopes, ["read", "write"]);
        assert!(identity.exp.is_some_and(|exp| exp > 1_700_000_000));
        assert_eq!(identity.claims["roles"], json!(["admin", "dev"]));
        assert_eq!(identity.claims["org"], json!({"id": 7, "name": "x"}));
        assert_eq!(identity.claims["n"], json!(3));
        assert_eq!(identity.claims["flag"], json!(true));
        assert_eq!(identity.spiffe_id, None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn the_first_configured_payload_present_names_the_caller() {
        let both = payloads(&[("other", "partner"), ("corp_payload", "corp")]);
        assert_eq!(adopt(&envoy_metadata(), &both).unwrap().unwrap().provider, "corp");
        assert_eq!(adopt(&envoy_metadata(), &payloads(&[("other", "partner")])).unwrap(), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn the_payload_must_carry_the_entrys_issuer() {
        // Istio's way: every issuer under one key; each entry names its issuer and provider.
        let shared = issued(&[("corp_payload", "https://partner.example", "partner"), ("corp_payload", CORP, "corp")]);
        assert_eq!(adopt(&envoy_metadata(), &shared).unwrap().unwrap().provider, "corp");
        // A payload of an issuer no entry names is refused, never taken for another provider.
        let other = issued(&[("corp_payload", "https://partner.example", "partner")]);
        assert_eq!(adopt(&envoy_metadata(), &other).unwrap_err(), AdoptError::UnknownIssuer("corp_payload".into()));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn no_metadata_or_no_namespace_is_an_anonymous_caller() {
        let corp = payloads(&[("corp_payload", "corp")]);
        assert_eq!(adopt(b"", &corp).unwrap(), None);
        let other_namespace =
            proto::Metadata { filter_metadata: HashMap::from([("istio_authn".to_owned(), proto::Struct::default())]) };
        assert_eq!(adopt(&prost::Message::encode_to_vec(&other_namespace), &corp).unwrap(), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_payload_that_is_no_object_or_bytes_that_are_no_metadata_are_errors() {
        let corp = payloads(&[("corp_payload", "corp")]);
        let text = proto::Value { kind: Some(proto::Kind::String("x".into())) };
        let metadata = proto::Metadata {
            filter_metadata: HashMap::from([(
                JWT_AUTHN_NAMESPACE.to_owned(),
                proto::Struct { fields: HashMap::from([("corp_payload".to_owned(), text)]) },
            )]),
        };
        let err = adopt(&prost::Message::encode_to_vec(&metadata), &corp).unwrap_err();
        assert_eq!(err, AdoptError::NotAnObject("corp_payload".into()));
        assert_eq!(adopt(b"\xff\xff\xff", &corp).unwrap_err(), AdoptError::NotMetadata);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn numbers_come_back_as_integers_only_when_whole_and_exact() {
        assert_eq!(number(3.0), json!(3));
        assert_eq!(number(-2.0), json!(-2));
        assert_eq!(number(1.5), json!(1.5));
        assert_eq!(number(1e300), json!(1e300));
        assert_eq!(number(f64::NAN), Value::Null);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn the_field_is_checked_with_paths() {
        let parse = |text: &str| serde_json::from_str::<IdentitySourceJson>(text).unwrap().compile(FIELD);
        assert_eq!(parse(r#""zt_jwt""#).unwrap(), IdentitySource::ZtJwt);
        assert_eq!(
            parse(r#"{"jwt_authn": [{"payload_in_metadata": "payload", "issuer": "https://corp.example"}]}"#).unwrap(),
            IdentitySource::JwtAuthn(payloads(&[("payload", "payload")]))
        );
        let err = parse(r#"{"jwt_authn": []}"#).unwrap_err();
        assert_eq!(err.path, "identity_source.jwt_authn");
        let twice = r#"{"jwt_authn": [{"payload_in_metadata": "a", "issuer": "i"}, {"payload_in_metadata": "a", "issuer": "i"}]}"#;
        assert_eq!(parse(twice).unwrap_err().path, "identity_source.jwt_authn[1].issuer");
        let shared = r#"{"jwt_authn": [{"payload_in_metadata": "a", "issuer": "i"}, {"payload_in_metadata": "a", "issuer": "j"}]}"#;
        assert!(parse(shared).is_ok(), "one key, two issuers");
        let err = parse(r#"{"jwt_authn": [{"payload_in_metadata": "a", "issuer": "i", "provider": ""}]}"#).unwrap_err();
        assert_eq!(err.path, "identity_source.jwt_authn[0].provider");
        let err = parse(r#"{"jwt_authn": [{"payload_in_metadata": "a", "issuer": ""}]}"#).unwrap_err();
        assert_eq!(err.path, "identity_source.jwt_authn[0].issuer");
        assert!(
            serde_json::from_str::<IdentitySourceJson>(r#"{"jwt_authn": [{"payload_in_metadata": "a"}]}"#).is_err()
        );
        assert!(serde_json::from_str::<IdentitySourceJson>(r#"{"istio": []}"#).is_err());
    }
}
