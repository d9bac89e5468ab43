//! `ztctl check`: a plugin configuration through the very parser the filter runs in
//! `on_configure`, so that a bad configuration fails in the user's CI, with the same message
//! naming the field, instead of when Envoy refuses to start the filter.

use zt_core::ConfigError;
use zt_core::audit::AuditConfig;
use zt_core::authz::AuthzConfig;
use zt_core::jwt::JwtFilterConfig;
use zt_core::ratelimit::RateLimitConfig;
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

    /// The filter's own verdict on the configuration bytes.
    pub fn check(self, configuration: &[u8]) -> Result<(), ConfigError> {
        match self {
            Filter::Jwt => JwtFilterConfig::from_json(configuration).map(drop),
            Filter::Authz => AuthzConfig::from_json(configuration).map(drop),
            Filter::RateLimit => RateLimitConfig::from_json(configuration).map(drop),
            Filter::Audit => AuditConfig::from_json(configuration).map(drop),
            Filter::Suite => SuiteConfig::from_json(configuration).map(drop),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_filter_uses_its_own_parser() {
        assert!(Filter::parse("audit").unwrap().check(b"{}").is_ok());
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
