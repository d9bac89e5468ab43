//! The registered-claim rules of RFC 7519 §4.1, applied with the provider's settings.
//!
//! These checks run before the signature (as Envoy's `jwt_authn` does) because they are cheap
//! and reject most bad tokens without crypto; no identity is built until the signature holds.

use serde_json::{Map, Value};

use super::error::JwtError;
use crate::time::UnixSeconds;

/// NumericDates beyond this (year 2096) are refused: the in-module verifier keeps time in
/// 32.32 fixed point, and no honest token lives that long.
const MAX_NUMERIC_DATE: u64 = 4_000_000_000;

/// What a provider demands of a token's registered claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRules {
    pub issuer: String,
    pub audiences: Vec<String>,
    pub clock_skew_seconds: u64,
    pub require_expiration: bool,
    pub max_lifetime_seconds: u64,
    /// Claims that must hold a given value: equal, or, for an array claim, contain it.
    pub required: Vec<(String, Value)>,
}

impl ClaimRules {
    pub fn check(&self, claims: &Map<String, Value>, now: UnixSeconds) -> Result<(), JwtError> {
        self.check_issuer(claims)?;
        self.check_times(claims, now)?;
        self.check_audience(claims)?;
        if claims.get("sub").is_some_and(|sub| !sub.is_string()) {
            return Err(JwtError::ClaimInvalid { claim: "sub" });
        }
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

    /// RFC 7519 §4.1.1: exact, case-sensitive string comparison; a trailing slash counts.
    fn check_issuer(&self, claims: &Map<String, Value>) -> Result<(), JwtError> {
        match claims.get("iss") {
            Some(Value::String(iss)) if *iss == self.issuer => Ok(()),
            Some(Value::String(_)) => Err(JwtError::UnknownIssuer),
            Some(_) => Err(JwtError::ClaimInvalid { claim: "iss" }),
            None => Err(JwtError::IssuerMissing),
        }
    }

    /// RFC 7519 §4.1.4 (`exp`), §4.1.5 (`nbf`), §4.1.6 (`iat`), each with the clock skew.
    fn check_times(&self, claims: &Map<String, Value>, now: UnixSeconds) -> Result<(), JwtError> {
        let skew = self.clock_skew_seconds;
        let exp = numeric_date(claims, "exp")?;
        let nbf = numeric_date(claims, "nbf")?;
        let iat = numeric_date(claims, "iat")?;
        match exp {
            // "The current time MUST be before the expiration time."
            Some(exp) if now.0 >= exp.saturating_add(skew) => return Err(JwtError::Expired { exp, now }),
            Some(_) => {}
            None if self.require_expiration => return Err(JwtError::ExpirationMissing),
            None => {}
        }
        if let Some(nbf) = nbf
            && now.0.saturating_add(skew) < nbf
        {
            return Err(JwtError::NotYetValid { nbf, now });
        }
        if let Some(iat) = iat
            && iat > now.0.saturating_add(skew)
        {
            return Err(JwtError::IssuedInFuture { iat, now });
        }
        if let Some(exp) = exp {
            // A token minted for longer than the provider allows is refused even while valid:
            // a leaked long-lived token is a long-lived breach. Without `iat`, count from now.
            let lifetime = exp.saturating_sub(iat.unwrap_or(now.0));
            if lifetime > self.max_lifetime_seconds {
                return Err(JwtError::LifetimeTooLong { lifetime, max: self.max_lifetime_seconds });
            }
        }
        Ok(())
    }

    /// RFC 7519 §4.1.3: a string or an array of strings, one of which must be ours.
    fn check_audience(&self, claims: &Map<String, Value>) -> Result<(), JwtError> {
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
}

/// A NumericDate (RFC 7519 §2) as a non-negative integer within range. Fractional dates are
/// refused: every issuer we know writes integers, and a float invites rounding disagreements.
fn numeric_date(claims: &Map<String, Value>, claim: &'static str) -> Result<Option<u64>, JwtError> {
    match claims.get(claim) {
        None => Ok(None),
        Some(value) => match value.as_u64() {
            Some(date) if date <= MAX_NUMERIC_DATE => Ok(Some(date)),
            _ => Err(JwtError::ClaimInvalid { claim }),
        },
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
            issuer: "https://issuer.test".into(),
            audiences: vec!["api".into(), "api2".into()],
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
    fn numeric_dates_must_be_in_range_integers() {
        for bad in
            [json!(-1), json!(1.5e9), json!("1700000300"), json!(1.8e19), json!(u64::MAX), json!(null), json!(true)]
        {
            assert_eq!(check(with("exp", bad.clone())), Err(JwtError::ClaimInvalid { claim: "exp" }), "{bad}");
            assert_eq!(check(with("nbf", bad.clone())), Err(JwtError::ClaimInvalid { claim: "nbf" }), "{bad}");
            assert_eq!(check(with("iat", bad.clone())), Err(JwtError::ClaimInvalid { claim: "iat" }), "{bad}");
        }
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
