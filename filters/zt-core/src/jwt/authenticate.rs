//! The JWT verification pipeline: extract the bearer token, parse it, pick the provider and
//! the key, check the claims, verify the signature, and only then build the identity.

use std::cell::RefCell;
use std::rc::Rc;

use super::cache::{TokenCache, VerifiedToken};
use super::config::JwtFilterConfig;
use super::error::JwtError;
use super::identity::Identity;
use super::signature::SignatureVerifier;
use super::sources::find_token;
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

    /// Authenticates a request from its headers (`:path` included, for query tokens), through
    /// the cache of verified tokens.
    pub fn authenticate(&self, headers: &[(String, Vec<u8>)], now: UnixSeconds) -> Result<Authenticated, JwtError> {
        let found = find_token(&self.config.token_sources, headers)?;
        let authenticated = self.verify_cached(found.token, now)?;
        // The token must have come from a place its own provider takes tokens from.
        let provider = self.config.providers.iter().find(|p| p.name == authenticated.token.identity.provider);
        if !provider.is_some_and(|p| found.sources.iter().any(|source| p.token_sources.contains(source))) {
            return Err(JwtError::TokenLocationNotAllowed);
        }
        Ok(authenticated)
    }

    fn verify_cached(&self, token: &str, now: UnixSeconds) -> Result<Authenticated, JwtError> {
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
