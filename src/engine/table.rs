//! The engine: tenants, their plans and the per-(tenant, dimension) state.
//!
//! Tenant map: an `ArcSwap` of an immutable hash table of tenants, rebuilt (under a
//! writer mutex) only when a tenant is added, changed or removed. Writers move a generation
//! around each new snapshot; a check reads the snapshot through its thread's cached copy (see
//! [`local`]) while the generation has not moved, so finding a tenant's state costs one shared
//! load and one hash lookup: no lock, no locked instruction and no shard to contend on, unlike
//! a `DashMap`, whose read locks bounce between cores. Rebuilding copies 10,000 `Arc`s in well under a
//! millisecond, and plan changes are rare (a reconcile), so the trade is cheap; bulk loads use
//! [`Engine::set_tenants`].
//!
//! A `Tenant` is immutable too: its plan plus `Arc`s to counting state. A new plan shares the
//! state of the old one wherever it counts the same way, so a plan change keeps what was used
//! and applies the new limits at once (a token bucket's debt is rescaled to the new rate).
//!
//! The decision index: the same snapshot also maps each (tenant, dimension) whose check needs
//! nothing but its own cell (one token bucket, or no limit) straight to that cell's hot line:
//! one aligned cache line with its key, the bucket's parameters, the bucket and the meter's
//! current hour. Such a check (the common one) reads one 8-byte slot and one line (and the
//! shared, always cached, dimension names) instead of a tenant, its dimension list and then
//! the cell; everything else takes the general path through the tenant.

// The hot path: raw pointers into one cache-line allocation, and per-thread snapshots.
#![allow(unsafe_code)]

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

use super::cell::{CellRef, Charge, DimState, Fast, HotLine, NOT_INDEXED, Rate};
use super::clock::{Clock, EngineClock, SystemClock, ceil_ms};
use super::decision::{BatchDecision, Decision, EngineError, MAX_AMOUNT, Reason, SlotDecision};
use super::limits::{Algorithm, RateSpec, TenantLimits};
use super::meter::{DimensionUsage, Period, Usage};
use super::slots::{Acquire, SlotTable};

mod across;
pub use across::{AllChecked, Check, Checked, Window};

/// One snapshot of the engine's tenants, replaced whole on every change.
///
/// Tenants by name: a `HashTable` holding the (small, cheaply cloned) tenants inline rather
/// than a map from a separately allocated key to a boxed value, so the lookup compares the
/// name inline in the slot and finds the dimensions' pointer beside it. `cells` is the
/// decision index (see the module docs).
#[derive(Clone, Default)]
struct TenantMap {
    table: hashbrown::HashTable<Tenant>,
    cells: hashbrown::HashTable<LineRef>,
    /// Dimension names by id, for comparing a cell's key.
    names: Arc<[Arc<str>]>,
    hasher: foldhash::fast::RandomState,
}

impl TenantMap {
    #[inline]
    fn get(&self, name: &str) -> Option<&Tenant> {
        let hash = self.hasher.hash_one(name);
        self.table.find(hash, |t| t.name == name)
    }

    /// The cell that alone decides a check of `dimension` for `tenant`, if there is one.
    #[inline(always)]
    fn cell(&self, tenant: &str, dimension: &str) -> Option<CellRef<'_>> {
        let hash = self.hasher.hash_one((tenant, dimension));
        self.cells
            .find(hash, |c| {
                let c = c.get(self).line();
                c.tenant == tenant
                    && self
                        .names
                        .get(usize::from(c.dimension))
                        .is_some_and(|n| **n == *dimension)
            })
            .map(|c| c.get(self))
    }

    fn insert(&mut self, tenant: Tenant) {
        self.remove(tenant.name.as_str());
        for d in tenant.dims.iter() {
            if let Some(cell) = d.fast_cell(tenant.suspended) {
                let hash = self.hasher.hash_one((tenant.name.as_str(), &*d.name));
                let (hasher, names) = (&self.hasher, &self.names);
                let line = LineRef(cell.cell_ptr());
                self.cells.insert_unique(hash, line, |c| {
                    // SAFETY: the entries of tenants in `table`, and those of `tenant`, which
                    // owns them and goes into `table` below: all live cells.
                    let c = unsafe { c.0.as_ref() };
                    hasher.hash_one((c.tenant.as_str(), &*names[usize::from(c.dimension)]))
                });
            }
        }
        let hash = self.hasher.hash_one(tenant.name.as_str());
        let hasher = |t: &Tenant| self.hasher.hash_one(t.name.as_str());
        self.table.insert_unique(hash, tenant, hasher);
    }

    fn remove(&mut self, name: &str) -> Option<Tenant> {
        let hash = self.hasher.hash_one(name);
        let tenant = self
            .table
            .find_entry(hash, |t| t.name == name)
            .ok()
            .map(|e| e.remove().0)?;
        for d in tenant.dims.iter() {
            if let Some(cell) = d.fast_cell(tenant.suspended) {
                let hash = self.hasher.hash_one((name, &*d.name));
                let line = cell.cell_ptr();
                if let Ok(e) = self.cells.find_entry(hash, |c| c.0 == line) {
                    e.remove();
                }
            }
        }
        Some(tenant)
    }

    fn values(&self) -> impl Iterator<Item = &Tenant> {
        self.table.iter()
    }

    fn len(&self) -> usize {
        self.table.len()
    }
}

/// A thread's copy of the snapshot it last read, so a check reads the engine's current
/// snapshot without an `ArcSwap` load, which writes a per-thread debt slot and clears it
/// again: two locked instructions, as many as the decision itself. The copy costs one shared
/// load (the engine's generation, written only when a plan changes).
///
/// The generation is odd while a snapshot is being published, and checks then load the
/// `ArcSwap` itself; see [`Engine::publish`] for why a check never decides from a snapshot
/// older than one its thread has seen. The price of the copies: each thread keeps the last
/// snapshot it used alive until its next check or its exit, and the check that replaces a
/// thread's copy may free the old one.
mod local {
    use std::cell::{Cell, RefCell};
    use std::sync::Arc;

    use super::TenantMap;

    /// (engine id, generation, snapshot) of the copy `HELD` keeps alive; null when none. No
    /// destructor, so it stays readable while other thread-locals are torn down.
    struct Fast {
        engine: Cell<u64>,
        generation: Cell<u64>,
        map: Cell<*const TenantMap>,
    }

    /// Owns the copy; clears `FAST` when the thread exits.
    struct Held(Option<Arc<TenantMap>>);

    impl Drop for Held {
        fn drop(&mut self) {
            let _ = FAST.try_with(|f| f.map.set(std::ptr::null()));
        }
    }

    thread_local! {
        static FAST: Fast = const {
            Fast {
                engine: Cell::new(u64::MAX),
                generation: Cell::new(0),
                map: Cell::new(std::ptr::null()),
            }
        };
        static HELD: RefCell<Held> = const { RefCell::new(Held(None)) };
    }

    /// The snapshot of engine `engine` at (even) `generation` or later: this thread's copy if
    /// it is that one, else `load()`'s, which becomes the copy. A snapshot is filed under a
    /// generation read before it was loaded, so a copy is never older than its generation.
    /// `None` while the thread is exiting, or if `snapshot` was re-entered.
    ///
    /// # Safety
    /// The reference is valid only until this thread next calls `snapshot`, which may free the
    /// snapshot: the caller must be done with it by then.
    #[inline(always)]
    pub(super) unsafe fn snapshot<'a>(
        engine: u64,
        generation: u64,
        load: impl FnOnce() -> Arc<TenantMap>,
    ) -> Option<&'a TenantMap> {
        let map = FAST.with(|f| {
            (f.engine.get() == engine && f.generation.get() == generation)
                .then(|| f.map.get())
                .filter(|m| !m.is_null())
        });
        let map = match map {
            Some(map) => map,
            None => refresh(engine, generation, load())?,
        };
        // SAFETY: `HELD` owns the snapshot `map` points to and replaces it only in `refresh`,
        // which runs only inside `snapshot` (see the caller's contract); `Held`'s destructor
        // nulls the pointer before the snapshot can go.
        Some(unsafe { &*map })
    }

    #[cold]
    #[inline(never)]
    fn refresh(engine: u64, generation: u64, map: Arc<TenantMap>) -> Option<*const TenantMap> {
        let ptr = Arc::as_ptr(&map);
        HELD.try_with(|held| {
            let mut held = held.try_borrow_mut().ok()?;
            // The old copy is dropped only after the pointer moved to the new one.
            let old = held.0.replace(map);
            FAST.with(|f| {
                f.engine.set(engine);
                f.generation.set(generation);
                f.map.set(ptr);
            });
            drop(old);
            Some(ptr)
        })
        .ok()
        .flatten()
    }
}

/// A decision index entry: the cell of a (tenant, dimension) whose tenant is in the same
/// snapshot.
///
/// A raw pointer rather than an `Arc` so the index reaches the cell's hot line without first
/// loading the `DimState` that owns it (one cache line fewer per check). `TenantMap::insert`
/// and `remove` add and drop a tenant's entries with the tenant, so while a snapshot lives,
/// its tenants keep every cell its index points to alive.
#[derive(Clone, Copy)]
struct LineRef(std::ptr::NonNull<HotLine>);

// SAFETY: it stands for a shared borrow of a cell (atomics, an immutable key and a
// mutex-guarded history: `Sync`), dereferenced only through `get` while its snapshot lives.
unsafe impl Send for LineRef {}
unsafe impl Sync for LineRef {}

impl LineRef {
    /// The cell, borrowed for as long as the snapshot holding this entry.
    #[inline]
    fn get<'a>(&self, _snapshot: &'a TenantMap) -> CellRef<'a> {
        // SAFETY: see the type's docs: the snapshot owns the cell.
        unsafe { CellRef::from_ptr(self.0) }
    }
}

/// Dimension names, each with a stable id; one copy shared by all tenants.
#[derive(Default)]
struct Names {
    ids: HashMap<Arc<str>, u32>,
    list: Vec<Arc<str>>,
    /// `list` as last published in a snapshot.
    shared: Arc<[Arc<str>]>,
}

impl Names {
    fn intern(&mut self, name: &str) -> (Arc<str>, u32) {
        if let Some((n, id)) = self.ids.get_key_value(name) {
            return (n.clone(), *id);
        }
        let id = u32::try_from(self.list.len()).expect("fewer than 2^32 dimension names");
        let n: Arc<str> = Arc::from(name);
        self.ids.insert(n.clone(), id);
        self.list.push(n.clone());
        (n, id)
    }

    fn shared(&mut self) -> Arc<[Arc<str>]> {
        if self.shared.len() != self.list.len() {
            self.shared = self.list.clone().into();
        }
        self.shared.clone()
    }
}

/// The in-process quota engine. Share it as `Arc<Engine>`.
pub struct Engine {
    clock: EngineClock,
    /// Dimensions every tenant has: unlimited unless its plan limits them, always metered.
    known: Box<[Arc<str>]>,
    /// Every dimension name in use, shared by all tenants (one copy, always in cache).
    names: Mutex<Names>,
    tenants: ArcSwap<TenantMap>,
    /// Odd while a new snapshot is being published; see [`Engine::publish`].
    generation: AtomicU64,
    /// Tells this engine's snapshots from other engines' in a thread's cache.
    id: u64,
    writer: Mutex<()>,
    /// Set by [`Engine::close`]: a replica handing over decides no more, so that its last
    /// flush holds every decision it made.
    closed: AtomicBool,
}

type CheckResult = Result<Decision, EngineError>;

/// One item of [`Engine::check_batch_with`]: dimension, amount and the check's attributes.
pub type BatchItem<'a> = (&'a str, u64, &'a [(&'a str, &'a str)]);

/// Engine ids; never reused, so a thread's cache never takes one engine for another.
static ENGINE_IDS: AtomicU64 = AtomicU64::new(0);

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("known", &self.known)
            .field("tenants", &self.tenants.load().len())
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
pub(crate) struct Tenant {
    /// Inline up to 23 bytes: compared on every lookup.
    pub name: smol_str::SmolStr,
    pub suspended: bool,
    /// With `suspended`: refusals say `TenantHibernated`.
    pub hibernated: bool,
    /// Sorted by name, for binary search.
    pub dims: Arc<[Dimension]>,
    /// The plan's allowed-values rules, by attribute name; `None` without any (a thin
    /// pointer: every tenant carries the field, few have rules).
    pub allowed: Option<Arc<Vec<AllowedRule>>>,
}

/// The values attribute `key` may take in a check.
pub(crate) struct AllowedRule {
    pub key: Box<str>,
    pub values: Box<[Box<str>]>,
}

pub(crate) struct Dimension {
    pub name: Arc<str>,
    pub kind: Kind,
    /// Meter (and first token bucket); `None` for gauges, which hold a value rather than
    /// consume units.
    pub meter: Option<Arc<DimState>>,
}

pub(crate) enum Kind {
    /// No limit (a known dimension the plan does not limit): metered only.
    Unlimited,
    /// One rate limit, the common case, kept inline.
    Rate(Rate),
    /// Several rate limits; all must pass.
    Rates(Box<[Rate]>),
    Slots {
        limit: u64,
        lease: u64,
        table: Arc<SlotTable>,
    },
    Gauge {
        limit: Option<u64>,
        value: Arc<AtomicU64>,
    },
    /// No longer in the plan or the known list; kept so its usage is still reported.
    Retired,
    /// A size limit (the plan's `sizes`) on a rate-limited or unlimited dimension: at most
    /// `max` in one check. A variant rather than a field, so dimensions without one (nearly
    /// all) pay nothing for it.
    Sized { max: u64, of: Box<Kind> },
}

impl Dimension {
    /// How a check of this dimension can be decided from its cell alone (never with a size
    /// limit, which the cell does not hold).
    fn fast(&self) -> Fast {
        match (&self.kind, &self.meter) {
            (Kind::Unlimited, Some(_)) => Fast::Unlimited,
            (Kind::Rate(rate), Some(meter)) if rate.counts_in(meter) => Fast::Bucket(rate.bucket),
            _ => Fast::General,
        }
    }

    /// Tells the dimension's cell how its checks are decided from now on.
    fn publish_fast(&self, suspended: bool) {
        if let Some(meter) = &self.meter {
            meter.set_fast(if suspended {
                Fast::General
            } else {
                self.fast()
            });
        }
    }

    /// The cell the decision index maps this dimension to, if its checks need nothing else.
    fn fast_cell(&self, suspended: bool) -> Option<&Arc<DimState>> {
        (!suspended && self.fast() != Fast::General)
            .then_some(self.meter.as_ref())
            .flatten()
            .filter(|m| m.line().dimension != NOT_INDEXED)
    }
}

impl Kind {
    /// The kind under a size limit.
    fn unsized_kind(&self) -> &Kind {
        match self {
            Kind::Sized { of, .. } => of,
            other => other,
        }
    }

    fn label(&self) -> &'static str {
        match self {
            Kind::Sized { of, .. } => of.label(),
            Kind::Unlimited => "unlimited",
            Kind::Rate(_) | Kind::Rates(_) => "rate",
            Kind::Slots { .. } => "concurrency",
            Kind::Gauge { .. } => "gauge",
            Kind::Retired => "retired",
        }
    }

    fn public(&self) -> DimensionKind {
        match self {
            Kind::Sized { of, .. } => of.public(),
            Kind::Unlimited => DimensionKind::Unlimited,
            Kind::Rate(_) | Kind::Rates(_) => DimensionKind::Rate,
            Kind::Slots { .. } => DimensionKind::Concurrency,
            Kind::Gauge { .. } => DimensionKind::Gauge,
            Kind::Retired => DimensionKind::Retired,
        }
    }

    fn rates(&self) -> &[Rate] {
        match self {
            Kind::Sized { of, .. } => of.rates(),
            Kind::Rate(r) => std::slice::from_ref(r),
            Kind::Rates(rs) => rs,
            _ => &[],
        }
    }
}

/// A charge that may have to be given back if a later part of the same request is refused.
struct Receipt<'a> {
    rate: &'a Rate,
    receipt: u64,
    amount: u64,
}

impl Engine {
    /// An engine on the system clock.
    pub fn new<S: Into<String>>(known_dimensions: impl IntoIterator<Item = S>) -> Self {
        Self::with(EngineClock::System(SystemClock::new()), known_dimensions)
    }

    /// An engine reading time from `clock` (tests inject a `ManualClock`).
    pub fn with_clock<S: Into<String>>(
        clock: Arc<dyn Clock>,
        known_dimensions: impl IntoIterator<Item = S>,
    ) -> Self {
        Self::with(EngineClock::Injected(clock), known_dimensions)
    }

    fn with<S: Into<String>>(
        clock: EngineClock,
        known_dimensions: impl IntoIterator<Item = S>,
    ) -> Self {
        let mut known: Vec<Arc<str>> = known_dimensions
            .into_iter()
            .map(|d| Arc::from(d.into()))
            .collect();
        known.sort();
        known.dedup();
        let mut names = Names::default();
        let known: Vec<Arc<str>> = known.iter().map(|k| names.intern(k).0).collect();
        Self {
            clock,
            names: Mutex::new(names),
            known: known.into(),
            tenants: ArcSwap::from_pointee(TenantMap::default()),
            generation: AtomicU64::new(0),
            id: ENGINE_IDS.fetch_add(1, Ordering::Relaxed),
            writer: Mutex::new(()),
            closed: AtomicBool::new(false),
        }
    }

    /// Stop deciding: every later check, batch, acquire, renewal and gauge answers
    /// [`EngineError::Closed`]. Usage and stats stay readable for the last flush.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    #[inline(always)]
    fn open(&self) -> Result<(), EngineError> {
        if self.is_closed() {
            return Err(EngineError::Closed);
        }
        Ok(())
    }

    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_dyn()
    }

    /// Adds a tenant or changes its plan, keeping what it has used.
    pub fn set_tenant(&self, name: &str, limits: TenantLimits) -> Result<(), EngineError> {
        self.set_tenants([(name.to_owned(), limits)])
    }

    /// Adds or changes many tenants with one rebuild of the tenant map. Nothing changes if
    /// any plan is invalid.
    pub fn set_tenants(
        &self,
        tenants: impl IntoIterator<Item = (String, TenantLimits)>,
    ) -> Result<(), EngineError> {
        let tenants: Vec<_> = tenants.into_iter().collect();
        for (name, limits) in &tenants {
            if name.is_empty() {
                return Err(EngineError::UnknownTenant(name.clone()));
            }
            limits.validate()?;
        }
        let _writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.clock.now_nanos();
        let mut map = TenantMap::clone(&self.tenants.load());
        for (name, limits) in tenants {
            let previous = map.get(name.as_str()).cloned();
            let tenant = self.compile(&name, &limits, previous.as_ref(), now);
            map.names = self
                .names
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .shared();
            map.insert(tenant);
        }
        self.publish(map);
        Ok(())
    }

    /// Suspends or resumes a tenant without touching its limits or counters (for a plan the
    /// engine cannot take: the old limits stay, the suspension must not wait). False if the
    /// tenant is unknown.
    pub fn set_suspended(&self, name: &str, suspended: bool, hibernated: bool) -> bool {
        let _writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut map = TenantMap::clone(&self.tenants.load());
        let Some(current) = map.get(name).cloned() else {
            return false;
        };
        if current.suspended == suspended && current.hibernated == hibernated {
            return true;
        }
        for d in current.dims.iter() {
            d.publish_fast(suspended);
        }
        map.insert(Tenant {
            suspended,
            hibernated,
            ..current
        });
        self.publish(map);
        true
    }

    /// Forgets a tenant and its unflushed usage; true if it existed.
    pub fn remove_tenant(&self, name: &str) -> bool {
        let _writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut map = TenantMap::clone(&self.tenants.load());
        let existed = map.remove(name).is_some();
        if existed {
            self.publish(map);
        }
        existed
    }

    /// Makes `map` the snapshot every check sees from now on. Call with the writer lock.
    ///
    /// The generation turns odd before the store and even again after it. So a thread that
    /// has seen the new snapshot (through the `ArcSwap`, or anything published after it) reads
    /// an odd generation, and loads the `ArcSwap`, or a later even one, under which only a
    /// snapshot loaded after the store can be cached.
    fn publish(&self, map: TenantMap) {
        self.generation.fetch_add(1, Ordering::Release);
        self.tenants.store(Arc::new(map));
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Tenant names, sorted.
    pub fn tenants(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .tenants
            .load()
            .values()
            .map(|t| t.name.to_string())
            .collect();
        names.sort();
        names
    }

    fn compile(
        &self,
        name: &str,
        limits: &TenantLimits,
        previous: Option<&Tenant>,
        now: u64,
    ) -> Tenant {
        let tenant_name = previous.map_or_else(|| smol_str::SmolStr::new(name), |t| t.name.clone());
        // A tenant's dimensions are sorted by name (collected from a `BTreeMap`).
        let old = |dim: &str| {
            let dims = &previous?.dims;
            dims.binary_search_by(|d| (*d.name).cmp(dim))
                .ok()
                .map(|i| &dims[i])
        };
        let meter_of = |dim: &str| {
            old(dim).and_then(|d| d.meter.clone()).unwrap_or_else(|| {
                let (_, id) = self.intern_id(dim);
                Arc::new(DimState::new(tenant_name.clone(), id))
            })
        };
        let mut dims: BTreeMap<Arc<str>, Dimension> = BTreeMap::new();
        // Each dimension's rates, in the plan's order.
        let mut rates_of: BTreeMap<&str, Vec<&RateSpec>> = BTreeMap::new();
        for r in &limits.rates {
            rates_of.entry(r.name.as_str()).or_default().push(r);
        }
        for (dim, specs) in rates_of {
            let previous_rates = old(dim).map(|d| d.kind.rates()).unwrap_or_default();
            let mut taken = vec![false; previous_rates.len()];
            let home = meter_of(dim);
            let mut home_free = true;
            let rates: Vec<Rate> = specs
                .into_iter()
                .map(|spec| {
                    // Reuse the first unclaimed previous counter of the same algorithm and
                    // period, else of the same algorithm.
                    let per = u64::try_from(spec.per.as_nanos()).unwrap_or(u64::MAX);
                    let pick = (0..previous_rates.len())
                        .filter(|i| !taken[*i] && previous_rates[*i].algorithm() == spec.algorithm)
                        .min_by_key(|i| previous_rates[*i].per_nanos != per);
                    if let Some(i) = pick {
                        taken[i] = true;
                    }
                    let rate = Rate::compile(
                        spec,
                        pick.map(|i| &previous_rates[i]),
                        &home,
                        &mut home_free,
                        now,
                    );
                    if rate.counts_in(&home) {
                        home_free = false;
                    }
                    rate
                })
                .collect();
            let kind = if rates.len() == 1 {
                Kind::Rate(rates.into_iter().next().expect("one rate"))
            } else {
                Kind::Rates(rates.into())
            };
            let name = self.intern(dim);
            let meter = Some(home);
            dims.insert(name.clone(), Dimension { name, kind, meter });
        }
        for s in &limits.concurrency {
            let lease = u64::try_from(s.lease.as_nanos()).unwrap_or(u64::MAX);
            let table = match old(&s.name).map(|d| &d.kind) {
                Some(Kind::Slots { table, .. }) if table.capacity() >= s.limit => table.clone(),
                Some(Kind::Slots { table, .. }) => Arc::new(table.grown(s.limit)),
                _ => Arc::new(SlotTable::new(s.limit)),
            };
            let name = self.intern(&s.name);
            let kind = Kind::Slots {
                limit: s.limit,
                lease,
                table,
            };
            let meter = Some(meter_of(&s.name));
            dims.insert(name.clone(), Dimension { name, kind, meter });
        }
        for g in &limits.gauges {
            let value = match old(&g.name).map(|d| &d.kind) {
                Some(Kind::Gauge { value, .. }) => value.clone(),
                _ => Arc::default(),
            };
            let name = self.intern(&g.name);
            let kind = Kind::Gauge {
                limit: g.limit,
                value,
            };
            dims.insert(
                name.clone(),
                Dimension {
                    name,
                    kind,
                    meter: None,
                },
            );
        }
        for known in &*self.known {
            dims.entry(known.clone()).or_insert_with(|| Dimension {
                name: known.clone(),
                kind: Kind::Unlimited,
                meter: Some(meter_of(known)),
            });
        }
        for z in &limits.sizes {
            let name = self.intern(&z.name);
            let d = dims.entry(name.clone()).or_insert_with(|| Dimension {
                name,
                kind: Kind::Unlimited,
                meter: Some(meter_of(&z.name)),
            });
            let of = Box::new(std::mem::replace(&mut d.kind, Kind::Unlimited));
            d.kind = Kind::Sized { max: z.max, of };
        }
        for d in previous.map(|t| &*t.dims).unwrap_or_default() {
            if let Some(meter) = &d.meter {
                dims.entry(d.name.clone()).or_insert_with(|| Dimension {
                    name: d.name.clone(),
                    kind: Kind::Retired,
                    meter: Some(meter.clone()),
                });
            }
        }
        for d in dims.values() {
            d.publish_fast(limits.suspended);
        }
        Tenant {
            name: tenant_name,
            suspended: limits.suspended,
            hibernated: limits.hibernated,
            dims: dims.into_values().collect::<Vec<_>>().into(),
            allowed: (!limits.allowed.is_empty()).then(|| {
                let rules = limits.allowed.iter().map(|a| AllowedRule {
                    key: a.name.as_str().into(),
                    values: a.values.iter().map(|v| v.as_str().into()).collect(),
                });
                Arc::new(rules.collect())
            }),
        }
    }

    /// Shares the engine's copy of a known dimension name rather than allocating another.
    fn intern(&self, name: &str) -> Arc<str> {
        self.intern_id(name).0
    }

    fn intern_id(&self, name: &str) -> (Arc<str>, u32) {
        self.names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .intern(name)
    }

    fn tenant(&self, name: &str) -> Result<Tenant, EngineError> {
        self.tenants
            .load()
            .get(name)
            .cloned()
            .ok_or_else(|| EngineError::UnknownTenant(name.to_owned()))
    }

    fn dimension<'t>(tenant: &'t Tenant, name: &str) -> Result<&'t Dimension, EngineError> {
        let dims = &tenant.dims;
        dims.binary_search_by(|d| (*d.name).cmp(name))
            .ok()
            .map(|i| &dims[i])
            .filter(|d| !matches!(d.kind, Kind::Retired))
            .ok_or_else(|| EngineError::UnknownDimension {
                dimension: name.to_owned(),
                known: Self::known_of(tenant),
            })
    }

    fn known_of(tenant: &Tenant) -> Vec<String> {
        tenant
            .dims
            .iter()
            .filter(|d| !matches!(d.kind, Kind::Retired))
            .map(|d| d.name.to_string())
            .collect()
    }

    pub fn has_tenant(&self, tenant: &str) -> bool {
        self.tenants.load().get(tenant).is_some()
    }

    /// The dimensions a tenant may be asked about, sorted.
    pub fn dimensions(&self, tenant: &str) -> Result<Vec<String>, EngineError> {
        Ok(Self::known_of(&self.tenant(tenant)?))
    }

    fn check_amount(amount: u64) -> Result<(), EngineError> {
        if amount == 0 || amount > MAX_AMOUNT {
            return Err(EngineError::BadAmount(amount.to_string()));
        }
        Ok(())
    }

    /// Decides, and charges if allowed, `amount` of a rate-limited or unlimited dimension.
    pub fn check(
        &self,
        tenant: &str,
        dimension: &str,
        amount: u64,
    ) -> Result<Decision, EngineError> {
        self.open()?;
        Self::check_amount(amount)?;
        // The clock first: reading it does not wait for the lookup's memory accesses.
        let now = self.clock.now_nanos();
        let generation = self.generation.load(Ordering::Acquire);
        if generation % 2 == 1 {
            return self.check_shared(tenant, dimension, now, amount);
        }
        // SAFETY: `snapshot` is called again only by a later check; nothing below checks.
        let Some(map) =
            (unsafe { local::snapshot(self.id, generation, || self.tenants.load_full()) })
        else {
            return self.check_shared(tenant, dimension, now, amount);
        };
        Self::check_in(map, tenant, dimension, now, amount)
    }

    /// Whether the decision index answers checks of `dimension` for `tenant`.
    #[cfg(test)]
    pub(crate) fn is_indexed(&self, tenant: &str, dimension: &str) -> bool {
        self.tenants.load().cell(tenant, dimension).is_some()
    }

    /// A check against the `ArcSwap` itself: while a snapshot is being published, or when the
    /// thread has no cache (it is exiting). Out of line, so `check_in` is inlined only once.
    #[cold]
    #[inline(never)]
    fn check_shared(&self, tenant: &str, dim: &str, now: u64, amount: u64) -> CheckResult {
        Self::check_in(&self.tenants.load(), tenant, dim, now, amount)
    }

    /// A check against `map`: from the decision index if it can, else the general path.
    #[inline(always)]
    fn check_in(
        map: &TenantMap,
        tenant: &str,
        dimension: &str,
        now: u64,
        amount: u64,
    ) -> Result<Decision, EngineError> {
        if let Some(decision) = map
            .cell(tenant, dimension)
            .and_then(|cell| Self::decide_in_cell(cell, now, amount))
        {
            return Ok(decision);
        }
        Self::check_general(map, tenant, dimension, now, amount, &[])
    }

    /// Decides, and charges if allowed, `amount` of a rate-limited or unlimited dimension for
    /// a check carrying `attributes` (`queue=emails`), which the plan's allowed-values rules
    /// judge. Without attributes, the same as [`Engine::check`].
    pub fn check_with(
        &self,
        tenant: &str,
        dimension: &str,
        amount: u64,
        attributes: &[(&str, &str)],
    ) -> Result<Decision, EngineError> {
        if attributes.is_empty() {
            return self.check(tenant, dimension, amount);
        }
        self.open()?;
        Self::check_amount(amount)?;
        let now = self.clock.now_nanos();
        let map = self.tenants.load();
        Self::check_general(&map, tenant, dimension, now, amount, attributes)
    }

    /// A check through the tenant's dimension list: everything the decision index does not
    /// answer alone.
    fn check_general(
        map: &TenantMap,
        tenant: &str,
        dimension: &str,
        now: u64,
        amount: u64,
        attributes: &[(&str, &str)],
    ) -> CheckResult {
        let t = map
            .get(tenant)
            .ok_or_else(|| EngineError::UnknownTenant(tenant.to_owned()))?;
        let dim = Self::dimension(t, dimension)?;
        Self::rate_kind(dim)?;
        let meter = dim.meter.as_deref().expect("rate dimensions are metered");
        if t.suspended {
            meter.record_denied(now);
            return Ok(Decision::paused(t.hibernated));
        }
        if let Some(refused) = Self::screen(t, dim, amount, attributes) {
            meter.record_denied(now);
            return Ok(refused);
        }
        match Self::charge(dim, now, amount, None) {
            Ok(decision) => {
                meter.record(now, amount);
                Ok(decision)
            }
            Err(decision) => {
                meter.record_denied(now);
                Ok(decision)
            }
        }
    }

    /// A check decided from the cell alone; `None` when the general path must decide. Answers
    /// exactly what the general path would.
    #[inline(always)]
    fn decide_in_cell(cell: CellRef<'_>, now: u64, amount: u64) -> Option<Decision> {
        let fast = cell.line().fast();
        if fast == Fast::General {
            return None;
        }
        let Fast::Bucket(p) = fast else {
            cell.record(now, amount);
            return Some(Decision::allowed(None, None));
        };
        Some(match cell.line().bucket.try_charge(p, now, amount) {
            Charge::Allowed { remaining, .. } => {
                cell.record(now, amount);
                Decision::allowed(Some(p.capacity), Some(remaining))
            }
            Charge::Denied {
                current,
                retry_after,
            } => {
                cell.record_denied(now);
                Decision::denied(
                    Reason::RateLimited,
                    p.capacity,
                    current,
                    retry_after.map(ceil_ms),
                )
            }
        })
    }

    /// The refusal of a check its plan rules out whatever the counters say: an attribute
    /// value its allowed-values rule does not list, or more than the dimension's size limit
    /// in one check. Attributes without a rule pass.
    fn screen(
        t: &Tenant,
        dim: &Dimension,
        amount: u64,
        attributes: &[(&str, &str)],
    ) -> Option<Decision> {
        for (key, value) in attributes {
            let rules = t.allowed.as_deref().map_or(&[][..], Vec::as_slice);
            let rule = rules.iter().find(|r| &*r.key == *key);
            if rule.is_some_and(|r| !r.values.iter().any(|v| &**v == *value)) {
                return Some(Decision::not_allowed());
            }
        }
        match dim.kind {
            Kind::Sized { max, .. } if amount > max => Some(Decision::too_large(max, amount)),
            _ => None,
        }
    }

    fn rate_kind(dim: &Dimension) -> Result<(), EngineError> {
        let hint = match dim.kind.unsized_kind() {
            Kind::Unlimited | Kind::Rate(_) | Kind::Rates(_) | Kind::Sized { .. } => {
                return Ok(());
            }
            Kind::Slots { .. } => "acquire and release its slots instead",
            Kind::Gauge { .. } => "set its value instead",
            Kind::Retired => "it is no longer in the plan",
        };
        Err(EngineError::WrongKind {
            dimension: dim.name.to_string(),
            actual: dim.kind.label(),
            hint,
        })
    }

    /// Charges every rate of `dim`, or none: on a refusal, gives back what this call took.
    /// Receipts of charges that stand are appended to `receipts` when the caller may still
    /// have to give them back (a batch).
    #[inline]
    fn charge<'d>(
        dim: &'d Dimension,
        now: u64,
        amount: u64,
        receipts: Option<&mut Vec<Receipt<'d>>>,
    ) -> Result<Decision, Decision> {
        if let Kind::Rate(rate) = &dim.kind {
            // The common case: one cell, nothing to give back on refusal.
            return match rate.try_charge(now, amount) {
                Charge::Allowed { remaining, receipt } => {
                    if let Some(receipts) = receipts {
                        receipts.push(Receipt {
                            rate,
                            receipt,
                            amount,
                        });
                    }
                    Ok(Decision::allowed(
                        Some(rate.reported_limit()),
                        Some(remaining),
                    ))
                }
                Charge::Denied {
                    current,
                    retry_after,
                } => Err(Decision::denied(
                    Reason::RateLimited,
                    rate.reported_limit(),
                    current,
                    retry_after.map(ceil_ms),
                )),
            };
        }
        let rates = dim.kind.rates();
        if rates.is_empty() {
            return Ok(Decision::allowed(None, None));
        }
        let mut own = Vec::new();
        let receipts = receipts.unwrap_or(&mut own);
        let start = receipts.len();
        let mut tightest: Option<(u64, u64)> = None;
        for rate in rates {
            match rate.try_charge(now, amount) {
                Charge::Allowed { remaining, receipt } => {
                    receipts.push(Receipt {
                        rate,
                        receipt,
                        amount,
                    });
                    if tightest.is_none_or(|(_, r)| remaining < r) {
                        tightest = Some((rate.reported_limit(), remaining));
                    }
                }
                Charge::Denied {
                    current,
                    retry_after,
                } => {
                    for r in receipts.drain(start..).rev() {
                        r.rate.refund(r.receipt, r.amount);
                    }
                    return Err(Decision::denied(
                        Reason::RateLimited,
                        rate.reported_limit(),
                        current,
                        retry_after.map(ceil_ms),
                    ));
                }
            }
        }
        let (limit, remaining) = tightest.expect("at least one rate");
        Ok(Decision::allowed(Some(limit), Some(remaining)))
    }

    /// Decides a list of (dimension, amount) for one tenant all-or-nothing; see
    /// [`BatchDecision`]. A dimension may appear more than once.
    pub fn check_batch(
        &self,
        tenant: &str,
        items: &[(&str, u64)],
    ) -> Result<BatchDecision, EngineError> {
        let items: Vec<_> = items.iter().map(|(d, a)| (*d, *a, &[][..])).collect();
        self.check_batch_with(tenant, &items)
    }

    /// [`Engine::check_batch`] with each item's attributes (see [`Engine::check_with`]). An
    /// item refused by its plan's sizes or allowed values refuses the batch like a limit.
    pub fn check_batch_with(
        &self,
        tenant: &str,
        items: &[BatchItem<'_>],
    ) -> Result<BatchDecision, EngineError> {
        self.open()?;
        let t = self.tenant(tenant)?;
        let mut dims = Vec::with_capacity(items.len());
        for (dimension, amount, attributes) in items {
            Self::check_amount(*amount)?;
            let dim = Self::dimension(&t, dimension)?;
            Self::rate_kind(dim)?;
            dims.push((dim, *amount, *attributes));
        }
        let now = self.clock.now_nanos();
        if t.suspended {
            for (dim, _, _) in &dims {
                dim.meter.as_deref().expect("metered").record_denied(now);
            }
            return Ok(BatchDecision {
                allowed: false,
                retry_after_ms: None,
                results: dims
                    .iter()
                    .map(|_| Decision::paused(t.hibernated))
                    .collect(),
            });
        }
        let mut receipts = Vec::with_capacity(dims.len());
        let mut results = Vec::with_capacity(dims.len());
        for (i, (dim, amount, attributes)) in dims.iter().enumerate() {
            let decided = match Self::screen(&t, dim, *amount, attributes) {
                Some(refused) => Err(refused),
                None => Self::charge(dim, now, *amount, Some(&mut receipts)),
            };
            match decided {
                Ok(decision) => results.push(decision),
                Err(denied) => {
                    for r in receipts.drain(..).rev() {
                        r.rate.refund(r.receipt, r.amount);
                    }
                    dim.meter.as_deref().expect("metered").record_denied(now);
                    let retry_after_ms = denied.retry_after_ms;
                    results.clear();
                    results.extend((0..i).map(|_| Decision {
                        allowed: false,
                        ..Decision::allowed(None, None)
                    }));
                    results.push(denied);
                    results.extend((i + 1..dims.len()).map(|_| Decision {
                        allowed: false,
                        ..Decision::allowed(None, None)
                    }));
                    for d in &mut results {
                        if d.reason.is_none() {
                            d.retry_after_ms = None;
                        }
                    }
                    return Ok(BatchDecision {
                        allowed: false,
                        retry_after_ms,
                        results,
                    });
                }
            }
        }
        for (dim, amount, _) in &dims {
            dim.meter.as_deref().expect("metered").record(now, *amount);
        }
        Ok(BatchDecision {
            allowed: true,
            retry_after_ms: Some(0),
            results,
        })
    }

    fn slots<'t>(
        t: &'t Tenant,
        dimension: &str,
    ) -> Result<(&'t Dimension, u64, u64, &'t SlotTable), EngineError> {
        let dim = Self::dimension(t, dimension)?;
        match &dim.kind {
            Kind::Slots {
                limit,
                lease,
                table,
            } => Ok((dim, *limit, *lease, table)),
            other => Err(EngineError::WrongKind {
                dimension: dimension.to_owned(),
                actual: other.label(),
                hint: "only concurrency dimensions have slots",
            }),
        }
    }

    /// Takes one concurrency slot, leased for the plan's lease time.
    pub fn acquire(&self, tenant: &str, dimension: &str) -> Result<SlotDecision, EngineError> {
        self.open()?;
        let t = self.tenant(tenant)?;
        let (dim, limit, lease, table) = Self::slots(&t, dimension)?;
        let meter = dim.meter.as_deref().expect("metered");
        let now = self.clock.now_nanos();
        if t.suspended {
            meter.record_denied(now);
            return Ok(SlotDecision {
                decision: Decision::paused(t.hibernated),
                slot: None,
                expires_at: None,
            });
        }
        Ok(match table.acquire(limit, lease, now) {
            Acquire::Held {
                id,
                expires,
                in_use,
            } => {
                meter.record(now, 1);
                SlotDecision {
                    decision: Decision::allowed(Some(limit), Some(limit.saturating_sub(in_use))),
                    slot: Some(id),
                    expires_at: Some(super::clock::timestamp(expires)),
                }
            }
            Acquire::Full {
                in_use,
                retry_after,
            } => {
                meter.record_denied(now);
                SlotDecision {
                    decision: Decision::denied(
                        Reason::ConcurrencyLimit,
                        limit,
                        in_use,
                        retry_after.map(ceil_ms),
                    ),
                    slot: None,
                    expires_at: None,
                }
            }
        })
    }

    /// Gives a slot back. Refused if the slot is not held (already released, or expired and
    /// taken back).
    pub fn release(&self, tenant: &str, dimension: &str, slot: u64) -> Result<(), EngineError> {
        let t = self.tenant(tenant)?;
        let (_, _, _, table) = Self::slots(&t, dimension)?;
        if table.release(slot) {
            Ok(())
        } else {
            Err(EngineError::SlotNotHeld {
                dimension: dimension.to_owned(),
                slot,
            })
        }
    }

    /// Extends a live lease by the plan's lease time from now; returns the new expiry.
    pub fn renew(
        &self,
        tenant: &str,
        dimension: &str,
        slot: u64,
    ) -> Result<jiff::Timestamp, EngineError> {
        self.open()?;
        let t = self.tenant(tenant)?;
        let (_, _, lease, table) = Self::slots(&t, dimension)?;
        table
            .renew(slot, lease, self.clock.now_nanos())
            .map(super::clock::timestamp)
            .ok_or_else(|| EngineError::SlotNotHeld {
                dimension: dimension.to_owned(),
                slot,
            })
    }

    /// Sets a gauge to an absolute value; refused (and left as it was) above the limit.
    pub fn set_gauge(
        &self,
        tenant: &str,
        dimension: &str,
        value: u64,
    ) -> Result<Decision, EngineError> {
        self.open()?;
        let t = self.tenant(tenant)?;
        let dim = Self::dimension(&t, dimension)?;
        let Kind::Gauge { limit, value: cell } = &dim.kind else {
            return Err(EngineError::WrongKind {
                dimension: dimension.to_owned(),
                actual: dim.kind.label(),
                hint: "only gauges are set to a value",
            });
        };
        if t.suspended {
            return Ok(Decision::paused(t.hibernated));
        }
        Ok(match limit {
            Some(limit) if value > *limit => Decision::denied(
                Reason::GaugeLimit,
                *limit,
                cell.load(Ordering::Acquire),
                None,
            ),
            _ => {
                cell.store(value, Ordering::Release);
                Decision::allowed(*limit, limit.map(|l| l - value))
            }
        })
    }

    /// Per-dimension counters of this month and the state of each limit.
    pub fn stats(&self, tenant: &str) -> Result<TenantStats, EngineError> {
        let t = self.tenant(tenant)?;
        let now = self.clock.now_nanos();
        let mut dimensions = BTreeMap::new();
        for d in &*t.dims {
            if matches!(d.kind, Kind::Retired) {
                continue;
            }
            let m = d.meter.as_deref().map(|m| m.stats(now)).unwrap_or_default();
            let rates = d
                .kind
                .rates()
                .iter()
                .map(|r| {
                    let used = r.used(now);
                    RateStatus {
                        algorithm: r.algorithm(),
                        limit: r.reported_limit(),
                        per_ms: r.per_nanos / 1_000_000,
                        used,
                        remaining: r.reported_limit().saturating_sub(used),
                    }
                })
                .collect();
            let (slots, gauge) = match &d.kind {
                Kind::Slots { limit, table, .. } => (
                    Some(SlotStatus {
                        limit: *limit,
                        in_use: table.in_use(),
                    }),
                    None,
                ),
                Kind::Gauge { limit, value } => (
                    None,
                    Some(GaugeStatus {
                        limit: *limit,
                        value: value.load(Ordering::Acquire),
                    }),
                ),
                _ => (None, None),
            };
            dimensions.insert(
                d.name.to_string(),
                DimensionStats {
                    kind: d.kind.public(),
                    allowed: m.allowed,
                    denied: m.denied,
                    units: m.units,
                    units_per_second: m.units_per_second,
                    rates,
                    slots,
                    gauge,
                },
            );
        }
        Ok(TenantStats {
            tenant: t.name.to_string(),
            period: Period::of_nanos(now),
            suspended: t.suspended,
            dimensions,
        })
    }

    /// Per-dimension totals and hourly series of one month, including usage loaded from the
    /// ledger. Only the current and the previous month are kept in memory.
    pub fn usage(&self, tenant: &str, period: Period) -> Result<Usage, EngineError> {
        let t = self.tenant(tenant)?;
        let dimensions = t
            .dims
            .iter()
            .filter_map(|d| Some((d.name.to_string(), d.meter.as_deref()?.usage(period))))
            .collect();
        Ok(Usage {
            tenant: t.name.to_string(),
            period,
            dimensions,
        })
    }

    /// Seeds a tenant's usage for a period with what the ledger persisted before a restart,
    /// replacing any earlier seed of that period. Dimensions the plan no longer has are kept
    /// (as retired) so their usage is still reported.
    pub fn load_usage(&self, usage: &Usage) -> Result<(), EngineError> {
        let t = self.tenant(&usage.tenant)?;
        let missing: Vec<&str> = usage
            .dimensions
            .keys()
            .filter(|k| {
                !t.dims
                    .iter()
                    .any(|d| d.meter.is_some() && &*d.name == k.as_str())
            })
            .map(String::as_str)
            .collect();
        let t = if missing.is_empty() {
            t
        } else {
            let _writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
            let mut map = TenantMap::clone(&self.tenants.load());
            let current = map
                .get(usage.tenant.as_str())
                .cloned()
                .ok_or_else(|| EngineError::UnknownTenant(usage.tenant.clone()))?;
            let mut dims: Vec<Dimension> = current
                .dims
                .iter()
                .map(|d| Dimension {
                    name: d.name.clone(),
                    kind: d.kind.clone_shallow(),
                    meter: d.meter.clone(),
                })
                .collect();
            for name in missing {
                if !dims.iter().any(|d| &*d.name == name) {
                    let (name, id) = self.intern_id(name);
                    dims.push(Dimension {
                        name,
                        kind: Kind::Retired,
                        meter: Some(Arc::new(DimState::new(current.name.clone(), id))),
                    });
                }
            }
            dims.sort_by(|a, b| a.name.cmp(&b.name));
            let rebuilt = Tenant {
                name: current.name.clone(),
                suspended: current.suspended,
                hibernated: current.hibernated,
                dims: dims.into(),
                allowed: current.allowed.clone(),
            };
            map.names = self
                .names
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .shared();
            map.insert(rebuilt.clone());
            self.publish(map);
            rebuilt
        };
        for (name, du) in &usage.dimensions {
            if let Some(meter) = t
                .dims
                .iter()
                .find(|d| &*d.name == name.as_str())
                .and_then(|d| d.meter.as_deref())
            {
                meter.seed(usage.period, du.clone());
            }
        }
        Ok(())
    }

    /// Visits every metered (tenant, dimension) with its lifetime allowed and denied
    /// decisions and this month's units; for the metrics collector.
    pub(crate) fn for_each_counter(&self, mut f: impl FnMut(&str, &str, u64, u64, u64)) {
        let map = self.tenants.load();
        let now = self.clock.now_nanos();
        let period = Period::of_nanos(now);
        for t in map.values() {
            for d in &*t.dims {
                if let Some(m) = &d.meter {
                    let (allowed, denied) = m.lifetime();
                    let DimensionUsage { total, .. } = m.usage(period);
                    f(&t.name, &d.name, allowed, denied, total);
                }
            }
        }
    }
}

impl Kind {
    /// The same plan entry sharing the same state.
    fn clone_shallow(&self) -> Kind {
        match self {
            Kind::Unlimited => Kind::Unlimited,
            Kind::Rate(r) => Kind::Rate(r.clone()),
            Kind::Rates(rs) => Kind::Rates(rs.clone()),
            Kind::Slots {
                limit,
                lease,
                table,
            } => Kind::Slots {
                limit: *limit,
                lease: *lease,
                table: table.clone(),
            },
            Kind::Gauge { limit, value } => Kind::Gauge {
                limit: *limit,
                value: value.clone(),
            },
            Kind::Retired => Kind::Retired,
            Kind::Sized { max, of } => Kind::Sized {
                max: *max,
                of: Box::new(of.clone_shallow()),
            },
        }
    }
}

/// A tenant's counters, as served by `GET /v1/tenants/{tenant}/stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantStats {
    pub tenant: String,
    pub period: Period,
    pub suspended: bool,
    pub dimensions: BTreeMap<String, DimensionStats>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DimensionStats {
    pub kind: DimensionKind,
    /// Allowed and denied decisions this period (denials are dated by the month they fell in).
    pub allowed: u64,
    pub denied: u64,
    /// Units allowed this period, including usage loaded from the ledger.
    pub units: u64,
    /// Units per second over the trailing hour (the previous hour weighted by its overlap).
    pub units_per_second: f64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rates: Vec<RateStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slots: Option<SlotStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gauge: Option<GaugeStatus>,
}

/// What a dimension is in a tenant's plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DimensionKind {
    /// Known to the engine but not limited by the plan: metered only.
    Unlimited,
    Rate,
    Concurrency,
    Gauge,
    /// No longer in the plan; its usage is still reported.
    Retired,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateStatus {
    pub algorithm: Algorithm,
    pub limit: u64,
    pub per_ms: u64,
    pub used: u64,
    pub remaining: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlotStatus {
    pub limit: u64,
    pub in_use: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GaugeStatus {
    pub limit: Option<u64>,
    pub value: u64,
}
