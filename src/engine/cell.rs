//! One rate limit's parameters and counting state, whatever the algorithm, and the cell
//! holding a (tenant, dimension)'s hot state.

// The hot path: raw pointers into one cache-line allocation, and per-thread snapshots.
#![allow(unsafe_code)]

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, Ordering, fence};

use smol_str::SmolStr;

use super::bucket::{BucketParams, TokenBucket};
use super::limits::{Algorithm, RateSpec};
use super::meter::{Current, DimensionUsage, Meter, MeterStats, Period};
use super::window::{FixedWindow, SlidingWindow};

/// Everything a check decided from one cell touches on success, in one aligned 64-byte cache
/// line: the key the decision index compares, the bucket's parameters, the bucket and the
/// counts of the meter's current hour. With 10,000 tenants the lines of all cells exceed a
/// core's L2 cache, so a check costs about one line fetched from L3, and a cell spread over
/// two lines costs two. (A denial also counts in the [`Meter`] right behind the line.)
///
/// A line is made only by [`Cell`], which places the cell's [`Meter`] right behind it.
#[repr(C, align(64))]
pub(crate) struct HotLine {
    /// The tenant, compared in place by the decision index.
    pub tenant: SmolStr,
    /// The counts of the meter's current hour (see [`Current`]).
    word: AtomicU64,
    /// The first token bucket of the dimension counts here.
    pub bucket: TokenBucket,
    interval: AtomicU64,
    capacity: AtomicU64,
    /// The hour `word` counts in (see [`Current`]).
    hour: AtomicU32,
    /// The dimension's id in the engine's interned names; [`NOT_INDEXED`] if it does not fit.
    pub dimension: u16,
    /// [`Fast`] as a tag in the low two bits under a version in the rest (a seqlock: the
    /// parameters are two words, and a check must never mix an old one with a new one).
    mode: AtomicU16,
}

const _: () = assert!(size_of::<HotLine>() == 64);

/// The dimension id of a cell the decision index does not take (the engine has interned
/// 65,535 dimension names or more); its checks take the general path.
pub(crate) const NOT_INDEXED: u16 = u16::MAX;

/// How a check of a dimension can be decided from its [`HotLine`] alone.
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

const TAG: u16 = 0b11;
const GENERAL: u16 = 0;
const UNLIMITED: u16 = 1;
const BUCKET: u16 = 2;

impl HotLine {
    /// How a check is decided now. A check racing a change of the parameters is sent to the
    /// general path, which decides from its own snapshot's plan. (The version has 14 bits: a
    /// torn read would need a reader stalled between two adjacent loads while exactly a
    /// multiple of 8,192 changes of how this one cell is decided were published.)
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
    /// lock, so there is one writer at a time, and a no-op when nothing changes (a reconcile
    /// that changes no limit moves no version and sends no check to the general path).
    pub fn set_fast(&self, fast: Fast) {
        if self.fast() == fast {
            return;
        }
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

    fn current(&self) -> Current<'_> {
        Current {
            word: &self.word,
            hour: &self.hour,
        }
    }
}

/// One allocation holding a [`HotLine`] and, behind it, the cold rest of its [`Meter`]: 88
/// bytes requested, where a struct of the two would be padded to 128.
struct Cell {
    /// From `alloc`, so it may reach the whole allocation (the meter too); see [`CellRef`].
    ptr: NonNull<HotLine>,
}

// SAFETY: `Cell` owns a `HotLine` and a `Meter` like a `Box` of them would, and both are
// `Send + Sync` (checked below).
unsafe impl Send for Cell {}
unsafe impl Sync for Cell {}

const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<HotLine>();
    shareable::<Meter>();
};

impl Cell {
    const METER: usize = size_of::<HotLine>();
    const LAYOUT: Layout =
        match Layout::from_size_align(Self::METER + size_of::<Meter>(), align_of::<HotLine>()) {
            Ok(l) => l,
            Err(_) => panic!("cell layout"),
        };

    fn new(tenant: SmolStr, dimension: u16) -> Self {
        const { assert!(Self::METER % align_of::<Meter>() == 0) };
        let line = HotLine {
            tenant,
            word: AtomicU64::new(0),
            bucket: TokenBucket::default(),
            interval: AtomicU64::new(0),
            capacity: AtomicU64::new(0),
            hour: AtomicU32::new(0),
            dimension,
            mode: AtomicU16::new(GENERAL),
        };
        // SAFETY: the layout is non-zero; both writes are in bounds and aligned (the line at
        // the allocation's 64-byte-aligned start, the meter at a multiple of its alignment).
        unsafe {
            let raw = alloc(Self::LAYOUT);
            let Some(ptr) = NonNull::new(raw.cast::<HotLine>()) else {
                handle_alloc_error(Self::LAYOUT)
            };
            ptr.as_ptr().write(line);
            raw.add(Self::METER).cast::<Meter>().write(Meter::default());
            Self { ptr }
        }
    }
}

impl Drop for Cell {
    fn drop(&mut self) {
        // SAFETY: both values were written in `new` and are dropped once, here.
        unsafe {
            let raw = self.ptr.as_ptr().cast::<u8>();
            std::ptr::drop_in_place(raw.add(Self::METER).cast::<Meter>());
            std::ptr::drop_in_place(self.ptr.as_ptr());
            dealloc(raw, Self::LAYOUT);
        }
    }
}

/// A borrowed cell: its line and its meter. Both are reached from the allocation's own
/// pointer, never one from a reference to the other (a `&HotLine` may only reach its 64
/// bytes).
#[derive(Clone, Copy)]
pub(crate) struct CellRef<'a> {
    ptr: NonNull<HotLine>,
    _cell: PhantomData<&'a HotLine>,
}

impl<'a> CellRef<'a> {
    /// The cell `ptr` (taken from [`DimState::cell_ptr`]) points to.
    ///
    /// # Safety
    /// The `DimState` that `ptr` came from must outlive `'a`.
    #[inline]
    pub unsafe fn from_ptr(ptr: NonNull<HotLine>) -> Self {
        Self {
            ptr,
            _cell: PhantomData,
        }
    }

    #[inline]
    pub fn line(self) -> &'a HotLine {
        // SAFETY: a live cell (see `from_ptr`), initialised in `Cell::new`.
        unsafe { self.ptr.as_ref() }
    }

    #[inline]
    fn meter(self) -> &'a Meter {
        // SAFETY: as `line`; `ptr` came from `alloc`, so it reaches the meter at `METER`.
        unsafe {
            &*self
                .ptr
                .as_ptr()
                .cast::<u8>()
                .add(Cell::METER)
                .cast::<Meter>()
        }
    }

    /// Counts one allowed decision of `units` at `now`.
    #[inline]
    pub fn record(self, now: u64, units: u64) {
        self.meter().record(self.line().current(), now, units);
    }

    /// Counts one denied decision.
    pub fn record_denied(self, now: u64) {
        self.meter().record_denied(now);
    }
}

/// The state of one (tenant, dimension): its meter, a token bucket, and what the engine's
/// decision index needs to answer a check from this cell alone, shared (as `Arc<DimState>`)
/// by successive plans of the tenant.
///
/// The first token bucket of a dimension (the usual plan: one per dimension) counts in the
/// line's `bucket`, so a check touches one cache line for the key, the limit and the meter;
/// further buckets of the same dimension get a `DimState` of their own and leave its meter
/// unused.
pub(crate) struct DimState {
    cell: Cell,
}

impl std::fmt::Debug for DimState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DimState")
            .field("tenant", &self.line().tenant)
            .field("dimension", &self.line().dimension)
            .field("fast", &self.line().fast())
            .finish_non_exhaustive()
    }
}

impl Default for DimState {
    fn default() -> Self {
        Self::new(SmolStr::default(), u32::MAX)
    }
}

impl DimState {
    pub fn new(tenant: SmolStr, dimension: u32) -> Self {
        let dimension = u16::try_from(dimension)
            .ok()
            .filter(|d| *d != NOT_INDEXED)
            .unwrap_or(NOT_INDEXED);
        Self {
            cell: Cell::new(tenant, dimension),
        }
    }

    /// The cell's address, for the decision index (see [`CellRef::from_ptr`]).
    pub fn cell_ptr(&self) -> NonNull<HotLine> {
        self.cell.ptr
    }

    #[inline]
    pub fn cell(&self) -> CellRef<'_> {
        // SAFETY: borrowed from `self`, which owns the cell.
        unsafe { CellRef::from_ptr(self.cell.ptr) }
    }

    #[inline]
    pub fn line(&self) -> &HotLine {
        self.cell().line()
    }

    pub fn bucket(&self) -> &TokenBucket {
        &self.line().bucket
    }

    pub fn set_fast(&self, fast: Fast) {
        self.line().set_fast(fast);
    }

    pub fn record(&self, now: u64, units: u64) {
        self.cell().record(now, units);
    }

    pub fn record_denied(&self, now: u64) {
        self.cell().record_denied(now);
    }

    /// Units and series for `period`, seeds included.
    pub fn usage(&self, period: Period) -> DimensionUsage {
        let cell = self.cell();
        cell.meter().usage(cell.line().current(), period)
    }

    /// Replaces the seed of `usage`'s period: what the ledger had persisted before a restart.
    pub fn seed(&self, period: Period, usage: DimensionUsage) {
        self.cell().meter().seed(period, usage);
    }

    /// Decisions this month, units this month and the trailing-hour rate at `now`.
    pub fn stats(&self, now: u64) -> MeterStats {
        let cell = self.cell();
        cell.meter().stats(cell.line().current(), now)
    }

    /// Allowed and denied decisions since the engine started.
    pub fn lifetime(&self) -> (u64, u64) {
        let cell = self.cell();
        cell.meter().lifetime(cell.line().current())
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
                b.bucket().rescale(p.bucket, bucket, now);
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
            Counter::Bucket(b) => b.bucket().try_charge(self.bucket, now, n),
            Counter::Sliding(w) => w.try_charge(self.width(), self.limit, now, n),
            Counter::Fixed(w) => w.try_charge(self.per_nanos, self.limit, now, n),
        }
    }

    pub fn refund(&self, receipt: u64, n: u64) {
        match &self.counter {
            Counter::Bucket(b) => b.bucket().refund(self.bucket, n),
            Counter::Sliding(w) => w.refund(receipt, n),
            Counter::Fixed(w) => w.refund(receipt, n),
        }
    }

    pub fn used(&self, now: u64) -> u64 {
        match &self.counter {
            Counter::Bucket(b) => b.bucket().used(self.bucket, now),
            Counter::Sliding(w) => w.used(self.width(), now),
            Counter::Fixed(w) => w.used(self.per_nanos, now),
        }
    }

    /// Nanoseconds until nothing is counted any more (the bucket full again, the window
    /// empty); 0 when nothing is counted now.
    pub fn reset_after(&self, now: u64) -> u64 {
        match &self.counter {
            Counter::Bucket(b) => b.bucket().debt(now),
            Counter::Sliding(w) => w.clear_after(self.width(), now),
            Counter::Fixed(w) => w.clear_after(self.per_nanos, now),
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
        let state = DimState::default();
        let cell = state.line();
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
