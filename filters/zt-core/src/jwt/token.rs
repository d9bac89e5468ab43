//! A compact JWS (RFC 7515 §7.1) taken apart and checked for shape, before any key is used.
//!
//! Nothing here is trusted: the header and claims are parsed only to choose the provider and
//! key and to run the cheap claim checks; the identity is built after the signature holds.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use super::algorithm::Algorithm;
use super::error::JwtError;
use super::strict_json::{StrictJsonError, parse_object};

/// A token split into its parts, with header and claims decoded.
#[derive(Debug, Clone)]
pub struct ParsedToken<'a> {
    /// The whole compact form, as the in-module verifier wants it.
    pub compact: &'a str,
    /// `BASE64URL(header) || '.' || BASE64URL(payload)`: the bytes the signature covers.
    pub signing_input: &'a str,
    pub signature: Vec<u8>,
    pub alg: Algorithm,
    pub kid: Option<String>,
    pub claims: Map<String, Value>,
}

impl<'a> ParsedToken<'a> {
    /// Parses `token`, refusing anything over `max_len` bytes before decoding a single part.
    pub fn parse(token: &'a str, max_len: usize) -> Result<Self, JwtError> {
        if token.len() > max_len {
            return Err(JwtError::TooLarge { len: token.len(), max: max_len });
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            // Five parts would be a JWE, two a truncated token: neither is a signed JWT.
            return Err(JwtError::Malformed("expected three dot-separated parts"));
        };
        let signing_input = token
            .get(..header_b64.len() + 1 + payload_b64.len())
            .ok_or(JwtError::Malformed("expected three dot-separated parts"))?;

        let header = parse_object(&decode_part(header_b64, "header")?).map_err(json_error("header"))?;
        let (alg, kid) = check_header(&header)?;
        let claims = parse_object(&decode_part(payload_b64, "payload")?).map_err(json_error("payload"))?;
        let signature = decode_part(signature_b64, "signature")?;
        if signature.is_empty() {
            return Err(JwtError::Malformed("empty signature"));
        }
        Ok(Self { compact: token, signing_input, signature, alg, kid, claims })
    }
}

/// Strict base64url (RFC 7515 §2): no padding, no `+` or `/`, no non-zero trailing bits.
fn decode_part(part: &str, which: &'static str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD.decode(part).map_err(|_| {
        JwtError::Malformed(match which {
            "header" => "header is not base64url",
            "payload" => "payload is not base64url",
            _ => "signature is not base64url",
        })
    })
}

fn json_error(which: &'static str) -> impl Fn(StrictJsonError) -> JwtError {
    move |e| match e {
        StrictJsonError::DuplicateMember => JwtError::DuplicateMember,
        StrictJsonError::Invalid | StrictJsonError::NotAnObject => JwtError::Malformed(if which == "header" {
            "header is not a JSON object"
        } else {
            "payload is not a JSON object"
        }),
    }
}

/// The header rules; keys are never taken from the token (`jwk`, `jku`, `x5u`, `x5c` are
/// ignored: keys come from configuration only, RFC 8725 §3.10).
fn check_header(header: &Map<String, Value>) -> Result<(Algorithm, Option<String>), JwtError> {
    if header.contains_key("crit") || header.contains_key("b64") {
        return Err(JwtError::CriticalHeader);
    }
    let alg = match header.get("alg") {
        Some(Value::String(name)) => Algorithm::from_jws_name(name).ok_or(JwtError::UnsupportedAlgorithm)?,
        Some(_) => return Err(JwtError::Malformed("header alg is not a string")),
        None => return Err(JwtError::Malformed("header has no alg")),
    };
    match header.get("typ") {
        None => {}
        // RFC 7519 §5.1 and RFC 8725 §3.11: `JWT`, or an explicit `+jwt` media type.
        Some(Value::String(typ)) if typ.eq_ignore_ascii_case("JWT") || typ.to_ascii_lowercase().ends_with("+jwt") => {}
        Some(_) => return Err(JwtError::UnsupportedType),
    }
    if header.contains_key("cty") {
        // A content type means a nested JWT or a non-JSON payload: neither is a token here.
        return Err(JwtError::UnsupportedType);
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(JwtError::Malformed("header kid is not a string")),
    };
    Ok((alg, kid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    fn token(header: &str, claims: &str) -> String {
        format!("{}.{}.{}", b64(header), b64(claims), b64("sig"))
    }

    const CLAIMS: &str = r#"{"iss":"i","exp":1}"#;

    fn parse(t: &str) -> Result<ParsedToken<'_>, JwtError> {
        ParsedToken::parse(t, 8192)
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn parses_a_well_formed_token() {
        let t = token(r#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#, CLAIMS);
        let p = parse(&t).unwrap();
        assert_eq!(p.alg, Algorithm::Rs256);
        assert_eq!(p.kid.as_deref(), Some("k1"));
        assert_eq!(p.claims["iss"], "i");
        assert_eq!(p.signature, b"sig");
        assert!(t.starts_with(p.signing_input) && t.len() == p.signing_input.len() + 1 + b64("sig").len());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn refuses_what_is_not_a_compact_jws() {
        let good = token(r#"{"alg":"ES256"}"#, CLAIMS);
        let cases: Vec<(String, JwtError)> = vec![
            ("a.b".into(), JwtError::Malformed("expected three dot-separated parts")),
            (format!("{good}.x.y"), JwtError::Malformed("expected three dot-separated parts")),
            (format!("{}.{}.", b64(r#"{"alg":"ES256"}"#), b64(CLAIMS)), JwtError::Malformed("empty signature")),
            (
                format!("{}=.{}.{}", b64(r#"{"alg":"ES256"}"#), b64(CLAIMS), b64("s")),
                JwtError::Malformed("header is not base64url"),
            ),
            (
                format!("{}.{}.a+/b", b64(r#"{"alg":"ES256"}"#), b64(CLAIMS)),
                JwtError::Malformed("signature is not base64url"),
            ),
            (token(r#"["ES256"]"#, CLAIMS), JwtError::Malformed("header is not a JSON object")),
            (token(r#"{"alg":"ES256"}"#, r#""claims""#), JwtError::Malformed("payload is not a JSON object")),
            (token(r#"{"alg":"ES256"}"#, r#"{"scope":"a","scope":"admin"}"#), JwtError::DuplicateMember),
            (token(r#"{"alg":"ES256","alg":"none"}"#, CLAIMS), JwtError::DuplicateMember),
        ];
        for (t, expected) in cases {
            assert_eq!(parse(&t).unwrap_err(), expected, "{t}");
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn refuses_non_canonical_base64url() {
        // "s" encodes as "cw"; "cx" differs only in trailing bits that must be zero.
        let with_sig = |sig: &str| format!("{}.{}.{sig}", b64(r#"{"alg":"ES256"}"#), b64(CLAIMS));
        assert!(parse(&with_sig("cw")).is_ok());
        for bad in ["cx", "cw==", "c2lnZ", "YR"] {
            assert_eq!(parse(&with_sig(bad)).unwrap_err(), JwtError::Malformed("signature is not base64url"), "{bad}");
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn applies_the_header_rules() {
        let cases = [
            (r#"{"alg":"none"}"#, JwtError::UnsupportedAlgorithm),
            (r#"{"alg":"nOnE"}"#, JwtError::UnsupportedAlgorithm),
            (r#"{"alg":"HS1"}"#, JwtError::UnsupportedAlgorithm),
            (r#"{"alg":256}"#, JwtError::Malformed("header alg is not a string")),
            (r#"{"kid":"k"}"#, JwtError::Malformed("header has no alg")),
            (r#"{"alg":"RS256","crit":[]}"#, JwtError::CriticalHeader),
            (r#"{"alg":"RS256","crit":["exp"],"exp":1}"#, JwtError::CriticalHeader),
            (r#"{"alg":"RS256","b64":false}"#, JwtError::CriticalHeader),
            (r#"{"alg":"RS256","cty":"JWT"}"#, JwtError::UnsupportedType),
            (r#"{"alg":"RS256","typ":"JWE"}"#, JwtError::UnsupportedType),
            (r#"{"alg":"RS256","kid":["a"]}"#, JwtError::Malformed("header kid is not a string")),
        ];
        for (header, expected) in cases {
            assert_eq!(parse(&token(header, CLAIMS)).unwrap_err(), expected, "{header}");
        }
        for ok in [r#"{"alg":"RS256","typ":"at+jwt"}"#, r#"{"alg":"EdDSA","typ":"jwt","jku":"https://evil"}"#] {
            assert!(parse(&token(ok, CLAIMS)).is_ok(), "{ok}");
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn refuses_oversized_tokens_before_decoding() {
        let t = "a".repeat(8193);
        assert_eq!(parse(&t).unwrap_err(), JwtError::TooLarge { len: 8193, max: 8192 });
    }
}
