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
    /// Insertion order, for evicting the oldest entry when full. Holds exactly the keys of
    /// `entries`, each once, so it is bounded by `capacity` like them.
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
        self.remove(digest);
        None
    }

    pub fn insert(&mut self, digest: TokenDigest, token: Rc<VerifiedToken>, now: UnixSeconds) {
        if self.capacity == 0 || now >= token.valid_until {
            return;
        }
        if let Some(present) = self.entries.get_mut(&digest) {
            // The same token verified again: refresh the entry, keep its place in the order.
            *present = token;
            return;
        }
        if self.entries.len() >= self.capacity {
            self.evict(now);
        }
        self.entries.insert(digest, token);
        self.order.push_back(digest);
    }

    /// Drops one entry from both the map and the order, keeping them the same set.
    fn remove(&mut self, digest: &TokenDigest) {
        if self.entries.remove(digest).is_some()
            && let Some(at) = self.order.iter().position(|d| d == digest)
        {
            self.order.remove(at);
        }
    }

    /// Drops expired entries, then the oldest ones, until there is room for one more.
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
    fn expired_lookups_and_reinserts_leave_no_stale_order_behind() {
        let mut cache = TokenCache::new(2);
        // Each token expires and is looked up after: it must leave `order` as well as `entries`.
        for (i, token) in ["a", "b", "c", "d", "e"].into_iter().enumerate() {
            let now = 10 * i as u64;
            let key = TokenCache::digest(token);
            cache.insert(key, entry(now + 5), UnixSeconds(now));
            assert!(cache.get(&key, UnixSeconds(now + 5)).is_none());
            assert!(cache.order.len() <= 2 && cache.order.len() == cache.entries.len(), "{i}: {}", cache.order.len());
        }
        // The same token stored twice takes one place.
        let key = TokenCache::digest("f");
        cache.insert(key, entry(500), UnixSeconds(100));
        cache.insert(key, entry(600), UnixSeconds(100));
        assert_eq!((cache.order.len(), cache.entries.len()), (1, 1));
        assert_eq!(cache.get(&key, UnixSeconds(550)).map(|t| t.valid_until), Some(UnixSeconds(600)));
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

/// Any sequence of inserts, lookups, clock steps and clears keeps both the map and the order
/// within the capacity, and the order naming exactly the stored entries (proptest runs
/// natively only).
#[cfg(all(test, not(target_arch = "wasm32")))]
mod properties {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        /// Token number, lifetime from now.
        Insert(u8, u64),
        Get(u8),
        Advance(u64),
        Clear,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0u8..24, 0u64..40).prop_map(|(t, life)| Op::Insert(t, life)),
            4 => (0u8..24).prop_map(Op::Get),
            2 => (0u64..30).prop_map(Op::Advance),
            1 => Just(Op::Clear),
        ]
    }

    fn entry(valid_until: u64) -> Rc<VerifiedToken> {
        let identity = Identity::from_claims("p", serde_json::Map::new());
        Rc::new(VerifiedToken { identity_json: Vec::new(), identity, valid_until: UnixSeconds(valid_until) })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn order_and_entries_stay_within_capacity(capacity in 0usize..8, ops in proptest::collection::vec(op(), 0..200)) {
            let mut cache = TokenCache::new(capacity);
            let mut now = 1_000u64;
            for op in ops {
                match op {
                    Op::Insert(t, life) => {
                        cache.insert(TokenCache::digest(&t.to_string()), entry(now + life), UnixSeconds(now));
                    }
                    Op::Get(t) => {
                        let _ = cache.get(&TokenCache::digest(&t.to_string()), UnixSeconds(now));
                    }
                    Op::Advance(by) => now += by,
                    Op::Clear => cache.clear(),
                }
                prop_assert!(cache.entries.len() <= capacity, "entries {} > {capacity}", cache.entries.len());
                prop_assert!(cache.order.len() <= capacity, "order {} > {capacity}", cache.order.len());
                prop_assert_eq!(cache.order.len(), cache.entries.len());
                prop_assert!(cache.order.iter().all(|d| cache.entries.contains_key(d)));
            }
        }
    }
}
