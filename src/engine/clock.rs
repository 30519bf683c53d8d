//! The engine's single source of time.
//!
//! Every decision reads the clock once, as nanoseconds since the Unix epoch (UTC). One source
//! rather than a monotonic plus a wall clock keeps the hot path to one read, and fixed windows
//! and the hourly meter must align on UTC anyway. A backward step of the system clock makes
//! the cells stricter (they keep the later time they saw), never laxer; a forward step refills
//! early, as any wall-clock limiter would.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Where the engine reads the time; injectable so tests pin every edge exactly.
pub trait Clock: Send + Sync + 'static {
    /// Nanoseconds since the Unix epoch, UTC.
    fn now_nanos(&self) -> u64;

    /// The same instant as a timestamp, for answers and usage periods.
    fn wall(&self) -> jiff::Timestamp {
        timestamp(self.now_nanos())
    }
}

/// Converts engine nanoseconds into a timestamp (saturating at the far future).
pub fn timestamp(nanos: u64) -> jiff::Timestamp {
    jiff::Timestamp::from_nanosecond(i128::from(nanos)).unwrap_or(jiff::Timestamp::MAX)
}

/// The production clock: the wall clock, read cheaply.
///
/// `SystemTime::now()` costs a vDSO `clock_gettime` per decision (25-40 ns on a VM). This
/// reads the CPU's time-stamp counter through `quanta` instead and adds an offset to the wall
/// clock, taken again once a second so the engine follows NTP: each resync may move time by
/// the counter's drift over that second (microseconds), which the cells absorb.
#[derive(Debug)]
pub struct SystemClock {
    counter: quanta::Clock,
    start: u64,
    /// Wall-clock nanoseconds at counter nanosecond 0.
    offset: AtomicU64,
    /// Counter nanoseconds after which the offset is taken again.
    next_sync: AtomicU64,
}

const SYNC_EVERY: u64 = 1_000_000_000;

impl Default for SystemClock {
    fn default() -> Self {
        let counter = quanta::Clock::new();
        let start = counter.raw();
        let clock = Self {
            counter,
            start,
            offset: AtomicU64::new(0),
            next_sync: AtomicU64::new(0),
        };
        clock.sync(0);
        clock
    }
}

impl SystemClock {
    pub fn new() -> Self {
        Self::default()
    }

    #[inline]
    fn counter_nanos(&self) -> u64 {
        self.counter.delta_as_nanos(self.start, self.counter.raw())
    }

    #[cold]
    fn sync(&self, at: u64) {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let mono = self.counter_nanos();
        self.offset
            .store(wall.wrapping_sub(mono), Ordering::Relaxed);
        self.next_sync
            .store(at.max(mono) + SYNC_EVERY, Ordering::Relaxed);
    }
}

impl Clock for SystemClock {
    #[inline]
    fn now_nanos(&self) -> u64 {
        let mono = self.counter_nanos();
        let due = self.next_sync.load(Ordering::Relaxed);
        if mono >= due
            && self
                .next_sync
                .compare_exchange(due, u64::MAX, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            self.sync(mono);
        }
        mono.wrapping_add(self.offset.load(Ordering::Relaxed))
    }
}

/// The engine's clock: the production clock called directly, so a decision reads it inline,
/// or any other (tests inject a [`ManualClock`]) behind a `dyn`.
pub(crate) enum EngineClock {
    System(SystemClock),
    Injected(std::sync::Arc<dyn Clock>),
}

impl EngineClock {
    #[inline]
    pub fn now_nanos(&self) -> u64 {
        match self {
            Self::System(c) => c.now_nanos(),
            Self::Injected(c) => c.now_nanos(),
        }
    }

    pub fn as_dyn(&self) -> &dyn Clock {
        match self {
            Self::System(c) => c,
            Self::Injected(c) => &**c,
        }
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug, Default)]
pub struct ManualClock {
    nanos: AtomicU64,
}

impl ManualClock {
    /// Starts at the given instant.
    pub fn at(ts: jiff::Timestamp) -> Self {
        let nanos = u64::try_from(ts.as_nanosecond()).expect("timestamp before the Unix epoch");
        Self {
            nanos: AtomicU64::new(nanos),
        }
    }

    /// Starts at an RFC 3339 instant such as `2025-03-01T00:00:00Z`.
    pub fn at_rfc3339(s: &str) -> Self {
        Self::at(s.parse().expect("RFC 3339 timestamp"))
    }

    pub fn advance(&self, by: std::time::Duration) {
        let by = u64::try_from(by.as_nanos()).expect("duration fits in u64 nanoseconds");
        self.nanos.fetch_add(by, Ordering::SeqCst);
    }

    pub fn set(&self, ts: jiff::Timestamp) {
        let nanos = u64::try_from(ts.as_nanosecond()).expect("timestamp before the Unix epoch");
        self.nanos.store(nanos, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_nanos(&self) -> u64 {
        self.nanos.load(Ordering::SeqCst)
    }
}

pub(crate) const NANOS_PER_MS: u64 = 1_000_000;
pub(crate) const NANOS_PER_HOUR: u64 = 3_600 * 1_000_000_000;

/// Nanoseconds rounded up to whole milliseconds, for `retryAfterMs`.
pub(crate) fn ceil_ms(nanos: u64) -> u64 {
    nanos.div_ceil(NANOS_PER_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_follows_the_wall_clock() {
        let c = SystemClock::new();
        for _ in 0..3 {
            let wall = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64;
            let ours = c.now_nanos();
            assert!(ours.abs_diff(wall) < 50_000_000, "{ours} vs {wall}");
        }
    }
}
