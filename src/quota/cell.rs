//! One rate limit's parameters and counting state, whatever the algorithm.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

use smol_str::SmolStr;

use super::bucket::{BucketParams, TokenBucket};
use super::limits::{Algorithm, RateSpec};
use super::meter::Meter;
use super::window::{FixedWindow, SlidingWindow};

/// The hot state of one (tenant, dimension) in one allocation: its meter, a token bucket,
/// and what the engine's decision index needs to answer a check from this cell alone.
///
/// The first token bucket of a dimension (the usual plan: one per dimension) counts in
/// `bucket` here, so a check touches one allocation for the key, the limit and the meter;
/// further buckets of the same dimension get a `DimState` of their own and leave its meter
/// unused.
#[derive(Debug)]
pub(crate) struct DimState {
    pub meter: Meter,
    pub bucket: TokenBucket,
    /// The tenant, compared in place by the decision index.
    pub tenant: SmolStr,
    /// The dimension's id in the engine's interned names.
    pub dimension: u32,
    /// [`Fast`] as a tag in the low two bits under a version in the rest (a seqlock: the
    /// parameters are two words, and a check must never mix an old one with a new one).
    mode: AtomicU32,
    interval: AtomicU64,
    capacity: AtomicU64,
}

/// How a check of a dimension can be decided from its [`DimState`] alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fast {
    /// Anything else (several limits, a window, a slot table, a suspended tenant): the
    /// engine's general path decides.
    General,
    /// No limit: metered only.
    Unlimited,
    /// One token bucket, counting in this cell.
    Bucket(BucketParams),
}

const TAG: u32 = 0b11;
const GENERAL: u32 = 0;
const UNLIMITED: u32 = 1;
const BUCKET: u32 = 2;

impl Default for DimState {
    fn default() -> Self {
        Self::new(SmolStr::default(), u32::MAX)
    }
}

impl DimState {
    pub fn new(tenant: SmolStr, dimension: u32) -> Self {
        Self {
            meter: Meter::default(),
            bucket: TokenBucket::default(),
            tenant,
            dimension,
            mode: AtomicU32::new(GENERAL),
            interval: AtomicU64::new(0),
            capacity: AtomicU64::new(0),
        }
    }

    /// How a check is decided now. A check racing a change of the parameters is sent to the
    /// general path, which decides from its own snapshot's plan.
    #[inline]
    pub fn fast(&self) -> Fast {
        let seq = self.mode.load(Ordering::Acquire);
        match seq & TAG {
            UNLIMITED => Fast::Unlimited,
            BUCKET => {
                let p = BucketParams {
                    interval: self.interval.load(Ordering::Relaxed),
                    capacity: self.capacity.load(Ordering::Relaxed),
                };
                fence(Ordering::Acquire);
                if self.mode.load(Ordering::Relaxed) == seq {
                    Fast::Bucket(p)
                } else {
                    Fast::General
                }
            }
            _ => Fast::General,
        }
    }

    /// Publishes how this cell is decided from now on. Called only under the engine's writer
    /// lock, so there is one writer at a time.
    pub fn set_fast(&self, fast: Fast) {
        let version = (self.mode.load(Ordering::Relaxed) | TAG).wrapping_add(1);
        let tag = match fast {
            Fast::General => GENERAL,
            Fast::Unlimited => UNLIMITED,
            Fast::Bucket(p) => {
                // Readers see General while the two words change.
                self.mode.store(version | GENERAL, Ordering::Relaxed);
                fence(Ordering::Release);
                self.interval.store(p.interval, Ordering::Relaxed);
                self.capacity.store(p.capacity, Ordering::Relaxed);
                BUCKET
            }
        };
        let version = (version | TAG).wrapping_add(1);
        self.mode.store(version | tag, Ordering::Release);
    }
}

impl std::ops::Deref for DimState {
    type Target = Meter;

    fn deref(&self) -> &Meter {
        &self.meter
    }
}

/// What a single counting cell answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Charge {
    /// Charged; `receipt` identifies the window or bucket charged, for a refund.
    Allowed { remaining: u64, receipt: u64 },
    /// Nothing charged. `retry_after` in nanoseconds; `None` when the amount can never fit.
    Denied {
        current: u64,
        retry_after: Option<u64>,
    },
}

/// The counting state, shared between successive plans of a tenant so a plan change keeps
/// what was used. Each variant allocates only what its algorithm needs.
#[derive(Debug, Clone)]
pub(crate) enum Counter {
    /// Counts in the `bucket` of this `DimState`.
    Bucket(Arc<DimState>),
    Sliding(Arc<SlidingWindow>),
    Fixed(Arc<FixedWindow>),
}

/// A compiled [`RateSpec`].
#[derive(Debug, Clone)]
pub(crate) struct Rate {
    pub limit: u64,
    pub per_nanos: u64,
    pub bucket: BucketParams,
    pub counter: Counter,
}

impl Rate {
    /// Compiles `spec`, keeping `previous`'s counter when it counts the same way (same
    /// algorithm and period; for buckets the period may change and the debt is rescaled).
    /// A new token bucket counts in `home` (the dimension's own state) if `home_free`.
    pub fn compile(
        spec: &RateSpec,
        previous: Option<&Rate>,
        home: &Arc<DimState>,
        home_free: &mut bool,
        now: u64,
    ) -> Self {
        let per_nanos = u64::try_from(spec.per.as_nanos()).unwrap_or(u64::MAX);
        let bucket = BucketParams::new(spec.limit, per_nanos, spec.burst);
        let counter = match (spec.algorithm, previous.map(|p| (p, &p.counter))) {
            (Algorithm::TokenBucket, Some((p, Counter::Bucket(b)))) => {
                b.bucket.rescale(p.bucket, bucket, now);
                Counter::Bucket(b.clone())
            }
            (Algorithm::SlidingWindow, Some((p, Counter::Sliding(w))))
                if p.per_nanos == per_nanos =>
            {
                Counter::Sliding(w.clone())
            }
            (Algorithm::FixedWindow, Some((p, Counter::Fixed(w)))) if p.per_nanos == per_nanos => {
                Counter::Fixed(w.clone())
            }
            (Algorithm::TokenBucket, _) if std::mem::take(home_free) => {
                Counter::Bucket(home.clone())
            }
            (Algorithm::TokenBucket, _) => Counter::Bucket(Arc::default()),
            (Algorithm::SlidingWindow, _) => Counter::Sliding(Arc::default()),
            (Algorithm::FixedWindow, _) => Counter::Fixed(Arc::default()),
        };
        Self {
            limit: spec.limit,
            per_nanos,
            bucket,
            counter,
        }
    }

    /// Whether this rate counts in `state`'s own bucket.
    pub fn counts_in(&self, state: &Arc<DimState>) -> bool {
        matches!(&self.counter, Counter::Bucket(b) if Arc::ptr_eq(b, state))
    }

    pub fn algorithm(&self) -> Algorithm {
        match self.counter {
            Counter::Bucket(_) => Algorithm::TokenBucket,
            Counter::Sliding(_) => Algorithm::SlidingWindow,
            Counter::Fixed(_) => Algorithm::FixedWindow,
        }
    }

    /// The limit `remaining` counts down from: the bucket's capacity, or the window's limit.
    pub fn reported_limit(&self) -> u64 {
        match self.counter {
            Counter::Bucket(_) => self.bucket.capacity,
            _ => self.limit,
        }
    }

    fn width(&self) -> u64 {
        (self.per_nanos / 10).max(1)
    }

    #[inline]
    pub fn try_charge(&self, now: u64, n: u64) -> Charge {
        match &self.counter {
            Counter::Bucket(b) => b.bucket.try_charge(self.bucket, now, n),
            Counter::Sliding(w) => w.try_charge(self.width(), self.limit, now, n),
            Counter::Fixed(w) => w.try_charge(self.per_nanos, self.limit, now, n),
        }
    }

    pub fn refund(&self, receipt: u64, n: u64) {
        match &self.counter {
            Counter::Bucket(b) => b.bucket.refund(self.bucket, n),
            Counter::Sliding(w) => w.refund(receipt, n),
            Counter::Fixed(w) => w.refund(receipt, n),
        }
    }

    pub fn used(&self, now: u64) -> u64 {
        match &self.counter {
            Counter::Bucket(b) => b.bucket.used(self.bucket, now),
            Counter::Sliding(w) => w.used(self.width(), now),
            Counter::Fixed(w) => w.used(self.per_nanos, now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A check racing plan changes sees one plan's parameters or the general path, never an
    /// interval of one plan with the capacity of another.
    #[test]
    fn parameters_are_never_read_torn() {
        let a = BucketParams {
            interval: 1,
            capacity: 1_000,
        };
        let b = BucketParams {
            interval: 1_000,
            capacity: 1,
        };
        let cell = DimState::default();
        assert_eq!(cell.fast(), Fast::General);
        cell.set_fast(Fast::Bucket(a));
        assert_eq!(cell.fast(), Fast::Bucket(a));
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            let readers: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        let mut seen = [0u64; 3];
                        while !done.load(Ordering::Relaxed) {
                            match cell.fast() {
                                Fast::Bucket(p) if p == a => seen[0] += 1,
                                Fast::Bucket(p) if p == b => seen[1] += 1,
                                Fast::General => seen[2] += 1,
                                other => panic!("torn read: {other:?}"),
                            }
                        }
                        seen
                    })
                })
                .collect();
            for i in 0..200_000 {
                cell.set_fast(Fast::Bucket(if i % 2 == 0 { b } else { a }));
            }
            done.store(true, Ordering::Relaxed);
            for r in readers {
                let seen = r.join().unwrap();
                assert!(seen.iter().sum::<u64>() > 0);
            }
        });
        cell.set_fast(Fast::Unlimited);
        assert_eq!(cell.fast(), Fast::Unlimited);
        cell.set_fast(Fast::General);
        assert_eq!(cell.fast(), Fast::General);
    }
}
