//! The JWT verification pipeline: extract the bearer token, parse it, pick the provider and
//! the key, check the claims, verify the signature, and only then build the identity.

use std::cell::RefCell;
use std::rc::Rc;

use super::cache::{TokenCache, VerifiedToken};
use super::config::JwtFilterConfig;
use super::error::JwtError;
use super::identity::Identity;
use super::remote::{FetchFailure, FetchOutcome, FetchRequest, KeysWait, KidRefetch, ProviderId, RemoteKeys};
use super::signature::SignatureVerifier;
use super::sources::find_token;
use super::token::ParsedToken;
use crate::shared_store::SharedStore;
use crate::time::UnixSeconds;

/// A configured verifier; one per filter instance (per Wasm VM, so per Envoy worker), shared
/// by its requests. The VM is single-threaded, hence the `RefCell` around the cache.
pub struct Authenticator {
    pub config: JwtFilterConfig,
    verifier: Box<dyn SignatureVerifier>,
    cache: RefCell<TokenCache>,
    /// Per provider (same index), its remote keys if it has a remote source.
    remote: Vec<Option<RefCell<RemoteKeys>>>,
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
        let remote = config
            .providers
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let source = p.remote.clone()?;
                Some(RefCell::new(RemoteKeys::new(ProviderId(i), &p.name, &p.issuer_label(), source, p.key_use)))
            })
            .collect();
        Self { config, verifier, cache, remote }
    }

    /// Whether any provider fetches its keys (then the adapter runs a timer).
    pub fn has_remote_keys(&self) -> bool {
        self.remote.iter().any(Option::is_some)
    }

    /// Whether the provider has any key now (inline, secret, or fetched).
    pub fn has_keys(&self, provider: ProviderId) -> bool {
        let fixed = self.config.providers.get(provider.0).is_some_and(|p| !p.keys.is_empty());
        fixed || self.remote_keys(provider).is_some_and(|remote| remote.borrow().keys().is_some())
    }

    /// Whether every provider with remote keys has some (the first fetches are done).
    pub fn every_remote_provider_has_keys(&self) -> bool {
        self.remote.iter().flatten().all(|remote| remote.borrow().keys().is_some())
    }

    pub fn provider_name(&self, provider: ProviderId) -> &str {
        self.config.providers.get(provider.0).map_or("?", |p| p.name.as_str())
    }

    /// The timer's step: adopt keys other workers fetched, and the fetches due now.
    pub fn poll_remote_keys(&self, store: &dyn SharedStore, now: UnixSeconds) -> Vec<FetchRequest> {
        let mut requests = Vec::new();
        for remote in self.remote.iter().flatten() {
            let (changed, request) = remote.borrow_mut().poll(store, now);
            if changed {
                self.keys_changed();
            }
            requests.extend(request);
        }
        requests
    }

    /// A request found its provider without keys (`KeysUnavailable`): adopt published keys,
    /// hold the request for the first fetch, or refuse. `now_ms` is the host clock.
    pub fn without_keys(&self, provider: ProviderId, store: &dyn SharedStore, now_ms: u64) -> KeysWait {
        let Some(remote) = self.remote_keys(provider) else { return KeysWait::Refuse };
        let wait = remote.borrow_mut().without_keys(store, now_ms);
        if wait == KeysWait::Synced {
            self.keys_changed();
        }
        wait
    }

    /// Whether requests held for the provider's first keys can be decided: it has keys, or
    /// this VM's fetch of them failed. A provider without remote keys is always settled.
    pub fn keys_settled(&self, provider: ProviderId) -> bool {
        self.has_keys(provider) || self.remote_keys(provider).is_none_or(|remote| remote.borrow().settled())
    }

    /// A token named a `kid` its provider's remote keys lack.
    pub fn unknown_kid(&self, provider: ProviderId, store: &dyn SharedStore, now: UnixSeconds) -> KidRefetch {
        let Some(remote) = self.remote_keys(provider) else { return KidRefetch::NotNow };
        let refetch = remote.borrow_mut().unknown_kid(store, now);
        if refetch == KidRefetch::Synced {
            self.keys_changed();
        }
        refetch
    }

    /// The answer to a fetch: `None` when there was none (failure, timeout, not sent).
    pub fn remote_keys_response(
        &self,
        request: &FetchRequest,
        response: Option<(u16, &[u8])>,
        store: &dyn SharedStore,
        now: UnixSeconds,
    ) -> FetchOutcome {
        let Some(remote) = self.remote_keys(request.provider) else {
            return FetchOutcome::Failed(FetchFailure::Transport);
        };
        let outcome = remote.borrow_mut().on_response(request.stage, response, store, now);
        if matches!(outcome, FetchOutcome::Installed { .. }) {
            self.keys_changed();
        }
        outcome
    }

    fn remote_keys(&self, provider: ProviderId) -> Option<&RefCell<RemoteKeys>> {
        self.remote.get(provider.0)?.as_ref()
    }

    /// Tokens verified with keys that are gone must be verified again: a rotation that drops
    /// a key is how an issuer revokes it.
    fn keys_changed(&self) {
        self.cache.borrow_mut().clear();
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

    /// Authenticates a request that must carry a valid token of every listed provider, each in
    /// that provider's own sources. Answers the first provider's token, whose identity is the
    /// one handed on; the first failure refuses the request.
    pub fn authenticate_all(
        &self,
        providers: &[String],
        headers: &[(String, Vec<u8>)],
        now: UnixSeconds,
    ) -> Result<Authenticated, JwtError> {
        let mut primary = None;
        for name in providers {
            let provider =
                self.config.providers.iter().find(|p| p.name == *name).ok_or(JwtError::ProviderNotAllowed)?;
            let found = find_token(&provider.token_sources, headers)?;
            let authenticated = self.verify_cached(found.token, now)?;
            if authenticated.token.identity.provider != *name {
                return Err(JwtError::ProviderNotAllowed);
            }
            primary.get_or_insert(authenticated);
        }
        primary.ok_or(JwtError::Missing)
    }

    fn verify_cached(&self, token: &str, now: UnixSeconds) -> Result<Authenticated, JwtError> {
        let digest = TokenCache::digest(token);
        if let Some(hit) = self.cache.borrow_mut().get(&digest, now) {
            return Ok(Authenticated { token: hit, cache_hit: true });
        }
        let identity = self.verify(token, now)?;
        let skew = self.config.provider_named(&identity.provider).map_or(0, |p| p.rules.clock_skew_seconds);
        // No `exp` (only with `dangerous_allow_missing_expiration`): never cached.
        let valid_until = UnixSeconds(identity.exp.map_or(now.0, |exp| exp.saturating_add(skew)));
        let verified = Rc::new(VerifiedToken { identity_json: identity.to_json(), identity, valid_until });
        self.cache.borrow_mut().insert(digest, Rc::clone(&verified), now);
        Ok(Authenticated { token: verified, cache_hit: false })
    }

    /// Verifies one compact token, without the cache.
    pub fn verify(&self, token: &str, now: UnixSeconds) -> Result<Identity, JwtError> {
        let parsed = ParsedToken::parse(token, self.config.max_token_bytes)?;
        // A key of one provider never verifies another's token: the provider is chosen by
        // `iss` (or a JWT-SVID's trust domain) first, and only its keys are candidates.
        let (id, provider) = self.config.provider_for(&parsed.claims)?;
        // RFC 8725 §3.1: the provider, not the token, says which algorithms are acceptable.
        let allowed = provider.algorithms.as_deref();
        if allowed.is_some_and(|list| !list.contains(&parsed.alg)) {
            return Err(JwtError::AlgorithmNotAllowed);
        }
        provider.rules.check(&parsed.claims, now)?;
        let remote = self.remote_keys(id).map(|remote| remote.borrow().keys());
        if let Some(None) = remote
            && provider.keys.is_empty()
        {
            return Err(JwtError::KeysUnavailable { provider: id });
        }
        let remote_keys = remote.flatten();
        let sets = || std::iter::once(&provider.keys).chain(remote_keys.as_deref());
        let kid = parsed.kid.as_deref();
        // Without a list, what the keys declare decides. A `kid` no key has is left to
        // `NoMatchingKey`, which may refetch rotated keys (rate-limited).
        let kid_known = kid.is_none_or(|kid| sets().any(|keys| keys.has_kid(kid)));
        if allowed.is_none() && kid_known && !sets().any(|keys| keys.allows_by_default(parsed.alg)) {
            return Err(JwtError::AlgorithmNotAllowed);
        }
        let mut candidates = sets().flat_map(|keys| keys.candidates(kid, parsed.alg, allowed)).peekable();
        if candidates.peek().is_none() {
            return Err(JwtError::NoMatchingKey { provider: id });
        }
        if !candidates.any(|key| self.verifier.verify(&parsed, key, now)) {
            return Err(JwtError::SignatureInvalid);
        }
        let mut identity = Identity::from_claims(&provider.name, parsed.claims);
        if provider.spiffe_trust_domain().is_some() {
            // `rules.check` proved `sub` a SPIFFE ID of the provider's trust domain.
            identity.spiffe_id = identity.sub.clone();
        }
        Ok(identity)
    }
}
