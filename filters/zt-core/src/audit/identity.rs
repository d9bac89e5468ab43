//! Which parts of the verified identity a record carries. The token itself never reaches this
//! module (the JWT filter hands over claims, not the token); claims are copied only when the
//! configuration names them, and named fields can be omitted or replaced by a keyed hash.

use serde::Serialize;
use serde_json::{Map, Value};

use super::chain::hex;
use super::compile::IdentityRules;
use crate::jwt::Identity;

/// The record's `identity` object. Fields in name order, as the record has always shown them.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ProjectedIdentity {
    #[serde(skip_serializing_if = "Map::is_empty")]
    claims: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    provider: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    scopes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
}

pub(crate) fn project_identity(identity: &Identity, rules: &IdentityRules) -> ProjectedIdentity {
    let shown = |field: &str| !rules.omit.iter().any(|omitted| omitted == field);
    let text = |field: &str, value: Option<&str>| {
        value.filter(|_| shown(field)).map(|value| keyed_text(field, value, rules).unwrap_or_else(|| value.to_owned()))
    };
    // OAuth 2.0 Token Exchange (RFC 8693 §4.3) names it `client_id`; OIDC's `azp` means the same.
    let client_id = ["client_id", "azp"].iter().find_map(|c| identity.claims.get(*c).and_then(Value::as_str));
    let mut claims = Map::new();
    for name in &rules.claims {
        if let Some(value) = identity.claims.get(name) {
            claims.insert(name.clone(), keyed(name, value, rules));
        }
    }
    ProjectedIdentity {
        claims,
        client_id: text("client_id", client_id),
        iss: text("iss", Some(&identity.iss)),
        provider: identity.provider.clone(),
        scopes: shown("scopes").then(|| identity.scopes.clone()),
        sub: text("sub", identity.sub.as_deref()),
    }
}

/// The value itself, or `hmac-sha256:<hex>` of it when the configuration hashes this name: a
/// pseudonym that still groups one caller's requests without naming the caller.
fn keyed(name: &str, value: &Value, rules: &IdentityRules) -> Value {
    let pseudonym = match value {
        Value::String(text) => keyed_text(name, text, rules),
        other => keyed_text(name, &other.to_string(), rules),
    };
    pseudonym.map_or_else(|| value.clone(), Value::String)
}

/// `hmac-sha256:<hex>` of `text` when the configuration hashes this name.
fn keyed_text(name: &str, text: &str, rules: &IdentityRules) -> Option<String> {
    let (true, Some(key)) = (rules.hash.iter().any(|h| h == name), &rules.hash_key) else { return None };
    let mac = hmac_sha256::HMAC::mac(text.as_bytes(), key);
    Some(format!("hmac-sha256:{}", hex(&mac)))
}
