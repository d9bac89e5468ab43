//! `ztctl check`: a plugin configuration through the very parser the filter runs in
//! `on_configure`, so that a bad configuration fails in the user's CI, with the same message
//! naming the field, instead of when Envoy refuses to start the filter.

use zt_core::ConfigError;
use zt_core::audit::AuditConfig;
use zt_core::authz::AuthzConfig;
use zt_core::jwt::JwtFilterConfig;
use zt_core::ratelimit::RateLimitConfig;
use zt_core::secrets::{SecretKind, SecretScope, resolve_env};
use zt_core::suite::SuiteConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    Jwt,
    Authz,
    RateLimit,
    Audit,
    /// `zt-suite`: a section per filter, each checked by that filter's parser.
    Suite,
}

impl Filter {
    /// `jwt` or `zt-jwt`, and so on.
    pub fn parse(name: &str) -> Option<Filter> {
        match name.strip_prefix("zt-").unwrap_or(name) {
            "jwt" => Some(Filter::Jwt),
            "authz" => Some(Filter::Authz),
            "ratelimit" => Some(Filter::RateLimit),
            "audit" => Some(Filter::Audit),
            "suite" => Some(Filter::Suite),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Filter::Jwt => "zt-jwt",
            Filter::Authz => "zt-authz",
            Filter::RateLimit => "zt-ratelimit",
            Filter::Audit => "zt-audit",
            Filter::Suite => "zt-suite",
        }
    }

    /// The filter's own verdict on the configuration bytes. A secret given as `{"env": "NAME"}`
    /// is taken from this process's environment as the filter takes it from the VM's; when
    /// unset here, a stand-in of the right form is checked instead and NAME is answered, so
    /// the rest of the configuration is still checked and the caller can say what was not.
    pub fn check(self, configuration: &[u8]) -> Result<Vec<String>, ConfigError> {
        let (configuration, unset) = resolve_secrets(self, configuration)?;
        let configuration = configuration.as_slice();
        match self {
            Filter::Jwt => JwtFilterConfig::from_json(configuration).map(drop),
            Filter::Authz => AuthzConfig::from_json(configuration).map(drop),
            Filter::RateLimit => RateLimitConfig::from_json(configuration).map(drop),
            Filter::Audit => AuditConfig::from_json(configuration).map(drop),
            Filter::Suite => SuiteConfig::from_json(configuration).map(drop),
        }
        .map(|()| unset)
    }
}

/// The configuration with its `{"env": ...}` secrets replaced (see [`Filter::check`]), and the
/// names of those not set in this environment.
fn resolve_secrets(filter: Filter, configuration: &[u8]) -> Result<(Vec<u8>, Vec<String>), ConfigError> {
    let scope = match filter {
        Filter::Jwt => SecretScope::Jwt,
        Filter::Audit => SecretScope::Audit,
        Filter::Suite => SecretScope::Suite,
        Filter::Authz | Filter::RateLimit => return Ok((configuration.to_vec(), Vec::new())),
    };
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(configuration) else {
        return Ok((configuration.to_vec(), Vec::new()));
    };
    let unset = std::cell::RefCell::new(Vec::new());
    let lookup = |name: &str, kind: SecretKind| {
        std::env::var(name).ok().or_else(|| {
            unset.borrow_mut().push(name.to_owned());
            Some(stand_in(kind))
        })
    };
    if !resolve_env(&mut value, scope, &lookup)? {
        return Ok((configuration.to_vec(), Vec::new()));
    }
    Ok((value.to_string().into_bytes(), unset.into_inner()))
}

/// A value of the form a secret field takes, to check the rest of a configuration whose
/// secret is not at hand.
fn stand_in(kind: SecretKind) -> String {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    match kind {
        // Long enough for HS512.
        SecretKind::HmacSecret => URL_SAFE_NO_PAD.encode([0x5a; 64]),
        SecretKind::SigningKey => {
            let pair = jwt_simple::prelude::Ed25519KeyPair::generate().to_bytes();
            let (seed, public) = pair.split_at(32);
            serde_json::json!({"kty": "OKP", "crv": "Ed25519", "kid": "stand-in",
                "d": URL_SAFE_NO_PAD.encode(seed), "x": URL_SAFE_NO_PAD.encode(public)})
            .to_string()
        }
        SecretKind::HashKey => "a stand-in of 32 bytes or more for the key".to_owned(),
        SecretKind::HeaderValue => "stand-in".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_filter_uses_its_own_parser() {
        assert!(Filter::parse("audit").unwrap().check(b"{}").is_ok());
        // A secret from an environment variable not set here: checked in a stand-in's form.
        let config = br#"{"identity": {"hash": ["sub"], "hash_key": {"env": "ZT_TEST_UNSET_HASH_KEY"}}}"#;
        assert_eq!(Filter::Audit.check(config).unwrap(), ["ZT_TEST_UNSET_HASH_KEY"]);
        assert_eq!(Filter::parse("zt-audit"), Some(Filter::Audit));
        assert_eq!(Filter::parse("nope"), None);
        let error = Filter::Audit.check(br#"{"collector": {"cluster": "otel", "batch_records": 0}}"#).unwrap_err();
        assert_eq!(error.path, "collector.batch_records");
        let error = Filter::RateLimit.check(br#"{"limits": {}}"#).unwrap_err();
        assert!(error.to_string().contains("missing field `defaults`"), "{error}");
        assert!(Filter::Authz.check(br#"{"policies": {}, "defaultz": {}}"#).is_err());
        assert!(Filter::Jwt.check(b"{}").is_err(), "a JWT filter needs providers");
        assert_eq!(Filter::parse("zt-suite"), Some(Filter::Suite));
        let error = Filter::Suite.check(br#"{"audit": {"collector": {"cluster": "otel", "batch_records": 0}}}"#);
        assert_eq!(error.unwrap_err().path, "audit.collector.batch_records");
    }
}
