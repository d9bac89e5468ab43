//! `ztctl token`: mint a token for a demo or a test, read one's header and claims, and verify one
//! with the JWT filter's own code (zt-core's `Authenticator`, the in-module verifier), so that
//! "why is this refused?" has the filter's answer, by the reason name its metrics and logs use.
//! A token is never printed back: only what it says.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_simple::prelude::*;
use serde_json::{Map, Value};
use zt_core::UnixSeconds;
use zt_core::audit::rfc3339_millis;
use zt_core::jwt::{Authenticator, Identity, InModuleVerifier, JwtError, JwtFilterConfig};

use crate::error::CliError;

/// `token mint`: what goes into the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mint {
    pub key: String,
    pub alg: String,
    pub kid: Option<String>,
    pub issuer: String,
    pub audience: Option<String>,
    pub subject: Option<String>,
    /// `NAME=VALUE`: VALUE as JSON when it parses (`true`, `5`, `["a"]`), else as a string.
    pub claims: Vec<String>,
    pub lifetime_seconds: u64,
}

/// `token verify`: against what, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verify {
    /// A zt-jwt configuration (the `jwt` section of the suite's).
    pub config: Option<String>,
    /// A JWKS file: the keys of every provider (with `--config`), or of the one provider that
    /// `--issuer` and `--audience` describe.
    pub jwks: Option<String>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// Unix seconds to judge the token at; default now.
    pub at: Option<u64>,
    /// The token, or `-` for standard input.
    pub token: String,
}

/// Claims set by the flags of their own, not by `--claim`.
const REGISTERED: [&str; 7] = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"];

pub fn mint(mint: &Mint) -> Result<String, CliError> {
    let key = std::fs::read(&mint.key).map_err(|source| CliError::Unreadable { path: mint.key.clone(), source })?;
    let custom = custom_claims(&mint.claims)?;
    let mut claims =
        Claims::with_custom_claims(custom, Duration::from_secs(mint.lifetime_seconds)).with_issuer(&mint.issuer);
    if let Some(audience) = &mint.audience {
        claims = claims.with_audience(audience);
    }
    if let Some(subject) = &mint.subject {
        claims = claims.with_subject(subject);
    }
    let pem = || std::str::from_utf8(&key).map_err(|_| usage(format!("--key {}: not a PEM file", mint.key)));
    let bad_key = |e: jwt_simple::Error| usage(format!("--key {} is no {} private key: {e}", mint.key, mint.alg));
    // One arm per key type: jwt-simple gives each its own type (`sign` for key pairs,
    // `authenticate` for HMAC keys).
    macro_rules! sign_with {
        ($pair:expr) => {
            sign_with!($pair, sign)
        };
        ($pair:expr, $sign:ident) => {{
            let mut pair = $pair.map_err(bad_key)?;
            if let Some(kid) = &mint.kid {
                pair = pair.with_key_id(kid);
            }
            pair.$sign(claims).map_err(|e| usage(format!("cannot sign: {e}")))
        }};
    }
    let hmac = |bytes: &[u8]| Ok::<_, jwt_simple::Error>(bytes.trim_ascii().to_vec());
    match mint.alg.as_str() {
        "RS256" => sign_with!(RS256KeyPair::from_pem(pem()?)),
        "RS384" => sign_with!(RS384KeyPair::from_pem(pem()?)),
        "RS512" => sign_with!(RS512KeyPair::from_pem(pem()?)),
        "PS256" => sign_with!(PS256KeyPair::from_pem(pem()?)),
        "PS384" => sign_with!(PS384KeyPair::from_pem(pem()?)),
        "PS512" => sign_with!(PS512KeyPair::from_pem(pem()?)),
        "ES256" => sign_with!(ES256KeyPair::from_pem(pem()?)),
        "ES384" => sign_with!(ES384KeyPair::from_pem(pem()?)),
        "EdDSA" => sign_with!(Ed25519KeyPair::from_pem(pem()?)),
        "HS256" => sign_with!(hmac(&key).map(|k| HS256Key::from_bytes(&k)), authenticate),
        "HS384" => sign_with!(hmac(&key).map(|k| HS384Key::from_bytes(&k)), authenticate),
        "HS512" => sign_with!(hmac(&key).map(|k| HS512Key::from_bytes(&k)), authenticate),
        other => Err(usage(format!(
            "--alg {other:?}: one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA, HS256, HS384, HS512"
        ))),
    }
}

fn custom_claims(pairs: &[String]) -> Result<Map<String, Value>, CliError> {
    let mut claims = Map::new();
    for pair in pairs {
        let (name, value) =
            pair.split_once('=').ok_or_else(|| usage(format!("--claim {pair:?}: expected NAME=VALUE")))?;
        if name.is_empty() || REGISTERED.contains(&name) {
            return Err(usage(format!(
                "--claim {name:?}: give a custom claim (iss, sub, aud and the times have flags of their own)"
            )));
        }
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
        if claims.insert(name.to_owned(), value).is_some() {
            return Err(usage(format!("--claim {name:?} given more than once")));
        }
    }
    Ok(claims)
}

/// `token inspect`: the header and the claims, the times as dates; the signature unchecked.
pub fn inspect(token: &str, now: u64) -> Result<String, CliError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(usage("not a compact JWS (three dot-separated parts)"));
    };
    let decode = |part: &str, what: &str| -> Result<Value, CliError> {
        let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|e| usage(format!("the {what} is not base64url: {e}")))?;
        serde_json::from_slice(&bytes).map_err(|e| usage(format!("the {what} is not JSON: {e}")))
    };
    let (header, claims) = (decode(header, "header")?, decode(payload, "payload")?);
    let pretty = |value: &Value| serde_json::to_string_pretty(value).unwrap_or_default();
    let mut out = format!("header: {}\nclaims: {}\n", pretty(&header), pretty(&claims));
    for (claim, label) in [("iat", "issued at"), ("nbf", "not before"), ("exp", "expires")] {
        if let Some(at) = claims.get(claim).and_then(Value::as_f64) {
            out.push_str(&format!("{label}: {}\n", when(at, now)));
        }
    }
    out.push_str("signature: not checked (`ztctl token verify` checks it with the filter's code)\n");
    Ok(out)
}

/// A NumericDate as a UTC date and its distance from `now`.
fn when(at: f64, now: u64) -> String {
    // Dates outside 1970..year 2554 are shown as numbers only (u64 nanoseconds end there).
    let seconds = if (0.0..1.8e10).contains(&at) { Some(at as u64) } else { None };
    let Some(seconds) = seconds else { return format!("{at}") };
    let date = rfc3339_millis(seconds.saturating_mul(1_000_000_000));
    match seconds.cmp(&now) {
        std::cmp::Ordering::Greater => format!("{date} (in {} s)", seconds - now),
        std::cmp::Ordering::Less => format!("{date} ({} s ago)", now - seconds),
        std::cmp::Ordering::Equal => format!("{date} (now)"),
    }
}

/// What `token verify` found: the identity the filter would hand on, or its refusal.
pub enum Verdict {
    Valid(Box<Identity>),
    Refused(JwtError),
}

pub fn verify(verify: &Verify, token: &str, now: u64) -> Result<Verdict, CliError> {
    let config = verify_config(verify)?;
    let config = JwtFilterConfig::from_json(config.to_string().as_bytes())
        .map_err(|e| usage(format!("the JWT configuration is invalid: {e}")))?;
    let authenticator = Authenticator::new(config, Box::new(InModuleVerifier));
    Ok(match authenticator.verify(token.trim(), UnixSeconds(verify.at.unwrap_or(now))) {
        Ok(identity) => Verdict::Valid(Box::new(identity)),
        Err(error) => Verdict::Refused(error),
    })
}

/// The configuration to verify with: the file given, its providers' keys replaced by the JWKS
/// file's when one is given; or one provider built from the flags.
fn verify_config(verify: &Verify) -> Result<Value, CliError> {
    let read_json = |path: &str| -> Result<Value, CliError> {
        let text = std::fs::read(path).map_err(|source| CliError::Unreadable { path: path.to_owned(), source })?;
        serde_json::from_slice(&text).map_err(|e| usage(format!("{path}: not JSON: {e}")))
    };
    let jwks = verify.jwks.as_deref().map(read_json).transpose()?;
    match (&verify.config, &verify.issuer) {
        (Some(path), None) => {
            let mut config = read_json(path)?;
            if let (Some(jwks), Some(providers)) = (jwks, config.get_mut("providers").and_then(Value::as_array_mut)) {
                for provider in providers.iter_mut().filter_map(Value::as_object_mut) {
                    provider.insert("jwks".to_owned(), serde_json::json!({"inline": jwks}));
                }
            }
            Ok(config)
        }
        (None, Some(issuer)) => {
            let jwks = jwks.ok_or_else(|| usage("`token verify --issuer` needs --jwks FILE"))?;
            let mut provider = serde_json::json!({"name": "cli", "issuer": issuer, "jwks": {"inline": jwks}});
            if let (Some(audience), Some(object)) = (&verify.audience, provider.as_object_mut()) {
                object.insert("audiences".to_owned(), serde_json::json!([audience]));
            }
            Ok(serde_json::json!({"providers": [provider]}))
        }
        _ => Err(usage("`token verify` needs either --config FILE or --issuer ISS with --jwks FILE")),
    }
}

/// The verdict as `token verify` prints it.
pub fn describe(verdict: &Verdict, now: u64) -> String {
    match verdict {
        Verdict::Valid(identity) => {
            let mut out = format!("valid: provider {}, issuer {}", identity.provider, identity.iss);
            if let Some(sub) = &identity.sub {
                out.push_str(&format!(", subject {sub}"));
            }
            if !identity.aud.is_empty() {
                out.push_str(&format!(", audience {}", identity.aud.join(" ")));
            }
            if !identity.scopes.is_empty() {
                out.push_str(&format!(", scopes {}", identity.scopes.join(" ")));
            }
            if let Some(exp) = identity.exp {
                out.push_str(&format!(", expires {}", when(exp as f64, now)));
            }
            out + "\n"
        }
        Verdict::Refused(error) => {
            let hint = match error {
                JwtError::KeysUnavailable { .. } => " (the provider fetches its keys: give them with --jwks FILE)",
                _ => "",
            };
            format!("refused: {}: {error}{hint}\n", error.reason())
        }
    }
}

/// Seconds since the Unix epoch, from this machine's clock.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn usage(message: impl Into<String>) -> CliError {
    CliError::Usage(message.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    struct Keys {
        dir: std::path::PathBuf,
        jwks: String,
    }

    /// An ES256 key with the `kid` "k1" in a PEM file, and its JWKS file.
    fn keys(name: &str) -> Keys {
        keys_with_kid(name, "k1")
    }

    fn keys_with_kid(name: &str, kid: &str) -> Keys {
        let dir = std::env::temp_dir().join(format!("ztctl-token-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pair = ES256KeyPair::generate().with_key_id(kid);
        std::fs::write(dir.join("key.pem"), pair.to_pem().unwrap()).unwrap();
        let jwk: Value = serde_json::from_str(&pair.public_key().to_jwk()).unwrap();
        let jwks = dir.join("jwks.json");
        std::fs::write(&jwks, serde_json::json!({"keys": [jwk]}).to_string()).unwrap();
        Keys { jwks: jwks.to_string_lossy().into_owned(), dir }
    }

    fn minted(keys: &Keys, claims: &[&str]) -> String {
        mint(&Mint {
            key: keys.dir.join("key.pem").to_string_lossy().into_owned(),
            alg: "ES256".to_owned(),
            kid: Some("k1".to_owned()),
            issuer: "https://idp.test".to_owned(),
            audience: Some("api".to_owned()),
            subject: Some("alice".to_owned()),
            claims: claims.iter().map(|c| (*c).to_owned()).collect(),
            lifetime_seconds: 300,
        })
        .unwrap()
    }

    fn against(keys: &Keys, audience: &str, at: Option<u64>) -> Verify {
        Verify {
            config: None,
            jwks: Some(keys.jwks.clone()),
            issuer: Some("https://idp.test".to_owned()),
            audience: Some(audience.to_owned()),
            at,
            token: "-".to_owned(),
        }
    }

    #[test]
    fn a_minted_token_verifies_with_the_filters_code_and_says_who() {
        let keys = keys("valid");
        let token = minted(&keys, &["scope=orders:read orders:write", "admin=true"]);
        let verdict = verify(&against(&keys, "api", None), &token, now()).unwrap();
        let text = describe(&verdict, now());
        assert!(
            text.starts_with("valid: provider cli, issuer https://idp.test, subject alice, audience api"),
            "{text}"
        );
        assert!(text.contains("scopes orders:read orders:write") && text.contains("(in 30"), "{text}");
        let Verdict::Valid(identity) = verdict else { unreachable!() };
        assert_eq!(identity.claims["admin"], Value::Bool(true), "a JSON value stays JSON");
        std::fs::remove_dir_all(&keys.dir).unwrap();
    }

    #[test]
    fn refusals_name_the_filters_reason() {
        let keys = keys("refused");
        let token = minted(&keys, &[]);
        let reason = |against: &Verify, token: &str| match verify(against, token, now()).unwrap() {
            Verdict::Refused(error) => error.reason(),
            Verdict::Valid(_) => "valid",
        };
        assert_eq!(reason(&against(&keys, "other", None), &token), "audience_mismatch");
        assert_eq!(reason(&against(&keys, "api", Some(now() + 3600)), &token), "expired");
        let mut tampered: Vec<&str> = token.split('.').collect();
        let mut claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(tampered[1]).unwrap()).unwrap();
        claims["sub"] = Value::from("mallory");
        let forged = URL_SAFE_NO_PAD.encode(claims.to_string());
        tampered[1] = &forged;
        assert_eq!(reason(&against(&keys, "api", None), &tampered.join(".")), "bad_signature");
        let other = keys_with_kid("other", "k2");
        assert_eq!(reason(&against(&other, "api", None), &token), "no_matching_key");
        std::fs::remove_dir_all(&keys.dir).unwrap();
        std::fs::remove_dir_all(&other.dir).unwrap();
    }

    #[test]
    fn inspect_shows_the_parts_and_the_times_never_the_signature() {
        let keys = keys("inspect");
        let token = minted(&keys, &["env=dev"]);
        let text = inspect(&token, now()).unwrap();
        assert!(text.contains(r#""alg": "ES256""#) && text.contains(r#""kid": "k1""#), "{text}");
        assert!(text.contains(r#""env": "dev""#) && text.contains("expires: 20"), "{text}");
        assert!(!text.contains(token.rsplit('.').next().unwrap()), "no signature in the output");
        assert!(inspect("a.b", NOW).is_err());
        std::fs::remove_dir_all(&keys.dir).unwrap();
    }

    #[test]
    fn registered_claims_have_their_own_flags() {
        assert!(custom_claims(&["sub=x".to_owned()]).is_err());
        assert!(custom_claims(&["novalue".to_owned()]).is_err());
        let claims = custom_claims(&["n=5".to_owned(), "s=text".to_owned()]).unwrap();
        assert_eq!((claims["n"].clone(), claims["s"].clone()), (Value::from(5), Value::from("text")));
    }
}
