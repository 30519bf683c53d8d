//! Property tests of the HTTP API with random and malformed requests: whatever arrives, the
//! answer is never a panic or a 5xx, a refusal charges nothing, and every refusal says what
//! was wrong. Case counts stay small so `cargo test` stays fast.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use proptest::prelude::*;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;
use crate::engine::{
    Algorithm, AllowedSpec, GaugeSpec, RateSpec, SizeSpec, SlotSpec, TenantLimits,
};

fn fixture() -> (Arc<Engine>, Router) {
    let engine = Arc::new(Engine::new(["requests", "llm-tokens"]));
    engine
        .set_tenant(
            "acme",
            TenantLimits {
                rates: vec![RateSpec {
                    name: "requests".into(),
                    limit: 1_000,
                    per: Duration::from_secs(60),
                    burst: None,
                    algorithm: Algorithm::TokenBucket,
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
                sizes: vec![SizeSpec {
                    name: "task-bytes".into(),
                    max: 10,
                }],
                allowed: vec![AllowedSpec {
                    name: "queue".into(),
                    values: vec!["default".into()],
                }],
                ..Default::default()
            },
        )
        .expect("valid limits");
    let auth = StaticTokens::new()
        .tenant("acme-token", "acme")
        .admin("admin-token", "gateway");
    let app = router(engine.clone(), Arc::new(auth));
    (engine, app)
}

/// What a refusal must leave alone: units and allowed decisions per dimension.
fn charges(engine: &Engine) -> Vec<(String, u64, u64)> {
    let stats = engine.stats("acme").expect("acme");
    stats
        .dimensions
        .iter()
        .map(|(d, s)| (d.clone(), s.units, s.allowed))
        .collect()
}

struct Answer {
    status: StatusCode,
    body: Value,
}

fn send(app: &Router, method: Method, uri: &str, body: Vec<u8>) -> Answer {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, "Bearer acme-token")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .expect("a request");
        let res = app.clone().oneshot(req).await.expect("infallible");
        let status = res.status();
        let bytes = res.into_body().collect().await.expect("a body").to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "{status}: not JSON ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        Answer { status, body }
    })
}

/// The routes that take a body, and their methods (`acquire` last: it reads none).
const ROUTES: [(&str, &str); 6] = [
    ("POST", "/v1/tenants/acme/check"),
    ("POST", "/v1/tenants/acme/check:batch"),
    ("POST", "/v1/tenants/acme/slots/jobs/release"),
    ("POST", "/v1/tenants/acme/slots/jobs/renew"),
    ("PUT", "/v1/tenants/acme/gauges/storage-bytes"),
    ("POST", "/v1/tenants/acme/slots/jobs/acquire"),
];

/// Every answer but a success is a 4xx that says why: an error with a message, or a decision
/// with its reason; and a refusal charges nothing.
fn judge(engine: &Engine, before: &[(String, u64, u64)], a: &Answer) -> Result<(), TestCaseError> {
    prop_assert!(
        a.status.is_success() || a.status.is_client_error(),
        "{}: {}",
        a.status,
        a.body
    );
    if !a.status.is_success() {
        let said = a.body["message"]
            .as_str()
            .or_else(|| a.body["reason"].as_str())
            .or_else(|| {
                // A refused batch: the reason of the item that refused it.
                a.body["results"]
                    .as_array()?
                    .iter()
                    .find_map(|r| r["reason"].as_str())
            });
        prop_assert!(
            said.is_some_and(|s| !s.is_empty()),
            "{}: {}",
            a.status,
            a.body
        );
        prop_assert_eq!(charges(engine), before.to_vec(), "{}: {}", a.status, a.body);
    }
    Ok(())
}

/// JSON values of every type, with the API's field names and dimensions over-represented.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (0u64..20).prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop_oneof![
            Just("requests"),
            Just("jobs"),
            Just("storage-bytes"),
            Just("task-bytes"),
            Just("llm-tokens"),
            Just("queue"),
            Just("default"),
        ]
        .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop_oneof![
            Just("dimension"),
            Just("amount"),
            Just("attributes"),
            Just("items"),
            Just("slot"),
            Just("value"),
        ]
        .prop_map(String::from),
        1 => "[a-zA-Z]{1,8}",
    ]
}

/// Bodies close to a valid check, with one thing wrong or odd.
fn near_check() -> impl Strategy<Value = String> {
    let amount = prop_oneof![
        (0u64..20).prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        Just("1e400".to_string()),
        Just("-0".to_string()),
        Just("1.5".to_string()),
        Just("18446744073709551616".to_string()),
        Just("99999999999999999999999999999999999999".to_string()),
        Just("\"1\"".to_string()),
        Just("null".to_string()),
    ];
    let dimension = prop_oneof![
        Just("\"requests\"".to_string()),
        Just("\"task-bytes\"".to_string()),
        Just("\"jobs\"".to_string()),
        Just("\"storage-bytes\"".to_string()),
        Just("\"nope\"".to_string()),
        Just("\"\"".to_string()),
        Just("7".to_string()),
    ];
    let extra = prop_oneof![
        Just(String::new()),
        Just(r#","attributes":{"queue":"default"}"#.to_string()),
        Just(r#","attributes":{"queue":"other"}"#.to_string()),
        Just(r#","attributes":{"queue":7}"#.to_string()),
        Just(r#","attributes":[]"#.to_string()),
        Just(r#","unknown":true"#.to_string()),
    ];
    (dimension, amount, extra)
        .prop_map(|(d, a, e)| format!(r#"{{"dimension":{d},"amount":{a}{e}}}"#))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    #[test]
    fn random_bytes_are_400_malformed_json(route in 0..ROUTES.len() - 1, body in prop::collection::vec(any::<u8>(), 0..64)) {
        prop_assume!(serde_json::from_slice::<Value>(&body).is_err());
        let (engine, app) = fixture();
        let before = charges(&engine);
        let (method, uri) = ROUTES[route];
        let a = send(&app, method.parse().expect("a method"), uri, body.clone());
        judge(&engine, &before, &a)?;
        prop_assert_eq!(a.status, StatusCode::BAD_REQUEST);
        let message = a.body["message"].as_str().unwrap_or_default();
        prop_assert!(
            message.starts_with("malformed JSON body: ") || message == "request body is empty; expected a JSON object",
            "{}", message
        );
    }

    #[test]
    fn random_json_is_answered_and_refusals_charge_nothing(route in 0..ROUTES.len(), body in value()) {
        let (engine, app) = fixture();
        let before = charges(&engine);
        let (method, uri) = ROUTES[route];
        let a = send(&app, method.parse().expect("a method"), uri, body.to_string().into_bytes());
        judge(&engine, &before, &a)?;
    }

    #[test]
    fn near_valid_checks_are_answered_and_refusals_charge_nothing(body in near_check(), batch in any::<bool>()) {
        let (engine, app) = fixture();
        let before = charges(&engine);
        let (uri, body) = if batch {
            // The same item next to a good one: all or nothing.
            ("/v1/tenants/acme/check:batch", format!(r#"{{"items":[{{"dimension":"requests","amount":1}},{body}]}}"#))
        } else {
            ("/v1/tenants/acme/check", body)
        };
        let a = send(&app, Method::POST, uri, body.clone().into_bytes());
        judge(&engine, &before, &a)?;
        let valid = serde_json::from_str::<Value>(&body).is_ok();
        if !valid {
            prop_assert_eq!(a.status, StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn any_tenant_or_dimension_in_the_path_is_answered(tenant in "[^/?#]{1,20}", dimension in "[^/?#]{1,20}") {
        let (engine, app) = fixture();
        let enc = |s: &str| s.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
        let body = json!({"dimension": dimension, "amount": 1}).to_string().into_bytes();
        for (method, uri) in [
            (Method::POST, format!("/v1/tenants/{}/check", enc(&tenant))),
            (Method::POST, format!("/v1/tenants/acme/slots/{}/acquire", enc(&dimension))),
            (Method::PUT, format!("/v1/tenants/acme/gauges/{}", enc(&dimension))),
        ] {
            let before = charges(&engine);
            let a = send(&app, method, &uri, body.clone());
            judge(&engine, &before, &a)?;
        }
    }
}
