//! Which parts of the verified identity a record carries. The token itself never reaches this
//! module (the JWT filter hands over claims, not the token); claims are copied only when the
//! configuration names them, and named fields can be omitted or replaced by a keyed hash.

use serde_json::{Map, Value};

use super::chain::hex;
use super::compile::IdentityRules;
use crate::jwt::Identity;

/// The record's `identity` object.
pub(crate) fn project_identity(identity: &Identity, rules: &IdentityRules) -> Value {
    let mut out = Map::new();
    out.insert("provider".to_owned(), Value::String(identity.provider.clone()));
    out.insert("iss".to_owned(), Value::String(identity.iss.clone()));
    if let Some(sub) = &identity.sub {
        out.insert("sub".to_owned(), Value::String(sub.clone()));
    }
    // OAuth 2.0 Token Exchange (RFC 8693 §4.3) names it `client_id`; OIDC's `azp` means the same.
    let client_id = ["client_id", "azp"].iter().find_map(|c| identity.claims.get(*c).and_then(Value::as_str));
    if let Some(client_id) = client_id {
        out.insert("client_id".to_owned(), Value::String(client_id.to_owned()));
    }
    out.insert("scopes".to_owned(), Value::from(identity.scopes.clone()));
    let mut claims = Map::new();
    for name in &rules.claims {
        if let Some(value) = identity.claims.get(name) {
            claims.insert(name.clone(), keyed(name, value.clone(), rules));
        }
    }
    if !claims.is_empty() {
        out.insert("claims".to_owned(), Value::Object(claims));
    }
    for field in ["sub", "client_id", "iss"] {
        if let Some(value) = out.remove(field) {
            out.insert(field.to_owned(), keyed(field, value, rules));
        }
    }
    for field in &rules.omit {
        out.remove(field);
    }
    Value::Object(out)
}

/// The value itself, or `hmac-sha256:<hex>` of it when the configuration hashes this name: a
/// pseudonym that still groups one caller's requests without naming the caller.
fn keyed(name: &str, value: Value, rules: &IdentityRules) -> Value {
    let (true, Some(key)) = (rules.hash.iter().any(|h| h == name), &rules.hash_key) else { return value };
    let text = match &value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mac = hmac_sha256::HMAC::mac(text.as_bytes(), key);
    Value::String(format!("hmac-sha256:{}", hex(&mac)))
}
