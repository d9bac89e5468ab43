//! Verified claims copied into request headers for upstreams that cannot read filter state.
//!
//! Such a header is only trustworthy if a client can never set it: every configured header is
//! removed from every request first, whatever the decision, and set only from a verified token.

use serde::Deserialize;
use serde_json::Value;

use super::identity::Identity;
use crate::config_error::ConfigError;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimHeader {
    /// A top-level claim name (`sub`, `email`, `tenant`, ...).
    pub claim: String,
    /// The request header to set, lower case.
    pub header: String,
}

/// Header names a filter must never take over: pseudo-headers, hop-by-hop and the token's own.
const RESERVED: [&str; 6] = ["host", "authorization", "cookie", "connection", "content-length", "transfer-encoding"];

pub fn validate(mappings: &[ClaimHeader], path: &str) -> Result<(), ConfigError> {
    for (i, mapping) in mappings.iter().enumerate() {
        validate_header_name(&mapping.header, &format!("{path}[{i}].header"))?;
        if mapping.claim.is_empty() {
            return Err(ConfigError::new(format!("{path}[{i}].claim"), "must not be empty"));
        }
    }
    Ok(())
}

/// A header the filter sets from verified data: lower case, not one a proxy or the token needs.
pub fn validate_header_name(header: &str, path: &str) -> Result<(), ConfigError> {
    let valid = !header.is_empty()
        && header.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && !RESERVED.contains(&header);
    if valid {
        Ok(())
    } else {
        Err(ConfigError::new(path, "must be a lower-case header name (a-z, 0-9, -, _), not a reserved one"))
    }
}

/// The verified claims for the payload header: their JSON, base64url without padding (as
/// Envoy's `jwt_authn` `forward_payload_header`). Re-serialized from the verified claims, so
/// it carries exactly what was checked.
pub fn payload_header_value(identity: &Identity) -> String {
    use base64::Engine as _;
    let json = serde_json::to_vec(&identity.claims).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

/// The headers to set for a verified identity. Strings as they are, numbers and booleans in
/// JSON form, arrays of those joined with `,`; objects, and any value holding a control
/// character (which could split a header), are left out rather than mangled.
pub fn claim_headers(mappings: &[ClaimHeader], identity: &Identity) -> Vec<(String, String)> {
    mappings
        .iter()
        .filter_map(|m| render(identity.claims.get(&m.claim)?).map(|value| (m.header.clone(), value)))
        .collect()
}

fn render(value: &Value) -> Option<String> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(_) | Value::Bool(_) => value.to_string(),
        Value::Array(items) => items.iter().map(scalar).collect::<Option<Vec<_>>>()?.join(","),
        Value::Null | Value::Object(_) => return None,
    };
    (!text.chars().any(char::is_control)).then_some(text)
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(value.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn mapping(claim: &str, header: &str) -> ClaimHeader {
        ClaimHeader { claim: claim.into(), header: header.into() }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn renders_scalars_and_arrays_and_skips_the_rest() {
        let Value::Object(claims) = json!({
            "sub": "alice", "age": 42, "admin": false, "groups": ["a", "b"],
            "address": {"city": "x"}, "evil": "a\r\nx-injected: 1", "mixed": ["a", {"b": 1}],
        }) else {
            panic!()
        };
        let identity = Identity::from_claims("p", claims);
        let all = ["sub", "age", "admin", "groups", "address", "evil", "mixed", "absent"];
        let mappings: Vec<_> = all.iter().map(|c| mapping(c, &format!("x-{c}"))).collect();
        assert_eq!(
            claim_headers(&mappings, &identity),
            [("x-sub", "alice"), ("x-age", "42"), ("x-admin", "false"), ("x-groups", "a,b")]
                .map(|(h, v)| (h.to_owned(), v.to_owned()))
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn refuses_reserved_and_malformed_header_names() {
        for bad in ["Authorization", "authorization", ":path", "x y", "", "host", "X-User"] {
            let err = validate(&[mapping("sub", bad)], "claim_headers").unwrap_err();
            assert_eq!(err.path, "claim_headers[0].header", "{bad}");
        }
        assert!(validate(&[mapping("sub", "x-user-id")], "claim_headers").is_ok());
        assert_eq!(validate(&[mapping("", "x-a")], "claim_headers").unwrap_err().path, "claim_headers[0].claim");
    }
}
