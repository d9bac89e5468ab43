//! What one request costs the rate-limit core natively: `RateLimitConfig::check` for a key
//! already in the shared table (one read, one CAS write), a refused request (which gives back
//! the tokens of the limits before it), and a request with two limits. The store is an
//! in-process map with Envoy's shared-data semantics, so the numbers are the core's own work
//! (key digest, bucket arithmetic, slot encoding) plus map operations, not Envoy's host calls.
//! Run with `make bench-core` (or `cargo bench -p zt-core --bench ratelimit`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
criterion::criterion_main!(native::benches);

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::cell::{Cell, RefCell};
    use std::collections::HashMap;
    use std::hint::black_box;

    use criterion::{Criterion, criterion_group};
    use serde_json::{Value, json};
    use zt_core::jwt::Identity;
    use zt_core::ratelimit::{RateLimitConfig, RequestFacts, Step, Verdict};
    use zt_core::{SharedStore, StoreError};

    #[derive(Default)]
    struct Store {
        entries: RefCell<HashMap<String, (Vec<u8>, u32)>>,
        cas: Cell<u32>,
    }

    impl SharedStore for Store {
        fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
            self.entries.borrow().get(key).cloned()
        }

        fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
            let mut entries = self.entries.borrow_mut();
            if let (Some(cas), Some((_, current))) = (cas, entries.get(key))
                && cas != *current
            {
                return Err(StoreError::CasMismatch);
            }
            self.cas.set(self.cas.get().wrapping_add(1).max(1));
            entries.insert(key.to_owned(), (value.to_vec(), self.cas.get()));
            Ok(())
        }
    }

    fn configuration(limits: Value, defaults: &[&str]) -> (RateLimitConfig, Store) {
        let config = RateLimitConfig::from_json(
            json!({"limits": limits, "defaults": {"limits": defaults}}).to_string().as_bytes(),
        )
        .unwrap();
        let store = Store::default();
        config.prepare(&store).unwrap();
        (config, store)
    }

    fn bench(c: &mut Criterion) {
        let Value::Object(claims) = json!({"iss": "https://issuer.bench", "sub": "alice"}) else { unreachable!() };
        let identity = Identity::from_claims("corp", claims);
        let headers = vec![("x-tenant".to_owned(), b"acme".to_vec())];
        let facts = |now_ms| RequestFacts {
            route_name: None,
            route_choice: None,
            authority: None,
            method: "GET",
            path: "/orders/42",
            headers: &headers,
            source: Some("10.1.2.3".parse().unwrap()),
            remote: Some("10.1.2.3".parse().unwrap()),
            identity: Some(&identity),
            now_ms,
        };
        let decide = |config: &RateLimitConfig, store: &Store, now_ms| match config.check(&facts(now_ms), store) {
            Step::Decided(decision) => decision.verdict,
            Step::AskGlobal(_) => unreachable!(),
        };

        let (one, store) = configuration(
            json!({"per-user": {"quota": 1_000_000_000, "window_seconds": 1, "key": [{"claim": "sub"}]}}),
            &["per-user"],
        );
        assert_eq!(decide(&one, &store, 0), Verdict::Admitted);
        let mut now = 0;
        c.bench_function("ratelimit/admitted, one limit, key in the table", |b| {
            b.iter(|| {
                now += 1;
                black_box(decide(&one, &store, now))
            })
        });

        let (two, store) = configuration(
            json!({
                "per-user": {"quota": 1_000_000_000, "window_seconds": 1, "key": [{"claim": "sub"}]},
                "per-tenant": {"quota": 1_000_000_000, "window_seconds": 1, "key": [{"header": "x-tenant"}, "method"]},
            }),
            &["per-user", "per-tenant"],
        );
        let mut now = 0;
        c.bench_function("ratelimit/admitted, two limits", |b| {
            b.iter(|| {
                now += 1;
                black_box(decide(&two, &store, now))
            })
        });

        let (refusing, store) = configuration(
            json!({
                "per-user": {"quota": 1_000_000_000, "window_seconds": 1, "key": [{"claim": "sub"}]},
                "per-network": {"quota": 1, "window_seconds": 3600, "key": [{"source_prefix": {"ipv4": 24, "ipv6": 64}}]},
            }),
            &["per-user", "per-network"],
        );
        decide(&refusing, &store, 0);
        assert_eq!(decide(&refusing, &store, 1), Verdict::Limited);
        c.bench_function("ratelimit/limited by the second limit (first given back)", |b| {
            b.iter(|| black_box(decide(&refusing, &store, 2)))
        });
    }

    criterion_group!(benches, bench);
}
