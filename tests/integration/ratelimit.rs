//! Envoy's rate limit service in the operator, driven by a gRPC client built from the same
//! `envoy-types`: allowed and refused descriptors with their limits and headers, batches all
//! or nothing, size and allowed-value refusals, an unknown tenant under both defaults, a
//! suspended tenant, and callers refused by token and by group.

use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::Entry;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::rate_limit::Unit;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::{
    Code, DescriptorStatus, RateLimit,
};
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_client::RateLimitServiceClient;
use envoy_types::pb::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};
use envoy_types::pb::google::protobuf::UInt64Value;
use kube::api::Api;
use landlord::api::{Phase, Tenant};

use crate::support::*;

/// A descriptor: its entries and its own hits_addend.
fn descriptor(entries: &[(&str, &str)], hits: u64) -> RateLimitDescriptor {
    RateLimitDescriptor {
        entries: entries
            .iter()
            .map(|(k, v)| Entry {
                key: k.to_string(),
                value: v.to_string(),
            })
            .collect(),
        hits_addend: Some(UInt64Value { value: hits }),
        ..Default::default()
    }
}

/// One ShouldRateLimit call with `token`: the response, or the gRPC status code.
async fn ask(
    port: u16,
    token: Option<&str>,
    descriptors: Vec<RateLimitDescriptor>,
) -> Result<RateLimitResponse, tonic::Code> {
    let Ok(mut client) = RateLimitServiceClient::connect(format!("http://127.0.0.1:{port}")).await
    else {
        return Err(tonic::Code::Unavailable);
    };
    let mut request = tonic::Request::new(RateLimitRequest {
        domain: "gateway".into(),
        descriptors,
        hits_addend: 1,
    });
    if let Some(token) = token {
        let value = format!("Bearer {token}").parse().unwrap();
        request.metadata_mut().insert("authorization", value);
    }
    client
        .should_rate_limit(request)
        .await
        .map(tonic::Response::into_inner)
        .map_err(|s| s.code())
}

/// (code, requests per unit, remaining) of each status.
fn codes(r: &RateLimitResponse) -> Vec<(Code, Option<u32>, u32)> {
    r.statuses
        .iter()
        .map(|s| {
            (
                Code::try_from(s.code).unwrap(),
                s.current_limit.as_ref().map(|l| l.requests_per_unit),
                s.limit_remaining,
            )
        })
        .collect()
}

fn header<'r>(r: &'r RateLimitResponse, key: &str) -> Option<&'r str> {
    r.response_headers_to_add
        .iter()
        .find(|h| h.key == key)
        .map(|h| h.value.as_str())
}

#[tokio::test]
async fn envoys_rate_limit_service_decides_with_the_engine() {
    let mut c = Cluster::start("ratelimit", "5m").await;
    let rls_port = free_port();
    let rls_addr = format!("127.0.0.1:{rls_port}");
    let gateway_group = format!("system:serviceaccounts:{}", c.name("gw"));
    c.extra_args(&[
        "--rls-addr",
        &rls_addr,
        "--rls-allowed-group",
        &gateway_group,
    ]);
    c.restart_operator();
    c.apply("apiVersion: landlord.dev/v1alpha1\nkind: TenantQuota\nmetadata: {name: gated-$ID}\nspec:\n  rates: [{name: api-calls, limit: 5, per: 1h, algorithm: FixedWindow}]\n  sizes: [{name: task-bytes, max: 1Mi}]\n  allowed: [{name: queue, values: [default, emails]}]\n").await;
    c.apply("apiVersion: landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {name: alpha-$ID}\nspec:\n  quotaRef: gated-$ID\n  namespaces: [{name: app}]\n---\napiVersion: landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {name: paused-$ID}\nspec:\n  quotaRef: gated-$ID\n  state: Suspended\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: gw-$ID}\n").await;
    let (alpha, paused) = (c.name("alpha"), c.name("paused"));
    wait_condition(&c.client, &alpha, "Ready", "True", "Ready").await;
    let tenants: Api<Tenant> = Api::all(c.client.clone());
    poll("paused is Suspended", || async {
        tenants
            .get(&paused)
            .await
            .unwrap()
            .status
            .is_some_and(|s| s.phase == Some(Phase::Suspended))
    })
    .await;
    let gateway = service_account_token(&c.client, &c.name("gw"), "envoy").await;
    let workload = service_account_token(&c.client, &format!("{alpha}-app"), "worker").await;
    let gw = Some(gateway.as_str());
    let api_calls =
        |tenant: &str, hits| descriptor(&[("tenant", tenant), ("dimension", "api-calls")], hits);
    let task_bytes = |hits| descriptor(&[("tenant", &alpha), ("dimension", "task-bytes")], hits);
    // Ready once the engine knows alpha's plan: an oversized task is refused (charging
    // nothing), where an unknown tenant would be allowed.
    poll("rate limit service answers with alpha's plan", || async {
        ask(rls_port, gw, vec![task_bytes(2 << 20)])
            .await
            .is_ok_and(|r| r.overall_code == Code::OverLimit as i32)
    })
    .await;

    // Allowed: the limit in Envoy's units, what remains, and the headers.
    let r = ask(rls_port, gw, vec![api_calls(&alpha, 2)]).await.unwrap();
    assert_eq!(r.overall_code, Code::Ok as i32);
    let status = &r.statuses[0];
    assert_eq!(
        (status.current_limit.clone(), status.limit_remaining),
        (
            Some(RateLimit {
                name: "api-calls".into(),
                requests_per_unit: 5,
                unit: Unit::Hour as i32,
            }),
            3
        )
    );
    let reset = status.duration_until_reset.unwrap();
    assert!((1..=3600).contains(&reset.seconds), "{reset:?}");
    assert_eq!(header(&r, "x-ratelimit-limit"), Some("5, 5;w=3600"));
    assert_eq!(header(&r, "x-ratelimit-remaining"), Some("3"));

    // Refused: over the window, nothing charged.
    let r = ask(rls_port, gw, vec![api_calls(&alpha, 4)]).await.unwrap();
    assert_eq!(r.overall_code, Code::OverLimit as i32);
    assert_eq!(codes(&r), [(Code::OverLimit, Some(5), 3)]);
    assert_eq!(header(&r, "x-ratelimit-remaining"), Some("3"));

    // Batched: all pass and are charged, or none is.
    let with_queue = |queue| {
        descriptor(
            &[
                ("tenant", &alpha),
                ("dimension", "messages"),
                ("queue", queue),
            ],
            1,
        )
    };
    let r = ask(
        rls_port,
        gw,
        vec![
            api_calls(&alpha, 1),
            task_bytes(512 << 10),
            with_queue("emails"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r.overall_code, Code::Ok as i32);
    assert_eq!(
        codes(&r),
        [
            (Code::Ok, Some(5), 2),
            (Code::Ok, None, 0),
            (Code::Ok, None, 0)
        ]
    );
    let r = ask(
        rls_port,
        gw,
        vec![api_calls(&alpha, 1), task_bytes((1 << 20) + 1)],
    )
    .await
    .unwrap();
    assert_eq!(r.overall_code, Code::OverLimit as i32);
    assert_eq!(
        codes(&r),
        [(Code::Ok, Some(5), 2), (Code::OverLimit, None, 0)]
    );
    let r = ask(
        rls_port,
        gw,
        vec![api_calls(&alpha, 1), with_queue("reports")],
    )
    .await
    .unwrap();
    assert_eq!(
        codes(&r),
        [(Code::Ok, Some(5), 2), (Code::OverLimit, None, 0)]
    );

    // Unknown tenant, by default allowed and left out: alpha's part is charged.
    let nobody = api_calls("nobody", 1);
    let r = ask(rls_port, gw, vec![api_calls(&alpha, 1), nobody.clone()])
        .await
        .unwrap();
    assert_eq!(r.overall_code, Code::Ok as i32);
    assert_eq!(codes(&r), [(Code::Ok, Some(5), 1), (Code::Ok, None, 0)]);

    // A suspended tenant is over its limit whatever it asks (polled: the engine may learn of
    // the suspension just after the phase is written).
    let refused = DescriptorStatus {
        code: Code::OverLimit as i32,
        ..Default::default()
    };
    poll("the suspended tenant is refused", || async {
        ask(rls_port, gw, vec![api_calls(&paused, 1)])
            .await
            .is_ok_and(|r| {
                r.overall_code == Code::OverLimit as i32 && r.statuses == [refused.clone()]
            })
    })
    .await;

    // Callers: no token or a bad one is unauthenticated; a tenant's own workload is not in
    // the gateways' group.
    for token in [None, Some("not-a-token")] {
        assert_eq!(
            ask(rls_port, token, vec![api_calls(&alpha, 1)])
                .await
                .unwrap_err(),
            tonic::Code::Unauthenticated
        );
    }
    assert_eq!(
        ask(rls_port, Some(&workload), vec![api_calls(&alpha, 1)])
            .await
            .unwrap_err(),
        tonic::Code::PermissionDenied
    );

    // With --rls-unknown=deny an unknown tenant refuses the request; nothing is charged.
    // (Window counts live in memory: the new process starts alpha's window afresh.)
    c.extra_args(&[
        "--rls-addr",
        &rls_addr,
        "--rls-allowed-group",
        &gateway_group,
        "--rls-unknown",
        "deny",
    ]);
    c.restart_operator();
    // Unknown is refused now, so the probe is a task that fits (task-bytes are only metered).
    poll("rate limit service back with alpha's plan", || async {
        ask(rls_port, gw, vec![task_bytes(1)])
            .await
            .is_ok_and(|r| r.overall_code == Code::Ok as i32)
    })
    .await;
    let r = ask(rls_port, gw, vec![api_calls(&alpha, 1), nobody])
        .await
        .unwrap();
    assert_eq!(r.overall_code, Code::OverLimit as i32);
    assert_eq!(
        codes(&r),
        [(Code::Ok, Some(5), 5), (Code::OverLimit, None, 0)]
    );
    let r = ask(rls_port, gw, vec![api_calls(&alpha, 1)]).await.unwrap();
    assert_eq!(codes(&r), [(Code::Ok, Some(5), 4)]);
    c.finish().await;
}
