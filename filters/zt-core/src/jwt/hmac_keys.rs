//! Symmetric keys for HS256/384/512, configured per provider and never taken from a JWKS: a
//! shared secret can mint tokens, so it is named where it is used and nowhere else.
//!
//! Secrets must be at least as long as the hash (RFC 7518 §3.2); `jwt-simple` would accept 12
//! bytes. A secret never appears in an error, a log line or a `Debug` print.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_simple::prelude::{HS256Key, HS384Key, HS512Key};
use serde::Deserialize;

use super::algorithm::Algorithm;
use super::keys::{KeyMaterial, VerifyingKey};
use crate::config_error::ConfigError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HmacKeyJson {
    /// Optional; as for JWKs, a token naming another `kid` skips this key.
    pub kid: Option<String>,
    /// `HS256`, `HS384` or `HS512`: the only algorithm this secret verifies.
    pub alg: String,
    /// The secret, base64url without padding; at least 32, 48 or 64 bytes for HS256/384/512.
    pub secret: String,
}

impl fmt::Debug for HmacKeyJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HmacKeyJson")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("secret", &"<redacted>")
            .finish()
    }
}

pub fn import_hmac_keys(keys: &[HmacKeyJson], path: &str) -> Result<Vec<VerifyingKey>, ConfigError> {
    keys.iter().enumerate().map(|(i, key)| import(key, &format!("{path}[{i}]"))).collect()
}

fn import(key: &HmacKeyJson, path: &str) -> Result<VerifyingKey, ConfigError> {
    let alg = Algorithm::from_jws_name(&key.alg)
        .filter(|alg| matches!(alg, Algorithm::Hs256 | Algorithm::Hs384 | Algorithm::Hs512))
        .ok_or_else(|| ConfigError::new(format!("{path}.alg"), "must be HS256, HS384 or HS512"))?;
    let secret = URL_SAFE_NO_PAD
        .decode(&key.secret)
        .map_err(|_| ConfigError::new(format!("{path}.secret"), "must be base64url without padding"))?;
    let minimum = match alg {
        Algorithm::Hs384 => 48,
        Algorithm::Hs512 => 64,
        _ => 32,
    };
    if secret.len() < minimum {
        return Err(ConfigError::new(
            format!("{path}.secret"),
            format!("must be at least {minimum} bytes for {alg} (RFC 7518 §3.2)"),
        ));
    }
    let material = match alg {
        Algorithm::Hs384 => KeyMaterial::Hs384(Box::new(HS384Key::from_bytes(&secret))),
        Algorithm::Hs512 => KeyMaterial::Hs512(Box::new(HS512Key::from_bytes(&secret))),
        _ => KeyMaterial::Hs256(Box::new(HS256Key::from_bytes(&secret))),
    };
    Ok(VerifyingKey { kid: key.kid.clone(), declared_alg: Some(alg), material, spki_der: None })
}
