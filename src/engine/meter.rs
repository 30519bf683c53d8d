//! Metering: what each (tenant, dimension) was allowed, per UTC hour.
//!
//! The hot path is one `fetch_add` on a 64-bit word holding the allowed decisions and units
//! of the current hour: no compare loop, so concurrent charges never retry. The hour itself
//! sits beside the word and changes only under the cell's history lock, taken by the first
//! charge of a new hour (to move the finished hour into the history), by a word that has
//! filled half of either of its fields, and by readers; so readers always see each hour
//! exactly once. A charge racing the first charge of a new hour by nanoseconds may be
//! counted in the new hour; totals are never lost. Denials are counted per month in one
//! packed `AtomicU64`. History keeps the current and the previous month (the ledger
//! persists usage into `TenantUsage` objects; older months are its business).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use super::clock::NANOS_PER_HOUR;

/// A billing period: one UTC calendar month, written `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    /// Months since year 0 (`year * 12 + month - 1`).
    index: u32,
}

/// A period string that is not `YYYY-MM`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("period must be a month written YYYY-MM (e.g. 2025-03), got {0:?}")]
pub struct BadPeriod(pub String);

impl Period {
    pub fn new(year: u16, month: u8) -> Option<Self> {
        (1..=12).contains(&month).then(|| Self {
            index: u32::from(year) * 12 + u32::from(month) - 1,
        })
    }

    pub fn year(self) -> u16 {
        (self.index / 12) as u16
    }

    pub fn month(self) -> u8 {
        (self.index % 12 + 1) as u8
    }

    /// The month holding the given hour (hours since the epoch).
    pub(crate) fn of_hour(hour: u32) -> Self {
        Self::of_nanos(u64::from(hour) * NANOS_PER_HOUR)
    }

    pub(crate) fn of_nanos(nanos: u64) -> Self {
        let date = super::clock::timestamp(nanos)
            .to_zoned(TimeZone::UTC)
            .date();
        Self::new(date.year() as u16, date.month() as u8).expect("calendar month")
    }

    /// Hours since the epoch of the first hour of this month.
    pub(crate) fn first_hour(self) -> u32 {
        let date = Date::new(
            i16::try_from(self.year()).unwrap_or(9999),
            self.month() as i8,
            1,
        )
        .unwrap_or(Date::MAX);
        let secs = date
            .to_zoned(TimeZone::UTC)
            .map_or(0, |z| z.timestamp().as_second());
        u32::try_from(secs.max(0) / 3600).unwrap_or(u32::MAX)
    }

    pub(crate) fn next(self) -> Self {
        Self {
            index: self.index + 1,
        }
    }

    pub(crate) fn previous(self) -> Self {
        Self {
            index: self.index.saturating_sub(1),
        }
    }

    pub(crate) fn contains_hour(self, hour: u32) -> bool {
        (self.first_hour()..self.next().first_hour()).contains(&hour)
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year(), self.month())
    }
}

impl FromStr for Period {
    type Err = BadPeriod;

    fn from_str(s: &str) -> Result<Self, BadPeriod> {
        let bad = || BadPeriod(s.to_owned());
        let (y, m) = s.split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 || !(y.bytes().chain(m.bytes())).all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let year: u16 = y.parse().map_err(|_| bad())?;
        let month: u8 = m.parse().map_err(|_| bad())?;
        if year < 1970 {
            return Err(bad());
        }
        Self::new(year, month).ok_or_else(bad)
    }
}

impl Serialize for Period {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One tenant's usage in one period, per dimension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub tenant: String,
    pub period: Period,
    pub dimensions: BTreeMap<String, DimensionUsage>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DimensionUsage {
    pub total: u64,
    /// Hours with usage, in order.
    pub hours: Vec<HourUsage>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HourUsage {
    /// Start of the UTC hour.
    pub hour: jiff::Timestamp,
    pub units: u64,
}

impl HourUsage {
    fn hour_index(&self) -> u32 {
        u32::try_from(self.hour.as_second().max(0) / 3600).unwrap_or(u32::MAX)
    }
}

/// The hot word: allowed decisions in the high 20 bits, units in the low 44.
const UNIT_BITS: u32 = 44;
const UNIT_MASK: u64 = (1 << UNIT_BITS) - 1;
const ONE_DECISION: u64 = 1 << UNIT_BITS;
/// Set in the word once either field is half full: an adder that sees it (in the value before
/// its own add) drains the word into the history right after that add, so before its next
/// one. Until the drain, the other half absorbs at most one add per concurrent thread (2^43
/// units, at most `FAST_UNITS` each; 2^19 decisions, one each).
const HALF_FULL: u64 = (1 << 63) | (1 << (UNIT_BITS - 1));
/// Larger charges go straight into the history under the lock.
const FAST_UNITS: u64 = 1 << 32;

fn unpack(word: u64) -> (u32, u64) {
    ((word >> UNIT_BITS) as u32, word & UNIT_MASK)
}

const DENIED_BITS: u32 = 48;

#[derive(Debug, Default)]
struct MonthTotals {
    period: Option<Period>,
    allowed: u64,
    denied: u64,
}

impl MonthTotals {
    const NONE: Self = Self {
        period: None,
        allowed: 0,
        denied: 0,
    };
}

static EMPTY: History = History {
    hours: Vec::new(),
    months: [MonthTotals::NONE, MonthTotals::NONE],
    lifetime_allowed: 0,
    lifetime_denied: 0,
    seeds: Vec::new(),
};

#[derive(Debug, Default)]
struct History {
    /// Hours moved out of the hot word (hours since the epoch, units), ascending: finished
    /// hours, and parts of the current one (drained at half-full, or too large for the word).
    hours: Vec<(u32, u64)>,
    /// Allowed and denied decisions of the current and previous month.
    months: [MonthTotals; 2],
    /// Decisions in months no longer kept, for the lifetime counters.
    lifetime_allowed: u64,
    lifetime_denied: u64,
    /// Usage loaded from the ledger at start, per period.
    seeds: Vec<(Period, DimensionUsage)>,
}

impl History {
    fn month(&mut self, period: Period) -> &mut MonthTotals {
        if let Some(i) = self.months.iter().position(|m| m.period == Some(period)) {
            return &mut self.months[i];
        }
        // Replace the older of the two (or an empty one).
        let i = if self.months[0].period <= self.months[1].period {
            0
        } else {
            1
        };
        let old = std::mem::take(&mut self.months[i]);
        self.lifetime_allowed += old.allowed;
        self.lifetime_denied += old.denied;
        self.months[i].period = Some(period);
        &mut self.months[i]
    }

    fn absorb_hour(&mut self, hour: u32, decisions: u32, units: u64) {
        if decisions == 0 && units == 0 {
            return;
        }
        let period = Period::of_hour(hour);
        self.month(period).allowed += u64::from(decisions);
        match self.hours.last_mut() {
            Some((h, u)) if *h == hour => *u = u.saturating_add(units),
            _ => {
                let at = self.hours.partition_point(|(h, _)| *h < hour);
                if self.hours.get(at).is_some_and(|(h, _)| *h == hour) {
                    self.hours[at].1 = self.hours[at].1.saturating_add(units);
                } else {
                    self.hours.insert(at, (hour, units));
                }
            }
        }
        let keep_from = period.previous().first_hour();
        let stale = self.hours.partition_point(|(h, _)| *h < keep_from);
        self.hours.drain(..stale);
    }

    fn absorb_denied(&mut self, month_index: u64, count: u64) {
        if count == 0 {
            return;
        }
        let period = Period {
            index: month_index as u32,
        };
        self.month(period).denied += count;
    }
}

/// The current hour's counts, which its owner keeps in its hot cache line beside its limit
/// (see `cell::HotLine`) so a check touches one line; the rest of the meter is cold.
#[derive(Clone, Copy)]
pub(crate) struct Current<'a> {
    /// Allowed decisions and units counted in `hour` and not yet in the history.
    pub word: &'a AtomicU64,
    /// The hour (since the epoch) `word` counts in; changed only under the history lock.
    pub hour: &'a AtomicU32,
}

/// Per (tenant, dimension) metering state beyond the current hour: 24 bytes, and the history
/// behind a lock.
#[derive(Debug, Default)]
pub(crate) struct Meter {
    /// (month index: 16 bits, denied decisions in it: 48 bits).
    denied: AtomicU64,
    /// Made on the first finished hour or denial, so an idle cell costs 8 bytes here.
    history: Mutex<Option<Box<History>>>,
}

/// What [`Meter::stats`] reports.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct MeterStats {
    pub allowed: u64,
    pub denied: u64,
    pub units: u64,
    pub units_per_second: f64,
}

impl Meter {
    /// Counts one allowed decision of `units` at `now`.
    #[inline]
    pub fn record(&self, cur: Current<'_>, now: u64, units: u64) {
        let hour = (now / NANOS_PER_HOUR) as u32;
        // A clock stepped back counts into the later hour already open.
        if units <= FAST_UNITS && cur.hour.load(Ordering::Acquire) >= hour {
            let before = cur.word.fetch_add(ONE_DECISION | units, Ordering::AcqRel);
            if before & HALF_FULL != 0 {
                self.drain(cur);
            }
            return;
        }
        self.record_slow(cur, hour, units);
    }

    /// Moves the hot word into the history of its hour.
    #[cold]
    fn drain(&self, cur: Current<'_>) {
        let mut guard = self.history.lock().unwrap_or_else(|e| e.into_inner());
        Self::drain_locked(cur, &mut guard);
    }

    fn drain_locked(cur: Current<'_>, guard: &mut Option<Box<History>>) {
        let (d, u) = unpack(cur.word.swap(0, Ordering::AcqRel));
        if d > 0 || u > 0 {
            let hour = cur.hour.load(Ordering::Acquire);
            guard
                .get_or_insert_with(Box::default)
                .absorb_hour(hour, d, u);
        }
    }

    /// The first charge of a new hour, or one too large for the hot word.
    #[cold]
    fn record_slow(&self, cur: Current<'_>, hour: u32, units: u64) {
        let mut guard = self.history.lock().unwrap_or_else(|e| e.into_inner());
        if hour > cur.hour.load(Ordering::Acquire) {
            Self::drain_locked(cur, &mut guard);
            cur.hour.store(hour, Ordering::Release);
        }
        if units > FAST_UNITS {
            let hour = cur.hour.load(Ordering::Acquire);
            guard
                .get_or_insert_with(Box::default)
                .absorb_hour(hour, 1, units);
            return;
        }
        let before = cur.word.fetch_add(ONE_DECISION | units, Ordering::AcqRel);
        if before & HALF_FULL != 0 {
            Self::drain_locked(cur, &mut guard);
        }
    }

    /// The hot word's hour, decisions and units; call with the history lock held.
    fn hot(cur: Current<'_>) -> (u32, u32, u64) {
        let (d, u) = unpack(cur.word.load(Ordering::Acquire));
        (cur.hour.load(Ordering::Acquire), d, u)
    }

    /// Counts one denied decision.
    pub fn record_denied(&self, now: u64) {
        let month = u64::from(Period::of_nanos(now).index);
        let word = self.denied.load(Ordering::Acquire);
        let (m, c) = (word >> DENIED_BITS, word & ((1 << DENIED_BITS) - 1));
        if m >= month
            && c + 1 < (1 << DENIED_BITS)
            && self
                .denied
                .compare_exchange(word, word + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            return;
        }
        let mut guard = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let history = guard.get_or_insert_with(Box::default);
        let old = self
            .denied
            .swap((month.max(m) << DENIED_BITS) | 1, Ordering::AcqRel);
        history.absorb_denied(old >> DENIED_BITS, old & ((1 << DENIED_BITS) - 1));
    }

    /// Units and series for `period`, seeds included.
    pub fn usage(&self, cur: Current<'_>, period: Period) -> DimensionUsage {
        let guard = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let history = guard.as_deref().unwrap_or(&EMPTY);
        let (h, _, u) = Self::hot(cur);
        let mut hours: BTreeMap<u32, u64> = history
            .hours
            .iter()
            .filter(|(h, _)| period.contains_hour(*h))
            .copied()
            .collect();
        if u > 0 && period.contains_hour(h) {
            let e = hours.entry(h).or_default();
            *e = e.saturating_add(u);
        }
        let mut total = hours.values().fold(0u64, |a, b| a.saturating_add(*b));
        for (p, seed) in &history.seeds {
            if *p != period {
                continue;
            }
            total = total.saturating_add(seed.total);
            for s in &seed.hours {
                let e = hours.entry(s.hour_index()).or_default();
                *e = e.saturating_add(s.units);
            }
        }
        DimensionUsage {
            total,
            hours: hours
                .into_iter()
                .filter(|(_, units)| *units > 0)
                .map(|(h, units)| HourUsage {
                    hour: super::clock::timestamp(u64::from(h) * NANOS_PER_HOUR),
                    units,
                })
                .collect(),
        }
    }

    /// Replaces the seed of `usage`'s period: what the ledger had persisted before a restart.
    pub fn seed(&self, period: Period, usage: DimensionUsage) {
        let mut guard = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let history = guard.get_or_insert_with(Box::default);
        history.seeds.retain(|(p, _)| *p != period);
        history.seeds.push((period, usage));
    }

    /// Decisions this month, units this month and the trailing-hour rate at `now`.
    pub fn stats(&self, cur: Current<'_>, now: u64) -> MeterStats {
        let period = Period::of_nanos(now);
        let hour = (now / NANOS_PER_HOUR) as u32;
        let guard = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let history = guard.as_deref().unwrap_or(&EMPTY);
        let (h, d, u) = Self::hot(cur);
        let denied_word = self.denied.load(Ordering::Acquire);
        let month = history.months.iter().find(|m| m.period == Some(period));
        let mut allowed = month.map_or(0, |m| m.allowed);
        let mut denied = month.map_or(0, |m| m.denied);
        if period.contains_hour(h) {
            allowed += u64::from(d);
        }
        if denied_word >> DENIED_BITS == u64::from(period.index) {
            denied += denied_word & ((1 << DENIED_BITS) - 1);
        }
        let units_in = |wanted: u32| -> u64 {
            let cold = history
                .hours
                .iter()
                .rev()
                .find(|(h, _)| *h == wanted)
                .map_or(0, |(_, u)| *u);
            cold + if h == wanted { u } else { 0 }
        };
        let units = history
            .hours
            .iter()
            .filter(|(h, _)| period.contains_hour(*h))
            .map(|(_, u)| *u)
            .sum::<u64>()
            + if period.contains_hour(h) { u } else { 0 }
            + history
                .seeds
                .iter()
                .filter(|(p, _)| *p == period)
                .map(|(_, s)| s.total)
                .sum::<u64>();
        // Trailing hour: all of this hour plus the part of the last hour still inside it.
        let into_hour = (now % NANOS_PER_HOUR) as f64 / NANOS_PER_HOUR as f64;
        let trailing =
            units_in(hour) as f64 + units_in(hour.wrapping_sub(1)) as f64 * (1.0 - into_hour);
        MeterStats {
            allowed,
            denied,
            units,
            units_per_second: trailing / 3600.0,
        }
    }

    /// Allowed and denied decisions since the engine started, for the metrics.
    pub fn lifetime(&self, cur: Current<'_>) -> (u64, u64) {
        let guard = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let history = guard.as_deref().unwrap_or(&EMPTY);
        let (_, d, _) = Self::hot(cur);
        let denied = self.denied.load(Ordering::Acquire) & ((1 << DENIED_BITS) - 1);
        let months = history.months.iter();
        let (a, n) = months.fold((0, 0), |(a, n), m| (a + m.allowed, n + m.denied));
        (
            history.lifetime_allowed + a + u64::from(d),
            history.lifetime_denied + n + denied,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A meter with its current hour beside it, as a cell holds one.
    #[derive(Default)]
    struct Standalone {
        word: AtomicU64,
        hour: AtomicU32,
        meter: Meter,
    }

    impl Standalone {
        fn cur(&self) -> Current<'_> {
            Current {
                word: &self.word,
                hour: &self.hour,
            }
        }
        fn record(&self, now: u64, units: u64) {
            self.meter.record(self.cur(), now, units);
        }
        fn record_denied(&self, now: u64) {
            self.meter.record_denied(now);
        }
        fn usage(&self, period: Period) -> DimensionUsage {
            self.meter.usage(self.cur(), period)
        }
        fn seed(&self, period: Period, usage: DimensionUsage) {
            self.meter.seed(period, usage);
        }
        fn stats(&self, now: u64) -> MeterStats {
            self.meter.stats(self.cur(), now)
        }
        fn lifetime(&self) -> (u64, u64) {
            self.meter.lifetime(self.cur())
        }
    }

    fn ts(s: &str) -> u64 {
        s.parse::<jiff::Timestamp>().unwrap().as_nanosecond() as u64
    }

    #[test]
    fn periods_parse_strictly() {
        let p: Period = "2025-03".parse().unwrap();
        assert_eq!(p.to_string(), "2025-03");
        assert_eq!(
            p.first_hour(),
            (ts("2025-03-01T00:00:00Z") / NANOS_PER_HOUR) as u32
        );
        assert_eq!(Period::of_nanos(ts("2025-03-31T23:59:59Z")), p);
        assert_eq!(Period::of_nanos(ts("2025-04-01T00:00:00Z")), p.next());
        for bad in [
            "2025-3",
            "2025-13",
            "25-03",
            "2025-03-01",
            "",
            "abcd-ef",
            "2025-00",
        ] {
            assert_eq!(bad.parse::<Period>(), Err(BadPeriod(bad.into())), "{bad}");
        }
    }

    #[test]
    fn hours_roll_over_into_the_series() {
        let m = Standalone::default();
        m.record(ts("2025-03-31T22:10:00Z"), 5);
        m.record(ts("2025-03-31T22:59:59Z"), 7);
        m.record(ts("2025-03-31T23:00:00Z"), 1);
        m.record(ts("2025-04-01T00:30:00Z"), 100);
        m.record_denied(ts("2025-04-01T00:31:00Z"));
        let march = m.usage("2025-03".parse().unwrap());
        assert_eq!(march.total, 13);
        let hours: Vec<_> = march
            .hours
            .iter()
            .map(|h| (h.hour.to_string(), h.units))
            .collect();
        assert_eq!(
            hours,
            [
                ("2025-03-31T22:00:00Z".to_string(), 12),
                ("2025-03-31T23:00:00Z".to_string(), 1)
            ]
        );
        assert_eq!(m.usage("2025-04".parse().unwrap()).total, 100);
        let s = m.stats(ts("2025-04-01T00:45:00Z"));
        assert_eq!((s.allowed, s.denied, s.units), (1, 1, 100));
        // Trailing hour at 00:45: 100 this hour + a quarter of 23:00's 1 unit.
        assert_eq!(s.units_per_second, 100.25 / 3600.0);
        assert_eq!(m.lifetime(), (4, 1));
    }

    #[test]
    fn seeds_add_to_metered_usage() {
        let m = Standalone::default();
        let p: Period = "2025-03".parse().unwrap();
        m.record(ts("2025-03-02T10:00:00Z"), 3);
        let seed = DimensionUsage {
            total: 40,
            hours: vec![HourUsage {
                hour: "2025-03-02T10:00:00Z".parse().unwrap(),
                units: 40,
            }],
        };
        m.seed(p, seed.clone());
        m.seed(p, seed);
        let u = m.usage(p);
        assert_eq!(u.total, 43);
        assert_eq!(u.hours.len(), 1);
        assert_eq!(u.hours[0].units, 43);
    }

    #[test]
    fn a_half_full_word_drains_and_large_charges_go_to_the_history() {
        let m = Standalone::default();
        let at = ts("2025-03-02T10:15:00Z");
        // Past half of the 20-bit decision field: drained on the way, nothing lost.
        let decisions = (1u64 << 19) + 3;
        for _ in 0..decisions {
            m.record(at, 1);
        }
        // Past half of the 44-bit unit field, by charges at the fast path's maximum.
        for _ in 0..(1u64 << 11) + 1 {
            m.record(at, FAST_UNITS);
        }
        // Larger than the fast path takes.
        m.record(at, FAST_UNITS + 1);
        m.record(at, 1 << 50);
        let units = decisions + ((1 << 11) + 1) * FAST_UNITS + FAST_UNITS + 1 + (1 << 50);
        let u = m.usage("2025-03".parse().unwrap());
        assert_eq!(u.total, units);
        assert_eq!(u.hours.len(), 1);
        assert_eq!(u.hours[0].units, units);
        let all = decisions + (1 << 11) + 1 + 2;
        assert_eq!(m.lifetime(), (all, 0));
        assert_eq!(m.stats(at).allowed, all);
    }

    #[test]
    fn concurrent_records_are_all_counted_in_their_hour() {
        let m = Standalone::default();
        let ten = ts("2025-03-02T10:00:00Z");
        let eleven = ts("2025-03-02T11:00:00Z");
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for i in 0..100_000u64 {
                        m.record(ten + i, 3);
                    }
                });
            }
        });
        m.record(eleven, 5);
        let u = m.usage("2025-03".parse().unwrap());
        let hours: Vec<_> = u.hours.iter().map(|h| h.units).collect();
        assert_eq!(hours, [1_200_000, 5]);
        assert_eq!(m.lifetime(), (400_001, 0));
    }
}
