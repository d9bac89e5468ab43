//! The registered-claim rules of RFC 7519 §4.1, applied with the provider's settings.
//!
//! These checks run before the signature (as Envoy's `jwt_authn` does) because they are cheap
//! and reject most bad tokens without crypto; no identity is built until the signature holds.

use serde_json::{Map, Value};

use super::error::JwtError;
use crate::spiffe::SpiffeId;
use crate::time::UnixSeconds;

/// NumericDates beyond this (year 2096) are refused: the in-module verifier keeps time in
/// 32.32 fixed point, and no honest token lives that long.
const MAX_NUMERIC_DATE: f64 = 4_000_000_000.0;

/// What a provider demands of a token's registered claims.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimRules {
    pub issuer: IssuerRule,
    /// Accepted `aud` values; empty only when `client_ids` bind the token instead.
    pub audiences: Vec<String>,
    /// Accepted `client_id` / `azp` values; empty: not checked.
    pub client_ids: Vec<String>,
    /// For a JWT-SVID provider: the trust domain `sub` must be a SPIFFE ID of.
    pub spiffe_trust_domain: Option<String>,
    pub clock_skew_seconds: u64,
    pub require_expiration: bool,
    pub max_lifetime_seconds: u64,
    /// Claims that must hold a given value: equal, or, for an array claim, contain it.
    pub required: Vec<(String, Value)>,
}

/// Which `iss` values a provider's tokens carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssuerRule {
    /// Exactly this value (RFC 7519 §4.1.1).
    Exact(String),
    /// A multi-tenant issuer: one value per allowed tenant (the configured template with the
    /// tenant in place of `{tenantid}`), and the token's `tid` must name that same tenant.
    Tenants { template: String, issuers: Vec<TenantIssuer> },
    /// No `iss` at all: JWT-SVIDs of a SPIRE server without `jwt_issuer`. The provider is then
    /// chosen by the trust domain of `sub`.
    Absent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantIssuer {
    pub tenant: String,
    pub issuer: String,
}

impl IssuerRule {
    /// Whether a token whose `iss` is `iss` belongs to this provider (the `tid` is checked
    /// later, with the other claims).
    pub fn admits(&self, iss: &str) -> bool {
        match self {
            IssuerRule::Exact(issuer) => issuer == iss,
            IssuerRule::Tenants { issuers, .. } => issuers.iter().any(|t| t.issuer == iss),
            IssuerRule::Absent => false,
        }
    }

    /// Every exact `iss` this rule admits: configurations must not share one.
    pub fn values(&self) -> Vec<&str> {
        match self {
            IssuerRule::Exact(issuer) => vec![issuer.as_str()],
            IssuerRule::Tenants { issuers, .. } => issuers.iter().map(|t| t.issuer.as_str()).collect(),
            IssuerRule::Absent => Vec::new(),
        }
    }

    /// How the issuer is named in shared-data keys and logs.
    pub fn label(&self) -> &str {
        match self {
            IssuerRule::Exact(issuer) => issuer,
            IssuerRule::Tenants { template, .. } => template,
            IssuerRule::Absent => "",
        }
    }
}

impl ClaimRules {
    pub fn check(&self, claims: &Map<String, Value>, now: UnixSeconds) -> Result<(), JwtError> {
        self.check_issuer(claims)?;
        self.check_times(claims, now)?;
        self.check_audience(claims)?;
        self.check_client(claims)?;
        if claims.get("sub").is_some_and(|sub| !sub.is_string()) {
            return Err(JwtError::ClaimInvalid { claim: "sub" });
        }
        self.check_spiffe_subject(claims)?;
        self.check_required(claims)
    }

    /// Provider-specific demands such as `{"email_verified": true}` or `{"groups": "staff"}`.
    fn check_required(&self, claims: &Map<String, Value>) -> Result<(), JwtError> {
        for (name, wanted) in &self.required {
            let holds = match claims.get(name) {
                Some(Value::Array(items)) if !wanted.is_array() => items.contains(wanted),
                Some(value) => value == wanted,
                None => false,
            };
            if !holds {
                return Err(JwtError::RequiredClaimMismatch);
            }
        }
        Ok(())
    }

    /// RFC 7519 §4.1.1: exact, case-sensitive string comparison; a trailing slash counts. A
    /// tenant's issuer holds only with that tenant's `tid`: Entra ID signs every tenant's
    /// tokens with the same keys, so the `iss` alone could name a tenant the token is not from.
    fn check_issuer(&self, claims: &Map<String, Value>) -> Result<(), JwtError> {
        let iss = match claims.get("iss") {
            Some(Value::String(iss)) => iss,
            Some(_) => return Err(JwtError::ClaimInvalid { claim: "iss" }),
            None if self.issuer == IssuerRule::Absent => return Ok(()),
            None => return Err(JwtError::IssuerMissing),
        };
        if !self.issuer.admits(iss) {
            return Err(JwtError::UnknownIssuer);
        }
        if let IssuerRule::Tenants { issuers, .. } = &self.issuer {
            let tenant = issuers.iter().find(|t| t.issuer == *iss).map(|t| t.tenant.as_str());
            match claims.get("tid") {
                Some(Value::String(tid)) if Some(tid.as_str()) == tenant => {}
                Some(Value::String(_)) | None => return Err(JwtError::TenantMismatch),
                Some(_) => return Err(JwtError::ClaimInvalid { claim: "tid" }),
            }
        }
        Ok(())
    }

    /// RFC 7519 §4.1.4 (`exp`), §4.1.5 (`nbf`), §4.1.6 (`iat`), each with the clock skew.
    ///
    /// `now` is whole seconds, the current second somewhere inside `[now, now + 1)`. A
    /// fractional date is rounded so that the whole current second must satisfy the rule,
    /// never toward acceptance: `exp` down, `nbf` and `iat` up. On integer dates this is the
    /// plain comparison.
    fn check_times(&self, claims: &Map<String, Value>, now: UnixSeconds) -> Result<(), JwtError> {
        let skew = self.clock_skew_seconds;
        let exp = numeric_date(claims, "exp")?;
        let nbf = numeric_date(claims, "nbf")?;
        let iat = numeric_date(claims, "iat")?;
        match exp {
            // "The current time MUST be before the expiration time."
            Some(exp) if now.0 >= exp.floor().saturating_add(skew) => {
                return Err(JwtError::Expired { exp: exp.floor(), now });
            }
            Some(_) => {}
            None if self.require_expiration => return Err(JwtError::ExpirationMissing),
            None => {}
        }
        if let Some(nbf) = nbf
            && now.0.saturating_add(skew) < nbf.ceil()
        {
            return Err(JwtError::NotYetValid { nbf: nbf.ceil(), now });
        }
        if let Some(iat) = iat
            && iat.ceil() > now.0.saturating_add(skew)
        {
            return Err(JwtError::IssuedInFuture { iat: iat.ceil(), now });
        }
        if let Some(exp) = exp {
            // A token minted for longer than the provider allows is refused even while valid:
            // a leaked long-lived token is a long-lived breach. Without `iat`, count from now.
            let start = iat.unwrap_or(NumericDate(now.0 as f64));
            let lifetime = exp.0 - start.0;
            if lifetime > self.max_lifetime_seconds as f64 {
                return Err(JwtError::LifetimeTooLong {
                    lifetime: lifetime.ceil() as u64,
                    max: self.max_lifetime_seconds,
                });
            }
        }
        Ok(())
    }

    /// RFC 7519 §4.1.3: a string or an array of strings, one of which must be ours. Not
    /// checked for a provider bound by `client_ids` alone (Cognito access tokens carry no `aud`).
    fn check_audience(&self, claims: &Map<String, Value>) -> Result<(), JwtError> {
        if self.audiences.is_empty() {
            return Ok(());
        }
        let allowed = |aud: &str| self.audiences.iter().any(|a| a == aud);
        match claims.get("aud") {
            None => Err(JwtError::AudienceMissing),
            Some(Value::String(aud)) if allowed(aud) => Ok(()),
            Some(Value::String(_)) => Err(JwtError::AudienceMismatch),
            Some(Value::Array(items)) => {
                let mut matched = false;
                for item in items {
                    let Value::String(aud) = item else { return Err(JwtError::ClaimInvalid { claim: "aud" }) };
                    matched |= allowed(aud);
                }
                if matched { Ok(()) } else { Err(JwtError::AudienceMismatch) }
            }
            Some(_) => Err(JwtError::ClaimInvalid { claim: "aud" }),
        }
    }

    /// The OAuth client the token was issued to: `client_id` (RFC 9068 §2.2, Cognito) and
    /// `azp` (OpenID Connect), each one the token carries must be listed, and it must carry
    /// one. Checking both keeps a token from passing on one while the other names a stranger.
    fn check_client(&self, claims: &Map<String, Value>) -> Result<(), JwtError> {
        if self.client_ids.is_empty() {
            return Ok(());
        }
        let mut named = false;
        for claim in ["client_id", "azp"] {
            match claims.get(claim) {
                None => {}
                Some(Value::String(client)) if self.client_ids.iter().any(|c| c == client) => named = true,
                Some(Value::String(_)) => return Err(JwtError::ClientMismatch),
                Some(_) => return Err(JwtError::ClaimInvalid { claim }),
            }
        }
        if named { Ok(()) } else { Err(JwtError::ClientMismatch) }
    }

    /// JWT-SVID §3: `sub` is the workload's SPIFFE ID, here in the provider's trust domain, so
    /// a bundle shared by federation never vouches for another domain's workloads.
    fn check_spiffe_subject(&self, claims: &Map<String, Value>) -> Result<(), JwtError> {
        let Some(trust_domain) = &self.spiffe_trust_domain else { return Ok(()) };
        let sub = claims.get("sub").and_then(Value::as_str).ok_or(JwtError::SpiffeSubjectInvalid)?;
        match SpiffeId::parse(sub) {
            Ok(id) if id.trust_domain == trust_domain && !id.path.is_empty() => Ok(()),
            _ => Err(JwtError::SpiffeSubjectInvalid),
        }
    }
}

/// A NumericDate (RFC 7519 §2): seconds since the epoch, "non-integer values can be
/// represented". Integers up to [`MAX_NUMERIC_DATE`] are exact in an `f64`, and so is every
/// fraction a JSON parser can give at this magnitude to well under a microsecond.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct NumericDate(pub f64);

impl NumericDate {
    /// Whole seconds, rounded down.
    pub fn floor(self) -> u64 {
        self.0.floor() as u64
    }

    /// Whole seconds, rounded up.
    pub fn ceil(self) -> u64 {
        self.0.ceil() as u64
    }
}

/// The claim as a NumericDate within range: a non-negative JSON number no later than
/// [`MAX_NUMERIC_DATE`]. Strings, booleans, negative and larger numbers are refused.
pub fn numeric_date(claims: &Map<String, Value>, claim: &'static str) -> Result<Option<NumericDate>, JwtError> {
    match claims.get(claim) {
        None => Ok(None),
        Some(Value::Number(number)) => match number.as_f64() {
            Some(date) if (0.0..=MAX_NUMERIC_DATE).contains(&date) => Ok(Some(NumericDate(date))),
            _ => Err(JwtError::ClaimInvalid { claim }),
        },
        Some(_) => Err(JwtError::ClaimInvalid { claim }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use wasm_bindgen_test::wasm_bindgen_test;

    const NOW: UnixSeconds = UnixSeconds(1_700_000_000);

    fn rules() -> ClaimRules {
        ClaimRules {
            issuer: IssuerRule::Exact("https://issuer.test".into()),
            audiences: vec!["api".into(), "api2".into()],
            client_ids: Vec::new(),
            spiffe_trust_domain: None,
            clock_skew_seconds: 60,
            require_expiration: true,
            max_lifetime_seconds: 3600,
            required: Vec::new(),
        }
    }

    fn check(claims: Value) -> Result<(), JwtError> {
        check_with(rules(), claims)
    }

    fn check_with(rules: ClaimRules, claims: Value) -> Result<(), JwtError> {
        let Value::Object(map) = claims else { panic!("claims must be an object") };
        rules.check(&map, NOW)
    }

    fn valid() -> Value {
        json!({"iss": "https://issuer.test", "aud": "api", "exp": NOW.0 + 300, "iat": NOW.0, "sub": "alice"})
    }

    fn with(key: &str, value: Value) -> Value {
        let mut claims = valid();
        claims[key] = value;
        claims
    }

    fn without(key: &str) -> Value {
        let mut claims = valid();
        claims.as_object_mut().unwrap().remove(key);
        claims
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn accepts_a_valid_set() {
        assert_eq!(check(valid()), Ok(()));
        assert_eq!(check(with("aud", json!(["other", "api2"]))), Ok(()));
        assert_eq!(check(without("iat")), Ok(()));
        assert_eq!(check(without("sub")), Ok(()));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn issuer_must_match_exactly() {
        assert_eq!(check(with("iss", json!("https://issuer.test/"))), Err(JwtError::UnknownIssuer));
        assert_eq!(check(with("iss", json!("HTTPS://issuer.test"))), Err(JwtError::UnknownIssuer));
        assert_eq!(check(with("iss", json!(["https://issuer.test"]))), Err(JwtError::ClaimInvalid { claim: "iss" }));
        assert_eq!(check(without("iss")), Err(JwtError::IssuerMissing));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn audience_rules() {
        assert_eq!(check(with("aud", json!("API"))), Err(JwtError::AudienceMismatch));
        assert_eq!(check(with("aud", json!([]))), Err(JwtError::AudienceMismatch));
        assert_eq!(check(with("aud", json!(["api", 3]))), Err(JwtError::ClaimInvalid { claim: "aud" }));
        assert_eq!(check(with("aud", json!({"api": true}))), Err(JwtError::ClaimInvalid { claim: "aud" }));
        assert_eq!(check(without("aud")), Err(JwtError::AudienceMissing));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn expiry_with_clock_skew() {
        // Still inside the 60 s skew, then exactly at its end.
        assert_eq!(check(with("exp", json!(NOW.0 - 59))), Ok(()));
        assert_eq!(check(with("exp", json!(NOW.0 - 60))), Err(JwtError::Expired { exp: NOW.0 - 60, now: NOW }));
        assert_eq!(check(without("exp")), Err(JwtError::ExpirationMissing));
        let lenient = ClaimRules { require_expiration: false, ..rules() };
        assert_eq!(check_with(lenient, without("exp")), Ok(()));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn not_before_and_issued_at_with_clock_skew() {
        assert_eq!(check(with("nbf", json!(NOW.0 + 60))), Ok(()));
        assert_eq!(check(with("nbf", json!(NOW.0 + 61))), Err(JwtError::NotYetValid { nbf: NOW.0 + 61, now: NOW }));
        assert_eq!(check(with("iat", json!(NOW.0 + 60))), Ok(()));
        assert_eq!(check(with("iat", json!(NOW.0 + 61))), Err(JwtError::IssuedInFuture { iat: NOW.0 + 61, now: NOW }));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn numeric_dates_must_be_in_range_numbers() {
        for bad in
            [json!(-1), json!(-0.5), json!("1700000300"), json!(1.8e19), json!(u64::MAX), json!(null), json!(true)]
        {
            assert_eq!(check(with("exp", bad.clone())), Err(JwtError::ClaimInvalid { claim: "exp" }), "{bad}");
            assert_eq!(check(with("nbf", bad.clone())), Err(JwtError::ClaimInvalid { claim: "nbf" }), "{bad}");
            assert_eq!(check(with("iat", bad.clone())), Err(JwtError::ClaimInvalid { claim: "iat" }), "{bad}");
        }
        // RFC 7519 §2: "non-integer values can be represented"; an exponent form is a number too.
        assert_eq!(check(with("exp", json!(1.7000003e9))), Ok(()));
        assert_eq!(check(with("iat", json!(1_699_999_999.25))), Ok(()));
    }

    /// `now` stands for the whole second `[NOW, NOW + 1)`: a fractional date holds only if it
    /// holds for all of it, so rounding never accepts a token a finer clock would refuse.
    #[wasm_bindgen_test(unsupported = test)]
    fn fractional_dates_are_rounded_toward_refusal() {
        let exact = || ClaimRules { clock_skew_seconds: 0, ..rules() };
        let at = |claim: &str, date: f64| check_with(exact(), with(claim, json!(date)));
        let now = NOW.0 as f64;
        // exp: valid through NOW + 0.5 only, so not for the whole second NOW.
        assert_eq!(at("exp", now + 0.5), Err(JwtError::Expired { exp: NOW.0, now: NOW }));
        assert_eq!(at("exp", now + 1.0), Ok(()));
        assert_eq!(at("exp", now + 1.5), Ok(()));
        // nbf: valid from NOW + 0.5, so not yet for the whole second NOW.
        assert_eq!(at("nbf", now + 0.5), Err(JwtError::NotYetValid { nbf: NOW.0 + 1, now: NOW }));
        assert_eq!(at("nbf", now - 0.5), Ok(()));
        assert_eq!(at("iat", now + 0.25), Err(JwtError::IssuedInFuture { iat: NOW.0 + 1, now: NOW }));
        assert_eq!(at("iat", now), Ok(()));
        // With the skew, the same rounding shifted by 60 s.
        assert_eq!(check(with("exp", json!(now - 59.5))), Err(JwtError::Expired { exp: NOW.0 - 60, now: NOW }));
        assert_eq!(check(with("exp", json!(now - 58.5))), Ok(()));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn fractional_lifetimes_are_compared_exactly() {
        let mut claims = valid();
        claims["iat"] = json!(NOW.0 as f64 + 0.5);
        claims["exp"] = json!(NOW.0 as f64 + 3600.5);
        assert_eq!(check(claims.clone()), Ok(()), "exactly the maximum lifetime");
        claims["exp"] = json!(NOW.0 as f64 + 3600.75);
        assert_eq!(check(claims), Err(JwtError::LifetimeTooLong { lifetime: 3601, max: 3600 }));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn client_ids_bind_a_token_without_audience() {
        let cognito = || ClaimRules { audiences: Vec::new(), client_ids: vec!["app1".into()], ..rules() };
        let token = || {
            let mut claims = without("aud");
            claims["client_id"] = json!("app1");
            claims
        };
        assert_eq!(check_with(cognito(), token()), Ok(()));
        let mut azp = without("aud");
        azp["azp"] = json!("app1");
        assert_eq!(check_with(cognito(), azp), Ok(()));
        let mut other = token();
        other["client_id"] = json!("app2");
        assert_eq!(check_with(cognito(), other), Err(JwtError::ClientMismatch));
        assert_eq!(check_with(cognito(), without("aud")), Err(JwtError::ClientMismatch), "no client named");
        // Both claims present: both must be listed, so neither can smuggle in a stranger.
        let mut split = token();
        split["azp"] = json!("app2");
        assert_eq!(check_with(cognito(), split), Err(JwtError::ClientMismatch));
        let mut typed = token();
        typed["client_id"] = json!(["app1"]);
        assert_eq!(check_with(cognito(), typed), Err(JwtError::ClaimInvalid { claim: "client_id" }));
        // With audiences too, both must hold.
        let both = ClaimRules { client_ids: vec!["app1".into()], ..rules() };
        assert_eq!(check_with(both.clone(), token()), Err(JwtError::AudienceMissing));
        let mut full = valid();
        full["client_id"] = json!("app1");
        assert_eq!(check_with(both, full), Ok(()));
    }

    fn entra() -> ClaimRules {
        let tenant =
            |t: &str| TenantIssuer { tenant: t.into(), issuer: format!("https://login.microsoftonline.com/{t}/v2.0") };
        ClaimRules {
            issuer: IssuerRule::Tenants {
                template: "https://login.microsoftonline.com/{tenantid}/v2.0".into(),
                issuers: vec![tenant("t1"), tenant("t2")],
            },
            ..rules()
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_tenant_issuer_needs_the_same_tenant_in_tid() {
        let token = |iss_tenant: &str, tid: Value| {
            let mut claims = with("iss", json!(format!("https://login.microsoftonline.com/{iss_tenant}/v2.0")));
            claims["tid"] = tid;
            claims
        };
        assert_eq!(check_with(entra(), token("t1", json!("t1"))), Ok(()));
        assert_eq!(check_with(entra(), token("t2", json!("t2"))), Ok(()));
        assert_eq!(check_with(entra(), token("t1", json!("t2"))), Err(JwtError::TenantMismatch));
        assert_eq!(check_with(entra(), token("t3", json!("t3"))), Err(JwtError::UnknownIssuer));
        let mut no_tid = token("t1", json!("t1"));
        no_tid.as_object_mut().unwrap().remove("tid");
        assert_eq!(check_with(entra(), no_tid), Err(JwtError::TenantMismatch));
        assert_eq!(check_with(entra(), token("t1", json!(1))), Err(JwtError::ClaimInvalid { claim: "tid" }));
        let template = with("iss", json!("https://login.microsoftonline.com/{tenantid}/v2.0"));
        assert_eq!(check_with(entra(), template), Err(JwtError::UnknownIssuer), "the template itself is no issuer");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_jwt_svid_subject_is_a_workload_of_the_trust_domain() {
        let spire =
            || ClaimRules { issuer: IssuerRule::Absent, spiffe_trust_domain: Some("example.org".into()), ..rules() };
        let svid = |sub: Value| {
            let mut claims = without("iss");
            claims["sub"] = sub;
            claims
        };
        assert_eq!(check_with(spire(), svid(json!("spiffe://example.org/ns/shop/sa/web"))), Ok(()));
        for bad in [
            json!("spiffe://other.org/ns/shop/sa/web"),
            json!("spiffe://example.org"),
            json!("spiffe://example.org/a/../b"),
            json!("spiffe://Example.org/web"),
            json!("web"),
        ] {
            assert_eq!(check_with(spire(), svid(bad.clone())), Err(JwtError::SpiffeSubjectInvalid), "{bad}");
        }
        assert_eq!(check_with(spire(), without("iss").without_sub()), Err(JwtError::SpiffeSubjectInvalid));
        // A provider without issuer takes only tokens without `iss`.
        assert_eq!(check_with(spire(), with("sub", json!("spiffe://example.org/web"))), Err(JwtError::UnknownIssuer));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn lifetime_is_capped() {
        let long = with("exp", json!(NOW.0 + 3601));
        assert_eq!(check(long), Err(JwtError::LifetimeTooLong { lifetime: 3601, max: 3600 }));
        // Without `iat`, the remaining validity counts.
        let mut no_iat = without("iat");
        no_iat["exp"] = json!(NOW.0 + 3601);
        assert_eq!(check(no_iat), Err(JwtError::LifetimeTooLong { lifetime: 3601, max: 3600 }));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn required_claims_must_hold_their_values() {
        let strict = || ClaimRules {
            required: vec![("email_verified".into(), json!(true)), ("groups".into(), json!("staff"))],
            ..rules()
        };
        assert_eq!(check_with(strict(), with("email_verified", json!(true)).tap_groups(json!(["a", "staff"]))), Ok(()));
        assert_eq!(check_with(strict(), with("email_verified", json!(true)).tap_groups(json!("staff"))), Ok(()));
        let mismatch = Err(JwtError::RequiredClaimMismatch);
        assert_eq!(check_with(strict(), with("email_verified", json!("true")).tap_groups(json!("staff"))), mismatch);
        assert_eq!(check_with(strict(), with("email_verified", json!(true)).tap_groups(json!(["a"]))), mismatch);
        assert_eq!(check_with(strict(), with("email_verified", json!(true))), mismatch);
    }

    trait WithoutSub {
        fn without_sub(self) -> Value;
    }

    impl WithoutSub for Value {
        fn without_sub(mut self) -> Value {
            self.as_object_mut().unwrap().remove("sub");
            self
        }
    }

    trait TapGroups {
        fn tap_groups(self, groups: Value) -> Value;
    }

    impl TapGroups for Value {
        fn tap_groups(mut self, groups: Value) -> Value {
            self["groups"] = groups;
            self
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn subject_must_be_a_string() {
        assert_eq!(check(with("sub", json!(42))), Err(JwtError::ClaimInvalid { claim: "sub" }));
    }
}
