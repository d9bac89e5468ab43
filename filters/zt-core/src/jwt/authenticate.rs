//! The JWT verification pipeline: extract the bearer token, parse it, pick the provider and
//! the key, check the claims, verify the signature, and only then build the identity.

use std::cell::RefCell;
use std::rc::Rc;

use super::cache::{TokenCache, VerifiedToken};
use super::config::JwtFilterConfig;
use super::error::JwtError;
use super::identity::Identity;
use super::signature::SignatureVerifier;
use super::token::ParsedToken;
use crate::time::UnixSeconds;

/// A configured verifier; one per filter instance (per Wasm VM, so per Envoy worker), shared
/// by its requests. The VM is single-threaded, hence the `RefCell` around the cache.
pub struct Authenticator {
    pub config: JwtFilterConfig,
    verifier: Box<dyn SignatureVerifier>,
    cache: RefCell<TokenCache>,
}

/// A request's verified token, and whether it came from the cache.
#[derive(Debug)]
pub struct Authenticated {
    pub token: Rc<VerifiedToken>,
    pub cache_hit: bool,
}

impl Authenticator {
    pub fn new(config: JwtFilterConfig, verifier: Box<dyn SignatureVerifier>) -> Self {
        let cache = RefCell::new(TokenCache::new(config.cache_entries));
        Self { config, verifier, cache }
    }

    pub fn verifier_name(&self) -> &'static str {
        self.verifier.name()
    }

    /// Authenticates a request from the values of all its `Authorization` headers, through the
    /// cache of verified tokens.
    pub fn authenticate(&self, authorization: &[&[u8]], now: UnixSeconds) -> Result<Authenticated, JwtError> {
        let token = bearer_token(authorization)?;
        let digest = TokenCache::digest(token);
        if let Some(hit) = self.cache.borrow_mut().get(&digest, now) {
            return Ok(Authenticated { token: hit, cache_hit: true });
        }
        let identity = self.verify(token, now)?;
        let skew = self.config.provider_for(&identity.iss).map_or(0, |p| p.rules.clock_skew_seconds);
        // No `exp` (only with `dangerous_allow_missing_expiration`): never cached.
        let valid_until = UnixSeconds(identity.exp.map_or(now.0, |exp| exp.saturating_add(skew)));
        let verified = Rc::new(VerifiedToken { identity_json: identity.to_json(), identity, valid_until });
        self.cache.borrow_mut().insert(digest, Rc::clone(&verified), now);
        Ok(Authenticated { token: verified, cache_hit: false })
    }

    /// Verifies one compact token, without the cache.
    pub fn verify(&self, token: &str, now: UnixSeconds) -> Result<Identity, JwtError> {
        let parsed = ParsedToken::parse(token, self.config.max_token_bytes)?;
        let iss = match parsed.claims.get("iss") {
            Some(serde_json::Value::String(iss)) => iss.as_str(),
            Some(_) => return Err(JwtError::ClaimInvalid { claim: "iss" }),
            None => return Err(JwtError::IssuerMissing),
        };
        // A key of one provider never verifies another's token: the provider is chosen by
        // `iss` first, and only its keys are candidates.
        let provider = self.config.provider_for(iss).ok_or(JwtError::UnknownIssuer)?;
        provider.rules.check(&parsed.claims, now)?;
        let mut candidates = provider.keys.candidates(parsed.kid.as_deref(), parsed.alg).peekable();
        if candidates.peek().is_none() {
            return Err(JwtError::NoMatchingKey);
        }
        if !candidates.any(|key| self.verifier.verify(&parsed, key, now)) {
            return Err(JwtError::SignatureInvalid);
        }
        Ok(Identity::from_claims(&provider.name, parsed.claims))
    }
}

/// RFC 6750 §2.1: `Authorization: Bearer <token>`, scheme case-insensitive. Exactly one
/// header may carry it: with two, proxies and upstreams may each see a different token.
fn bearer_token<'a>(authorization: &[&'a [u8]]) -> Result<&'a str, JwtError> {
    let value = match authorization {
        [] => return Err(JwtError::Missing),
        [value] => *value,
        _ => return Err(JwtError::MultipleTokens),
    };
    let value = std::str::from_utf8(value).map_err(|_| JwtError::NotBearer)?.trim_matches(|c| c == ' ' || c == '\t');
    let (scheme, token) = value.split_once(' ').ok_or(JwtError::NotBearer)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(JwtError::NotBearer);
    }
    let token = token.trim_start_matches(' ');
    if token.is_empty() || token.contains([' ', '\t', ',']) {
        return Err(JwtError::NotBearer);
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn extracts_one_bearer_token() {
        assert_eq!(bearer_token(&[b"Bearer abc"]), Ok("abc"));
        assert_eq!(bearer_token(&[b"bearer abc"]), Ok("abc"));
        assert_eq!(bearer_token(&[b"BEARER  abc "]), Ok("abc"));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn refuses_anything_else() {
        assert_eq!(bearer_token(&[]), Err(JwtError::Missing));
        assert_eq!(bearer_token(&[b"Bearer a", b"Bearer b"]), Err(JwtError::MultipleTokens));
        for bad in [
            &b"Basic dXNlcjpwYXNz"[..],
            b"Bearer",
            b"Bearer ",
            b"Bearerabc",
            b"Bearer a b",
            b"Bearer a,b",
            b"Bearer \xff",
            b"",
        ] {
            assert_eq!(bearer_token(&[bad]), Err(JwtError::NotBearer), "{}", String::from_utf8_lossy(bad));
        }
    }
}
