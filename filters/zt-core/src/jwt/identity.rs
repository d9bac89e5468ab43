//! The verified identity handed to later filters through filter state.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::claims::NumericDate;

/// Who the caller is, built only after the signature and every claim rule held. Later filters
/// (authorization, rate limit, audit) read it as JSON from [`crate::filter_state::IDENTITY`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    /// The configured provider's `name`.
    pub provider: String,
    pub iss: String,
    pub sub: Option<String>,
    pub aud: Vec<String>,
    /// From `scope` (space-delimited, RFC 8693 §4.2) or `scp` (array of strings).
    pub scopes: Vec<String>,
    pub exp: Option<u64>,
    /// The workload's SPIFFE ID, for a JWT-SVID verified by a `spiffe` provider: authorization
    /// matches it where it matches an mTLS peer's ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spiffe_id: Option<String>,
    /// Every claim of the token, for rules on custom claims.
    pub claims: Map<String, Value>,
}

impl Identity {
    pub fn from_claims(provider: &str, claims: Map<String, Value>) -> Self {
        let string = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
        let aud = match claims.get("aud") {
            Some(Value::String(aud)) => vec![aud.clone()],
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            _ => Vec::new(),
        };
        // Entra ID writes `scp` space-delimited like `scope`; Okta writes it as an array, and
        // so does Envoy's `jwt_authn` with `scope` when it normalizes the payload (Istio's way).
        let listed = |value: Option<&Value>| match value {
            Some(Value::String(scope)) => Some(scope.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect()),
            Some(Value::Array(items)) => Some(items.iter().filter_map(Value::as_str).map(str::to_owned).collect()),
            _ => None,
        };
        let scopes = listed(claims.get("scope")).or_else(|| listed(claims.get("scp"))).unwrap_or_default();
        Self {
            provider: provider.to_owned(),
            iss: string("iss").unwrap_or_default(),
            sub: string("sub"),
            aud,
            scopes,
            // Whole seconds, rounded down: what the cache keeps the token for.
            exp: super::claims::numeric_date(&claims, "exp").ok().flatten().map(NumericDate::floor),
            spiffe_id: None,
            claims,
        }
    }

    /// The scopes as zt-authz reads them: from the claim at `path` (a space-delimited string or
    /// an array of strings, RFC 8693 §4.2), or [`Identity::scopes`] without a path.
    pub fn scopes_at(&self, path: Option<&[String]>) -> Vec<String> {
        let Some((first, rest)) = path.and_then(<[String]>::split_first) else { return self.scopes.clone() };
        let mut value = self.claims.get(first);
        for member in rest {
            value = value.and_then(Value::as_object).and_then(|object| object.get(member));
        }
        match value {
            Some(Value::String(s)) => s.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            _ => Vec::new(),
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn identity(claims: Value) -> Identity {
        let Value::Object(map) = claims else { panic!("object") };
        Identity::from_claims("p", map)
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn reads_scopes_from_scope_or_scp() {
        assert_eq!(identity(json!({"scope": "read  write"})).scopes, ["read", "write"]);
        assert_eq!(identity(json!({"scp": ["a", "b"]})).scopes, ["a", "b"]);
        assert_eq!(identity(json!({"scope": ["a", "b"], "scp": "c"})).scopes, ["a", "b"]);
        // Entra ID: `scp` space-delimited.
        assert_eq!(identity(json!({"scp": "User.Read  Mail.Send"})).scopes, ["User.Read", "Mail.Send"]);
        assert!(identity(json!({})).scopes.is_empty());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn scopes_at_a_claim_path_follow_the_authorization_rules() {
        let id = identity(json!({"scope": "a b", "permissions": ["p1", 7, "p2"], "realm": {"roles": "r1  r2"}}));
        let path = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(id.scopes_at(None), ["a", "b"]);
        assert_eq!(id.scopes_at(Some(&path(&["permissions"]))), ["p1", "p2"]);
        assert_eq!(id.scopes_at(Some(&path(&["realm", "roles"]))), ["r1", "r2"]);
        assert!(id.scopes_at(Some(&path(&["realm", "missing"]))).is_empty());
        assert!(id.scopes_at(Some(&path(&["scope", "deeper"]))).is_empty(), "a string has no members");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn round_trips_as_json() {
        let id = identity(json!({"iss": "i", "sub": "s", "aud": ["x", "y"], "exp": 5, "team": "blue"}));
        let back: Identity = serde_json::from_slice(&id.to_json()).unwrap();
        assert_eq!(back, id);
        assert_eq!(back.aud, ["x", "y"]);
        assert_eq!(back.claims["team"], "blue");
    }
}
