//! The suite's configuration: one section per stage, each exactly that filter's own schema and
//! parsed by that filter's own parser, so a section means what the single filter's
//! configuration means. A missing section is that stage off.

use serde_json::{Map, Value};

use crate::ConfigError;
use crate::audit::AuditConfig;
use crate::authz::AuthzConfig;
use crate::jwt::JwtFilterConfig;
use crate::ratelimit::RateLimitConfig;

/// The section names, in the order the stages run.
pub const SECTIONS: [&str; 4] = ["jwt", "authz", "ratelimit", "audit"];

pub struct SuiteConfig {
    pub jwt: Option<JwtFilterConfig>,
    pub authz: Option<AuthzConfig>,
    pub ratelimit: Option<RateLimitConfig>,
    pub audit: Option<AuditConfig>,
}

impl SuiteConfig {
    /// Parses `{"jwt": {...}, "authz": {...}, "ratelimit": {...}, "audit": {...}}`. An error
    /// inside a section names its path with the section first (`authz.policies.admin...`).
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        let mut sections = ConfigError::parse_json::<Map<String, Value>>(bytes)?;
        if let Some(unknown) = sections.keys().find(|name| !SECTIONS.contains(&name.as_str())) {
            return Err(ConfigError::new(
                unknown.clone(),
                format!("unknown section, expected one of {}", SECTIONS.join(", ")),
            ));
        }
        let config = Self {
            jwt: section(&mut sections, "jwt", JwtFilterConfig::from_json)?,
            authz: section(&mut sections, "authz", AuthzConfig::from_json)?,
            ratelimit: section(&mut sections, "ratelimit", RateLimitConfig::from_json)?,
            audit: section(&mut sections, "audit", AuditConfig::from_json)?,
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
    }
}
