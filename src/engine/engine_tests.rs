//! The engine end to end with an injected clock: every number below is exact.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::*;

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

fn rate(name: &str, limit: u64, per: Duration, algorithm: Algorithm) -> RateSpec {
    RateSpec {
        name: name.into(),
        limit,
        per,
        burst: None,
        algorithm,
    }
}

fn engine_at(at: &str) -> (Arc<ManualClock>, Engine) {
    let clock = Arc::new(ManualClock::at_rfc3339(at));
    let engine = Engine::with_clock(clock.clone(), ["requests", "llm-tokens", "egress-bytes"]);
    (clock, engine)
}

fn limits(rates: Vec<RateSpec>) -> TenantLimits {
    TenantLimits {
        rates,
        ..Default::default()
    }
}

fn allowed(limit: u64, remaining: u64) -> Decision {
    Decision {
        allowed: true,
        limit: Some(limit),
        remaining: Some(remaining),
        retry_after_ms: Some(0),
        reason: None,
        current: None,
    }
}

/// What a dimension without a limit answers.
fn unlimited() -> Decision {
    Decision {
        allowed: true,
        limit: None,
        remaining: None,
        retry_after_ms: Some(0),
        reason: None,
        current: None,
    }
}

fn rate_limited(limit: u64, current: u64, retry_after_ms: Option<u64>) -> Decision {
    Decision {
        allowed: false,
        limit: Some(limit),
        remaining: Some(limit.saturating_sub(current)),
        retry_after_ms,
        reason: Some(Reason::RateLimited),
        current: Some(current),
    }
}

#[test]
fn token_bucket_burst_and_refill() {
    let (clock, e) = engine_at("2025-03-01T10:00:00Z");
    let mut r = rate("requests", 10, SEC, Algorithm::TokenBucket);
    r.burst = Some(20);
    e.set_tenant("acme", limits(vec![r])).unwrap();
    assert_eq!(e.check("acme", "requests", 15).unwrap(), allowed(20, 5));
    assert_eq!(e.check("acme", "requests", 5).unwrap(), allowed(20, 0));
    // One token every 100 ms; asking for 3 waits 300 ms.
    assert_eq!(
        e.check("acme", "requests", 3).unwrap(),
        rate_limited(20, 20, Some(300))
    );
    clock.advance(250 * MS);
    // 2.5 tokens back: 2 whole ones free, 18 taken (rounded up).
    assert_eq!(
        e.check("acme", "requests", 3).unwrap(),
        rate_limited(20, 18, Some(50))
    );
    assert_eq!(e.check("acme", "requests", 2).unwrap(), allowed(20, 0));
    clock.advance(10 * SEC);
    assert_eq!(e.check("acme", "requests", 20).unwrap(), allowed(20, 0));
    // More than the burst never fits.
    clock.advance(10 * SEC);
    assert_eq!(
        e.check("acme", "requests", 21).unwrap(),
        rate_limited(20, 0, None)
    );
}

#[test]
fn sliding_window_edges() {
    let (clock, e) = engine_at("2025-03-01T10:00:00Z");
    e.set_tenant(
        "acme",
        limits(vec![rate(
            "llm-tokens",
            1000,
            10 * SEC,
            Algorithm::SlidingWindow,
        )]),
    )
    .unwrap();
    assert_eq!(
        e.check("acme", "llm-tokens", 600).unwrap(),
        allowed(1000, 400)
    );
    clock.advance(5 * SEC);
    assert_eq!(
        e.check("acme", "llm-tokens", 400).unwrap(),
        allowed(1000, 0)
    );
    // The first 600 leave the window 10 s after their 1 s bucket began.
    clock.advance(4 * SEC + 999 * MS);
    assert_eq!(
        e.check("acme", "llm-tokens", 1).unwrap(),
        rate_limited(1000, 1000, Some(1))
    );
    clock.advance(MS);
    assert_eq!(
        e.check("acme", "llm-tokens", 600).unwrap(),
        allowed(1000, 0)
    );
    // 400 more need the 400 of t+5 s to leave: at t+15 s, now t+10 s.
    assert_eq!(
        e.check("acme", "llm-tokens", 400).unwrap(),
        rate_limited(1000, 1000, Some(5000))
    );
}

#[test]
fn fixed_windows_roll_over_on_utc_hour_and_day() {
    let (clock, e) = engine_at("2025-03-01T23:59:00Z");
    e.set_tenant(
        "acme",
        limits(vec![
            rate("requests", 100, HOUR, Algorithm::FixedWindow),
            rate("requests", 150, DAY, Algorithm::FixedWindow),
        ]),
    )
    .unwrap();
    assert_eq!(e.check("acme", "requests", 100).unwrap(), allowed(100, 0));
    // The hour is used up: 60 s to 00:00.
    assert_eq!(
        e.check("acme", "requests", 1).unwrap(),
        rate_limited(100, 100, Some(60_000))
    );
    clock.advance(60 * SEC);
    // New hour and new day: both reset; the tighter remaining is reported.
    assert_eq!(e.check("acme", "requests", 90).unwrap(), allowed(100, 10));
    clock.advance(HOUR);
    // New hour, same day: 60 left today. A refusal by the day window gives the hour's
    // tentative charge back.
    assert_eq!(
        e.check("acme", "requests", 61).unwrap(),
        rate_limited(150, 90, Some(23 * 3_600_000))
    );
    assert_eq!(e.check("acme", "requests", 60).unwrap(), allowed(150, 0));
    let stats = e.stats("acme").unwrap();
    let used: Vec<u64> = stats.dimensions["requests"]
        .rates
        .iter()
        .map(|r| r.used)
        .collect();
    assert_eq!(used, [60, 150]);
}

#[test]
fn plan_change_mid_window_keeps_what_was_used() {
    let (clock, e) = engine_at("2025-03-01T10:00:00Z");
    let plan = |limit| {
        limits(vec![
            rate("requests", limit, HOUR, Algorithm::FixedWindow),
            rate("llm-tokens", limit, 10 * SEC, Algorithm::SlidingWindow),
            rate("egress-bytes", limit, SEC, Algorithm::TokenBucket),
        ])
    };
    e.set_tenant("acme", plan(100)).unwrap();
    for d in ["requests", "llm-tokens", "egress-bytes"] {
        assert_eq!(e.check("acme", d, 80).unwrap(), allowed(100, 20), "{d}");
    }
    clock.advance(MS);
    // Downgrade to 50: 80 are used, so nothing fits.
    e.set_tenant("acme", plan(50)).unwrap();
    assert!(!e.check("acme", "requests", 1).unwrap().allowed);
    assert!(!e.check("acme", "llm-tokens", 1).unwrap().allowed);
    assert!(!e.check("acme", "egress-bytes", 1).unwrap().allowed);
    // Upgrade to 200: 120 more fit in each.
    e.set_tenant("acme", plan(200)).unwrap();
    for d in ["requests", "llm-tokens"] {
        assert_eq!(e.check("acme", d, 120).unwrap(), allowed(200, 0), "{d}");
        assert_eq!(e.check("acme", d, 1).unwrap().current, Some(200), "{d}");
    }
    // The bucket refilled 1 ms worth at 100/s (0.1 token) before the change: 79.9 taken
    // rounds up to 80, leaving 120 whole tokens.
    assert_eq!(
        e.check("acme", "egress-bytes", 120).unwrap(),
        allowed(200, 0)
    );
    // Usage is untouched by plan changes.
    let u = e.usage("acme", "2025-03".parse().unwrap()).unwrap();
    assert_eq!(u.dimensions["requests"].total, 200);
}

#[test]
fn unlimited_known_dimension_is_metered() {
    let (clock, e) = engine_at("2025-03-31T23:30:00Z");
    e.set_tenant("acme", TenantLimits::default()).unwrap();
    assert_eq!(
        e.check("acme", "egress-bytes", 1 << 40).unwrap(),
        unlimited()
    );
    clock.advance(40 * 60 * SEC);
    e.check("acme", "egress-bytes", 5).unwrap();
    e.check("acme", "egress-bytes", 7).unwrap();
    let march = e.usage("acme", "2025-03".parse().unwrap()).unwrap();
    assert_eq!(march.dimensions["egress-bytes"].total, 1 << 40);
    assert_eq!(march.dimensions["requests"].total, 0);
    let april = e.usage("acme", "2025-04".parse().unwrap()).unwrap();
    let d = &april.dimensions["egress-bytes"];
    assert_eq!(d.total, 12);
    assert_eq!(
        d.hours,
        [HourUsage {
            hour: "2025-04-01T00:00:00Z".parse().unwrap(),
            units: 12
        }]
    );
    let stats = e.stats("acme").unwrap();
    let s = &stats.dimensions["egress-bytes"];
    assert_eq!(
        (s.kind, s.allowed, s.denied, s.units),
        (DimensionKind::Unlimited, 2, 0, 12)
    );
}

#[test]
fn unknown_tenant_dimension_and_bad_amounts() {
    let (_, e) = engine_at("2025-03-01T10:00:00Z");
    e.set_tenant(
        "acme",
        limits(vec![rate("gpu-seconds", 5, SEC, Algorithm::TokenBucket)]),
    )
    .unwrap();
    assert_eq!(
        e.check("nope", "requests", 1),
        Err(EngineError::UnknownTenant("nope".into()))
    );
    assert_eq!(
        e.check("acme", "cpu", 1),
        Err(EngineError::UnknownDimension {
            dimension: "cpu".into(),
            known: vec![
                "egress-bytes".into(),
                "gpu-seconds".into(),
                "llm-tokens".into(),
                "requests".into()
            ],
        })
    );
    assert_eq!(
        e.check("acme", "requests", 0),
        Err(EngineError::BadAmount("0".into()))
    );
    assert!(matches!(
        e.check("acme", "requests", MAX_AMOUNT + 1),
        Err(EngineError::BadAmount(_))
    ));
    assert!(e.check("acme", "requests", MAX_AMOUNT).unwrap().allowed);
}

#[test]
fn suspended_tenant_is_denied_everything_and_charged_nothing() {
    let (_, e) = engine_at("2025-03-01T10:00:00Z");
    let mut l = TenantLimits {
        rates: vec![rate("requests", 10, SEC, Algorithm::FixedWindow)],
        concurrency: vec![SlotSpec {
            name: "jobs".into(),
            limit: 1,
            lease: SEC,
        }],
        gauges: vec![GaugeSpec {
            name: "storage".into(),
            limit: None,
        }],
        suspended: true,
        hibernated: false,
        ..Default::default()
    };
    e.set_tenant("acme", l.clone()).unwrap();
    let d = e.check("acme", "requests", 1).unwrap();
    assert_eq!(
        (d.allowed, d.reason),
        (false, Some(Reason::TenantSuspended))
    );
    assert_eq!(
        e.check("acme", "llm-tokens", 1).unwrap().reason,
        Some(Reason::TenantSuspended)
    );
    let b = e
        .check_batch("acme", &[("requests", 1), ("llm-tokens", 1)])
        .unwrap();
    assert!(
        !b.allowed
            && b.results
                .iter()
                .all(|r| r.reason == Some(Reason::TenantSuspended))
    );
    assert_eq!(
        e.acquire("acme", "jobs").unwrap().decision.reason,
        Some(Reason::TenantSuspended)
    );
    assert_eq!(
        e.set_gauge("acme", "storage", 5).unwrap().reason,
        Some(Reason::TenantSuspended)
    );
    l.suspended = false;
    e.set_tenant("acme", l).unwrap();
    assert_eq!(e.check("acme", "requests", 10).unwrap(), allowed(10, 0));
    assert_eq!(
        e.stats("acme").unwrap().dimensions["storage"]
            .gauge
            .as_ref()
            .unwrap()
            .value,
        0
    );
    let s = e.stats("acme").unwrap();
    assert_eq!(
        (
            s.dimensions["requests"].allowed,
            s.dimensions["requests"].denied
        ),
        (1, 2)
    );
}

#[test]
fn batch_is_all_or_nothing() {
    let (_, e) = engine_at("2025-03-01T10:00:00Z");
    e.set_tenant(
        "acme",
        limits(vec![
            rate("requests", 10, SEC, Algorithm::TokenBucket),
            rate("llm-tokens", 1000, HOUR, Algorithm::FixedWindow),
        ]),
    )
    .unwrap();
    let b = e
        .check_batch(
            "acme",
            &[("requests", 1), ("llm-tokens", 900), ("egress-bytes", 5)],
        )
        .unwrap();
    assert!(b.allowed);
    assert_eq!(b.results[1], allowed(1000, 100));
    // The tokens do not fit: the request is given back too, the bytes not evaluated.
    let b = e
        .check_batch(
            "acme",
            &[("requests", 1), ("llm-tokens", 101), ("egress-bytes", 5)],
        )
        .unwrap();
    assert!(!b.allowed);
    assert_eq!(b.retry_after_ms, Some(3_600_000));
    assert_eq!(b.results[1], rate_limited(1000, 900, Some(3_600_000)));
    assert!(!b.results[0].allowed && b.results[0].reason.is_none());
    assert!(!b.results[2].allowed && b.results[2].reason.is_none());
    assert_eq!(e.check("acme", "requests", 9).unwrap(), allowed(10, 0));
    // Nothing metered for the refused batch.
    let u = e.usage("acme", "2025-03".parse().unwrap()).unwrap();
    assert_eq!(
        (
            u.dimensions["requests"].total,
            u.dimensions["llm-tokens"].total,
            u.dimensions["egress-bytes"].total
        ),
        (10, 900, 5)
    );
    // A bad item anywhere refuses the whole batch before anything is charged.
    assert!(matches!(
        e.check_batch("acme", &[("requests", 1), ("cpu", 1)]),
        Err(EngineError::UnknownDimension { .. })
    ));
}

#[test]
fn slots_expire_renew_and_release() {
    let (clock, e) = engine_at("2025-03-01T10:00:00Z");
    e.set_tenant(
        "acme",
        TenantLimits {
            concurrency: vec![SlotSpec {
                name: "jobs".into(),
                limit: 2,
                lease: 30 * SEC,
            }],
            ..Default::default()
        },
    )
    .unwrap();
    let a = e.acquire("acme", "jobs").unwrap();
    assert_eq!(a.decision, allowed(2, 1));
    assert_eq!(a.expires_at, Some("2025-03-01T10:00:30Z".parse().unwrap()));
    clock.advance(10 * SEC);
    let b = e.acquire("acme", "jobs").unwrap();
    assert_eq!(b.decision, allowed(2, 0));
    let full = e.acquire("acme", "jobs").unwrap();
    assert_eq!(
        full.decision,
        Decision {
            reason: Some(Reason::ConcurrencyLimit),
            ..rate_limited(2, 2, Some(20_000))
        }
    );
    assert_eq!(full.slot, None);
    clock.advance(15 * SEC);
    assert_eq!(
        e.renew("acme", "jobs", a.slot.unwrap()).unwrap(),
        "2025-03-01T10:00:55Z".parse::<jiff::Timestamp>().unwrap()
    );
    // `b` dies with its holder: at 10:00:40 its slot comes back.
    clock.advance(15 * SEC);
    let c = e.acquire("acme", "jobs").unwrap();
    assert!(c.decision.allowed);
    assert_eq!(
        e.release("acme", "jobs", b.slot.unwrap()),
        Err(EngineError::SlotNotHeld {
            dimension: "jobs".into(),
            slot: b.slot.unwrap()
        })
    );
    e.release("acme", "jobs", a.slot.unwrap()).unwrap();
    e.release("acme", "jobs", c.slot.unwrap()).unwrap();
    assert_eq!(
        e.stats("acme").unwrap().dimensions["jobs"].slots,
        Some(SlotStatus {
            limit: 2,
            in_use: 0
        })
    );
    assert!(matches!(
        e.check("acme", "jobs", 1),
        Err(EngineError::WrongKind { .. })
    ));
}

#[test]
fn gauges_refuse_values_above_the_limit() {
    let (_, e) = engine_at("2025-03-01T10:00:00Z");
    e.set_tenant(
        "acme",
        TenantLimits {
            gauges: vec![GaugeSpec {
                name: "storage-bytes".into(),
                limit: Some(1000),
            }],
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        e.set_gauge("acme", "storage-bytes", 900).unwrap(),
        allowed(1000, 100)
    );
    let d = e.set_gauge("acme", "storage-bytes", 1001).unwrap();
    assert_eq!(
        d,
        Decision {
            reason: Some(Reason::GaugeLimit),
            current: Some(900),
            remaining: Some(100),
            ..rate_limited(1000, 900, None)
        }
    );
    assert_eq!(
        e.set_gauge("acme", "storage-bytes", 1000).unwrap(),
        allowed(1000, 0)
    );
    assert_eq!(
        e.set_gauge("acme", "storage-bytes", 10).unwrap(),
        allowed(1000, 990)
    );
}

#[test]
fn ledger_seeds_add_to_usage_and_survive_plan_changes() {
    let (_, e) = engine_at("2025-03-10T10:00:00Z");
    e.set_tenant(
        "acme",
        limits(vec![rate("gpu-seconds", 10, SEC, Algorithm::TokenBucket)]),
    )
    .unwrap();
    let period: Period = "2025-03".parse().unwrap();
    let mut seed = Usage {
        tenant: "acme".into(),
        period,
        dimensions: Default::default(),
    };
    seed.dimensions.insert(
        "requests".into(),
        DimensionUsage {
            total: 1000,
            hours: vec![],
        },
    );
    seed.dimensions.insert(
        "old-dimension".into(),
        DimensionUsage {
            total: 7,
            hours: vec![],
        },
    );
    e.load_usage(&seed).unwrap();
    e.check("acme", "requests", 5).unwrap();
    e.check("acme", "gpu-seconds", 3).unwrap();
    // Dropping gpu-seconds from the plan keeps its usage (as retired) but refuses checks.
    e.set_tenant("acme", TenantLimits::default()).unwrap();
    assert!(matches!(
        e.check("acme", "gpu-seconds", 1),
        Err(EngineError::UnknownDimension { .. })
    ));
    assert!(matches!(
        e.check("acme", "old-dimension", 1),
        Err(EngineError::UnknownDimension { .. })
    ));
    let u = e.usage("acme", period).unwrap();
    let totals = pricing::totals(&u);
    assert_eq!(totals["requests"], 1005);
    assert_eq!(totals["gpu-seconds"], 3);
    assert_eq!(totals["old-dimension"], 7);
    let price = Pricing {
        currency: "EUR".into(),
        items: vec![
            "requests=0.002/1000".parse().unwrap(),
            "gpu-seconds=0.0125".parse().unwrap(),
        ],
    };
    assert_eq!(pricing::cost(&price, &totals).unwrap().total, "0.039510");
}

#[test]
fn metrics_are_read_at_scrape_time() {
    let (_, e) = engine_at("2025-03-10T10:00:00Z");
    let e = Arc::new(e);
    e.set_tenant(
        "acme",
        limits(vec![rate("requests", 1, SEC, Algorithm::TokenBucket)]),
    )
    .unwrap();
    e.check("acme", "requests", 1).unwrap();
    e.check("acme", "requests", 1).unwrap();
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(QuotaMetrics::new(&e)));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    for line in [
        "landlord_quota_decisions_total{tenant=\"acme\",dimension=\"requests\",result=\"allowed\"} 1",
        "landlord_quota_decisions_total{tenant=\"acme\",dimension=\"requests\",result=\"denied\"} 1",
        "landlord_quota_period_units{tenant=\"acme\",dimension=\"requests\"} 1",
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
}

/// 8 threads hammer one tenant's limit of N per window; exactly N pass, whatever the
/// algorithm, and the meter agrees.
#[test]
fn eight_threads_never_exceed_the_limit() {
    const N: u64 = 1_000;
    for algorithm in [
        Algorithm::TokenBucket,
        Algorithm::SlidingWindow,
        Algorithm::FixedWindow,
    ] {
        let (_, e) = engine_at("2025-03-01T10:00:00Z");
        e.set_tenant("acme", limits(vec![rate("requests", N, HOUR, algorithm)]))
            .unwrap();
        let passed = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..400 {
                        if e.check("acme", "requests", 1).unwrap().allowed {
                            passed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(passed.load(Ordering::Relaxed), N, "{algorithm:?}");
        let s = e.stats("acme").unwrap();
        assert_eq!(
            (
                s.dimensions["requests"].allowed,
                s.dimensions["requests"].denied
            ),
            (N, 3200 - N)
        );
    }
    // Slots too.
    let (_, e) = engine_at("2025-03-01T10:00:00Z");
    e.set_tenant(
        "acme",
        TenantLimits {
            concurrency: vec![SlotSpec {
                name: "jobs".into(),
                limit: 10,
                lease: HOUR,
            }],
            ..Default::default()
        },
    )
    .unwrap();
    let held = AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..50 {
                    if e.acquire("acme", "jobs").unwrap().decision.allowed {
                        held.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(held.load(Ordering::Relaxed), 10);
}

/// With the clock moving under them, threads on a sliding window never get more than N into
/// any window. A charge lands in a bucket between the clock read before and after the call,
/// so every charge whose whole interval lies inside a 10-bucket window is surely in it: those
/// must not exceed N.
#[test]
fn sliding_window_holds_while_the_clock_moves() {
    const N: u64 = 50;
    let (clock, e) = engine_at("2025-03-01T10:00:00Z");
    e.set_tenant(
        "acme",
        limits(vec![rate("requests", N, SEC, Algorithm::SlidingWindow)]),
    )
    .unwrap();
    let width = 100_000_000u64;
    let log = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..3_000 {
                    let before = clock.now_nanos() / width;
                    if e.check("acme", "requests", 1).unwrap().allowed {
                        let after = clock.now_nanos() / width;
                        log.lock().unwrap().push((before, after));
                    }
                }
            });
        }
        s.spawn(|| {
            for _ in 0..400 {
                clock.advance(10 * MS);
                std::thread::yield_now();
            }
        });
    });
    let log = log.into_inner().unwrap();
    let first = log.iter().map(|l| l.0).min().unwrap();
    let last = log.iter().map(|l| l.1).max().unwrap();
    let mut windows = 0;
    for start in first.saturating_sub(9)..=last {
        let surely_in = log
            .iter()
            .filter(|(b, a)| *b >= start && *a <= start + 9)
            .count() as u64;
        assert!(
            surely_in <= N,
            "{surely_in} charges in the window starting at bucket {start}"
        );
        windows += 1;
    }
    assert!(windows >= 10);
    // Every allowed unit was metered.
    let total: u64 = e
        .usage("acme", "2025-03".parse().unwrap())
        .unwrap()
        .dimensions["requests"]
        .total;
    assert_eq!(total, log.len() as u64);
}

/// Checks of a single token bucket or an unlimited dimension are decided from the cell alone
/// (the decision index); every plan change must move a dimension into or out of it at once,
/// keeping what was used.
#[test]
fn the_decision_index_follows_every_plan_change() {
    let (_, e) = engine_at("2025-03-01T10:00:00Z");
    let bucket = limits(vec![rate("requests", 10, SEC, Algorithm::TokenBucket)]);
    e.set_tenant("acme", bucket.clone()).unwrap();
    for left in (0..10).rev() {
        assert_eq!(e.check("acme", "requests", 1).unwrap(), allowed(10, left));
    }
    assert_eq!(
        e.check("acme", "requests", 1).unwrap(),
        rate_limited(10, 10, Some(100))
    );
    // A sliding window instead: a counter of its own, so 5 fit.
    let window = limits(vec![rate(
        "requests",
        5,
        60 * SEC,
        Algorithm::SlidingWindow,
    )]);
    e.set_tenant("acme", window).unwrap();
    for left in (0..5).rev() {
        assert_eq!(e.check("acme", "requests", 1).unwrap(), allowed(5, left));
    }
    assert_eq!(
        e.check("acme", "requests", 1).unwrap(),
        rate_limited(5, 5, Some(60_000))
    );
    // Back to the bucket: it still holds the 10 tokens taken, the clock has not moved.
    e.set_tenant("acme", bucket.clone()).unwrap();
    assert_eq!(
        e.check("acme", "requests", 1).unwrap(),
        rate_limited(10, 10, Some(100))
    );
    // Suspended, every check is refused, and the index must not answer for it.
    let mut suspended = bucket.clone();
    suspended.suspended = true;
    e.set_tenant("acme", suspended).unwrap();
    for d in ["requests", "llm-tokens"] {
        assert_eq!(
            e.check("acme", d, 1).unwrap().reason,
            Some(Reason::TenantSuspended),
            "{d}"
        );
    }
    e.set_tenant("acme", bucket).unwrap();
    // An unlimited known dimension is answered from its cell too.
    assert_eq!(e.check("acme", "llm-tokens", 7).unwrap(), unlimited());
    let stats = e.stats("acme").unwrap();
    let requests = &stats.dimensions["requests"];
    assert_eq!(
        (requests.allowed, requests.denied, requests.units),
        (15, 4, 15)
    );
    assert_eq!(stats.dimensions["llm-tokens"].units, 7);
    // A dimension the tenant does not have, and a tenant that is gone.
    assert!(matches!(
        e.check("acme", "nope", 1),
        Err(EngineError::UnknownDimension { .. })
    ));
    assert!(e.remove_tenant("acme"));
    assert_eq!(
        e.check("acme", "requests", 1),
        Err(EngineError::UnknownTenant("acme".into()))
    );
}

/// A plan change made on one thread reaches the very next check of another that already
/// decided from the old plan.
#[test]
fn a_plan_change_reaches_a_thread_that_checked_before() {
    let (_, e) = engine_at("2025-03-01T10:00:00Z");
    let mut plan = limits(vec![rate("requests", 100, SEC, Algorithm::TokenBucket)]);
    e.set_tenant("acme", plan.clone()).unwrap();
    let (to_worker, worker_rx) = std::sync::mpsc::channel::<()>();
    let (to_main, main_rx) = std::sync::mpsc::channel::<Decision>();
    let e = &e;
    std::thread::scope(|s| {
        s.spawn(move || {
            for _ in 0..2 {
                worker_rx.recv().unwrap();
                to_main
                    .send(e.check("acme", "requests", 1).unwrap())
                    .unwrap();
            }
        });
        to_worker.send(()).unwrap();
        assert_eq!(main_rx.recv().unwrap(), allowed(100, 99));
        plan.suspended = true;
        e.set_tenant("acme", plan).unwrap();
        to_worker.send(()).unwrap();
        assert_eq!(main_rx.recv().unwrap(), Decision::suspended());
    });
}

/// Checks of two engines alternating on one thread each see their own engine's tenants,
/// through a plan change of one of them and after the other is dropped.
#[test]
fn engines_sharing_a_thread_never_see_each_others_tenants() {
    let (_, a) = engine_at("2025-03-01T10:00:00Z");
    let (_, b) = engine_at("2025-03-01T10:00:00Z");
    a.set_tenant(
        "acme",
        limits(vec![rate("requests", 1, HOUR, Algorithm::TokenBucket)]),
    )
    .unwrap();
    b.set_tenant(
        "acme",
        limits(vec![rate("requests", 3, HOUR, Algorithm::TokenBucket)]),
    )
    .unwrap();
    assert_eq!(a.check("acme", "requests", 1).unwrap(), allowed(1, 0));
    assert_eq!(b.check("acme", "requests", 1).unwrap(), allowed(3, 2));
    assert_eq!(
        a.check("acme", "requests", 1).unwrap(),
        rate_limited(1, 1, Some(3_600_000))
    );
    assert_eq!(b.check("acme", "requests", 1).unwrap(), allowed(3, 1));
    b.remove_tenant("acme");
    assert_eq!(
        b.check("acme", "requests", 1),
        Err(EngineError::UnknownTenant("acme".into()))
    );
    assert!(a.check("acme", "requests", 1).unwrap().reason.is_some());
    drop(b);
    let (_, c) = engine_at("2025-03-01T10:00:00Z");
    assert_eq!(
        c.check("acme", "requests", 1),
        Err(EngineError::UnknownTenant("acme".into()))
    );
    assert!(!a.check("acme", "requests", 1).unwrap().allowed);
}

/// A dimension whose interned id does not fit the decision index (65,535 names or more in
/// use) is decided, exactly, by the general path.
#[test]
fn dimensions_beyond_the_index_are_decided_exactly() {
    let (_, e) = engine_at("2025-03-01T10:00:00Z");
    let rates: Vec<RateSpec> = (0..65_540)
        .map(|i| rate(&format!("d{i:05}"), 2, HOUR, Algorithm::TokenBucket))
        .collect();
    e.set_tenant("acme", limits(rates)).unwrap();
    for (dimension, indexed) in [("d00000", true), ("d65531", true), ("d65532", false)] {
        assert_eq!(e.is_indexed("acme", dimension), indexed, "{dimension}");
        assert_eq!(e.check("acme", dimension, 1).unwrap(), allowed(2, 1));
        assert_eq!(e.check("acme", dimension, 1).unwrap(), allowed(2, 0));
        assert_eq!(
            e.check("acme", dimension, 1).unwrap(),
            rate_limited(2, 2, Some(1_800_000))
        );
    }
    assert_eq!(
        (0..65_540)
            .filter(|i| e.is_indexed("acme", &format!("d{i:05}")))
            .count(),
        65_532,
        "d00000 to d65531: ids 3 to 65,534 after the three known dimensions"
    );
}

/// A thread that has seen a tenant (through any read of the engine) finds it in its very
/// next check, even while other tenants are being published and its cached snapshot is old.
#[test]
fn a_tenant_seen_by_a_thread_is_found_by_its_next_check() {
    let (_, e) = engine_at("2025-03-01T10:00:00Z");
    let plan = limits(vec![rate("requests", 10, SEC, Algorithm::TokenBucket)]);
    e.set_tenant("first", plan.clone()).unwrap();
    let names: Vec<String> = (0..500).map(|i| format!("t{i:03}")).collect();
    std::thread::scope(|s| {
        s.spawn(|| {
            for n in &names {
                e.set_tenant(n, plan.clone()).unwrap();
            }
        });
        s.spawn(|| {
            assert_eq!(e.check("first", "requests", 1).unwrap(), allowed(10, 9));
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            for n in &names {
                while !e.has_tenant(n) {
                    assert!(std::time::Instant::now() < deadline, "{n} never appeared");
                    std::hint::spin_loop();
                }
                assert_eq!(e.check(n, "requests", 1).unwrap(), allowed(10, 9), "{n}");
            }
        });
    });
}

fn size(name: &str, max: u64) -> SizeSpec {
    SizeSpec {
        name: name.into(),
        max,
    }
}

fn queues(values: &[&str]) -> AllowedSpec {
    AllowedSpec {
        name: "queue".into(),
        values: values.iter().map(|v| v.to_string()).collect(),
    }
}

fn too_large(max: u64, amount: u64) -> Decision {
    Decision {
        allowed: false,
        limit: Some(max),
        remaining: None,
        retry_after_ms: None,
        reason: Some(Reason::TooLarge),
        current: Some(amount),
    }
}

fn not_allowed() -> Decision {
    Decision {
        allowed: false,
        limit: None,
        remaining: None,
        retry_after_ms: None,
        reason: Some(Reason::NotAllowed),
        current: None,
    }
}

#[test]
fn a_check_over_its_size_limit_is_refused_and_charges_nothing() {
    let (_, e) = engine_at("2025-03-01T10:00:00Z");
    let l = TenantLimits {
        rates: vec![rate("requests", 10, SEC, Algorithm::TokenBucket)],
        // `task-bytes` is named only here: metered, with a size limit.
        sizes: vec![size("requests", 5), size("task-bytes", 1 << 20)],
        ..Default::default()
    };
    e.set_tenant("acme", l).unwrap();
    assert!(!e.is_indexed("acme", "requests"), "the cell holds no size");
    assert_eq!(
        e.check("acme", "task-bytes", (1 << 20) + 1).unwrap(),
        too_large(1 << 20, (1 << 20) + 1)
    );
    assert_eq!(e.check("acme", "task-bytes", 1 << 20).unwrap(), unlimited());
    assert_eq!(e.check("acme", "requests", 6).unwrap(), too_large(5, 6));
    // Nothing was taken from the bucket by the refusal.
    assert_eq!(e.check("acme", "requests", 5).unwrap(), allowed(10, 5));
    assert_eq!(e.check("acme", "requests", 5).unwrap(), allowed(10, 0));
    // In a batch, a refusal by size gives back what the batch charged.
    let b = e
        .check_batch("acme", &[("task-bytes", 10), ("task-bytes", 1 << 21)])
        .unwrap();
    assert!(!b.allowed);
    assert_eq!(b.results[1], too_large(1 << 20, 1 << 21));
    let s = e.stats("acme").unwrap();
    let d = &s.dimensions["task-bytes"];
    assert_eq!(
        (d.kind, d.allowed, d.denied, d.units),
        (DimensionKind::Unlimited, 1, 2, 1 << 20)
    );
    assert_eq!(
        (
            s.dimensions["requests"].allowed,
            s.dimensions["requests"].denied
        ),
        (2, 1)
    );
}

#[test]
fn an_attribute_with_a_rule_must_take_an_allowed_value() {
    let (_, e) = engine_at("2025-03-01T10:00:00Z");
    let l = TenantLimits {
        rates: vec![rate("tasks", 10, SEC, Algorithm::FixedWindow)],
        allowed: vec![queues(&["default", "emails"])],
        ..Default::default()
    };
    e.set_tenant("acme", l.clone()).unwrap();
    // The rule holds for every dimension a check carrying `queue` names.
    for dimension in ["tasks", "requests"] {
        assert_eq!(
            e.check_with("acme", dimension, 1, &[("queue", "reports")])
                .unwrap(),
            not_allowed()
        );
    }
    assert_eq!(
        e.check_with("acme", "tasks", 1, &[("queue", "emails")])
            .unwrap(),
        allowed(10, 9)
    );
    // Without the attribute, or with one no rule names, a check passes.
    assert_eq!(e.check("acme", "tasks", 1).unwrap(), allowed(10, 8));
    assert_eq!(
        e.check_with("acme", "tasks", 1, &[("region", "eu")])
            .unwrap(),
        allowed(10, 7)
    );
    let b = e
        .check_batch_with(
            "acme",
            &[
                ("tasks", 2, &[("queue", "default")][..]),
                ("tasks", 1, &[("queue", "reports")][..]),
            ],
        )
        .unwrap();
    assert!(!b.allowed);
    assert_eq!(b.results[1], not_allowed());
    assert_eq!(e.check("acme", "tasks", 7).unwrap(), allowed(10, 0));
    // A suspended tenant is refused as suspended, whatever the attribute.
    e.set_tenant(
        "acme",
        TenantLimits {
            suspended: true,
            ..l
        },
    )
    .unwrap();
    assert_eq!(
        e.check_with("acme", "tasks", 1, &[("queue", "reports")])
            .unwrap()
            .reason,
        Some(Reason::TenantSuspended)
    );
}

#[test]
fn checks_across_tenants_are_all_or_nothing() {
    let (clock, e) = engine_at("2025-03-01T10:00:00Z");
    e.set_tenant(
        "acme",
        limits(vec![rate("requests", 10, SEC, Algorithm::TokenBucket)]),
    )
    .unwrap();
    e.set_tenant(
        "globex",
        limits(vec![rate("requests", 100, HOUR, Algorithm::FixedWindow)]),
    )
    .unwrap();
    let check = |tenant, amount| Check {
        tenant,
        dimension: "requests",
        amount,
        attributes: &[],
    };
    let window = |limit, per, reset_after| {
        Some(Window {
            limit,
            per,
            reset_after,
        })
    };
    // globex asks for more than its window holds: acme's part passes by itself, but nothing
    // is charged, and acme's `remaining` says so.
    let all = e.check_all(&[check("acme", 3), check("globex", 101)], false);
    assert!(!all.allowed);
    assert_eq!(
        all.checks,
        [
            Ok(Checked {
                decision: allowed(10, 10),
                window: window(10, SEC, Duration::ZERO)
            }),
            Ok(Checked {
                decision: rate_limited(100, 0, None),
                window: window(100, HOUR, Duration::ZERO)
            }),
        ]
    );
    clock.advance(30 * 60 * SEC);
    let all = e.check_all(&[check("acme", 3), check("globex", 40)], false);
    assert!(all.allowed);
    assert_eq!(
        all.checks,
        [
            // 3 tokens of 100 ms each; the window ends at 11:00.
            Ok(Checked {
                decision: allowed(10, 7),
                window: window(10, SEC, 300 * MS)
            }),
            Ok(Checked {
                decision: allowed(100, 60),
                window: window(100, HOUR, 30 * 60 * SEC)
            }),
        ]
    );
    // A tenant the engine does not know is left out, or refuses the batch.
    let all = e.check_all(&[check("acme", 1), check("initech", 1)], false);
    assert!(all.allowed);
    assert_eq!(
        all.checks[1],
        Err(EngineError::UnknownTenant("initech".into()))
    );
    let all = e.check_all(&[check("acme", 1), check("initech", 1)], true);
    assert!(!all.allowed);
    assert_eq!(all.checks[0].as_ref().unwrap().decision, allowed(10, 6));
    let units = |t| e.usage(t, "2025-03".parse().unwrap()).unwrap().dimensions["requests"].total;
    assert_eq!((units("acme"), units("globex")), (4, 40));
}
