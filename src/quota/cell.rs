//! One rate limit's parameters and counting state, whatever the algorithm.

use std::sync::Arc;

use super::bucket::{BucketParams, TokenBucket};
use super::limits::{Algorithm, RateSpec};
use super::meter::Meter;
use super::window::{FixedWindow, SlidingWindow};

/// The hot state of one (tenant, dimension) in one allocation: its meter and a token bucket.
///
/// The first token bucket of a dimension (the usual plan: one per dimension) counts in
/// `bucket` here, so a check touches a single cache-friendly block for the limit and the
/// meter; further buckets of the same dimension get a `DimState` of their own and leave
/// its meter unused.
#[derive(Debug, Default)]
pub(crate) struct DimState {
    pub meter: Meter,
    pub bucket: TokenBucket,
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
