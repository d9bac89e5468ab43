//! The one place a JWT failure becomes an HTTP answer.

use serde_json::json;

use super::error::JwtError;
use crate::reply::LocalReply;

/// Maps a failure to 401 with a `WWW-Authenticate` challenge (RFC 6750 §3): without a token,
/// only the realm (§3.1: no error code when the request carries no credentials); otherwise
/// `error="invalid_token"`. The body carries a fixed message, never the token or a claim.
pub fn denial(error: &JwtError, realm: &str) -> LocalReply {
    if *error == JwtError::UnknownRequirement {
        // The proxy's own configuration is inconsistent: not the client's fault, never a pass.
        return LocalReply::json(
            500,
            Vec::new(),
            &json!({"error": "configuration", "message": error.client_message()}),
        );
    }
    let (challenge, code) = match error {
        JwtError::Missing => (format!("Bearer realm=\"{realm}\""), "missing_token"),
        _ => (format!("Bearer realm=\"{realm}\", error=\"invalid_token\""), "invalid_token"),
    };
    LocalReply::json(
        401,
        vec![("www-authenticate".to_owned(), challenge)],
        &json!({"error": code, "message": error.client_message()}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::UnixSeconds;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn missing_token_gets_a_bare_challenge() {
        let reply = denial(&JwtError::Missing, "zt");
        assert_eq!(reply.status, 401);
        assert_eq!(reply.header("WWW-Authenticate"), Some("Bearer realm=\"zt\""));
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert_eq!(reply.body, r#"{"error":"missing_token","message":"Jwt is missing"}"#);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn every_other_failure_is_invalid_token_without_details() {
        let expired = JwtError::Expired { exp: 1_699_999_000, now: UnixSeconds(1_700_000_000) };
        let reply = denial(&expired, "api");
        assert_eq!(reply.status, 401);
        assert_eq!(reply.header("www-authenticate"), Some("Bearer realm=\"api\", error=\"invalid_token\""));
        assert_eq!(reply.body, r#"{"error":"invalid_token","message":"Jwt is expired"}"#);
        assert!(!reply.body.contains("1699999000"));
    }
}
