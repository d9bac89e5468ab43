//! Keys, a JWKS and tokens for the JWT scenarios, generated fresh per run: no key or token is
//! ever committed. The claims match [`jwt_plugin_config`], the configuration the tests and the
//! demo give `zt-jwt`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
/// Token lifetimes are `jwt-simple` (coarsetime) durations, not `std::time::Duration`.
pub use jwt_simple::prelude::Duration as TokenLifetime;
use jwt_simple::prelude::*;
use serde_json::{Value, json};

use crate::BedError;

pub const REALM: &str = "zt-demo";
pub const ISSUER: &str = "https://issuer.demo.local";
pub const AUDIENCE: &str = "demo-api";
pub const SUBJECT: &str = "demo-user";

/// The signing algorithms `zt-jwt` accepts that a scenario exercises: RS256 and ES256 (verified by
/// Envoy's host crypto) and EdDSA (verified inside the module).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    Rs256,
    Es256,
    EdDsa,
}

impl Alg {
    pub const ALL: [Alg; 3] = [Alg::Rs256, Alg::Es256, Alg::EdDsa];
}

pub struct KeySet {
    rs256: RS256KeyPair,
    es256: ES256KeyPair,
    ed25519: Ed25519KeyPair,
}

impl KeySet {
    /// One key per algorithm, each with its own `kid` (`demo-rs256`, ...).
    pub fn generate() -> Result<Self, BedError> {
        Self::generate_named("demo")
    }

    /// One key per algorithm with `kid`s `<name>-rs256`, `<name>-es256`, `<name>-ed25519`: two
    /// sets of different names stand for an issuer's keys before and after a rotation.
    pub fn generate_named(name: &str) -> Result<Self, BedError> {
        let rs256 = RS256KeyPair::generate(2048).map_err(|e| BedError::Token(format!("RSA key: {e}")))?;
        Ok(KeySet {
            rs256: rs256.with_key_id(&format!("{name}-rs256")),
            es256: ES256KeyPair::generate().with_key_id(&format!("{name}-es256")),
            ed25519: Ed25519KeyPair::generate().with_key_id(&format!("{name}-ed25519")),
        })
    }

    /// The private keys as PEM files named by their `kid` (`demo-es256.pem`, ...; readable by
    /// the owner only) and the public keys as `jwks.json`, in `dir`: what `ztctl token mint`
    /// and `token verify` take, so that the demo can hand out fresh tokens while it runs.
    pub fn write_to(&self, dir: &std::path::Path) -> Result<(), BedError> {
        std::fs::create_dir_all(dir).map_err(BedError::io(format!("create {}", dir.display())))?;
        let pem = |pem: Result<String, jwt_simple::Error>| pem.map_err(|e| BedError::Token(format!("PEM: {e}")));
        let keys = [
            (self.rs256.key_id(), pem(self.rs256.to_pem())?),
            (self.es256.key_id(), pem(self.es256.to_pem())?),
            (self.ed25519.key_id(), self.ed25519.to_pem()),
        ];
        for (kid, pem) in keys {
            let kid = kid.as_deref().ok_or_else(|| BedError::Token("a demo key without kid".to_owned()))?;
            write_private(&dir.join(format!("{kid}.pem")), pem.as_bytes())?;
        }
        let jwks = dir.join("jwks.json");
        std::fs::write(&jwks, self.jwks().to_string()).map_err(BedError::io(format!("write {}", jwks.display())))
    }

    /// The public keys as a JWKS (`{"keys": [...]}`).
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> =
            [self.rs256.public_key().to_jwk(), self.es256.public_key().to_jwk(), self.ed25519.public_key().to_jwk()]
                .iter()
                .filter_map(|jwk| serde_json::from_str(jwk).ok())
                .collect();
        json!({ "keys": keys })
    }

    /// A token that `jwt_plugin_config` accepts for the next five minutes.
    pub fn valid(&self, alg: Alg) -> Result<String, BedError> {
        self.valid_for(alg, Duration::from_mins(5))
    }

    /// A token that `jwt_plugin_config` accepts for `lifetime` (at most the filter's 24 h lifetime).
    pub fn valid_for(&self, alg: Alg, lifetime: TokenLifetime) -> Result<String, BedError> {
        self.sign(alg, Claims::create(lifetime))
    }

    /// A token with extra claims (`scope`, `env`, ...) that `jwt_plugin_config` accepts for the
    /// next five minutes.
    pub fn valid_with(&self, alg: Alg, custom: Value) -> Result<String, BedError> {
        let claims = Claims::with_custom_claims(custom, Duration::from_mins(5))
            .with_issuer(ISSUER)
            .with_audience(AUDIENCE)
            .with_subject(SUBJECT);
        let token = match alg {
            Alg::Rs256 => self.rs256.sign(claims),
            Alg::Es256 => self.es256.sign(claims),
            Alg::EdDsa => self.ed25519.sign(claims),
        };
        token.map_err(|e| BedError::Token(format!("sign {alg:?}: {e}")))
    }

    /// A token of another issuer (with the demo audience and subject), valid for five minutes.
    pub fn valid_from(&self, alg: Alg, issuer: &str) -> Result<String, BedError> {
        self.sign_as(alg, issuer, Claims::create(Duration::from_mins(5)))
    }

    /// `count` valid tokens that differ (each its own `jti`), valid for an hour: a workload
    /// where no cache can help.
    pub fn distinct(&self, alg: Alg, count: usize) -> Result<Vec<String>, BedError> {
        (0..count).map(|i| self.sign(alg, Claims::create(Duration::from_hours(1)).with_jwt_id(i.to_string()))).collect()
    }

    /// A token whose `exp` lies ten minutes in the past, beyond the 60 s clock skew.
    pub fn expired(&self, alg: Alg) -> Result<String, BedError> {
        let now = Clock::now_since_epoch();
        let mut claims = Claims::create(Duration::from_mins(5));
        claims.issued_at = Some(now - Duration::from_mins(20));
        claims.invalid_before = claims.issued_at;
        claims.expires_at = Some(now - Duration::from_mins(10));
        self.sign(alg, claims)
    }

    fn sign(&self, alg: Alg, claims: JWTClaims<NoCustomClaims>) -> Result<String, BedError> {
        self.sign_as(alg, ISSUER, claims)
    }

    fn sign_as(&self, alg: Alg, issuer: &str, claims: JWTClaims<NoCustomClaims>) -> Result<String, BedError> {
        let claims = claims.with_issuer(issuer).with_audience(AUDIENCE).with_subject(SUBJECT);
        let token = match alg {
            Alg::Rs256 => self.rs256.sign(claims),
            Alg::Es256 => self.es256.sign(claims),
            Alg::EdDsa => self.ed25519.sign(claims),
        };
        token.map_err(|e| BedError::Token(format!("sign {alg:?}: {e}")))
    }
}

/// Writes `bytes` to `path`, readable and writable by the owner only (a private key, a secret).
pub fn write_private(path: &std::path::Path, bytes: &[u8]) -> Result<(), BedError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| file.write_all(bytes))
        .map_err(BedError::io(format!("write {}", path.display())))
}

/// The same token with its payload rewritten (`sub` becomes `admin`) and the original signature
/// kept: what an attacker who edits a token produces.
pub fn tamper(token: &str) -> Result<String, BedError> {
    let bad = || BedError::Token("not a compact JWS".to_owned());
    let mut parts = token.split('.');
    let (header, payload, signature) =
        (parts.next().ok_or_else(bad)?, parts.next().ok_or_else(bad)?, parts.next().ok_or_else(bad)?);
    let mut claims: Value =
        URL_SAFE_NO_PAD.decode(payload).ok().and_then(|json| serde_json::from_slice(&json).ok()).ok_or_else(bad)?;
    if let Some(claims) = claims.as_object_mut() {
        claims.insert("sub".to_owned(), "admin".into());
    }
    Ok(format!("{header}.{}.{signature}", URL_SAFE_NO_PAD.encode(claims.to_string())))
}

/// The `zt-jwt` plugin configuration trusting `jwks` for [`ISSUER`] and [`AUDIENCE`].
pub fn jwt_plugin_config(jwks: &Value) -> String {
    json!({
        "realm": REALM,
        "providers": [{
            "name": "demo",
            "issuer": ISSUER,
            "audiences": [AUDIENCE],
            "jwks": { "inline": jwks },
            "clock_skew_seconds": 60
        }],
        "forward_token": false
    })
    .to_string()
}

/// The plugin configuration of `jwt-oidc.yaml`: one provider whose keys come from the OpenID
/// discovery document of `issuer` (an `http://127.0.0.1:port` URL served through cluster `idp`),
/// refreshed every 8 s (cache 10 s), an unknown `kid` refetched at most every second, and a
/// `public` requirement for routes that take anonymous requests.
pub fn jwt_oidc_plugin_config(issuer: &str) -> String {
    json!({
        "realm": REALM,
        "providers": [{
            "name": "idp",
            "issuer": issuer,
            "audiences": [AUDIENCE],
            "jwks": { "oidc_discovery": {
                "cluster": "idp",
                "cache_duration_seconds": 10,
                "unknown_kid_refetch_interval_seconds": 1
            } }
        }],
        "requirements": { "named": { "public": { "allow_missing": true } } }
    })
    .to_string()
}
