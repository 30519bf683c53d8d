//! `cargo bench --bench engine`: the quota engine against `governor`, its memory per
//! (tenant, dimension), its HTTP API on loopback, and Envoy's rate limit service (gRPC) on
//! loopback against the HTTP figures of the same run. Prints plain lines; a few seconds.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::Entry;
use envoy_types::pb::envoy::service::ratelimit::v3::RateLimitRequest;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_client::RateLimitServiceClient;
use governor::{Quota, RateLimiter};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use landlord::engine::{Algorithm, Engine, GaugeSpec, RateSpec, TenantLimits};
use landlord::engine_http::ratelimit as rls;
use landlord::engine_http::{self as http, StaticTokens};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Counts live heap bytes, to measure what the engine's state costs.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const TENANTS: usize = 10_000;
const DECISIONS: usize = 1_000_000;

fn names() -> Vec<String> {
    (0..TENANTS).map(|i| format!("tenant-{i:05}")).collect()
}

fn sequence(n: usize, seed: u64) -> Vec<u32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| rng.random_range(0..TENANTS as u32))
        .collect()
}

fn rate(name: &str, limit: u64, per: Duration, algorithm: Algorithm) -> RateSpec {
    RateSpec {
        name: name.into(),
        limit,
        per,
        burst: None,
        algorithm,
    }
}

/// Runs `f` over `seq` split across `threads`; returns nanoseconds per decision (wall time
/// over all decisions, so 2 threads report the aggregate rate).
fn timed(threads: usize, seq: &[u32], f: &(dyn Fn(u32) -> bool + Sync)) -> f64 {
    let chunk = seq.len() / threads;
    let start = Instant::now();
    let allowed: usize = std::thread::scope(|s| {
        let handles: Vec<_> = seq
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().filter(|i| f(**i)).count()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let elapsed = start.elapsed();
    assert_eq!(
        allowed,
        seq.len(),
        "limits are high enough that everything passes"
    );
    elapsed.as_nanos() as f64 / seq.len() as f64
}

fn versus_governor() {
    let names = names();
    let seq = sequence(DECISIONS, 7);
    let engine = Engine::new(Vec::<String>::new());
    let plan = TenantLimits {
        rates: vec![rate(
            "requests",
            1_000_000_000,
            Duration::from_secs(1),
            Algorithm::TokenBucket,
        )],
        ..Default::default()
    };
    engine
        .set_tenants(names.iter().map(|n| (n.clone(), plan.clone())))
        .unwrap();
    let governor = RateLimiter::keyed(Quota::per_second(NonZeroU32::MAX));
    let ours = |i: u32| {
        engine
            .check(&names[i as usize], "requests", 1)
            .unwrap()
            .allowed
    };
    let theirs = |i: u32| governor.check_key(&names[i as usize]).is_ok();
    // Warm both: every key present, caches as after a while of traffic.
    timed(1, &seq, &ours);
    timed(1, &seq, &theirs);
    for threads in [1, 2] {
        // Best of fifteen runs each, interleaved and taking turns to go first, to damp noise
        // from others on the machine (bursts of it last seconds; a run takes 0.1 s).
        let (mut o, mut g) = (f64::MAX, f64::MAX);
        for round in 0..15 {
            if round % 2 == 0 {
                o = o.min(timed(threads, &seq, &ours));
                g = g.min(timed(threads, &seq, &theirs));
            } else {
                g = g.min(timed(threads, &seq, &theirs));
                o = o.min(timed(threads, &seq, &ours));
            }
        }
        let plural = if threads == 1 { "thread" } else { "threads" };
        println!(
            "token bucket vs governor ({threads} {plural}): ours {o:.1} ns, governor {g:.1} ns, ratio {:.2} \
             ({:.1} M vs {:.1} M decisions/s; 10,000 tenants, random order, check and charge 1)",
            o / g,
            1e3 / o,
            1e3 / g,
        );
    }
    black_box(&engine);
}

fn memory() {
    let names = names();
    let plans: [(&str, TenantLimits); 2] = [
        (
            "token bucket, sliding window, fixed day window, gauge",
            TenantLimits {
                rates: vec![
                    rate(
                        "requests",
                        1_000,
                        Duration::from_secs(1),
                        Algorithm::TokenBucket,
                    ),
                    rate(
                        "llm-tokens",
                        100_000,
                        Duration::from_secs(60),
                        Algorithm::SlidingWindow,
                    ),
                    rate(
                        "api-calls",
                        1_000_000,
                        Duration::from_secs(86_400),
                        Algorithm::FixedWindow,
                    ),
                ],
                gauges: vec![GaugeSpec {
                    name: "storage-bytes".into(),
                    limit: Some(1 << 40),
                }],
                ..Default::default()
            },
        ),
        (
            "4 token buckets",
            TenantLimits {
                rates: ["a", "b", "c", "d"]
                    .iter()
                    .map(|d| rate(d, 1_000, Duration::from_secs(1), Algorithm::TokenBucket))
                    .collect(),
                ..Default::default()
            },
        ),
    ];
    for (label, plan) in plans {
        let before = LIVE.load(Ordering::SeqCst);
        let engine = Engine::new(Vec::<String>::new());
        engine
            .set_tenants(names.iter().map(|n| (n.clone(), plan.clone())))
            .unwrap();
        let built = LIVE.load(Ordering::SeqCst);
        // One decision on every (tenant, dimension), so all lazily made state exists. Joined
        // explicitly: the thread's cached snapshot is released only when it exits.
        std::thread::scope(|s| {
            let worker = s.spawn(|| {
                for n in &names {
                    for r in &plan.rates {
                        engine.check(n, &r.name, 1).unwrap();
                    }
                    for g in &plan.gauges {
                        engine.set_gauge(n, &g.name, 1).unwrap();
                    }
                }
            });
            worker.join().unwrap();
        });
        let used = LIVE.load(Ordering::SeqCst);
        let per = |bytes: isize| bytes as f64 / (TENANTS * 4) as f64;
        println!(
            "memory per (tenant, dimension) at 10,000 tenants x 4 dimensions ({label}): {:.0} bytes built, {:.0} bytes after one decision each",
            per(built - before),
            per(used - before),
        );
        drop(engine);
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

async fn drive(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    base: &str,
    requests: usize,
    concurrency: usize,
    body: impl Fn(usize) -> (String, String) + Sync,
) -> (Duration, Vec<Duration>) {
    let start = Instant::now();
    let per_task = requests / concurrency;
    let body = &body;
    let tasks = (0..concurrency).map(|t| async move {
        let mut latencies = Vec::with_capacity(per_task);
        for k in 0..per_task {
            let (path, json) = body(t * per_task + k);
            let req = hyper::Request::post(format!("{base}{path}"))
                .header("authorization", "Bearer bench")
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(json)))
                .unwrap();
            let sent = Instant::now();
            let res = client.request(req).await.unwrap();
            let status = res.status();
            res.into_body().collect().await.unwrap();
            latencies.push(sent.elapsed());
            assert_eq!(status, 200);
        }
        latencies
    });
    let mut all: Vec<Duration> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .flatten()
        .collect();
    let elapsed = start.elapsed();
    all.sort();
    (elapsed, all)
}

/// Throughput and latency of one loopback run.
struct Figures {
    decisions_per_second: f64,
    p50: Duration,
    p99: Duration,
}

impl Figures {
    fn of(decisions: usize, elapsed: Duration, sorted: &[Duration]) -> Self {
        Self {
            decisions_per_second: decisions as f64 / elapsed.as_secs_f64(),
            p50: percentile(sorted, 0.50),
            p99: percentile(sorted, 0.99),
        }
    }

    /// `x decisions/s, p50 y us, p99 z us`.
    fn line(&self) -> String {
        format!(
            "{:.0} decisions/s, p50 {:.0} us, p99 {:.0} us",
            self.decisions_per_second,
            self.p50.as_secs_f64() * 1e6,
            self.p99.as_secs_f64() * 1e6
        )
    }

    /// This run against `baseline`: throughput ratio (higher is better), latency ratios
    /// (lower is better).
    fn against(&self, baseline: &Figures) -> String {
        format!(
            "ratio to HTTP: throughput {:.2}, p50 {:.2}, p99 {:.2}",
            self.decisions_per_second / baseline.decisions_per_second,
            self.p50.as_secs_f64() / baseline.p50.as_secs_f64(),
            self.p99.as_secs_f64() / baseline.p99.as_secs_f64()
        )
    }
}

/// `requests` ShouldRateLimit calls, `clients.len()` at a time (one connection each).
async fn drive_grpc(
    clients: &[RateLimitServiceClient<tonic::transport::Channel>],
    requests: usize,
    request: impl Fn(usize) -> RateLimitRequest + Sync,
) -> (Duration, Vec<Duration>) {
    let start = Instant::now();
    let per_task = requests / clients.len();
    let request = &request;
    let tasks = clients.iter().enumerate().map(|(t, client)| {
        let mut client = client.clone();
        async move {
            let mut latencies = Vec::with_capacity(per_task);
            for k in 0..per_task {
                let mut req = tonic::Request::new(request(t * per_task + k));
                req.metadata_mut()
                    .insert("authorization", "Bearer bench".parse().unwrap());
                let sent = Instant::now();
                let answer = client.should_rate_limit(req).await.unwrap().into_inner();
                latencies.push(sent.elapsed());
                assert_eq!(answer.overall_code, 1, "OK");
            }
            latencies
        }
    });
    let mut all: Vec<Duration> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .flatten()
        .collect();
    let elapsed = start.elapsed();
    all.sort();
    (elapsed, all)
}

fn descriptor(tenant: &str, dimension: &str) -> RateLimitDescriptor {
    let entry = |key: &str, value: &str| Entry {
        key: key.into(),
        value: value.into(),
    };
    RateLimitDescriptor {
        entries: vec![entry("tenant", tenant), entry("dimension", dimension)],
        ..Default::default()
    }
}

fn http_api() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let names = names();
        let engine = Arc::new(Engine::new(["llm-tokens"]));
        let plan = TenantLimits {
            rates: vec![rate("requests", 1_000_000_000, Duration::from_secs(1), Algorithm::TokenBucket)],
            ..Default::default()
        };
        engine
            .set_tenants(names.iter().map(|n| (n.clone(), plan.clone())))
            .unwrap();
        let auth = Arc::new(StaticTokens::new().admin("bench", "gateway"));
        let app = http::router(engine.clone(), auth);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(64)
            .build_http::<Full<Bytes>>();
        let base = format!("http://{addr}");
        let seq = sequence(40_000, 11);
        const CONCURRENCY: usize = 16;
        const BATCH: usize = 100;

        // Warm-up: open the connections.
        drive(&client, &base, 1_600, CONCURRENCY, |i| {
            (format!("/v1/tenants/{}/check", names[seq[i] as usize]), r#"{"dimension":"requests","amount":1}"#.into())
        })
        .await;

        let single = 20_000;
        let (elapsed, lat) = drive(&client, &base, single, CONCURRENCY, |i| {
            (format!("/v1/tenants/{}/check", names[seq[i] as usize]), r#"{"dimension":"requests","amount":1}"#.into())
        })
        .await;
        let http_single = Figures::of(single, elapsed, &lat);
        println!(
            "HTTP single check ({CONCURRENCY} keep-alive connections, {single} requests): {}",
            http_single.line()
        );

        let items: String = (0..BATCH)
            .map(|k| {
                let d = if k % 2 == 0 { "requests" } else { "llm-tokens" };
                format!(r#"{{"dimension":"{d}","amount":1}}"#)
            })
            .collect::<Vec<_>>()
            .join(",");
        let body = format!(r#"{{"items":[{items}]}}"#);
        let batches = 3_000;
        let (elapsed, lat) = drive(&client, &base, batches, CONCURRENCY, |i| {
            (format!("/v1/tenants/{}/check:batch", names[seq[i] as usize]), body.clone())
        })
        .await;
        let http_batch = Figures::of(batches * BATCH, elapsed, &lat);
        println!(
            "HTTP batch check ({CONCURRENCY} connections, {batches} requests of {BATCH} items): {:.0} requests/s, {} per request",
            batches as f64 / elapsed.as_secs_f64(),
            http_batch.line(),
        );
        server.abort();

        // Envoy's rate limit service on the same engine, against the figures above.
        let auth = StaticTokens::new().member("bench", "gateway", &["gateways"]);
        let settings = rls::Settings {
            allowed_groups: vec!["gateways".into()],
            unknown: rls::Unknown::Allow,
        };
        let limiter = rls::RateLimiter::new(engine.clone(), Arc::new(auth), settings);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        rls::serve(listener, limiter, landlord::engine_http::Limits::default());
        let mut clients = Vec::new();
        for _ in 0..CONCURRENCY {
            let channel = tonic::transport::Endpoint::new(format!("http://{addr}"))
                .unwrap()
                .tcp_nodelay(true)
                .connect()
                .await
                .unwrap();
            clients.push(RateLimitServiceClient::new(channel));
        }
        let single_request = |i: usize| RateLimitRequest {
            domain: "bench".into(),
            descriptors: vec![descriptor(&names[seq[i] as usize], "requests")],
            hits_addend: 1,
        };
        drive_grpc(&clients, 1_600, single_request).await;
        let (elapsed, lat) = drive_grpc(&clients, single, single_request).await;
        let grpc_single = Figures::of(single, elapsed, &lat);
        println!(
            "gRPC ShouldRateLimit, 1 descriptor ({CONCURRENCY} HTTP/2 connections, {single} requests): {}; {}",
            grpc_single.line(),
            grpc_single.against(&http_single)
        );
        let (elapsed, lat) = drive_grpc(&clients, batches, |i| {
            let tenant = &names[seq[i] as usize];
            RateLimitRequest {
                domain: "bench".into(),
                descriptors: (0..BATCH)
                    .map(|k| descriptor(tenant, if k % 2 == 0 { "requests" } else { "llm-tokens" }))
                    .collect(),
                hits_addend: 1,
            }
        })
        .await;
        let grpc_batch = Figures::of(batches * BATCH, elapsed, &lat);
        println!(
            "gRPC ShouldRateLimit, {BATCH} descriptors ({CONCURRENCY} connections, {batches} requests): {:.0} requests/s, {} per request; {} batch",
            batches as f64 / elapsed.as_secs_f64(),
            grpc_batch.line(),
            grpc_batch.against(&http_batch)
        );
    });
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs nothing heavy.
    if !std::env::args().any(|a| a == "--bench") {
        println!("engine bench: run with `cargo bench --bench engine`");
        return;
    }
    let start = Instant::now();
    versus_governor();
    memory();
    http_api();
    println!(
        "engine bench done in {:.1} s",
        start.elapsed().as_secs_f64()
    );
}
