//! Scoped tokens for the next hop: instead of forwarding the caller's token, the filter mints
//! a short-lived one for the upstream, with the upstream as audience, the caller's subject,
//! only the scopes the route's profile allows (and the caller had), and this proxy named as
//! the actor (RFC 8693 §4.1 `act`, OpenID `azp`). The caller's issuer and provider travel as
//! `caller_iss` and `caller_provider`, apart from `iss` (always this minter), so that the same
//! `sub` from two issuers stays two callers at the next hop. The upstream verifies it against the public
//! JWKS the filter serves itself. A leaked minted token is worth one audience for seconds.

use std::collections::BTreeMap;

use jwt_simple::prelude::{
    Claims, Duration, ECDSAP256KeyPairLike, ES256KeyPair, Ed25519KeyPair, EdDSAKeyPairLike, UnixTimeStamp,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::identity::Identity;
use crate::config_error::ConfigError;
use crate::reply::LocalReply;
use crate::time::UnixSeconds;

/// Minted tokens live at most this long; a longer-lived token would be a second credential.
const MAX_LIFETIME_SECONDS: u64 = 600;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NextHopJson {
    /// `iss` of the minted tokens; the next hop configures a provider with this issuer.
    pub issuer: String,
    /// The private signing key as a JWK: `OKP`/`Ed25519` (EdDSA) or `EC`/`P-256` (ES256), with
    /// a `kid`. Never logged; its public half is served at `jwks_path`.
    pub signing_key: Value,
    /// Default none: public JWKs (Ed25519 or P-256, each with its own `kid`, never a private
    /// part) served at `jwks_path` besides the signing key's, for rotation: the next key before
    /// it becomes `signing_key`, the previous one until the tokens it signed have expired.
    #[serde(default)]
    pub publish_keys: Vec<Value>,
    /// Default `/.well-known/jwks.json`. A `GET` for this exact path is answered by the filter
    /// with the public JWKS (before any token check: the keys are public).
    #[serde(default = "default_jwks_path")]
    pub jwks_path: String,
    /// This proxy's identity (for example its SPIFFE ID): `azp` and `act.sub` of minted tokens.
    pub actor: String,
    /// Named profiles that requirements select with `next_hop_token`.
    pub profiles: BTreeMap<String, ProfileJson>,
    /// Default none: the caller's scopes are its identity's (`scope`, space-delimited, or
    /// `scp`), which is where zt-authz reads them without its own `scope_claim`. A claim path
    /// (`"permissions"`, `"realm_access.roles"` or `["realm_access", "roles"]`) holding a
    /// space-delimited string or an array of strings. Set it to zt-authz's `scope_claim`:
    /// otherwise the minted scopes are not the ones authorization checked.
    #[serde(default)]
    pub scope_claim: Option<ScopeClaimJson>,
}

/// A claim path: `"org.team"` or `["org", "team.name"]` (for member names holding a dot), as
/// zt-authz's `scope_claim` takes it.
#[derive(Debug, Deserialize)]
#[serde(untagged, expecting = "a claim path: a dot-separated string or an array of member names")]
pub enum ScopeClaimJson {
    Dotted(String),
    Segments(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileJson {
    /// `aud` of the minted token: the upstream service.
    pub audience: String,
    /// Lifetime in seconds, 1 to 600.
    pub lifetime_seconds: u64,
    /// Scopes the upstream may receive; the minted `scope` is these intersected with the
    /// caller's. Default none: the minted token carries no scope.
    #[serde(default)]
    pub scopes: Vec<String>,
}

fn default_jwks_path() -> String {
    "/.well-known/jwks.json".to_owned()
}

enum SigningKey {
    Ed25519(Box<Ed25519KeyPair>),
    P256(Box<ES256KeyPair>),
}

pub struct Profile {
    pub audience: String,
    pub lifetime_seconds: u64,
    pub scopes: Vec<String>,
}

/// The validated minting configuration.
pub struct NextHop {
    pub issuer: String,
    pub jwks_path: String,
    pub actor: String,
    /// Where the caller's scopes are read; `None`: [`Identity::scopes`].
    scope_claim: Option<Vec<String>>,
    profiles: BTreeMap<String, Profile>,
    key: SigningKey,
    /// The answer to `GET <jwks_path>`: the public JWKS, built once.
    jwks_reply: LocalReply,
}

impl NextHop {
    pub fn validate(json: NextHopJson, path: &str) -> Result<Self, ConfigError> {
        let field = |name: &str| format!("{path}.{name}");
        if json.issuer.is_empty() {
            return Err(ConfigError::new(field("issuer"), "must not be empty"));
        }
        if json.actor.is_empty() {
            return Err(ConfigError::new(field("actor"), "must not be empty"));
        }
        if !json.jwks_path.starts_with('/') || json.jwks_path.contains(['?', '#', ' ']) {
            return Err(ConfigError::new(field("jwks_path"), "must be a path starting with `/`, without query"));
        }
        if json.profiles.is_empty() {
            return Err(ConfigError::new(field("profiles"), "must not be empty"));
        }
        let mut profiles = BTreeMap::new();
        for (name, profile) in json.profiles {
            let at = field(&format!("profiles.{name}"));
            if profile.audience.is_empty() {
                return Err(ConfigError::new(format!("{at}.audience"), "must not be empty"));
            }
            if !(1..=MAX_LIFETIME_SECONDS).contains(&profile.lifetime_seconds) {
                return Err(ConfigError::new(format!("{at}.lifetime_seconds"), "must be between 1 and 600"));
            }
            profiles.insert(
                name,
                Profile {
                    audience: profile.audience,
                    lifetime_seconds: profile.lifetime_seconds,
                    scopes: profile.scopes,
                },
            );
        }
        let scope_claim = match json.scope_claim {
            None => None,
            Some(claim) => {
                let segments: Vec<String> = match claim {
                    ScopeClaimJson::Dotted(dotted) => dotted.split('.').map(str::to_owned).collect(),
                    ScopeClaimJson::Segments(segments) => segments,
                };
                if segments.is_empty() || segments.iter().any(String::is_empty) {
                    return Err(ConfigError::new(
                        field("scope_claim"),
                        "needs non-empty member names (`org.team` or [\"org\", \"team\"])",
                    ));
                }
                Some(segments)
            }
        };
        let (key, public_jwk) = import_signing_key(&json.signing_key, &field("signing_key"))?;
        let mut published = vec![public_jwk];
        for (i, jwk) in json.publish_keys.iter().enumerate() {
            published.push(published_key(jwk, &published, &field(&format!("publish_keys[{i}]")))?);
        }
        // The keys are public; a next hop may cache them for a while.
        let cache = vec![("cache-control".to_owned(), "max-age=300".to_owned())];
        let jwks_reply = LocalReply::json(200, cache, &json!({ "keys": published }));
        Ok(Self {
            issuer: json.issuer,
            jwks_path: json.jwks_path,
            actor: json.actor,
            scope_claim,
            profiles,
            key,
            jwks_reply,
        })
    }

    pub fn profile_names(&self) -> Vec<String> {
        self.profiles.keys().cloned().collect()
    }

    /// The reply to `GET <jwks_path>`: the public JWKS as JSON.
    pub fn jwks_reply(&self) -> &LocalReply {
        &self.jwks_reply
    }

    /// Mints the token for `profile` on behalf of a verified caller. `jti` must be fresh random
    /// bytes (the adapter draws them from the host); `now` is the proxy's clock.
    pub fn mint(&self, profile: &str, caller: &Identity, now: UnixSeconds, jti: [u8; 16]) -> Result<String, String> {
        let profile = self.profiles.get(profile).ok_or_else(|| format!("no next-hop profile `{profile}`"))?;
        let held = caller.scopes_at(self.scope_claim.as_deref());
        let scopes: Vec<&str> = profile.scopes.iter().filter(|s| held.contains(s)).map(String::as_str).collect();
        let mut custom = Map::new();
        custom.insert("azp".into(), json!(self.actor));
        custom.insert("act".into(), json!({ "sub": self.actor }));
        custom.insert("caller_iss".into(), json!(caller.iss));
        custom.insert("caller_provider".into(), json!(caller.provider));
        if !scopes.is_empty() {
            custom.insert("scope".into(), json!(scopes.join(" ")));
        }
        let mut claims = Claims::with_custom_claims(custom, Duration::from_secs(profile.lifetime_seconds))
            .with_issuer(&self.issuer)
            .with_audience(&profile.audience)
            .with_jwt_id(base64_url(&jti));
        if let Some(sub) = &caller.sub {
            claims = claims.with_subject(sub);
        }
        claims.issued_at = Some(UnixTimeStamp::from_secs(now.0));
        claims.invalid_before = Some(UnixTimeStamp::from_secs(now.0));
        claims.expires_at = Some(UnixTimeStamp::from_secs(now.0.saturating_add(profile.lifetime_seconds)));
        let signed = match &self.key {
            SigningKey::Ed25519(key) => key.sign(claims),
            SigningKey::P256(key) => key.sign(claims),
        };
        signed.map_err(|e| format!("signing failed: {e}"))
    }
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A public key published for rotation, as the next hop will read it (with `alg` and `use`):
/// one this filter could verify itself, under a `kid` of its own, with no private part.
fn published_key(jwk: &Value, published: &[Value], path: &str) -> Result<Value, ConfigError> {
    let member = |name: &str| jwk.get(name).and_then(Value::as_str);
    if jwk.get("d").is_some() {
        return Err(ConfigError::new(format!("{path}.d"), "a published key is public: remove its private part"));
    }
    let kid = member("kid")
        .filter(|k| !k.is_empty())
        .ok_or_else(|| ConfigError::new(format!("{path}.kid"), "missing: the next hop selects the key by kid"))?;
    if published.iter().any(|other| other.get("kid").and_then(Value::as_str) == Some(kid)) {
        return Err(ConfigError::new(format!("{path}.kid"), format!("{kid:?} is published already")));
    }
    let alg = match (member("kty"), member("crv")) {
        (Some("OKP"), Some("Ed25519")) => "EdDSA",
        (Some("EC"), Some("P-256")) => "ES256",
        _ => return Err(ConfigError::new(path, "must be an OKP Ed25519 or EC P-256 public JWK")),
    };
    let mut public = jwk.clone();
    if let Some(object) = public.as_object_mut() {
        object.insert("alg".into(), json!(alg));
        object.insert("use".into(), json!("sig"));
    }
    // Checked as the next hop's zt-jwt will import it.
    super::keys::KeySet::from_jwks(&json!({ "keys": [&public] }), super::keys::KeyUse::Signature, path)?;
    Ok(public)
}

/// The key pair and the public JWK to publish (with `kid`, `alg` and `use`).
fn import_signing_key(jwk: &Value, path: &str) -> Result<(SigningKey, Value), ConfigError> {
    let member = |name: &str| jwk.get(name).and_then(Value::as_str);
    let kid = member("kid")
        .filter(|k| !k.is_empty())
        .ok_or_else(|| ConfigError::new(format!("{path}.kid"), "missing: the next hop selects the key by kid"))?;
    if member("d").is_none() {
        return Err(ConfigError::new(format!("{path}.d"), "missing: a private key is needed to sign"));
    }
    let text = jwk.to_string();
    // The error of a key import may quote key material: report only that it failed.
    let invalid = |_| ConfigError::new(path, "is not a valid private key of its kty/crv");
    let (key, public, alg) = match (member("kty"), member("crv")) {
        (Some("OKP"), Some("Ed25519")) => {
            let key = Ed25519KeyPair::from_jwk(&text).map_err(invalid)?.with_key_id(kid);
            let public = key.public_key().to_jwk();
            (SigningKey::Ed25519(Box::new(key)), public, "EdDSA")
        }
        (Some("EC"), Some("P-256")) => {
            let key = ES256KeyPair::from_jwk(&text).map_err(invalid)?.with_key_id(kid);
            let public = key.public_key().to_jwk();
            (SigningKey::P256(Box::new(key)), public, "ES256")
        }
        _ => return Err(ConfigError::new(path, "must be an OKP Ed25519 or EC P-256 private JWK")),
    };
    let mut public: Value =
        serde_json::from_str(&public).map_err(|_| ConfigError::new(path, "cannot export the public key"))?;
    if let Some(object) = public.as_object_mut() {
        object.insert("kid".into(), json!(kid));
        object.insert("alg".into(), json!(alg));
        object.insert("use".into(), json!("sig"));
    }
    Ok((key, public))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::{Authenticator, InModuleVerifier, JwtError, JwtFilterConfig};
    use wasm_bindgen_test::wasm_bindgen_test;

    const NOW: UnixSeconds = UnixSeconds(1_700_000_000);

    fn private(text: &str, kid: &str) -> Value {
        let mut jwk: Value = serde_json::from_str(text).unwrap();
        jwk["kid"] = json!(kid);
        jwk
    }

    fn ed25519() -> Value {
        private(include_str!("../../testdata/A.1_Ed25519_private.jwk.json"), "gw-ed")
    }

    fn p256() -> Value {
        private(include_str!("../../testdata/A.3_ES256.jwk.json"), "gw-ec")
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn rotation_publishes_the_next_and_previous_keys_and_signs_with_one() {
        let public = |jwk: Value| {
            let mut jwk = jwk;
            jwk.as_object_mut().unwrap().remove("d");
            jwk
        };
        let next = public(p256());
        let json = json!({"issuer": "https://gw.internal", "signing_key": ed25519(), "actor": "a",
            "publish_keys": [next], "profiles": {"o": {"audience": "o", "lifetime_seconds": 30}}});
        let hop = NextHop::validate(serde_json::from_value(json.clone()).unwrap(), "next_hop").unwrap();
        let jwks: Value = serde_json::from_str(&hop.jwks_reply().body).unwrap();
        let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
        assert_eq!(kids, ["gw-ed", "gw-ec"]);
        assert_eq!(jwks["keys"][1]["alg"], "ES256");
        assert!(jwks["keys"].as_array().unwrap().iter().all(|k| k.get("d").is_none()), "never a private part");
        let refused = |publish: Value| {
            let mut json = json.clone();
            json["publish_keys"] = json!([publish]);
            NextHop::validate(serde_json::from_value(json).unwrap(), "next_hop").err().unwrap().path
        };
        assert_eq!(refused(p256()), "next_hop.publish_keys[0].d");
        assert_eq!(refused(public(ed25519())), "next_hop.publish_keys[0].kid", "the signing key's kid");
    }

    fn next_hop(key: Value) -> Result<NextHop, ConfigError> {
        let json = json!({"issuer": "https://gw.internal", "signing_key": key, "actor": "spiffe://td/gw",
            "profiles": {"orders": {"audience": "orders", "lifetime_seconds": 30, "scopes": ["orders.read", "orders.write"]}}});
        NextHop::validate(serde_json::from_value(json).unwrap(), "next_hop")
    }

    fn caller() -> Identity {
        let claims = json!({"iss": "https://idp", "sub": "alice", "scope": "orders.read profile admin"});
        Identity::from_claims("idp", claims.as_object().unwrap().clone())
    }

    /// The next hop: this very filter's core, trusting the published JWKS.
    fn next_hop_verifier(minter: &NextHop) -> Authenticator {
        let jwks: Value = serde_json::from_str(&minter.jwks_reply().body).unwrap();
        let config = json!({"providers": [{"name": "gw", "issuer": "https://gw.internal", "audiences": ["orders"],
            "jwks": {"inline": jwks}, "clock_skew_seconds": 5}]});
        Authenticator::new(
            JwtFilterConfig::from_json(config.to_string().as_bytes()).unwrap(),
            Box::new(InModuleVerifier),
        )
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn minted_tokens_verify_at_the_next_hop_with_narrowed_scopes_until_they_expire() {
        for key in [ed25519(), p256()] {
            let minter = next_hop(key).unwrap();
            let token = minter.mint("orders", &caller(), NOW, [7; 16]).unwrap();
            let verifier = next_hop_verifier(&minter);
            let identity = verifier.verify(&token, NOW).unwrap();
            assert_eq!(identity.sub.as_deref(), Some("alice"));
            assert_eq!(identity.aud, ["orders"]);
            assert_eq!(identity.scopes, ["orders.read"], "only scopes the profile allows and the caller had");
            assert_eq!(identity.claims["azp"], "spiffe://td/gw");
            assert_eq!(identity.claims["act"], json!({"sub": "spiffe://td/gw"}));
            assert_eq!(identity.claims["jti"], "BwcHBwcHBwcHBwcHBwcHBw");
            assert_eq!(identity.iss, "https://gw.internal", "`iss` is always the minter");
            assert_eq!(identity.claims["caller_iss"], "https://idp", "the caller's issuer stays apart");
            assert_eq!(identity.claims["caller_provider"], "idp");
            assert_eq!(identity.exp, Some(NOW.0 + 30));
            let replay = UnixSeconds(NOW.0 + 30 + 5);
            assert!(matches!(verifier.verify(&token, replay), Err(JwtError::Expired { .. })));
        }
    }

    /// Two callers with one `sub` from two issuers: their minted tokens differ where it shows.
    #[wasm_bindgen_test(unsupported = test)]
    fn the_same_subject_from_two_issuers_stays_two_callers() {
        let minter = next_hop(ed25519()).unwrap();
        let verifier = next_hop_verifier(&minter);
        let from = |provider: &str, iss: &str| {
            let claims = json!({"iss": iss, "sub": "alice", "scope": "orders.read"});
            let token = minter.mint(
                "orders",
                &Identity::from_claims(provider, claims.as_object().unwrap().clone()),
                NOW,
                [1; 16],
            );
            verifier.verify(&token.unwrap(), NOW).unwrap()
        };
        let (a, b) = (from("corp", "https://corp.idp"), from("partner", "https://partner.idp"));
        assert_eq!((a.sub.as_deref(), b.sub.as_deref()), (Some("alice"), Some("alice")));
        assert_eq!(
            (a.claims["caller_iss"].as_str(), b.claims["caller_iss"].as_str()),
            (Some("https://corp.idp"), Some("https://partner.idp"))
        );
        assert_eq!(
            (a.claims["caller_provider"].as_str(), b.claims["caller_provider"].as_str()),
            (Some("corp"), Some("partner"))
        );
    }

    /// With `scope_claim` the minted scopes come from the claim authorization reads, not `scope`.
    #[wasm_bindgen_test(unsupported = test)]
    fn scopes_come_from_the_configured_claim() {
        let with_claim = |claim: Value| {
            let json = json!({"issuer": "https://gw.internal", "signing_key": ed25519(), "actor": "spiffe://td/gw",
                "scope_claim": claim, "profiles": {"orders": {"audience": "orders", "lifetime_seconds": 30,
                "scopes": ["orders.read", "orders.write"]}}});
            NextHop::validate(serde_json::from_value(json).unwrap(), "next_hop")
        };
        // `scope` claims orders.write, the configured claim only orders.read: the claim wins.
        let claims = json!({"iss": "https://idp", "sub": "alice", "scope": "orders.write",
            "realm_access": {"roles": ["orders.read", "admin"]}});
        let caller = Identity::from_claims("idp", claims.as_object().unwrap().clone());
        for claim in [json!("realm_access.roles"), json!(["realm_access", "roles"])] {
            let minter = with_claim(claim).unwrap();
            let token = minter.mint("orders", &caller, NOW, [3; 16]).unwrap();
            assert_eq!(next_hop_verifier(&minter).verify(&token, NOW).unwrap().scopes, ["orders.read"]);
        }
        // Without it, `scope` (or `scp`) as before.
        let minter = next_hop(ed25519()).unwrap();
        let token = minter.mint("orders", &caller, NOW, [3; 16]).unwrap();
        assert_eq!(next_hop_verifier(&minter).verify(&token, NOW).unwrap().scopes, ["orders.write"]);
        for bad in [json!(""), json!("a..b"), json!([]), json!(["a", ""])] {
            assert_eq!(with_claim(bad).err().unwrap().path, "next_hop.scope_claim");
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn each_token_has_its_own_jti() {
        let minter = next_hop(ed25519()).unwrap();
        let a = minter.mint("orders", &caller(), NOW, [1; 16]).unwrap();
        let b = minter.mint("orders", &caller(), NOW, [2; 16]).unwrap();
        assert_ne!(a, b);
        assert!(minter.mint("nope", &caller(), NOW, [1; 16]).is_err());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn the_published_jwks_holds_only_the_public_key() {
        let minter = next_hop(p256()).unwrap();
        let reply = minter.jwks_reply();
        assert_eq!((reply.status, reply.header("content-type")), (200, Some("application/json")));
        assert_eq!(reply.header("cache-control"), Some("max-age=300"));
        let jwks: Value = serde_json::from_str(&reply.body).unwrap();
        let key = &jwks["keys"][0];
        assert_eq!(
            (key["kid"].as_str(), key["alg"].as_str(), key["use"].as_str()),
            (Some("gw-ec"), Some("ES256"), Some("sig"))
        );
        assert!(key.get("d").is_none(), "never the private part");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn bad_minting_configuration_is_refused_by_field() {
        let mut public_only = ed25519();
        public_only.as_object_mut().unwrap().remove("d");
        let mut no_kid = ed25519();
        no_kid.as_object_mut().unwrap().remove("kid");
        let rsa = private(include_str!("../../testdata/A.2_RS256.jwk.json"), "rsa");
        for (key, path) in [
            (public_only, "next_hop.signing_key.d"),
            (no_kid, "next_hop.signing_key.kid"),
            (rsa, "next_hop.signing_key"),
        ] {
            assert_eq!(next_hop(key).err().unwrap().path, path);
        }
        let json = json!({"issuer": "i", "signing_key": ed25519(), "actor": "a",
            "profiles": {"p": {"audience": "x", "lifetime_seconds": 601}}});
        let err = NextHop::validate(serde_json::from_value(json).unwrap(), "next_hop").err().unwrap();
        assert_eq!(err.path, "next_hop.profiles.p.lifetime_seconds");
        assert!(!err.to_string().contains("nWGxne"), "no key material in errors");
    }
}
