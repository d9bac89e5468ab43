//! The suite's configuration: one section per stage, each exactly that filter's own schema and
//! parsed by that filter's own parser, so a section means what the single filter's
//! configuration means. A missing section is that stage off.
//!
//! The suite hands identity and decisions between its stages in memory. Envoy's own filters
//! and access log can read them only from filter state, so `filter_state: true` makes the suite
//! write them there as one entry ([`SuiteState`] under [`crate::filter_state::SUITE`]).

use serde::Serialize;
use serde_json::{Map, Value};

use crate::ConfigError;
use crate::audit::{AuditConfig, StageRecord};
use crate::authz::AuthzConfig;
use crate::identity_source::{self, IdentitySource};
use crate::jwt::{Identity, JwtFilterConfig};
use crate::ratelimit::RateLimitConfig;

/// The section names, in the order the stages run.
pub const SECTIONS: [&str; 4] = ["jwt", "authz", "ratelimit", "audit"];

/// The key beside the sections that asks for the filter-state entry.
const FILTER_STATE: &str = "filter_state";

pub struct SuiteConfig {
    pub jwt: Option<JwtFilterConfig>,
    pub authz: Option<AuthzConfig>,
    pub ratelimit: Option<RateLimitConfig>,
    pub audit: Option<AuditConfig>,
    /// Whether the stages' results are written to filter state ([`SuiteState`]); off by
    /// default, since it costs a host call and a serialisation per request.
    pub filter_state: bool,
    /// Without a `jwt` section, where the later stages take the caller from (beside the
    /// sections, once for all of them: [`crate::identity_source`]).
    pub identity_source: IdentitySource,
}

impl SuiteConfig {
    /// Parses `{"jwt": {...}, "authz": {...}, "ratelimit": {...}, "audit": {...}}`, and the
    /// optional `filter_state: true|false` and `identity_source`. An error inside a section
    /// names its path with the section first (`authz.policies.admin...`).
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        let mut sections = ConfigError::parse_json::<Map<String, Value>>(bytes)?;
        let filter_state = match sections.remove(FILTER_STATE) {
            None => false,
            Some(Value::Bool(on)) => on,
            Some(_) => return Err(ConfigError::new(FILTER_STATE, "expected true or false")),
        };
        let identity_source = sections.remove(identity_source::FIELD);
        if let Some(unknown) = sections.keys().find(|name| !SECTIONS.contains(&name.as_str())) {
            return Err(ConfigError::new(
                unknown.clone(),
                format!(
                    "unknown section, expected one of {} (or {FILTER_STATE}, {})",
                    SECTIONS.join(", "),
                    identity_source::FIELD
                ),
            ));
        }
        // One source for every stage: a section of its own would let two stages of one request
        // see two different callers.
        if let Some((name, _)) = sections.iter().find(|(_, section)| section.get(identity_source::FIELD).is_some()) {
            return Err(ConfigError::new(
                format!("{name}.{}", identity_source::FIELD),
                "set it once for the suite, beside the sections",
            ));
        }
        let identity_source = match identity_source {
            None => IdentitySource::ZtJwt,
            Some(_) if sections.contains_key("jwt") => {
                return Err(ConfigError::new(
                    identity_source::FIELD,
                    "the jwt section verifies the caller: a suite takes identity_source only without one",
                ));
            }
            Some(value) => identity_source::from_value(&value)?,
        };
        let config = Self {
            jwt: section(&mut sections, "jwt", JwtFilterConfig::from_json)?,
            authz: section(&mut sections, "authz", AuthzConfig::from_json)?,
            ratelimit: section(&mut sections, "ratelimit", RateLimitConfig::from_json)?,
            audit: section(&mut sections, "audit", AuditConfig::from_json)?,
            filter_state,
            identity_source,
        };
        if config.jwt.is_none() && config.authz.is_none() && config.ratelimit.is_none() && config.audit.is_none() {
            return Err(ConfigError::new(
                "(root)",
                format!("no section: give at least one of {}", SECTIONS.join(", ")),
            ));
        }
        Ok(config)
    }
}

/// What the suite writes to filter state when asked: who the caller is and what each stage
/// decided, for Envoy's access log (`%FILTER_STATE(wasm.zt.suite:PLAIN)%`) or a later filter.
/// A stage that did not run (off, or the request was answered before it) is absent.
#[derive(Debug, Serialize)]
pub struct SuiteState<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<Principal<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt: Option<&'a StageRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authz: Option<&'a StageRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratelimit: Option<&'a StageRecord>,
}

/// The verified caller as the entry names it: who, never the token's other claims, which an
/// access log (unlike the audit record, whose claims are redacted by its configuration) would
/// write out as they came.
#[derive(Debug, Serialize)]
pub struct Principal<'a> {
    pub provider: &'a str,
    pub iss: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spiffe_id: Option<&'a str>,
}

impl<'a> Principal<'a> {
    pub fn of(identity: &'a Identity) -> Self {
        Self {
            provider: &identity.provider,
            iss: &identity.iss,
            sub: identity.sub.as_deref(),
            spiffe_id: identity.spiffe_id.as_deref(),
        }
    }
}

fn section<T>(
    sections: &mut Map<String, Value>,
    name: &str,
    parse: impl FnOnce(&[u8]) -> Result<T, ConfigError>,
) -> Result<Option<T>, ConfigError> {
    let Some(value) = sections.remove(name) else { return Ok(None) };
    // Re-encoding one section at configuration time lets its own parser report serde's
    // errors with their paths, exactly as the single filter would.
    let bytes = serde_json::to_vec(&value).map_err(|e| ConfigError::new(name, e.to_string()))?;
    parse(&bytes).map(Some).map_err(|e| {
        let path = if e.path == "(root)" { name.to_owned() } else { format!("{name}.{}", e.path) };
        ConfigError::new(path, e.message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn each_section_is_its_filters_schema_and_a_missing_one_is_off() {
        let config = SuiteConfig::from_json(
            br#"{"authz": {"policies": {"open": {"action": "ALLOW", "rules": [{}]}}, "defaults": {"policies": ["open"]}},
                 "audit": {}}"#,
        )
        .unwrap();
        assert!(config.jwt.is_none() && config.ratelimit.is_none());
        assert!(config.authz.is_some() && config.audit.is_some());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn an_error_names_its_section_then_the_filters_path() {
        let err = SuiteConfig::from_json(br#"{"authz": {"policies": {"admin": {"action": "MAYBE"}}}}"#).err().unwrap();
        assert!(err.path.starts_with("authz.policies"), "{err}");
        let err = SuiteConfig::from_json(br#"{"jwt": {"providers": []}}"#).err().unwrap();
        assert!(err.path.starts_with("jwt"), "{err}");
        let err = SuiteConfig::from_json(br#"{"authz": 7}"#).err().unwrap();
        assert_eq!(err.path, "authz", "{err}");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn unknown_and_empty_configurations_are_refused() {
        let err = SuiteConfig::from_json(br#"{"jwt_authn": {}}"#).err().unwrap();
        assert_eq!(err.path, "jwt_authn");
        assert!(err.message.contains("unknown section"), "{err}");
        let err = SuiteConfig::from_json(b"{}").err().unwrap();
        assert!(err.message.contains("no section"), "{err}");
        let err = SuiteConfig::from_json(br#"{"filter_state": true}"#).err().unwrap();
        assert!(err.message.contains("no section"), "the option alone configures no stage: {err}");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn the_identity_source_is_set_once_and_only_without_a_jwt_section() {
        let adopted = r#""identity_source": {"jwt_authn": [{"payload_in_metadata": "payload", "issuer": "https://corp.example", "provider": "corp"}]}"#;
        let config = SuiteConfig::from_json(format!(r#"{{"audit": {{}}, {adopted}}}"#).as_bytes()).unwrap();
        let IdentitySource::JwtAuthn(payloads) = &config.identity_source else { panic!("not adopted") };
        assert_eq!((payloads[0].payload_in_metadata.as_str(), payloads[0].provider.as_str()), ("payload", "corp"));
        assert_eq!(SuiteConfig::from_json(br#"{"audit": {}}"#).unwrap().identity_source, IdentitySource::ZtJwt);

        let jwt =
            r#""jwt": {"providers": [{"name": "p", "issuer": "https://p", "audiences": ["a"], "jwks": {"keys": []}}]}"#;
        let err = SuiteConfig::from_json(format!(r#"{{{jwt}, "audit": {{}}, {adopted}}}"#).as_bytes()).err().unwrap();
        assert_eq!(err.path, "identity_source", "{err}");
        let err = SuiteConfig::from_json(br#"{"audit": {"identity_source": "zt_jwt"}}"#).err().unwrap();
        assert_eq!(err.path, "audit.identity_source", "{err}");
        let err = SuiteConfig::from_json(br#"{"audit": {}, "identity_source": {"jwt_authn": [{"key": "x"}]}}"#)
            .err()
            .unwrap();
        assert!(err.path.starts_with("identity_source.jwt_authn[0]"), "{err}");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn the_filter_state_entry_is_off_unless_asked_for() {
        let audit_only = |extra: &str| SuiteConfig::from_json(format!(r#"{{"audit": {{}}{extra}}}"#).as_bytes());
        assert!(!audit_only("").unwrap().filter_state);
        assert!(audit_only(r#", "filter_state": true"#).unwrap().filter_state);
        let err = audit_only(r#", "filter_state": "yes""#).err().unwrap();
        assert_eq!(err.path, "filter_state", "{err}");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn the_entry_names_the_caller_without_the_other_claims() {
        let claims = serde_json::json!({"iss": "https://idp", "sub": "alice", "email": "alice@example.com"});
        let identity = Identity::from_claims("corp", claims.as_object().unwrap().clone());
        let state = SuiteState { identity: Some(Principal::of(&identity)), jwt: None, authz: None, ratelimit: None };
        let text = serde_json::to_string(&state).unwrap();
        assert_eq!(text, r#"{"identity":{"provider":"corp","iss":"https://idp","sub":"alice"}}"#);
    }
}
