//! The quota API's limits against its real server (`engine_http::limits::serve`) on a local
//! port, spoken to over raw TCP so that half requests and slow clients can be sent: a body or
//! a head too large, a client too slow, too many requests in flight, too many connections.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use landlord::engine::{Algorithm, Engine, RateSpec, TenantLimits};
use landlord::engine_http::{
    AuthError, Authenticator, Caller, Limits, StaticTokens, limits, router_with,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

/// How long any one wait in these tests may take before it fails.
const DEADLINE: Duration = Duration::from_secs(60);

fn engine() -> Arc<Engine> {
    let engine = Arc::new(Engine::new(["requests"]));
    engine
        .set_tenant(
            "acme",
            TenantLimits {
                rates: vec![RateSpec {
                    name: "requests".into(),
                    limit: 1_000,
                    per: Duration::from_secs(60),
                    burst: None,
                    algorithm: Algorithm::FixedWindow,
                }],
                ..Default::default()
            },
        )
        .expect("valid limits");
    engine
}

/// Units and allowed decisions of acme's `requests` so far.
fn charged(engine: &Engine) -> (u64, u64) {
    let stats = engine.stats("acme").expect("acme");
    let d = &stats.dimensions["requests"];
    (d.units, d.allowed)
}

/// Serves the quota API with `limits` and `auth` on a free local port.
async fn start(
    engine: Arc<Engine>,
    auth: Arc<dyn Authenticator>,
    limits: Limits,
) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(limits::serve(
        listener,
        router_with(engine, auth, limits),
        limits,
    ));
    addr
}

fn tokens() -> Arc<dyn Authenticator> {
    Arc::new(StaticTokens::new().tenant("acme-token", "acme"))
}

fn check_request(body: &str, extra_headers: &str) -> String {
    format!(
        "POST /v1/tenants/acme/check HTTP/1.1\r\nHost: engine\r\nAuthorization: Bearer acme-token\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra_headers}\r\n{body}",
        body.len()
    )
}

/// A status code, the head's text and the body, read up to the end of one response.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Reads one response (with a Content-Length) from `stream`.
async fn read_answer(stream: &mut TcpStream) -> Answer {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    tokio::time::timeout(DEADLINE, async {
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_string();
                let length = head
                    .lines()
                    .find_map(|l| {
                        let (n, v) = l.split_once(':')?;
                        n.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if buf.len() >= end + 4 + length {
                    let status = head[9..12].parse().expect("a status code");
                    let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + length]).to_string();
                    return Answer { status, head, body };
                }
            }
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "connection closed before a full answer: {buf:?}");
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .expect("an answer within the deadline")
}

async fn exchange(addr: std::net::SocketAddr, raw: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(raw).await.unwrap();
    read_answer(&mut stream).await
}

/// Waits until the server closes `stream`, and says how long that took.
async fn closed_after(stream: &mut TcpStream, since: Instant) -> (Duration, Vec<u8>) {
    let mut rest = Vec::new();
    tokio::time::timeout(DEADLINE, async {
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => rest.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .expect("the server closes the connection within the deadline");
    (since.elapsed(), rest)
}

#[tokio::test]
async fn an_oversized_body_gets_413_and_charges_nothing() {
    let engine = engine();
    let limits = Limits {
        max_body: 1024,
        ..Limits::default()
    };
    let addr = start(engine.clone(), tokens(), limits).await;
    let ok = exchange(
        addr,
        check_request(r#"{"dimension":"requests","amount":1}"#, "").as_bytes(),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(charged(&engine), (1, 1));
    let big = format!(
        r#"{{"dimension":"requests","amount":1,"attributes":{{"pad":"{}"}}}}"#,
        "x".repeat(2000)
    );
    let a = exchange(addr, check_request(&big, "").as_bytes()).await;
    assert_eq!(a.status, 413);
    assert_eq!(a.json()["error"], "body_too_large");
    assert_eq!(
        a.json()["message"],
        "request body is larger than 1024 bytes"
    );
    assert_eq!(charged(&engine), (1, 1));
}

#[tokio::test]
async fn an_oversized_head_gets_431() {
    let engine = engine();
    let addr = start(engine.clone(), tokens(), Limits::default()).await;
    let cookie = format!("X-Padding: {}\r\n", "y".repeat(20 << 10));
    let a = exchange(
        addr,
        check_request(r#"{"dimension":"requests","amount":1}"#, &cookie).as_bytes(),
    )
    .await;
    assert_eq!(a.status, 431);
    assert_eq!(charged(&engine), (0, 0));
}

#[tokio::test]
async fn a_slow_client_is_cut_off_after_the_request_timeout() {
    let engine = engine();
    let timeout = Duration::from_millis(500);
    let limits = Limits {
        request_timeout: timeout,
        ..Limits::default()
    };
    let addr = start(engine.clone(), tokens(), limits).await;

    // Half a head: the connection is closed, with nothing said.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let since = Instant::now();
    stream
        .write_all(b"POST /v1/tenants/acme/check HTTP/1.1\r\nHost: engine\r\n")
        .await
        .unwrap();
    let (after, said) = closed_after(&mut stream, since).await;
    assert!(after >= timeout, "closed after {after:?}");
    assert_eq!(String::from_utf8_lossy(&said), "");

    // The whole head and half the body: 408, and nothing charged.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let since = Instant::now();
    let body = r#"{"dimension":"requests","amount":1}"#;
    let raw = check_request(body, "");
    stream
        .write_all(&raw.as_bytes()[..raw.len() - body.len() / 2])
        .await
        .unwrap();
    let a = read_answer(&mut stream).await;
    assert!(
        since.elapsed() >= timeout,
        "answered after {:?}",
        since.elapsed()
    );
    assert_eq!(a.status, 408);
    assert_eq!(a.json()["error"], "request_timeout");
    assert_eq!(
        a.json()["message"],
        "the request was not received and answered within 500 ms"
    );
    closed_after(&mut stream, since).await;
    assert_eq!(charged(&engine), (0, 0));

    // A connection kept alive but left idle is closed after the timeout too, so idle
    // connections do not hold the connection cap.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(raw.as_bytes()).await.unwrap();
    assert_eq!(read_answer(&mut stream).await.status, 200);
    let since = Instant::now();
    let (after, said) = closed_after(&mut stream, since).await;
    assert!(
        after >= timeout - Duration::from_millis(50),
        "closed after {after:?}"
    );
    assert_eq!(String::from_utf8_lossy(&said), "");
    assert_eq!(charged(&engine), (1, 1));
}

/// Lets callers through only when the test opens the gate; counts those waiting.
struct Gated {
    gate: Semaphore,
    waiting: AtomicUsize,
    inner: StaticTokens,
}

#[async_trait]
impl Authenticator for Gated {
    async fn authenticate(&self, bearer: &str) -> Result<Caller, AuthError> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        drop(self.gate.acquire().await.expect("open"));
        self.inner.authenticate(bearer).await
    }
}

async fn poll_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn requests_beyond_the_in_flight_cap_get_503_at_once() {
    let engine = engine();
    let auth = Arc::new(Gated {
        gate: Semaphore::new(0),
        waiting: AtomicUsize::new(0),
        inner: StaticTokens::new().tenant("acme-token", "acme"),
    });
    let limits = Limits {
        max_inflight: 2,
        ..Limits::default()
    };
    let addr = start(engine.clone(), auth.clone(), limits).await;
    let raw = check_request(r#"{"dimension":"requests","amount":1}"#, "");
    let held: Vec<_> = (0..2)
        .map(|_| {
            let raw = raw.clone();
            tokio::spawn(async move { exchange(addr, raw.as_bytes()).await })
        })
        .collect();
    poll_until("two requests in flight", || {
        auth.waiting.load(Ordering::SeqCst) == 2
    })
    .await;
    for _ in 0..3 {
        let a = exchange(addr, raw.as_bytes()).await;
        assert_eq!(a.status, 503);
        assert_eq!(a.header("retry-after"), Some("1"));
        assert_eq!(a.json()["error"], "overloaded");
        assert_eq!(
            a.json()["message"],
            "the quota API is handling 2 requests, its most at once; retry after 1 s"
        );
    }
    // None of those was queued: only the two reached the authenticator.
    assert_eq!(auth.waiting.load(Ordering::SeqCst), 2);
    auth.gate.add_permits(100);
    for h in held {
        assert_eq!(h.await.unwrap().status, 200);
    }
    assert_eq!(charged(&engine), (2, 2));
    assert_eq!(exchange(addr, raw.as_bytes()).await.status, 200);
}

#[tokio::test]
async fn connections_beyond_the_cap_get_503_and_are_closed() {
    let engine = engine();
    let limits = Limits {
        max_connections: 2,
        ..Limits::default()
    };
    let addr = start(engine.clone(), tokens(), limits).await;
    let raw = check_request(r#"{"dimension":"requests","amount":1}"#, "");
    // Two connections kept open, each known to be accepted by an answer on it.
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(raw.as_bytes()).await.unwrap();
        assert_eq!(read_answer(&mut s).await.status, 200);
        open.push(s);
    }
    let mut third = TcpStream::connect(addr).await.unwrap();
    third.write_all(raw.as_bytes()).await.unwrap();
    let a = read_answer(&mut third).await;
    assert_eq!(a.status, 503);
    assert_eq!(a.header("retry-after"), Some("1"));
    assert_eq!(a.header("connection"), Some("close"));
    assert_eq!(
        a.json()["message"],
        "the quota API has 2 connections open, its most; retry after 1 s"
    );
    closed_after(&mut third, Instant::now()).await;
    assert_eq!(charged(&engine), (2, 2));
    // Once one closes, a new connection is served.
    drop(open.pop());
    let deadline = Instant::now() + DEADLINE;
    loop {
        let a = exchange(addr, raw.as_bytes()).await;
        if a.status == 200 {
            break;
        }
        assert_eq!(a.status, 503);
        assert!(Instant::now() < deadline, "no connection freed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(charged(&engine), (3, 3));
}

#[tokio::test]
async fn grpc_calls_beyond_the_in_flight_cap_are_shed_and_large_messages_refused() {
    use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
    use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::Entry;
    use envoy_types::pb::envoy::service::ratelimit::v3::RateLimitRequest;
    use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_client::RateLimitServiceClient;
    use landlord::engine_http::ratelimit as rls;

    let engine = engine();
    let auth = Arc::new(Gated {
        gate: Semaphore::new(0),
        waiting: AtomicUsize::new(0),
        inner: StaticTokens::new().member("gw", "gateway", &["gateways"]),
    });
    let limits = Limits {
        max_inflight: 2,
        max_body: 1024,
        ..Limits::default()
    };
    let settings = rls::Settings {
        allowed_groups: vec!["gateways".into()],
        unknown: rls::Unknown::Deny,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    rls::serve(
        listener,
        rls::RateLimiter::new(engine.clone(), auth.clone(), settings),
        limits,
    );
    let channel = tonic::transport::Endpoint::new(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let request = |pad: usize| {
        let mut r = tonic::Request::new(RateLimitRequest {
            domain: "requests".into(),
            descriptors: vec![RateLimitDescriptor {
                entries: vec![
                    Entry {
                        key: "tenant".into(),
                        value: "acme".into(),
                    },
                    Entry {
                        key: "pad".into(),
                        value: "p".repeat(pad),
                    },
                ],
                ..Default::default()
            }],
            hits_addend: 1,
        });
        r.metadata_mut()
            .insert("authorization", "Bearer gw".parse().unwrap());
        r
    };
    let held: Vec<_> = (0..2)
        .map(|_| {
            let mut client = RateLimitServiceClient::new(channel.clone());
            let r = request(1);
            tokio::spawn(async move { client.should_rate_limit(r).await })
        })
        .collect();
    poll_until("two calls in flight", || {
        auth.waiting.load(Ordering::SeqCst) == 2
    })
    .await;
    let mut client = RateLimitServiceClient::new(channel.clone());
    let shed = client.should_rate_limit(request(1)).await.unwrap_err();
    assert_eq!(shed.code(), tonic::Code::ResourceExhausted, "{shed:?}");
    assert_eq!(auth.waiting.load(Ordering::SeqCst), 2);
    auth.gate.add_permits(100);
    for h in held {
        h.await.unwrap().expect("answered");
    }
    assert_eq!(charged(&engine), (2, 2));
    let big = client.should_rate_limit(request(2000)).await.unwrap_err();
    assert_eq!(big.code(), tonic::Code::OutOfRange, "{big:?}");
    assert_eq!(charged(&engine), (2, 2));
}
