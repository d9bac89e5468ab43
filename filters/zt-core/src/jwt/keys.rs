//! Verification keys from a JWKS (RFC 7517), checked once at configuration time.
//!
//! Each JWK is imported by `jwt-simple`'s strict `from_jwk` (size, curve, exponent, `use`,
//! `key_ops`, private members); the set-level rules (no duplicate `kid`, no symmetric keys, at
//! least one key) and the refusal of ROCA-fingerprinted RSA moduli are ours. A bad key refuses the whole configuration: dropping it silently
//! would turn a typo into a 401 for every caller of that key.

use jwt_simple::prelude::{
    ES256PublicKey, ES384PublicKey, Ed25519PublicKey, HS256Key, HS384Key, HS512Key, PS256PublicKey, PS384PublicKey,
    PS512PublicKey, RS256PublicKey, RS384PublicKey, RS512PublicKey,
};
use serde_json::Value;

use super::algorithm::Algorithm;
use super::roca::has_roca_fingerprint;
use crate::config_error::ConfigError;

/// One public key and the algorithms it may verify.
pub struct VerifyingKey {
    pub kid: Option<String>,
    /// The JWK's `alg`, when it names one: then no other algorithm is accepted with this key.
    pub declared_alg: Option<Algorithm>,
    pub material: KeyMaterial,
    /// SubjectPublicKeyInfo DER of RSA and EC keys, computed once for the host's verifier.
    pub spki_der: Option<Vec<u8>>,
}

/// The imported key, one variant per key type and curve. RSA keys are imported once per hash
/// and padding so that a JWK without `alg` serves RS256/384/512 and PS256/384/512, as in Envoy's
/// `jwt_authn`.
pub enum KeyMaterial {
    Rsa {
        rs256: Box<RS256PublicKey>,
        rs384: Box<RS384PublicKey>,
        rs512: Box<RS512PublicKey>,
        ps256: Box<PS256PublicKey>,
        ps384: Box<PS384PublicKey>,
        ps512: Box<PS512PublicKey>,
    },
    P256(Box<ES256PublicKey>),
    P384(Box<ES384PublicKey>),
    Ed25519(Box<Ed25519PublicKey>),
    /// A shared secret configured for one provider (never from a JWKS), for one HS algorithm.
    Hs256(Box<HS256Key>),
    Hs384(Box<HS384Key>),
    Hs512(Box<HS512Key>),
}

impl VerifyingKey {
    /// Whether this key may verify a token signed with `alg`: key type and curve decide the
    /// family, and a declared `alg` narrows it to one (RFC 8725 §3.1).
    pub fn accepts(&self, alg: Algorithm) -> bool {
        let family_matches = match self.material {
            KeyMaterial::Rsa { .. } => matches!(
                alg,
                Algorithm::Rs256
                    | Algorithm::Rs384
                    | Algorithm::Rs512
                    | Algorithm::Ps256
                    | Algorithm::Ps384
                    | Algorithm::Ps512
            ),
            KeyMaterial::P256(_) => alg == Algorithm::Es256,
            KeyMaterial::P384(_) => alg == Algorithm::Es384,
            KeyMaterial::Ed25519(_) => alg == Algorithm::EdDsa,
            KeyMaterial::Hs256(_) => alg == Algorithm::Hs256,
            KeyMaterial::Hs384(_) => alg == Algorithm::Hs384,
            KeyMaterial::Hs512(_) => alg == Algorithm::Hs512,
        };
        family_matches && self.declared_alg.is_none_or(|declared| declared == alg)
    }

    /// What this key verifies when its provider lists no `algorithms`: its declared `alg`, or
    /// else the conservative algorithm of its type. An RSA key without `alg` verifies RS256/384/512
    /// only: PSS is slower to verify and runs in the module, so an anonymous client must not
    /// be able to choose it for a key whose issuer never said it signs with it.
    pub fn accepts_by_default(&self, alg: Algorithm) -> bool {
        self.accepts(alg)
            && (self.declared_alg.is_some() || !matches!(alg, Algorithm::Ps256 | Algorithm::Ps384 | Algorithm::Ps512))
    }

    /// Whether this key may verify `alg` for a provider allowing `allowed` (`None`: the default).
    pub fn accepts_under(&self, alg: Algorithm, allowed: Option<&[Algorithm]>) -> bool {
        match allowed {
            Some(list) => list.contains(&alg) && self.accepts(alg),
            None => self.accepts_by_default(alg),
        }
    }
}

/// What a fetched JWKS held beyond the keys in use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SkippedKeys {
    /// Keys this filter cannot use (encryption keys, other types, weak or malformed RSA),
    /// including the ROCA ones below.
    pub count: usize,
    /// The `kid` (or `keys[i]` without one) of each RSA key refused for the ROCA fingerprint.
    pub roca: Vec<String>,
}

/// Which JWKs of a key source verify tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUse {
    /// RFC 7517 §4.2: `use` absent or `sig`.
    Signature,
    /// A SPIFFE trust bundle (SPIFFE Trust Domain and Bundle, §4.2.1): keys with `use:
    /// "jwt-svid"`, and `sig` or none (SPIRE's OIDC Discovery Provider publishes its keys so).
    /// `x509-svid` keys never: they are the CA certificates of X.509-SVIDs.
    JwtSvid,
}

impl KeyUse {
    /// Whether a JWK whose `use` is `declared` may verify tokens (a JWK without `use` may).
    fn admits(self, declared: &str) -> bool {
        match declared {
            "sig" => true,
            "jwt-svid" => self == KeyUse::JwtSvid,
            _ => false,
        }
    }
}

/// The members the importer reads or must see to refuse a key: the public and private key
/// material, type, curve, `alg`, `kid`, `key_ops`. Certificates (`x5c`, `x5t`, ...) and
/// issuers' own members (Entra ID's `issuer`) are left out, so a key with a long certificate
/// chain stays within `jwt-simple`'s JWK size limit; keys never come from them.
const IMPORTED_MEMBERS: [&str; 19] = [
    "kty", "crv", "alg", "kid", "key_ops", "x", "y", "n", "e", "d", "p", "q", "dp", "dq", "qi", "oth", "k", "pub",
    "priv",
];

/// A SPIFFE bundle's refresh hint (§4.1.2) below this is raised to it: a bundle cannot make
/// every proxy fetch it in a loop.
pub const MIN_REFRESH_HINT_SECONDS: u64 = 10;

/// The keys of one provider.
pub struct KeySet {
    keys: Vec<VerifyingKey>,
    /// A fetched SPIFFE bundle's `spiffe_refresh_hint`, in seconds.
    refresh_hint_seconds: Option<u64>,
}

impl KeySet {
    /// Imports a JWKS given as a JSON object `{"keys":[...]}` or as a string holding one
    /// (Envoy's `inline_string` form). `path` names the JSON location for errors.
    /// Keys declared for another `use` (`enc`, a bundle's `x509-svid`) are skipped; any other
    /// key this filter cannot use refuses the configuration.
    pub fn from_jwks(jwks: &Value, key_use: KeyUse, path: &str) -> Result<Self, ConfigError> {
        let parsed;
        let jwks = match jwks {
            Value::String(text) => {
                parsed = serde_json::from_str::<Value>(text)
                    .map_err(|e| ConfigError::new(path, format!("not a JSON JWKS: {e}")))?;
                &parsed
            }
            other => other,
        };
        let Some(Value::Array(entries)) = jwks.get("keys") else {
            return Err(ConfigError::new(format!("{path}.keys"), "must be an array of JWKs"));
        };
        if entries.is_empty() {
            return Err(ConfigError::new(format!("{path}.keys"), "must hold at least one key"));
        }
        let mut keys: Vec<VerifyingKey> = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            // A set copied from an issuer holds its encryption keys, a SPIFFE bundle its X.509
            // CAs: declared for another use, they are skipped, not a typo to refuse.
            if entry.get("use").and_then(Value::as_str).is_some_and(|used| !key_use.admits(used)) {
                continue;
            }
            let key_path = format!("{path}.keys[{i}]");
            let key = import_jwk(entry, key_use, &key_path)?;
            if let Some(kid) = &key.kid
                && let Some(first) = keys.iter().position(|k| k.kid.as_ref() == Some(kid))
            {
                return Err(ConfigError::new(
                    format!("{key_path}.kid"),
                    format!("duplicates the kid of keys[{first}]"),
                ));
            }
            keys.push(key);
        }
        if keys.is_empty() {
            return Err(ConfigError::new(
                format!("{path}.keys"),
                "holds no key for verifying tokens (keys for another `use` are skipped)",
            ));
        }
        Ok(Self { keys, refresh_hint_seconds: None })
    }

    /// Imports a fetched JWKS. Unlike configuration, a published set may hold keys this
    /// filter cannot use (encryption keys, other key types, weak RSA, ROCA moduli): those are
    /// skipped and counted, the ROCA ones by `kid`. A set with no usable key, or with a `kid`
    /// twice, is refused whole.
    pub fn from_remote_jwks(body: &[u8], key_use: KeyUse) -> Result<(Self, SkippedKeys), String> {
        let jwks: Value = serde_json::from_slice(body).map_err(|_| "not JSON".to_owned())?;
        let Some(Value::Array(entries)) = jwks.get("keys") else {
            return Err("no `keys` array".to_owned());
        };
        let mut keys: Vec<VerifyingKey> = Vec::with_capacity(entries.len());
        let mut skipped = SkippedKeys::default();
        for (i, entry) in entries.iter().enumerate() {
            if is_roca_rsa_jwk(entry) {
                skipped.count += 1;
                let kid = entry.get("kid").and_then(Value::as_str);
                skipped.roca.push(kid.map_or_else(|| format!("keys[{i}]"), str::to_owned));
                continue;
            }
            let Ok(key) = import_jwk(entry, key_use, "key") else {
                skipped.count += 1;
                continue;
            };
            if let Some(kid) = &key.kid
                && keys.iter().any(|k| k.kid.as_ref() == Some(kid))
            {
                return Err(format!("keys[{i}] repeats a kid: the set is ambiguous"));
            }
            keys.push(key);
        }
        if keys.is_empty() {
            if !skipped.roca.is_empty() {
                return Err(format!(
                    "none of its {} keys is usable (ROCA-fingerprinted RSA: {:?})",
                    entries.len(),
                    skipped.roca
                ));
            }
            let svid_keys = entries.iter().any(|e| e.get("use").and_then(Value::as_str) == Some("jwt-svid"));
            if svid_keys && key_use == KeyUse::Signature {
                return Err(format!(
                    "none of its {} keys is usable (it is a SPIFFE bundle: give the provider `spiffe`)",
                    entries.len()
                ));
            }
            return Err(format!("none of its {} keys is usable", entries.len()));
        }
        // SPIFFE Trust Domain and Bundle §4.1.2: a positive integer; anything else is ignored.
        let refresh_hint_seconds = match key_use {
            KeyUse::JwtSvid => jwks.get("spiffe_refresh_hint").and_then(Value::as_u64).filter(|hint| *hint > 0),
            KeyUse::Signature => None,
        };
        Ok((Self { keys, refresh_hint_seconds }, skipped))
    }

    /// A fetched SPIFFE bundle's refresh hint, in seconds.
    pub fn refresh_hint_seconds(&self) -> Option<u64> {
        self.refresh_hint_seconds
    }

    /// The keys that may verify a token with this `kid` and `alg` for a provider allowing
    /// `allowed`, following Envoy's `jwt_verify_lib`: a key with another `kid` is skipped, a key
    /// without one is tried.
    pub fn candidates<'s>(
        &'s self,
        kid: Option<&'s str>,
        alg: Algorithm,
        allowed: Option<&'s [Algorithm]>,
    ) -> impl Iterator<Item = &'s VerifyingKey> + 's {
        self.keys.iter().filter(move |key| {
            let kid_matches = match (kid, key.kid.as_deref()) {
                (Some(token_kid), Some(key_kid)) => token_kid == key_kid,
                _ => true,
            };
            kid_matches && key.accepts_under(alg, allowed)
        })
    }

    /// Whether some key verifies `alg` by default (the provider lists no `algorithms`).
    pub fn allows_by_default(&self, alg: Algorithm) -> bool {
        self.keys.iter().any(|key| key.accepts_by_default(alg))
    }

    /// Whether some key has exactly this `kid`.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|key| key.kid.as_deref() == Some(kid))
    }

    /// Adds keys (the provider's symmetric keys) after the JWKS, refusing a `kid` already used.
    pub fn extend(&mut self, keys: Vec<VerifyingKey>, path: &str) -> Result<(), ConfigError> {
        for (i, key) in keys.into_iter().enumerate() {
            if let Some(kid) = &key.kid
                && self.keys.iter().any(|k| k.kid.as_ref() == Some(kid))
            {
                return Err(ConfigError::new(format!("{path}[{i}].kid"), "duplicates the kid of another key"));
            }
            self.keys.push(key);
        }
        Ok(())
    }

    pub fn empty() -> Self {
        Self { keys: Vec::new(), refresh_hint_seconds: None }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn import_jwk(entry: &Value, key_use: KeyUse, path: &str) -> Result<VerifyingKey, ConfigError> {
    let field = |name: &str| entry.get(name).and_then(Value::as_str);
    let Some(members) = entry.as_object() else {
        return Err(ConfigError::new(path, "must be a JWK object"));
    };
    match entry.get("use") {
        None => {}
        Some(Value::String(used)) if key_use.admits(used) => {}
        Some(Value::String(used)) => {
            return Err(ConfigError::new(format!("{path}.use"), format!("`{used}` is not a use for verifying tokens")));
        }
        Some(_) => return Err(ConfigError::new(format!("{path}.use"), "must be a string")),
    }
    // `use` was checked above (the importer knows only `sig`).
    let imported: serde_json::Map<String, Value> = members
        .iter()
        .filter(|(name, _)| IMPORTED_MEMBERS.contains(&name.as_str()))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    let entry = &Value::Object(imported);
    let declared_alg = match entry.get("alg") {
        None => None,
        Some(Value::String(name)) => Some(Algorithm::from_jws_name(name).ok_or_else(|| {
            ConfigError::new(format!("{path}.alg"), format!("`{name}` is not a supported algorithm"))
        })?),
        Some(_) => return Err(ConfigError::new(format!("{path}.alg"), "must be a string")),
    };
    let kid = match entry.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(ConfigError::new(format!("{path}.kid"), "must be a string")),
    };
    let text = entry.to_string();
    let invalid = |e: jwt_simple::Error| ConfigError::new(path, format!("invalid key: {e}"));
    let material = match (field("kty"), field("crv")) {
        (Some("RSA"), _) if is_roca_rsa_jwk(entry) => {
            return Err(ConfigError::new(
                format!("{path}.n"),
                "the modulus has the ROCA fingerprint (CVE-2017-15361): its private key can be computed",
            ));
        }
        (Some("RSA"), _) => {
            // Import without `alg` so one JWK yields every hash and padding; `declared_alg` narrows.
            let mut bare = entry.clone();
            if let Some(object) = bare.as_object_mut() {
                object.remove("alg");
            }
            let bare = bare.to_string();
            KeyMaterial::Rsa {
                rs256: Box::new(RS256PublicKey::from_jwk(&bare).map_err(invalid)?),
                rs384: Box::new(RS384PublicKey::from_jwk(&bare).map_err(invalid)?),
                rs512: Box::new(RS512PublicKey::from_jwk(&bare).map_err(invalid)?),
                ps256: Box::new(PS256PublicKey::from_jwk(&bare).map_err(invalid)?),
                ps384: Box::new(PS384PublicKey::from_jwk(&bare).map_err(invalid)?),
                ps512: Box::new(PS512PublicKey::from_jwk(&bare).map_err(invalid)?),
            }
        }
        (Some("EC"), Some("P-256")) => KeyMaterial::P256(Box::new(ES256PublicKey::from_jwk(&text).map_err(invalid)?)),
        (Some("EC"), Some("P-384")) => KeyMaterial::P384(Box::new(ES384PublicKey::from_jwk(&text).map_err(invalid)?)),
        (Some("OKP"), Some("Ed25519")) => {
            KeyMaterial::Ed25519(Box::new(Ed25519PublicKey::from_jwk(&text).map_err(invalid)?))
        }
        (Some("oct"), _) => {
            return Err(ConfigError::new(
                format!("{path}.kty"),
                "symmetric keys are not accepted in a JWKS: a shared secret in a key set can forge tokens",
            ));
        }
        (Some("EC" | "OKP"), crv) => {
            return Err(ConfigError::new(format!("{path}.crv"), format!("unsupported curve {crv:?}")));
        }
        (Some(kty), _) => return Err(ConfigError::new(format!("{path}.kty"), format!("unsupported key type `{kty}`"))),
        (None, _) => return Err(ConfigError::new(format!("{path}.kty"), "missing")),
    };
    let spki_der = match &material {
        KeyMaterial::Rsa { rs256, .. } => rs256.to_der().ok(),
        KeyMaterial::P256(key) => key.to_der().ok(),
        KeyMaterial::P384(key) => key.to_der().ok(),
        KeyMaterial::Ed25519(_) | KeyMaterial::Hs256(_) | KeyMaterial::Hs384(_) | KeyMaterial::Hs512(_) => None,
    };
    let key = VerifyingKey { kid, declared_alg, material, spki_der };
    if let Some(alg) = declared_alg
        && !key.accepts(alg)
    {
        return Err(ConfigError::new(format!("{path}.alg"), format!("{alg} does not fit the key type")));
    }
    Ok(key)
}

/// Whether `entry` is an RSA JWK whose `n` (base64url, RFC 7518 §6.3.1.1) has the ROCA
/// fingerprint. A malformed `n` is left to the importer to refuse.
fn is_roca_rsa_jwk(entry: &Value) -> bool {
    use base64::Engine as _;
    if entry.get("kty").and_then(Value::as_str) != Some("RSA") {
        return false;
    }
    let Some(n) = entry.get("n").and_then(Value::as_str) else { return false };
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(n).is_ok_and(|n| has_roca_fingerprint(&n))
}
