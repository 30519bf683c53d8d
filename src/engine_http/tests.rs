//! The HTTP API through `tower::ServiceExt::oneshot`: status codes, bodies, headers.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;
use crate::engine::{
    Algorithm, AllowedSpec, GaugeSpec, ManualClock, RateSpec, SizeSpec, SlotSpec, TenantLimits,
};

struct Fixture {
    clock: Arc<ManualClock>,
    engine: Arc<Engine>,
    app: Router,
}

fn fixture() -> Fixture {
    let clock = Arc::new(ManualClock::at_rfc3339("2025-03-10T10:00:00.250Z"));
    let engine = Arc::new(Engine::with_clock(
        clock.clone(),
        ["requests", "llm-tokens"],
    ));
    engine
        .set_tenant(
            "acme",
            TenantLimits {
                rates: vec![RateSpec {
                    name: "requests".into(),
                    limit: 3,
                    per: Duration::from_secs(60),
                    burst: None,
                    algorithm: Algorithm::FixedWindow,
                }],
                concurrency: vec![SlotSpec {
                    name: "jobs".into(),
                    limit: 1,
                    lease: Duration::from_secs(30),
                }],
                gauges: vec![GaugeSpec {
                    name: "storage-bytes".into(),
                    limit: Some(100),
                }],
                ..Default::default()
            },
        )
        .unwrap();
    engine
        .set_tenant("globex", TenantLimits::default())
        .unwrap();
    let auth = StaticTokens::new()
        .tenant("acme-token", "acme")
        .admin("admin-token", "gateway");
    let app = router(engine.clone(), Arc::new(auth));
    Fixture { clock, engine, app }
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }
}

async fn call(
    app: &Router,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: impl Into<Body>,
) -> Answer {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let res = app
        .clone()
        .oneshot(req.body(body.into()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        text: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

async fn post(app: &Router, uri: &str, token: &str, body: Value) -> Answer {
    call(app, Method::POST, uri, Some(token), body.to_string()).await
}

#[tokio::test]
async fn check_allows_then_429_with_retry_after() {
    let f = fixture();
    let uri = "/v1/tenants/acme/check";
    let a = post(
        &f.app,
        uri,
        "acme-token",
        json!({"dimension": "requests", "amount": 2}),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.json(),
        json!({"allowed": true, "limit": 3, "remaining": 1, "retryAfterMs": 0})
    );
    let a = post(
        &f.app,
        uri,
        "acme-token",
        json!({"dimension": "requests", "amount": 2}),
    )
    .await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    // The minute window ends at 10:01:00, 59.75 s away: Retry-After rounds up to 60.
    assert_eq!(a.headers[header::RETRY_AFTER], "60");
    assert_eq!(
        a.json(),
        json!({"allowed": false, "limit": 3, "remaining": 1, "retryAfterMs": 59_750, "reason": "RateLimited", "current": 2})
    );
    f.clock.advance(Duration::from_secs(60));
    let a = post(
        &f.app,
        uri,
        "admin-token",
        json!({"dimension": "requests", "amount": 3}),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
}

#[tokio::test]
async fn auth_refusals() {
    let f = fixture();
    let body = json!({"dimension": "requests", "amount": 1}).to_string();
    let a = call(
        &f.app,
        Method::POST,
        "/v1/tenants/acme/check",
        None,
        body.clone(),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.headers[header::WWW_AUTHENTICATE], "Bearer");
    assert_eq!(a.json()["error"], "unauthorized");
    let a = call(
        &f.app,
        Method::POST,
        "/v1/tenants/acme/check",
        Some("wrong"),
        body.clone(),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.json()["message"], "invalid bearer token");
    // A tenant's token cannot act for another tenant, existing or not.
    for t in ["globex", "nobody"] {
        let a = call(
            &f.app,
            Method::POST,
            &format!("/v1/tenants/{t}/check"),
            Some("acme-token"),
            body.clone(),
        )
        .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{t}");
        assert_eq!(
            a.json()["message"],
            format!("system:serviceaccount:acme:default may not act for tenant \"{t}\"")
        );
    }
    let a = call(
        &f.app,
        Method::GET,
        "/v1/tenants/globex/stats",
        Some("admin-token"),
        Body::empty(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    // Nothing was charged by the refusals.
    assert_eq!(
        f.engine.stats("acme").unwrap().dimensions["requests"].allowed,
        0
    );
}

#[tokio::test]
async fn not_found_names_what_is_missing() {
    let f = fixture();
    let a = post(
        &f.app,
        "/v1/tenants/initech/check",
        "admin-token",
        json!({"dimension": "requests", "amount": 1}),
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(
        a.json(),
        json!({"error": "unknown_tenant", "message": "unknown tenant \"initech\""})
    );
    let a = post(
        &f.app,
        "/v1/tenants/acme/check",
        "acme-token",
        json!({"dimension": "cpu", "amount": 1}),
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(
        a.json(),
        json!({
            "error": "unknown_dimension",
            "message": "unknown dimension \"cpu\"; known dimensions: jobs, llm-tokens, requests, storage-bytes",
            "knownDimensions": ["jobs", "llm-tokens", "requests", "storage-bytes"],
        })
    );
}

#[tokio::test]
async fn bad_input_is_400_and_charges_nothing() {
    let f = fixture();
    let uri = "/v1/tenants/acme/check";
    let cases: Vec<(String, &str)> = vec![
        (
            json!({"dimension": "requests", "amount": 0}).to_string(),
            "amount must be a whole number from 1 to 9007199254740992, got 0",
        ),
        (
            json!({"dimension": "requests", "amount": -3}).to_string(),
            "amount must be a whole number from 1 to 9007199254740992, got -3",
        ),
        (
            json!({"dimension": "requests", "amount": 1.5}).to_string(),
            "amount must be a whole number from 1 to 9007199254740992, got 1.5",
        ),
        (
            json!({"dimension": "requests", "amount": 9_007_199_254_740_993u64}).to_string(),
            "amount must be a whole number from 1 to 9007199254740992, got 9007199254740993",
        ),
        (
            "{\"dimension\": \"requests\", \"amount\": ".into(),
            "malformed JSON body: EOF while parsing a value at line 1 column 36",
        ),
        (
            json!({"dimension": "requests"}).to_string(),
            "malformed JSON body: missing field `amount` at line 1 column 24",
        ),
        (
            json!({"dimension": "requests", "amount": 1, "extra": 1}).to_string(),
            "malformed JSON body: unknown field `extra`, expected one of `dimension`, `amount`, `attributes` at line 1 column 42",
        ),
        (
            String::new(),
            "request body is empty; expected a JSON object",
        ),
    ];
    for (body, message) in cases {
        let a = call(&f.app, Method::POST, uri, Some("acme-token"), body.clone()).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(a.json()["message"], message, "{body}");
    }
    // Over 1 MiB.
    let big = format!(
        "{{\"dimension\": \"requests\", \"amount\": 1, \"pad\": \"{}\"}}",
        "x".repeat(1 << 20)
    );
    let a = call(&f.app, Method::POST, uri, Some("acme-token"), big).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(a.json()["error"], "body_too_large");
    assert_eq!(
        a.json()["message"],
        "request body is larger than 1048576 bytes"
    );
    // A slot dimension is not checked like a rate.
    let a = post(
        &f.app,
        uri,
        "acme-token",
        json!({"dimension": "jobs", "amount": 1}),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.json()["error"], "wrong_kind");
    let a = post(
        &f.app,
        "/v1/tenants/acme/check:batch",
        "acme-token",
        json!({"items": []}),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        a.json()["message"],
        "items must hold 1 to 1000 entries, got 0"
    );
    let s = f.engine.stats("acme").unwrap();
    assert_eq!(
        (
            s.dimensions["requests"].allowed,
            s.dimensions["requests"].denied
        ),
        (0, 0)
    );
}

#[tokio::test]
async fn batch_form() {
    let f = fixture();
    let uri = "/v1/tenants/acme/check:batch";
    let items = json!({"items": [{"dimension": "requests", "amount": 1}, {"dimension": "llm-tokens", "amount": 500}]});
    let a = post(&f.app, uri, "acme-token", items).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.json(),
        json!({"allowed": true, "retryAfterMs": 0, "results": [
            {"allowed": true, "limit": 3, "remaining": 2, "retryAfterMs": 0},
            {"allowed": true, "limit": null, "remaining": null, "retryAfterMs": 0},
        ]})
    );
    let items = json!({"items": [{"dimension": "llm-tokens", "amount": 5}, {"dimension": "requests", "amount": 3}]});
    let a = post(&f.app, uri, "acme-token", items).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(a.headers[header::RETRY_AFTER], "60");
    assert_eq!(
        a.json()["results"][0],
        json!({"allowed": false, "limit": null, "remaining": null, "retryAfterMs": null})
    );
    assert_eq!(a.json()["results"][1]["reason"], "RateLimited");
    let u = f.engine.usage("acme", "2025-03".parse().unwrap()).unwrap();
    assert_eq!(u.dimensions["llm-tokens"].total, 500);
}

#[tokio::test]
async fn slots_and_gauges() {
    let f = fixture();
    let a = post(
        &f.app,
        "/v1/tenants/acme/slots/jobs/acquire",
        "acme-token",
        json!({}),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    let slot = a.json()["slot"].as_u64().unwrap();
    assert_eq!(a.json()["expiresAt"], "2025-03-10T10:00:30.25Z");
    let full = post(
        &f.app,
        "/v1/tenants/acme/slots/jobs/acquire",
        "acme-token",
        json!({}),
    )
    .await;
    assert_eq!(full.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(full.headers[header::RETRY_AFTER], "30");
    assert_eq!(full.json()["reason"], "ConcurrencyLimit");
    let r = post(
        &f.app,
        "/v1/tenants/acme/slots/jobs/renew",
        "acme-token",
        json!({"slot": slot}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = post(
        &f.app,
        "/v1/tenants/acme/slots/jobs/release",
        "acme-token",
        json!({"slot": slot}),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["released"].clone()),
        (StatusCode::OK, json!(true))
    );
    let r = post(
        &f.app,
        "/v1/tenants/acme/slots/jobs/release",
        "acme-token",
        json!({"slot": slot}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);

    let g = call(
        &f.app,
        Method::PUT,
        "/v1/tenants/acme/gauges/storage-bytes",
        Some("acme-token"),
        json!({"value": 100}).to_string(),
    )
    .await;
    assert_eq!(g.status, StatusCode::OK);
    let g = call(
        &f.app,
        Method::PUT,
        "/v1/tenants/acme/gauges/storage-bytes",
        Some("acme-token"),
        json!({"value": 101}).to_string(),
    )
    .await;
    assert_eq!(g.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(g.headers.get(header::RETRY_AFTER).is_none());
    assert_eq!(g.json()["reason"], "GaugeLimit");
    assert_eq!(g.json()["current"], 100);
}

#[tokio::test]
async fn suspended_and_hibernated_are_403_each_with_its_reason() {
    for (hibernated, reason) in [(false, "TenantSuspended"), (true, "TenantHibernated")] {
        let f = fixture();
        f.engine
            .set_tenant(
                "globex",
                TenantLimits {
                    suspended: true,
                    hibernated,
                    ..Default::default()
                },
            )
            .unwrap();
        let a = post(
            &f.app,
            "/v1/tenants/globex/check",
            "admin-token",
            json!({"dimension": "requests", "amount": 1}),
        )
        .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN);
        assert_eq!(
            a.json(),
            json!({"allowed": false, "limit": null, "remaining": null, "retryAfterMs": null, "reason": reason})
        );
    }
}

#[tokio::test]
async fn stats_and_usage_json_and_csv() {
    let f = fixture();
    post(
        &f.app,
        "/v1/tenants/acme/check",
        "acme-token",
        json!({"dimension": "requests", "amount": 2}),
    )
    .await;
    f.clock.advance(Duration::from_secs(3600));
    post(
        &f.app,
        "/v1/tenants/acme/check",
        "acme-token",
        json!({"dimension": "llm-tokens", "amount": 700}),
    )
    .await;
    post(
        &f.app,
        "/v1/tenants/acme/check",
        "acme-token",
        json!({"dimension": "requests", "amount": 1}),
    )
    .await;

    let s = call(
        &f.app,
        Method::GET,
        "/v1/tenants/acme/stats",
        Some("acme-token"),
        Body::empty(),
    )
    .await;
    assert_eq!(s.status, StatusCode::OK);
    let s = s.json();
    assert_eq!(s["period"], "2025-03");
    assert_eq!(s["dimensions"]["requests"]["allowed"], 2);
    assert_eq!(s["dimensions"]["requests"]["units"], 3);
    assert_eq!(
        s["dimensions"]["requests"]["rates"],
        json!([{"algorithm": "fixedWindow", "limit": 3, "perMs": 60_000, "used": 1, "remaining": 2}])
    );
    assert_eq!(
        s["dimensions"]["storage-bytes"]["gauge"],
        json!({"limit": 100, "value": 0})
    );

    let u = call(
        &f.app,
        Method::GET,
        "/v1/tenants/acme/usage?period=2025-03",
        Some("acme-token"),
        Body::empty(),
    )
    .await;
    assert_eq!(u.status, StatusCode::OK);
    assert_eq!(
        u.json()["dimensions"]["requests"],
        json!({"total": 3, "hours": [
            {"hour": "2025-03-10T10:00:00Z", "units": 2},
            {"hour": "2025-03-10T11:00:00Z", "units": 1},
        ]})
    );
    let csv = call(
        &f.app,
        Method::GET,
        "/v1/tenants/acme/usage?period=2025-03&format=csv",
        Some("acme-token"),
        Body::empty(),
    )
    .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(csv.headers[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    assert_eq!(
        csv.text,
        "tenant,period,dimension,hour,units\n\
         acme,2025-03,jobs,total,0\n\
         acme,2025-03,llm-tokens,2025-03-10T11:00:00Z,700\n\
         acme,2025-03,llm-tokens,total,700\n\
         acme,2025-03,requests,2025-03-10T10:00:00Z,2\n\
         acme,2025-03,requests,2025-03-10T11:00:00Z,1\n\
         acme,2025-03,requests,total,3\n"
    );
    for (q, message) in [
        (
            "period=2025-3",
            "period must be a month written YYYY-MM (e.g. 2025-03), got \"2025-3\"",
        ),
        ("format=xml", "format must be json or csv, got \"xml\""),
    ] {
        let a = call(
            &f.app,
            Method::GET,
            &format!("/v1/tenants/acme/usage?{q}"),
            Some("acme-token"),
            Body::empty(),
        )
        .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{q}");
        assert_eq!(a.json()["message"], message, "{q}");
    }
}

#[tokio::test]
async fn sizes_are_413_and_attributes_not_allowed_403_charging_nothing() {
    let f = fixture();
    f.engine
        .set_tenant(
            "globex",
            TenantLimits {
                sizes: vec![SizeSpec {
                    name: "task-bytes".into(),
                    max: 1 << 20,
                }],
                allowed: vec![AllowedSpec {
                    name: "queue".into(),
                    values: vec!["default".into(), "emails".into()],
                }],
                ..Default::default()
            },
        )
        .unwrap();
    let uri = "/v1/tenants/globex/check";
    let a = post(
        &f.app,
        uri,
        "admin-token",
        json!({"dimension": "task-bytes", "amount": 2_097_152}),
    )
    .await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(a.headers.get(header::RETRY_AFTER).is_none());
    assert_eq!(
        a.json(),
        json!({"allowed": false, "limit": 1_048_576, "remaining": null, "retryAfterMs": null, "reason": "TooLarge", "current": 2_097_152})
    );
    let a = post(
        &f.app,
        uri,
        "admin-token",
        json!({"dimension": "task-bytes", "amount": 1_048_576, "attributes": {"queue": "reports"}}),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(
        a.json(),
        json!({"allowed": false, "limit": null, "remaining": null, "retryAfterMs": null, "reason": "NotAllowed"})
    );
    let a = post(
        &f.app,
        &format!("{uri}:batch"),
        "admin-token",
        json!({"items": [
            {"dimension": "requests", "amount": 1, "attributes": {"queue": "emails"}},
            {"dimension": "task-bytes", "amount": 1_048_577},
        ]}),
    )
    .await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(a.json()["results"][1]["reason"], "TooLarge");
    let a = post(
        &f.app,
        uri,
        "admin-token",
        json!({"dimension": "task-bytes", "amount": 1_048_576, "attributes": {"queue": "emails"}}),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    let s = f.engine.stats("globex").unwrap();
    assert_eq!(
        (
            s.dimensions["task-bytes"].units,
            s.dimensions["requests"].units
        ),
        (1_048_576, 0)
    );
}

/// A replica handing over closes its engine: every kind of decision is 503 with Retry-After
/// (the caller retries at the next leader), nothing is charged, and usage stays readable.
#[tokio::test]
async fn a_closed_engine_answers_503_and_charges_nothing() {
    let f = fixture();
    let a = post(
        &f.app,
        "/v1/tenants/acme/check",
        "acme-token",
        json!({"dimension": "requests", "amount": 1}),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    f.engine.close();
    let refused = [
        post(
            &f.app,
            "/v1/tenants/acme/check",
            "acme-token",
            json!({"dimension": "requests", "amount": 1}),
        )
        .await,
        post(
            &f.app,
            "/v1/tenants/acme/check",
            "acme-token",
            json!({"dimension": "requests", "amount": 1, "attributes": {"queue": "emails"}}),
        )
        .await,
        post(
            &f.app,
            "/v1/tenants/acme/check:batch",
            "acme-token",
            json!({"items": [{"dimension": "llm-tokens", "amount": 5}]}),
        )
        .await,
        post(
            &f.app,
            "/v1/tenants/acme/slots/jobs/acquire",
            "acme-token",
            json!({}),
        )
        .await,
        call(
            &f.app,
            Method::PUT,
            "/v1/tenants/acme/gauges/storage-bytes",
            Some("acme-token"),
            json!({"value": 1}).to_string(),
        )
        .await,
    ];
    for (i, r) in refused.iter().enumerate() {
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "request {i}");
        assert_eq!(r.headers[header::RETRY_AFTER], "1", "request {i}");
        assert_eq!(
            r.json(),
            json!({"error": "closed", "message": "this replica is handing over and decides no more; retry, the next leader answers"}),
            "request {i}"
        );
    }
    let u = f.engine.usage("acme", "2025-03".parse().unwrap()).unwrap();
    assert_eq!(u.dimensions["requests"].total, 1);
    assert_eq!(u.dimensions["llm-tokens"].total, 0);
}
