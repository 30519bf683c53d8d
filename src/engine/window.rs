//! Window counters: fixed windows aligned on the epoch, and sliding windows of 10 buckets.
//!
//! Both use 128-bit words (`portable_atomic::AtomicU128`, `cmpxchg16b` on x86-64) holding a
//! full 64-bit window or bucket index next to its count, so a stale count can never be
//! mistaken for a current one however long a tenant stays idle.

use std::sync::atomic::Ordering;

use portable_atomic::AtomicU128;

use super::cell::Charge;

fn pack(tag: u64, count: u64) -> u128 {
    (u128::from(tag) << 64) | u128::from(count)
}

fn unpack(word: u128) -> (u64, u64) {
    ((word >> 64) as u64, word as u64)
}

/// At most `limit` per window of `per` nanoseconds; window `k` is `[k * per, (k + 1) * per)`
/// since the epoch, so hourly and daily windows turn over on UTC hour and day boundaries.
#[derive(Debug, Default)]
pub(crate) struct FixedWindow {
    /// (window index, count in that window).
    word: AtomicU128,
}

impl FixedWindow {
    pub fn try_charge(&self, per: u64, limit: u64, now: u64, n: u64) -> Charge {
        let mut word = self.word.load(Ordering::Acquire);
        loop {
            let (seen, count) = unpack(word);
            // A clock that stepped back keeps counting into the later window.
            let window = (now / per).max(seen);
            let used = if seen == window { count } else { 0 };
            let Some(total) = used.checked_add(n).filter(|t| *t <= limit) else {
                let end = (window + 1).saturating_mul(per);
                return Charge::Denied {
                    current: used,
                    retry_after: (n <= limit).then(|| end.saturating_sub(now)),
                };
            };
            match self.word.compare_exchange_weak(
                word,
                pack(window, total),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    return Charge::Allowed {
                        remaining: limit - total,
                        receipt: window,
                    };
                }
                Err(actual) => word = actual,
            }
        }
    }

    pub fn refund(&self, window: u64, n: u64) {
        let _ = self
            .word
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
                let (seen, count) = unpack(word);
                (seen == window).then(|| pack(seen, count.saturating_sub(n)))
            });
    }

    /// Counted in the window holding `now`.
    pub fn used(&self, per: u64, now: u64) -> u64 {
        let (seen, count) = unpack(self.word.load(Ordering::Acquire));
        if seen >= now / per { count } else { 0 }
    }

    /// Nanoseconds until the window holding `now` ends, if anything is counted in it.
    pub fn clear_after(&self, per: u64, now: u64) -> u64 {
        let (seen, count) = unpack(self.word.load(Ordering::Acquire));
        if count == 0 || seen < now / per {
            return 0;
        }
        (seen + 1).saturating_mul(per).saturating_sub(now)
    }
}

const BUCKETS: u64 = 10;
const SEALED: u64 = 1 << 63;

/// At most `limit` in the trailing window of 10 buckets of `width` nanoseconds (the current
/// bucket and the nine before it).
///
/// Lock-free and exact: `head` is the newest bucket index, and only the head bucket's slot
/// takes charges. Before `head` moves on, the mover seals the old head slot (a flag in its
/// tag), so the nine older slots a charger sums are frozen, and the charger's
/// compare-exchange on the head slot fails if the head moved while it was adding up. A
/// mover initialises the slot of the new head before publishing it, and every thread that
/// finds the head slot sealed or claimed by a later index helps move the head, so no thread
/// waits on another.
#[derive(Debug, Default)]
pub(crate) struct SlidingWindow {
    head: portable_atomic::AtomicU64,
    /// Slot `i % 10` holds (index `i`, sealed flag) and the count charged in bucket `i`.
    slots: [AtomicU128; BUCKETS as usize],
}

impl SlidingWindow {
    fn slot(&self, index: u64) -> &AtomicU128 {
        &self.slots[(index % BUCKETS) as usize]
    }

    /// Count of bucket `index` if its slot still holds it.
    fn count_of(&self, index: u64) -> u64 {
        let (tag, count) = unpack(self.slot(index).load(Ordering::Acquire));
        if tag & !SEALED == index { count } else { 0 }
    }

    fn older_sum(&self, head: u64) -> u64 {
        (head.saturating_sub(BUCKETS - 1)..head)
            .map(|i| self.count_of(i))
            .fold(0u64, u64::saturating_add)
    }

    /// Moves the head from `from` to `to` (`to > from`); harmless if another thread did.
    fn advance(&self, from: u64, to: u64) {
        let old = self.slot(from);
        let mut word = old.load(Ordering::Acquire);
        loop {
            let (tag, count) = unpack(word);
            if tag != from {
                break;
            }
            match old.compare_exchange_weak(
                word,
                pack(from | SEALED, count),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(actual) => word = actual,
            }
        }
        for i in (from + 1).max(to.saturating_sub(BUCKETS - 1))..=to {
            let slot = self.slot(i);
            let word = slot.load(Ordering::Acquire);
            if unpack(word).0 & !SEALED >= i {
                continue;
            }
            let tag = if i == to { to } else { i | SEALED };
            let _ = slot.compare_exchange(word, pack(tag, 0), Ordering::AcqRel, Ordering::Acquire);
        }
        let _ = self
            .head
            .compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire);
    }

    pub fn try_charge(&self, width: u64, limit: u64, now: u64, n: u64) -> Charge {
        let bucket = now / width;
        loop {
            let head = self.head.load(Ordering::Acquire);
            if bucket > head {
                self.advance(head, bucket);
                continue;
            }
            let slot = self.slot(head);
            let word = slot.load(Ordering::Acquire);
            let (tag, count) = unpack(word);
            if tag != head {
                // Sealed: someone is moving the head past `head`; claimed by a later index:
                // someone is moving it there. Either way, help.
                let target = if tag & !SEALED > head {
                    tag & !SEALED
                } else {
                    head + 1
                };
                self.advance(head, target);
                continue;
            }
            let used = self.older_sum(head).saturating_add(count);
            let Some(total) = used.checked_add(n).filter(|t| *t <= limit) else {
                return Charge::Denied {
                    current: used,
                    retry_after: (n <= limit)
                        .then(|| self.retry_after(head, width, now, used + n - limit)),
                };
            };
            if slot
                .compare_exchange(
                    word,
                    pack(head, count + n),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
            {
                return Charge::Allowed {
                    remaining: limit - total,
                    receipt: head,
                };
            }
        }
    }

    /// How long until the oldest buckets holding at least `need` leave the window.
    fn retry_after(&self, head: u64, width: u64, now: u64, need: u64) -> u64 {
        let mut freed = 0u64;
        for i in head.saturating_sub(BUCKETS - 1)..=head {
            freed = freed.saturating_add(self.count_of(i));
            if freed >= need {
                return (i + BUCKETS).saturating_mul(width).saturating_sub(now);
            }
        }
        (head + BUCKETS).saturating_mul(width).saturating_sub(now)
    }

    pub fn refund(&self, bucket: u64, n: u64) {
        let _ = self
            .slot(bucket)
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
                let (tag, count) = unpack(word);
                (tag & !SEALED == bucket).then(|| pack(tag, count.saturating_sub(n)))
            });
    }

    /// Nanoseconds until the newest bucket with a count leaves the window; 0 if none has one.
    pub fn clear_after(&self, width: u64, now: u64) -> u64 {
        let head = (now / width).max(self.head.load(Ordering::Acquire));
        (head.saturating_sub(BUCKETS - 1)..=head)
            .rev()
            .find(|i| self.count_of(*i) > 0)
            .map_or(0, |i| {
                (i + BUCKETS).saturating_mul(width).saturating_sub(now)
            })
    }

    /// Counted in the window ending at `now`.
    pub fn used(&self, width: u64, now: u64) -> u64 {
        let head = (now / width).max(self.head.load(Ordering::Acquire));
        (head.saturating_sub(BUCKETS - 1)..=head)
            .map(|i| self.count_of(i))
            .fold(0u64, u64::saturating_add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const HOUR: u64 = 3_600_000 * MS;
    const DAY: u64 = 24 * HOUR;

    fn remaining(c: Charge) -> u64 {
        match c {
            Charge::Allowed { remaining, .. } => remaining,
            d => panic!("expected allowed, got {d:?}"),
        }
    }

    fn ts(s: &str) -> u64 {
        let t: jiff::Timestamp = s.parse().unwrap();
        t.as_nanosecond() as u64
    }

    #[test]
    fn fixed_window_resets_on_the_utc_hour() {
        let w = FixedWindow::default();
        let t = ts("2025-03-01T10:59:59.500Z");
        assert_eq!(remaining(w.try_charge(HOUR, 3, t, 2)), 1);
        assert_eq!(
            w.try_charge(HOUR, 3, t, 2),
            Charge::Denied {
                current: 2,
                retry_after: Some(500 * MS)
            }
        );
        assert_eq!(remaining(w.try_charge(HOUR, 3, t + 499 * MS, 1)), 0);
        // 11:00:00.000 is a new window.
        assert_eq!(remaining(w.try_charge(HOUR, 3, t + 500 * MS, 3)), 0);
        assert_eq!(w.used(HOUR, t + 500 * MS), 3);
    }

    #[test]
    fn fixed_window_resets_on_the_utc_day() {
        let w = FixedWindow::default();
        let t = ts("2025-03-01T23:00:00Z");
        assert_eq!(remaining(w.try_charge(DAY, 100, t, 100)), 0);
        assert_eq!(
            w.try_charge(DAY, 100, t, 1),
            Charge::Denied {
                current: 100,
                retry_after: Some(HOUR)
            }
        );
        let midnight = ts("2025-03-02T00:00:00Z");
        assert_eq!(remaining(w.try_charge(DAY, 100, midnight, 1)), 99);
        // A refund for yesterday's window touches nothing today.
        w.refund(t / DAY, 50);
        assert_eq!(w.used(DAY, midnight), 1);
    }

    #[test]
    fn sliding_window_expires_bucket_by_bucket() {
        // 10 per second: buckets of 100 ms.
        let w = SlidingWindow::default();
        let width = 100 * MS;
        let t0 = 1_000_000 * 1_000 * MS; // on a bucket edge
        assert_eq!(remaining(w.try_charge(width, 10, t0, 4)), 6);
        assert_eq!(remaining(w.try_charge(width, 10, t0 + 350 * MS, 6)), 0);
        // Full; the 4 from bucket t0 leave at t0 + 1 s.
        assert_eq!(
            w.try_charge(width, 10, t0 + 999 * MS, 1),
            Charge::Denied {
                current: 10,
                retry_after: Some(MS)
            }
        );
        // Asking for 5 needs the bucket at +300 ms to leave as well: at +1.3 s.
        assert_eq!(
            w.try_charge(width, 10, t0 + 999 * MS, 5),
            Charge::Denied {
                current: 10,
                retry_after: Some(301 * MS)
            }
        );
        assert_eq!(remaining(w.try_charge(width, 10, t0 + 1_000 * MS, 4)), 0);
        assert_eq!(w.used(width, t0 + 1_299 * MS), 10);
        assert_eq!(w.used(width, t0 + 1_300 * MS), 4);
        // After an idle spell far longer than the window nothing stale is counted.
        assert_eq!(
            remaining(w.try_charge(width, 10, t0 + 3_600_000 * MS, 10)),
            0
        );
        // Refunds give back to the bucket charged.
        w.refund(w.head.load(Ordering::Relaxed), 3);
        assert_eq!(w.used(width, t0 + 3_600_000 * MS), 7);
    }

    #[test]
    fn sliding_window_never_counts_a_bucket_ten_back() {
        let w = SlidingWindow::default();
        let width = 100 * MS;
        let t0 = 500_000 * width;
        for k in 0..30 {
            assert_eq!(
                remaining(w.try_charge(width, 10, t0 + k * width, 1)),
                10 - 1 - k.min(9)
            );
        }
        assert_eq!(w.used(width, t0 + 29 * width), 10);
    }
}
