//! Concurrency slots with leases.
//!
//! `in_use` is the admission counter (a compare-exchange below the limit, so 8 threads can
//! never hold more than `limit`); each held slot is a 128-bit entry of (generation, lease
//! expiry), 0 meaning free. A slot id is `generation << 20 | index`, kept below 2^53 so it
//! survives JSON. A lease that expires is reclaimed lazily by the next acquirer that finds
//! the table full, so a holder that died gives its slot back after at most one lease.

use std::sync::atomic::{AtomicU64, Ordering};

use portable_atomic::AtomicU128;

const INDEX_BITS: u32 = 20;
const GENERATION_MASK: u64 = (1 << 33) - 1;

fn pack(generation: u64, expiry: u64) -> u128 {
    (u128::from(generation) << 64) | u128::from(expiry)
}

fn unpack(word: u128) -> (u64, u64) {
    ((word >> 64) as u64, word as u64)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Acquire {
    Held {
        id: u64,
        expires: u64,
        in_use: u64,
    },
    Full {
        in_use: u64,
        retry_after: Option<u64>,
    },
}

#[derive(Debug)]
pub(crate) struct SlotTable {
    in_use: AtomicU64,
    entries: Box<[AtomicU128]>,
}

impl SlotTable {
    pub fn new(capacity: u64) -> Self {
        Self {
            in_use: AtomicU64::new(0),
            entries: (0..capacity).map(|_| AtomicU128::new(0)).collect(),
        }
    }

    pub fn capacity(&self) -> u64 {
        self.entries.len() as u64
    }

    /// A bigger table carrying over every lease (ids stay valid). Releases that race with
    /// the copy land in the old table; their slots come back when the lease runs out.
    pub fn grown(&self, capacity: u64) -> Self {
        let entries: Box<[AtomicU128]> = (0..capacity as usize)
            .map(|i| {
                let word = self.entries.get(i).map_or(0, |e| e.load(Ordering::Acquire));
                AtomicU128::new(word)
            })
            .collect();
        let held = entries
            .iter()
            .filter(|e| unpack(e.load(Ordering::Relaxed)).1 != 0)
            .count() as u64;
        Self {
            in_use: AtomicU64::new(held),
            entries,
        }
    }

    pub fn in_use(&self) -> u64 {
        self.in_use.load(Ordering::Acquire)
    }

    pub fn acquire(&self, limit: u64, lease: u64, now: u64) -> Acquire {
        let mut used = self.in_use.load(Ordering::Acquire);
        loop {
            if used >= limit {
                if self.reclaim(now) > 0 {
                    used = self.in_use.load(Ordering::Acquire);
                    continue;
                }
                let earliest = self
                    .entries
                    .iter()
                    .map(|e| unpack(e.load(Ordering::Acquire)).1)
                    .filter(|exp| *exp != 0)
                    .min();
                return Acquire::Full {
                    in_use: used,
                    retry_after: earliest
                        .filter(|_| limit > 0)
                        .map(|e| e.saturating_sub(now)),
                };
            }
            match self.in_use.compare_exchange_weak(
                used,
                used + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(actual) => used = actual,
            }
        }
        // Admitted: fewer than `limit <= capacity` entries are taken, and a releaser frees
        // its entry before giving back its count, so a free entry exists.
        let expires = now.saturating_add(lease).max(1);
        let start = (now as usize) % self.entries.len();
        loop {
            for k in 0..self.entries.len() {
                let index = (start + k) % self.entries.len();
                let entry = &self.entries[index];
                let word = entry.load(Ordering::Acquire);
                let (generation, expiry) = unpack(word);
                if expiry != 0 {
                    continue;
                }
                let generation = (generation + 1) & GENERATION_MASK;
                if entry
                    .compare_exchange(
                        word,
                        pack(generation, expires),
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    )
                    .is_ok()
                {
                    return Acquire::Held {
                        id: (generation << INDEX_BITS) | index as u64,
                        expires,
                        in_use: used + 1,
                    };
                }
            }
        }
    }

    fn entry_of(&self, id: u64) -> Option<(&AtomicU128, u64)> {
        let index = (id & ((1 << INDEX_BITS) - 1)) as usize;
        Some((self.entries.get(index)?, id >> INDEX_BITS))
    }

    /// Frees the slot; false if `id` is not held (never was, released, or reclaimed).
    pub fn release(&self, id: u64) -> bool {
        let Some((entry, generation)) = self.entry_of(id) else {
            return false;
        };
        let freed = entry
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
                let (g, expiry) = unpack(word);
                (g == generation && expiry != 0).then(|| pack(g, 0))
            })
            .is_ok();
        if freed {
            self.in_use.fetch_sub(1, Ordering::AcqRel);
        }
        freed
    }

    /// Extends a live lease to `now + lease`; `None` if the lease is gone (expired leases
    /// are not revived, even before they are reclaimed).
    pub fn renew(&self, id: u64, lease: u64, now: u64) -> Option<u64> {
        let (entry, generation) = self.entry_of(id)?;
        let expires = now.saturating_add(lease).max(1);
        entry
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
                let (g, expiry) = unpack(word);
                (g == generation && expiry > now).then(|| pack(g, expires))
            })
            .ok()
            .map(|_| expires)
    }

    /// Frees every lease that ran out; returns how many.
    pub fn reclaim(&self, now: u64) -> u64 {
        let mut freed = 0;
        for entry in &*self.entries {
            let done = entry.fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
                let (g, expiry) = unpack(word);
                (expiry != 0 && expiry <= now).then(|| pack(g, 0))
            });
            if done.is_ok() {
                self.in_use.fetch_sub(1, Ordering::AcqRel);
                freed += 1;
            }
        }
        freed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn held(a: Acquire) -> (u64, u64) {
        match a {
            Acquire::Held { id, expires, .. } => (id, expires),
            f => panic!("expected a slot, got {f:?}"),
        }
    }

    #[test]
    fn leases_expire_and_renew() {
        let t = SlotTable::new(2);
        let t0 = 100 * S;
        let (a, a_exp) = held(t.acquire(2, 30 * S, t0));
        assert_eq!(a_exp, t0 + 30 * S);
        let (b, _) = held(t.acquire(2, 30 * S, t0 + 10 * S));
        assert_ne!(a, b);
        // Full: the first lease runs out at t0 + 30 s.
        assert_eq!(
            t.acquire(2, 30 * S, t0 + 20 * S),
            Acquire::Full {
                in_use: 2,
                retry_after: Some(10 * S)
            }
        );
        // Renewing `a` at t0 + 25 s pushes its expiry to t0 + 55 s; `b` runs out at t0 + 40 s.
        assert_eq!(t.renew(a, 30 * S, t0 + 25 * S), Some(t0 + 55 * S));
        assert!(
            matches!(t.acquire(2, 30 * S, t0 + 39 * S), Acquire::Full { retry_after: Some(s), .. } if s == S)
        );
        let (c, _) = held(t.acquire(2, 30 * S, t0 + 40 * S));
        // `b` was reclaimed: releasing or renewing it is refused, and does not free `c`.
        assert!(!t.release(b));
        assert_eq!(t.renew(b, 30 * S, t0 + 40 * S), None);
        assert_eq!(t.in_use(), 2);
        assert!(t.release(a));
        assert!(!t.release(a));
        assert_eq!(t.in_use(), 1);
        assert!(t.release(c));
        assert_eq!(t.in_use(), 0);
        // An expired lease is not revived by a late renew.
        let (d, _) = held(t.acquire(2, 30 * S, t0 + 100 * S));
        assert_eq!(t.renew(d, 30 * S, t0 + 130 * S), None);
    }

    #[test]
    fn growing_keeps_leases() {
        let t = SlotTable::new(1);
        let (a, _) = held(t.acquire(1, 10 * S, S));
        let g = t.grown(3);
        assert_eq!(g.in_use(), 1);
        held(g.acquire(3, 10 * S, S));
        held(g.acquire(3, 10 * S, S));
        assert!(matches!(
            g.acquire(3, 10 * S, S),
            Acquire::Full { in_use: 3, .. }
        ));
        assert!(g.release(a));
    }
}
