//! Reading an OpenID Connect discovery document (OpenID Connect Discovery 1.0 §3, §4.3): only
//! `issuer` and `jwks_uri` matter here, and the issuer must be exactly the configured one, or a
//! document served for one issuer could hand out keys for another.

use serde_json::Value;

/// The `jwks_uri` of a discovery document whose `issuer` is `expected_issuer`.
pub fn jwks_uri(document: &[u8], expected_issuer: &str) -> Result<String, String> {
    let document: Value = serde_json::from_slice(document).map_err(|_| "not a JSON document".to_owned())?;
    if !document.is_object() {
        return Err("not a JSON object".to_owned());
    }
    match document.get("issuer") {
        Some(Value::String(issuer)) if issuer == expected_issuer => {}
        Some(Value::String(_)) => return Err("its issuer differs from the configured issuer".to_owned()),
        _ => return Err("it has no issuer string".to_owned()),
    }
    match document.get("jwks_uri") {
        Some(Value::String(uri)) if !uri.is_empty() => Ok(uri.clone()),
        _ => Err("it has no jwks_uri string".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn takes_the_jwks_uri_of_the_configured_issuer_only() {
        let doc = br#"{"issuer":"https://idp.test","jwks_uri":"https://idp.test/certs"}"#;
        assert_eq!(jwks_uri(doc, "https://idp.test").unwrap(), "https://idp.test/certs");
        assert!(jwks_uri(doc, "https://idp.test/").unwrap_err().contains("differs"));
        assert!(jwks_uri(br#"{"jwks_uri":"https://idp.test/certs"}"#, "https://idp.test").is_err());
        assert!(jwks_uri(br#"{"issuer":"https://idp.test"}"#, "https://idp.test").is_err());
        assert!(jwks_uri(br#"{"issuer":"https://idp.test","jwks_uri":7}"#, "https://idp.test").is_err());
        assert!(jwks_uri(b"[]", "https://idp.test").is_err());
        assert!(jwks_uri(b"<html>", "https://idp.test").is_err());
    }
}
