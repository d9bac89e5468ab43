//! What a route requires of its caller's token, chosen per route, and the decision it yields.
//!
//! Envoy gives a Wasm filter no per-route configuration, so a route is matched by what Envoy
//! does expose: its route metadata (`filter_metadata.zt.jwt_requirement` names a requirement)
//! first, then its name (`xds.route_name`), then the default. Named requirements inherit every
//! field they leave out from the default.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::authenticate::Authenticated;
use super::error::JwtError;
use crate::config_error::ConfigError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequirementsJson {
    /// Applies to routes that name no requirement. Default: a valid token of any provider.
    #[serde(default)]
    pub default: RequirementJson,
    /// Requirements that routes select by name.
    #[serde(default)]
    pub named: BTreeMap<String, RequirementJson>,
    /// Envoy route name → requirement name. Route metadata, when present, takes precedence.
    #[serde(default)]
    pub by_route_name: BTreeMap<String, String>,
}

/// Every field absent here is inherited from the default requirement.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequirementJson {
    /// Providers whose tokens satisfy the route (any one of them). Default: any configured
    /// provider.
    pub providers: Option<Vec<String>>,
    /// Default none. Providers that must ALL present a valid token, each in its own token
    /// sources (for example a user token in `authorization` and a workload token in
    /// `x-workload-token`); the first one's identity is handed on. Excludes `providers`.
    pub all_of: Option<Vec<String>>,
    /// Default `false`. `true` lets a request without any token through, without identity
    /// (anonymous routes); a token that is present must still be valid.
    pub allow_missing: Option<bool>,
    /// Default `false`. `true` lets every request through; only a valid token yields an
    /// identity. Weaker than `allow_missing`: an invalid token is not refused.
    pub allow_failed: Option<bool>,
    /// Default `false`. `true` verifies and records the decision that would have been taken
    /// (filter state, metrics, log) but lets refused requests through: for rolling out.
    pub advisory: Option<bool>,
    /// Default none. A profile of `next_hop.profiles`: the upstream receives a token minted
    /// for it (in `authorization`) instead of the caller's, when the caller was verified.
    pub next_hop_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub name: String,
    /// `None`: any configured provider.
    pub providers: Option<Vec<String>>,
    /// Every one of these must present a valid token.
    pub all_of: Option<Vec<String>>,
    pub allow_missing: bool,
    pub allow_failed: bool,
    pub advisory: bool,
    pub next_hop_token: Option<String>,
}

/// What the filter does with a request.
#[derive(Debug)]
pub enum Decision {
    Allow(Authenticated),
    /// Let through without an identity, as the requirement allows; `failure` says why there is
    /// none when a token was present but refused.
    AllowAnonymous {
        failure: Option<JwtError>,
    },
    /// Would have been refused; let through because the requirement is advisory.
    AdvisoryDeny(JwtError),
    Deny(JwtError),
}

impl Requirement {
    pub fn decide(&self, result: Result<Authenticated, JwtError>) -> Decision {
        match result {
            Ok(authenticated) => {
                let provider = &authenticated.token.identity.provider;
                if self.providers.as_ref().is_some_and(|allowed| !allowed.contains(provider)) {
                    self.refuse(JwtError::ProviderNotAllowed)
                } else {
                    Decision::Allow(authenticated)
                }
            }
            Err(error) => self.refuse(error),
        }
    }

    fn refuse(&self, error: JwtError) -> Decision {
        match error {
            JwtError::Missing if self.allow_missing || self.allow_failed => Decision::AllowAnonymous { failure: None },
            error if self.allow_failed => Decision::AllowAnonymous { failure: Some(error) },
            error if self.advisory => Decision::AdvisoryDeny(error),
            error => Decision::Deny(error),
        }
    }
}

impl Decision {
    /// The record handed on to the audit stage (through filter state between single filters,
    /// [`crate::filter_state::JWT_DECISION`]).
    pub fn record(&self, requirement: &Requirement) -> DecisionRecord {
        let (decision, reason, provider) = match self {
            Decision::Allow(a) => (Verdict::Allow, None, Some(a.token.identity.provider.clone())),
            Decision::AllowAnonymous { failure } => (Verdict::Anonymous, failure.as_ref().map(JwtError::reason), None),
            Decision::AdvisoryDeny(e) => (Verdict::AdvisoryDeny, Some(e.reason()), None),
            Decision::Deny(e) => (Verdict::Deny, Some(e.reason()), None),
        };
        DecisionRecord { decision, reason, requirement: requirement.name.clone(), provider }
    }
}

/// What the JWT stage decided, in its record's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Allow,
    /// Let through without an identity, as the requirement allows.
    Anonymous,
    AdvisoryDeny,
    Deny,
}

/// [`Decision::record`]: `{"decision", "reason", "requirement", "provider"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionRecord {
    pub decision: Verdict,
    /// [`JwtError::reason`] of a refused or anonymous request's token.
    pub reason: Option<&'static str>,
    pub requirement: String,
    /// The verifying provider's name, when allowed.
    pub provider: Option<String>,
}

/// The validated requirements and how routes select them.
#[derive(Debug, Clone)]
pub struct Requirements {
    pub default: Requirement,
    named: BTreeMap<String, Requirement>,
    by_route_name: BTreeMap<String, String>,
}

impl Requirements {
    /// The default and every named requirement.
    pub fn all(&self) -> impl Iterator<Item = &Requirement> {
        std::iter::once(&self.default).chain(self.named.values())
    }

    /// Whether some requirement is selected by Envoy's route name: if not, the filter need not
    /// read it. Route metadata is read always: a route naming a requirement the configuration
    /// lacks is refused also when it defines none.
    pub fn selects_by_route_name(&self) -> bool {
        !self.by_route_name.is_empty()
    }

    /// The requirement for a route. A name in route metadata that the configuration does not
    /// define is an error, not a fallback: falling back could be weaker than intended.
    pub fn select(&self, route_name: Option<&str>, metadata_choice: Option<&str>) -> Result<&Requirement, JwtError> {
        if let Some(choice) = metadata_choice {
            return self.named.get(choice).ok_or(JwtError::UnknownRequirement);
        }
        match route_name.and_then(|route| self.by_route_name.get(route)) {
            Some(name) => self.named.get(name).ok_or(JwtError::UnknownRequirement),
            None => Ok(&self.default),
        }
    }

    pub fn validate(
        json: RequirementsJson,
        providers: &[String],
        profiles: &[String],
        path: &str,
    ) -> Result<Self, ConfigError> {
        let known = Known { providers, profiles };
        let base = Requirement {
            name: "default".to_owned(),
            providers: None,
            all_of: None,
            allow_missing: false,
            allow_failed: false,
            advisory: false,
            next_hop_token: None,
        };
        let default = inherit(&base, json.default, "default", &known, &format!("{path}.default"))?;
        let mut named = BTreeMap::new();
        for (name, requirement) in json.named {
            let field = format!("{path}.named.{name}");
            if name.is_empty() || name == "default" {
                return Err(ConfigError::new(field, "needs a name other than `default`"));
            }
            named.insert(name.clone(), inherit(&default, requirement, &name, &known, &field)?);
        }
        for (route, name) in &json.by_route_name {
            if !named.contains_key(name) {
                return Err(ConfigError::new(
                    format!("{path}.by_route_name.{route}"),
                    format!("no requirement named `{name}`"),
                ));
            }
        }
        Ok(Self { default, named, by_route_name: json.by_route_name })
    }
}

/// What a requirement may name.
struct Known<'a> {
    providers: &'a [String],
    profiles: &'a [String],
}

fn inherit(
    base: &Requirement,
    json: RequirementJson,
    name: &str,
    known: &Known<'_>,
    path: &str,
) -> Result<Requirement, ConfigError> {
    let providers = known.providers;
    if let Some(all) = &json.all_of {
        if json.providers.is_some() {
            return Err(ConfigError::new(format!("{path}.all_of"), "cannot be combined with `providers`"));
        }
        if all.is_empty() {
            return Err(ConfigError::new(format!("{path}.all_of"), "must not be empty"));
        }
        if let Some(unknown) = all.iter().find(|p| !providers.contains(p)) {
            return Err(ConfigError::new(format!("{path}.all_of"), format!("no provider named `{unknown}`")));
        }
        if let Some(twice) = all.iter().enumerate().find(|(i, p)| all.iter().skip(i + 1).any(|q| q == *p)) {
            return Err(ConfigError::new(format!("{path}.all_of"), format!("names `{}` twice", twice.1)));
        }
    }
    if let Some(profile) = &json.next_hop_token
        && !known.profiles.contains(profile)
    {
        return Err(ConfigError::new(
            format!("{path}.next_hop_token"),
            format!("no next_hop profile named `{profile}`"),
        ));
    }
    if let Some(listed) = &json.providers {
        if listed.is_empty() {
            return Err(ConfigError::new(format!("{path}.providers"), "must not be empty (omit it for any provider)"));
        }
        if let Some(unknown) = listed.iter().find(|p| !providers.contains(p)) {
            return Err(ConfigError::new(format!("{path}.providers"), format!("no provider named `{unknown}`")));
        }
    }
    Ok(Requirement {
        name: name.to_owned(),
        // A requirement that names its providers either way replaces both inherited lists.
        providers: if json.all_of.is_some() { None } else { json.providers.clone().or_else(|| base.providers.clone()) },
        all_of: if json.providers.is_some() { None } else { json.all_of.or_else(|| base.all_of.clone()) },
        allow_missing: json.allow_missing.unwrap_or(base.allow_missing),
        allow_failed: json.allow_failed.unwrap_or(base.allow_failed),
        advisory: json.advisory.unwrap_or(base.advisory),
        next_hop_token: json.next_hop_token.or_else(|| base.next_hop_token.clone()),
    })
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::*;
    use crate::jwt::cache::VerifiedToken;
    use crate::jwt::identity::Identity;
    use crate::time::UnixSeconds;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn requirements(json: serde_json::Value) -> Result<Requirements, ConfigError> {
        let parsed: RequirementsJson = serde_json::from_value(json).unwrap();
        Requirements::validate(
            parsed,
            &["corp".to_owned(), "partner".to_owned()],
            &["orders".to_owned()],
            "requirements",
        )
    }

    fn authenticated(provider: &str) -> Authenticated {
        let identity = Identity::from_claims(provider, serde_json::Map::new());
        let token = Rc::new(VerifiedToken { identity_json: identity.to_json(), identity, valid_until: UnixSeconds(1) });
        Authenticated { token, cache_hit: false }
    }

    fn outcome(decision: Decision) -> String {
        match decision {
            Decision::Allow(a) => format!("allow {}", a.token.identity.provider),
            Decision::AllowAnonymous { failure } => format!("anonymous {:?}", failure.map(|f| f.reason())),
            Decision::AdvisoryDeny(e) => format!("advisory_deny {}", e.reason()),
            Decision::Deny(e) => format!("deny {}", e.reason()),
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn selects_by_metadata_then_route_name_then_default() {
        let r = requirements(serde_json::json!({
            "default": {"providers": ["corp"]},
            "named": {"public": {"allow_missing": true}, "partners": {"providers": ["partner"]}},
            "by_route_name": {"docs": "public"},
        }))
        .unwrap();
        assert_eq!(r.select(None, None).unwrap().name, "default");
        assert_eq!(r.select(Some("docs"), None).unwrap().name, "public");
        assert_eq!(r.select(Some("docs"), Some("partners")).unwrap().name, "partners");
        assert_eq!(r.select(Some("other"), None).unwrap().name, "default");
        assert_eq!(r.select(None, Some("nope")).unwrap_err(), JwtError::UnknownRequirement);
        // `public` inherits `providers` from the default.
        assert_eq!(r.select(Some("docs"), None).unwrap().providers, Some(vec!["corp".to_owned()]));
        assert!(r.selects_by_route_name());
        assert!(!requirements(serde_json::json!({})).unwrap().selects_by_route_name());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn metadata_naming_a_requirement_is_refused_also_without_named_requirements() {
        for json in [
            serde_json::json!({}),
            serde_json::json!({"default": {"allow_missing": true}}),
            serde_json::json!({"default": {"allow_failed": true, "advisory": true}}),
        ] {
            let r = requirements(json).unwrap();
            assert_eq!(r.select(None, Some("ghost")).unwrap_err(), JwtError::UnknownRequirement);
            assert_eq!(r.select(Some("any-route"), None).unwrap().name, "default");
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn decides_per_requirement() {
        let r = requirements(serde_json::json!({
            "default": {"providers": ["corp"]},
            "named": {
                "anonymous": {"allow_missing": true},
                "lenient": {"allow_failed": true},
                "monitor": {"advisory": true},
                "any": {"providers": ["corp", "partner"]},
            },
        }))
        .unwrap();
        let decide = |name: Option<&str>, result: Result<Authenticated, JwtError>| {
            outcome(r.select(None, name).unwrap().decide(result))
        };
        assert_eq!(decide(None, Ok(authenticated("corp"))), "allow corp");
        assert_eq!(decide(None, Ok(authenticated("partner"))), "deny provider_not_allowed");
        assert_eq!(decide(Some("any"), Ok(authenticated("partner"))), "allow partner");
        assert_eq!(decide(None, Err(JwtError::Missing)), "deny missing");
        assert_eq!(decide(Some("anonymous"), Err(JwtError::Missing)), "anonymous None");
        assert_eq!(decide(Some("anonymous"), Err(JwtError::SignatureInvalid)), "deny bad_signature");
        assert_eq!(decide(Some("lenient"), Err(JwtError::SignatureInvalid)), "anonymous Some(\"bad_signature\")");
        assert_eq!(decide(Some("monitor"), Err(JwtError::SignatureInvalid)), "advisory_deny bad_signature");
        assert_eq!(decide(Some("monitor"), Ok(authenticated("partner"))), "advisory_deny provider_not_allowed");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn records_the_decision_without_token_or_claims() {
        let r = requirements(serde_json::json!({})).unwrap();
        let record = Decision::Deny(JwtError::Expired { exp: 5, now: UnixSeconds(9) }).record(&r.default);
        assert_eq!(
            serde_json::to_value(record).unwrap(),
            serde_json::json!({"decision": "deny", "reason": "expired", "requirement": "default", "provider": null})
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn refuses_inconsistent_requirements() {
        let cases = [
            (serde_json::json!({"default": {"providers": []}}), "requirements.default.providers"),
            (serde_json::json!({"named": {"x": {"providers": ["ghost"]}}}), "requirements.named.x.providers"),
            (serde_json::json!({"by_route_name": {"r": "missing"}}), "requirements.by_route_name.r"),
            (serde_json::json!({"named": {"default": {}}}), "requirements.named.default"),
        ];
        for (json, path) in cases {
            assert_eq!(requirements(json.clone()).unwrap_err().path, path, "{json}");
        }
    }
}
