//! A bounded cache of verified tokens, so that a repeated token skips parsing and the
//! signature check.
//!
//! Keyed by SHA-256 of the whole compact token: the token itself is a bearer secret and is
//! never kept, and signature bytes alone are no key (an ECDSA signature has a valid twin).
//! An entry lives until the token's `exp` plus the provider's clock skew, never longer.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use sha2::{Digest, Sha256};

use super::identity::Identity;
use crate::time::UnixSeconds;

/// What a hit returns: the identity and its filter-state JSON, serialised once.
#[derive(Debug, PartialEq)]
pub struct VerifiedToken {
    pub identity: Identity,
    pub identity_json: Vec<u8>,
    /// First second at which the entry must no longer be used: `exp + clock skew`.
    pub valid_until: UnixSeconds,
}

type TokenDigest = [u8; 32];

pub struct TokenCache {
    capacity: usize,
    entries: HashMap<TokenDigest, Rc<VerifiedToken>>,
    /// Insertion order, for evicting the oldest entry when full.
    order: VecDeque<TokenDigest>,
}

impl TokenCache {
    pub fn new(capacity: usize) -> Self {
        Self { capacity, entries: HashMap::with_capacity(capacity), order: VecDeque::with_capacity(capacity) }
    }

    pub fn digest(token: &str) -> TokenDigest {
        Sha256::digest(token.as_bytes()).into()
    }

    /// The entry for `digest` if it is still valid at `now`; an expired entry is dropped.
    pub fn get(&mut self, digest: &TokenDigest, now: UnixSeconds) -> Option<Rc<VerifiedToken>> {
        let entry = self.entries.get(digest)?;
        if now < entry.valid_until {
            return Some(Rc::clone(entry));
        }
        self.entries.remove(digest);
        None
    }

    pub fn insert(&mut self, digest: TokenDigest, token: Rc<VerifiedToken>, now: UnixSeconds) {
        if self.capacity == 0 || now >= token.valid_until {
            return;
        }
        if self.entries.len() >= self.capacity {
            self.evict(now);
        }
        if self.entries.insert(digest, token).is_none() {
            self.order.push_back(digest);
        }
    }

    /// Drops expired entries, then the oldest ones, until there is room for one more. The order
    /// queue may name entries already dropped by `get`; they are skipped here.
    fn evict(&mut self, now: UnixSeconds) {
        self.entries.retain(|_, entry| now < entry.valid_until);
        self.order.retain(|digest| self.entries.contains_key(digest));
        while self.entries.len() >= self.capacity {
            let Some(oldest) = self.order.pop_front() else { break };
            self.entries.remove(&oldest);
        }
    }

    /// Forgets every entry (the keys changed).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn entry(valid_until: u64) -> Rc<VerifiedToken> {
        let identity = Identity::from_claims("p", serde_json::Map::new());
        Rc::new(VerifiedToken { identity_json: identity.to_json(), identity, valid_until: UnixSeconds(valid_until) })
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn hits_until_valid_until_then_misses() {
        let mut cache = TokenCache::new(4);
        let key = TokenCache::digest("a.b.c");
        cache.insert(key, entry(100), UnixSeconds(10));
        assert!(cache.get(&key, UnixSeconds(99)).is_some());
        assert!(cache.get(&key, UnixSeconds(100)).is_none());
        assert!(cache.is_empty());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn stays_bounded_evicting_expired_then_oldest() {
        let mut cache = TokenCache::new(2);
        let (a, b, c, d) =
            (TokenCache::digest("a"), TokenCache::digest("b"), TokenCache::digest("c"), TokenCache::digest("d"));
        cache.insert(a, entry(50), UnixSeconds(10));
        cache.insert(b, entry(500), UnixSeconds(10));
        // At 60, `a` has expired: it goes first, `b` stays.
        cache.insert(c, entry(500), UnixSeconds(60));
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&b, UnixSeconds(60)).is_some());
        // Nothing expired: the oldest (`b`) goes.
        cache.insert(d, entry(500), UnixSeconds(60));
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&b, UnixSeconds(60)).is_none());
        assert!(cache.get(&c, UnixSeconds(60)).is_some() && cache.get(&d, UnixSeconds(60)).is_some());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn never_stores_what_is_already_expired_or_with_no_capacity() {
        let mut cache = TokenCache::new(2);
        cache.insert(TokenCache::digest("a"), entry(10), UnixSeconds(10));
        assert!(cache.is_empty());
        let mut none = TokenCache::new(0);
        none.insert(TokenCache::digest("a"), entry(100), UnixSeconds(10));
        assert!(none.is_empty());
    }
}
