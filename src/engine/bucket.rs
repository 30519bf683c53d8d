//! Token bucket as GCRA: the whole state is one theoretical arrival time (TAT) in an
//! `AtomicU64`, so a charge is a load and one compare-exchange, and a bucket costs 8 bytes.
//!
//! With `interval` nanoseconds per token and `capacity` tokens, the bucket is full when
//! `tat <= now`; taking `n` moves `tat` to `max(tat, now) + n * interval` and is allowed while
//! `tat - now <= capacity * interval`. Arithmetic is in `u64` when every product fits (any
//! realistic plan) and in `u128` otherwise, so huge amounts cannot wrap.

use std::sync::atomic::{AtomicU64, Ordering};

use super::cell::Charge;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BucketParams {
    /// Nanoseconds to earn one token, rounded up so the rate never exceeds the plan's.
    pub interval: u64,
    /// Tokens the bucket holds when full (the burst).
    pub capacity: u64,
}

impl BucketParams {
    pub fn new(limit: u64, per_nanos: u64, burst: Option<u64>) -> Self {
        Self {
            interval: per_nanos.div_ceil(limit.max(1)).max(1),
            capacity: burst.unwrap_or(limit),
        }
    }

    fn tolerance(&self) -> u128 {
        u128::from(self.capacity) * u128::from(self.interval)
    }
}

#[derive(Debug, Default)]
pub(crate) struct TokenBucket {
    tat: AtomicU64,
}

impl TokenBucket {
    #[inline]
    pub fn try_charge(&self, p: BucketParams, now: u64, n: u64) -> Charge {
        // Every realistic plan fits in 64 bits, where a charge needs no 128-bit division (a
        // library call costing more than the rest of the decision); the rest is exact in u128.
        let (Some(tolerance), Some(cost)) = (
            p.capacity.checked_mul(p.interval),
            n.checked_mul(p.interval),
        ) else {
            return self.try_charge_wide(p, now, n);
        };
        let mut tat = self.tat.load(Ordering::Acquire);
        loop {
            let base = tat.max(now);
            let Some(new_tat) = base.checked_add(cost) else {
                return self.try_charge_wide(p, now, n);
            };
            let ahead = new_tat - now;
            if ahead > tolerance {
                return Charge::Denied {
                    current: (base - now).div_ceil(p.interval),
                    retry_after: (n <= p.capacity).then_some(ahead - tolerance),
                };
            }
            match self
                .tat
                .compare_exchange_weak(tat, new_tat, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    return Charge::Allowed {
                        remaining: (tolerance - ahead) / p.interval,
                        receipt: 0,
                    };
                }
                Err(actual) => tat = actual,
            }
        }
    }

    #[cold]
    fn try_charge_wide(&self, p: BucketParams, now: u64, n: u64) -> Charge {
        let mut tat = self.tat.load(Ordering::Acquire);
        loop {
            let base = tat.max(now);
            let new_tat = u128::from(base) + u128::from(n) * u128::from(p.interval);
            let ahead = new_tat - u128::from(now);
            if ahead > p.tolerance() {
                let used = ceil_div(u128::from(base - now), p.interval);
                let retry_after = (n <= p.capacity)
                    .then(|| u64::try_from(ahead - p.tolerance()).unwrap_or(u64::MAX));
                return Charge::Denied {
                    current: used,
                    retry_after,
                };
            }
            // `ahead <= tolerance` and `now` fits, so `new_tat` fits unless the far future.
            let Ok(new_tat) = u64::try_from(new_tat) else {
                return Charge::Denied {
                    current: p.capacity,
                    retry_after: None,
                };
            };
            match self
                .tat
                .compare_exchange_weak(tat, new_tat, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    let left = (p.tolerance() - ahead) / u128::from(p.interval);
                    return Charge::Allowed {
                        remaining: u64::try_from(left).unwrap_or(u64::MAX),
                        receipt: 0,
                    };
                }
                Err(actual) => tat = actual,
            }
        }
    }

    /// Gives back `n` tokens taken by a charge that a later check of the same request refused.
    pub fn refund(&self, p: BucketParams, n: u64) {
        let back = u64::try_from(u128::from(n) * u128::from(p.interval)).unwrap_or(u64::MAX);
        let _ = self
            .tat
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |tat| {
                Some(tat.saturating_sub(back))
            });
    }

    /// Tokens currently taken (rounded up), without charging.
    pub fn used(&self, p: BucketParams, now: u64) -> u64 {
        let tat = self.tat.load(Ordering::Acquire);
        ceil_div(u128::from(tat.saturating_sub(now)), p.interval)
    }

    /// Nanoseconds until the bucket is full again.
    pub fn debt(&self, now: u64) -> u64 {
        self.tat.load(Ordering::Acquire).saturating_sub(now)
    }

    /// A plan change keeps the tokens already taken: the time still owed is rescaled from
    /// the old token interval to the new one.
    pub fn rescale(&self, old: BucketParams, new: BucketParams, now: u64) {
        if old.interval == new.interval {
            return;
        }
        let _ = self
            .tat
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |tat| {
                let owed = u128::from(tat.saturating_sub(now));
                let scaled = owed * u128::from(new.interval) / u128::from(old.interval);
                Some(now.saturating_add(u64::try_from(scaled).unwrap_or(u64::MAX)))
            });
    }
}

fn ceil_div(a: u128, b: u64) -> u64 {
    u64::try_from(a.div_ceil(u128::from(b))).unwrap_or(u64::MAX)
}

/// The engine's token bucket for a caller that waits for its turn rather than being
/// refused: the operator paces its own writes to the API server with it (`--kube-qps`,
/// `--kube-burst`), since kube's client has no rate limiter of its own.
#[derive(Debug)]
pub struct Pacer {
    params: BucketParams,
    bucket: TokenBucket,
    start: std::time::Instant,
}

impl Pacer {
    /// `per_second` tokens a second, `burst` at most at once.
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self {
            params: BucketParams::new(
                u64::from(per_second.max(1)),
                1_000_000_000,
                Some(u64::from(burst.max(1))),
            ),
            bucket: TokenBucket::default(),
            start: std::time::Instant::now(),
        }
    }

    /// Take one token now: `None` when taken, else how long to wait before asking again.
    pub fn take(&self) -> Option<std::time::Duration> {
        self.take_at(self.start.elapsed().as_nanos() as u64)
    }

    /// Take one token at `now` (nanoseconds since the pacer was made).
    pub fn take_at(&self, now: u64) -> Option<std::time::Duration> {
        match self.bucket.try_charge(self.params, now, 1) {
            Charge::Allowed { .. } => None,
            Charge::Denied { retry_after, .. } => Some(std::time::Duration::from_nanos(
                retry_after.unwrap_or(self.params.interval).max(1),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;
    const MS: u64 = 1_000_000;

    fn allowed(c: Charge) -> u64 {
        match c {
            Charge::Allowed { remaining, .. } => remaining,
            d => panic!("expected allowed, got {d:?}"),
        }
    }

    #[test]
    fn burst_then_refill_at_the_rate() {
        // 10 per second, bucket of 5: 100 ms per token.
        let p = BucketParams::new(10, S, Some(5));
        assert_eq!(p.interval, 100 * MS);
        let b = TokenBucket::default();
        let t0 = 1_000 * S;
        assert_eq!(allowed(b.try_charge(p, t0, 3)), 2);
        assert_eq!(allowed(b.try_charge(p, t0, 2)), 0);
        assert_eq!(
            b.try_charge(p, t0, 1),
            Charge::Denied {
                current: 5,
                retry_after: Some(100 * MS)
            }
        );
        // 99 ms later still nothing; at 100 ms exactly one token.
        assert!(matches!(
            b.try_charge(p, t0 + 99 * MS, 1),
            Charge::Denied { .. }
        ));
        assert_eq!(allowed(b.try_charge(p, t0 + 100 * MS, 1)), 0);
        // Asking for 3 with none left: wait for three tokens.
        assert_eq!(
            b.try_charge(p, t0 + 100 * MS, 3),
            Charge::Denied {
                current: 5,
                retry_after: Some(300 * MS)
            }
        );
        // A long pause refills to the burst, not beyond.
        assert_eq!(allowed(b.try_charge(p, t0 + 60 * S, 5)), 0);
        // More than the bucket holds can never pass.
        assert_eq!(
            b.try_charge(p, t0 + 120 * S, 6),
            Charge::Denied {
                current: 0,
                retry_after: None
            }
        );
    }

    #[test]
    fn default_burst_is_the_limit_and_refund_restores() {
        let p = BucketParams::new(4, S, None);
        assert_eq!(p.capacity, 4);
        let b = TokenBucket::default();
        let t0 = 50 * S;
        assert_eq!(allowed(b.try_charge(p, t0, 4)), 0);
        b.refund(p, 2);
        assert_eq!(b.used(p, t0), 2);
        assert_eq!(allowed(b.try_charge(p, t0, 2)), 0);
    }

    #[test]
    fn rescale_keeps_tokens_taken() {
        let old = BucketParams::new(10, S, None);
        let b = TokenBucket::default();
        let t0 = 7 * S;
        allowed(b.try_charge(old, t0, 6));
        assert_eq!(b.used(old, t0), 6);
        // Upgrade to 100/s: 6 still taken, 94 left.
        let new = BucketParams::new(100, S, None);
        b.rescale(old, new, t0);
        assert_eq!(b.used(new, t0), 6);
        assert_eq!(allowed(b.try_charge(new, t0, 94)), 0);
        assert!(matches!(
            b.try_charge(new, t0, 1),
            Charge::Denied { current: 100, .. }
        ));
    }

    /// The 64-bit path must answer exactly what the 128-bit one does.
    #[test]
    fn narrow_and_wide_arithmetic_agree() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for _ in 0..2_000 {
            let p = BucketParams::new(
                rng.random_range(1..=1_000_000),
                rng.random_range(1..=86_400 * S),
                rng.random_bool(0.3)
                    .then(|| rng.random_range(1..=1_000_000)),
            );
            let (narrow, wide) = (TokenBucket::default(), TokenBucket::default());
            let mut now = rng.random_range(0..1_000_000 * S);
            for _ in 0..20 {
                let n = rng.random_range(1..=p.capacity + 2);
                assert_eq!(
                    narrow.try_charge(p, now, n),
                    wide.try_charge_wide(p, now, n),
                    "{p:?} at {now} for {n}"
                );
                now += rng.random_range(0..2 * p.interval.saturating_mul(p.capacity).min(S));
            }
        }
    }

    #[test]
    fn a_pacer_allows_its_burst_then_one_token_per_interval() {
        let pacer = Pacer::new(10, 3);
        let taken: Vec<bool> = (0..4).map(|_| pacer.take_at(0).is_none()).collect();
        assert_eq!(taken, [true, true, true, false]);
        assert_eq!(
            pacer.take_at(0),
            Some(std::time::Duration::from_millis(100))
        );
        assert_eq!(pacer.take_at(100_000_000), None);
        assert!(pacer.take_at(100_000_000).is_some());
    }
}
