//! Token-bucket arithmetic, exact in integers. A limit admits `quota` requests per `window`
//! with bursts up to `burst` (default `quota`).
//!
//! Units: one token is `window_ms` units and every millisecond refills `quota` units, so the
//! bucket refills `quota` tokens per window without a division or a float. A full bucket holds
//! `burst * window_ms` units; configuration bounds that product (see [`Rate::new`]).

/// A limit's rate, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    quota: u64,
    window_ms: u64,
    burst: u64,
}

/// The largest full bucket in units: leaves room to add a refill without overflow.
const MAX_UNITS: u64 = 1 << 62;

/// A bucket's state as stored: level in units, and when it was last refilled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub units: u64,
    pub at_ms: u64,
}

/// What taking one token found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Take {
    pub admitted: bool,
    /// The bucket to store (refilled, and one token less when admitted).
    pub bucket: Bucket,
    /// Whole tokens left after this request.
    pub remaining: u64,
    /// Milliseconds until one token is available again (0 when one is).
    pub retry_after_ms: u64,
    /// Milliseconds until the bucket is full again.
    pub reset_ms: u64,
}

impl Rate {
    /// `None` when a value is zero or the full bucket would not fit the arithmetic.
    pub fn new(quota: u64, window_ms: u64, burst: u64) -> Option<Self> {
        if quota == 0 || window_ms == 0 || burst == 0 {
            return None;
        }
        burst.checked_mul(window_ms).filter(|units| *units <= MAX_UNITS)?;
        quota.checked_mul(window_ms).filter(|units| *units <= MAX_UNITS)?;
        Some(Self { quota, window_ms, burst })
    }

    pub fn quota(self) -> u64 {
        self.quota
    }

    pub fn window_ms(self) -> u64 {
        self.window_ms
    }

    pub fn burst(self) -> u64 {
        self.burst
    }

    fn full(self) -> u64 {
        self.burst * self.window_ms
    }

    /// A bucket nobody has drawn from.
    pub fn fresh(self, now_ms: u64) -> Bucket {
        Bucket { units: self.full(), at_ms: now_ms }
    }

    /// The bucket refilled up to `now_ms`. A clock that went backwards refills nothing and
    /// keeps the later timestamp, so that time is never counted twice.
    pub fn refill(self, bucket: Bucket, now_ms: u64) -> Bucket {
        let full = self.full();
        let units = bucket.units.min(full);
        if now_ms <= bucket.at_ms {
            return Bucket { units, at_ms: bucket.at_ms };
        }
        let elapsed = u128::from(now_ms - bucket.at_ms);
        let added = elapsed.saturating_mul(u128::from(self.quota));
        let refilled = (u128::from(units) + added).min(u128::from(full));
        Bucket { units: u64::try_from(refilled).unwrap_or(full), at_ms: now_ms }
    }

    /// Whether the bucket is full at `now_ms`: it holds nothing a fresh bucket would not.
    pub fn is_idle(self, bucket: Bucket, now_ms: u64) -> bool {
        self.refill(bucket, now_ms).units >= self.full()
    }

    /// Takes one token if there is one.
    pub fn take(self, bucket: Bucket, now_ms: u64) -> Take {
        let mut bucket = self.refill(bucket, now_ms);
        let admitted = bucket.units >= self.window_ms;
        if admitted {
            bucket.units -= self.window_ms;
        }
        self.report(bucket, admitted)
    }

    /// Gives back one token taken for a request that another limit then refused.
    pub fn give_back(self, bucket: Bucket, now_ms: u64) -> Bucket {
        let bucket = self.refill(bucket, now_ms);
        Bucket { units: bucket.units.saturating_add(self.window_ms).min(self.full()), ..bucket }
    }

    /// The numbers a client is told about a bucket just stored.
    pub fn report(self, bucket: Bucket, admitted: bool) -> Take {
        let missing_for_one = self.window_ms.saturating_sub(bucket.units);
        Take {
            admitted,
            bucket,
            remaining: bucket.units / self.window_ms,
            retry_after_ms: missing_for_one.div_ceil(self.quota),
            reset_ms: (self.full() - bucket.units.min(self.full())).div_ceil(self.quota),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn rate(quota: u64, window_s: u64, burst: u64) -> Rate {
        Rate::new(quota, window_s * 1000, burst).unwrap()
    }

    fn drain(rate: Rate, mut bucket: Bucket, now: u64) -> (u64, Bucket) {
        let mut admitted = 0;
        for _ in 0..10_000 {
            let take = rate.take(bucket, now);
            bucket = take.bucket;
            if !take.admitted {
                break;
            }
            admitted += 1;
        }
        (admitted, bucket)
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_fresh_bucket_admits_its_burst_then_refuses() {
        let r = rate(5, 60, 5);
        let (admitted, bucket) = drain(r, r.fresh(0), 0);
        assert_eq!(admitted, 5);
        let refused = r.take(bucket, 0);
        assert!(!refused.admitted);
        assert_eq!(refused.remaining, 0);
        // One token per 12 s; the bucket is full again after a whole window.
        assert_eq!(refused.retry_after_ms, 12_000);
        assert_eq!(refused.reset_ms, 60_000);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn refill_is_exact_per_millisecond_and_stops_at_the_burst() {
        let r = rate(10, 1, 10);
        let (_, empty) = drain(r, r.fresh(0), 0);
        // 10 per second: one token every 100 ms, none at 99 ms.
        assert!(!r.take(empty, 99).admitted);
        let one = r.take(empty, 100);
        assert!(one.admitted);
        assert_eq!(one.remaining, 0);
        // Hours later the bucket holds the burst, not more.
        let (admitted, _) = drain(r, empty, 3_600_000);
        assert_eq!(admitted, 10);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_burst_larger_than_the_quota_allows_a_spike_then_the_rate() {
        let r = rate(2, 1, 6);
        let (admitted, empty) = drain(r, r.fresh(0), 0);
        assert_eq!(admitted, 6);
        let (admitted, _) = drain(r, empty, 1000);
        assert_eq!(admitted, 2);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_clock_going_backwards_refills_nothing_and_is_not_counted_twice() {
        let r = rate(1, 1, 1);
        let taken = r.take(r.fresh(10_000), 10_000).bucket;
        // Back 5 s: nothing refilled, the later timestamp kept.
        let back = r.take(taken, 5_000);
        assert!(!back.admitted);
        assert_eq!(back.bucket.at_ms, 10_000);
        // Forward again: one second after the real last refill, one token.
        assert!(!r.take(back.bucket, 10_999).admitted);
        assert!(r.take(back.bucket, 11_000).admitted);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn extreme_values_neither_overflow_nor_wrap() {
        assert!(Rate::new(u64::MAX, 1000, 1).is_none());
        assert!(Rate::new(1, u64::MAX, 1).is_none());
        assert!(Rate::new(0, 1000, 1).is_none());
        let r = Rate::new(1_000_000_000, 86_400_000, 1_000_000_000).unwrap();
        let bucket = Bucket { units: u64::MAX, at_ms: 0 };
        let take = r.take(bucket, u64::MAX);
        assert!(take.admitted);
        assert_eq!(take.remaining, 999_999_999);
        assert!(r.is_idle(Bucket { units: 0, at_ms: 0 }, u64::MAX));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn giving_back_restores_a_token_but_never_beyond_the_burst() {
        let r = rate(3, 60, 3);
        let taken = r.take(r.fresh(0), 0).bucket;
        assert_eq!(r.give_back(taken, 0), r.fresh(0));
        assert_eq!(r.give_back(r.fresh(0), 0), r.fresh(0));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn idle_means_full_again() {
        let r = rate(60, 60, 60);
        let taken = r.take(r.fresh(0), 0).bucket;
        assert!(!r.is_idle(taken, 999));
        assert!(r.is_idle(taken, 1000));
    }
}
