//! The quota engine inside the operator: ServiceAccount tokens checked by TokenReview,
//! usage metered into TenantUsage, surviving a restart, and summarised on the Tenant.

use kube::api::Api;
use landlord::api::Tenant;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn the_quota_engine_authenticates_meters_and_survives_a_restart() {
    let mut c = Cluster::start("engine", "5m").await;
    c.apply("apiVersion: landlord.dev/v1alpha1\nkind: TenantQuota\nmetadata: {name: metered-$ID}\nspec:\n  rates: [{name: api-calls, limit: 100, per: 1m}]\n  pricing: {currency: USD, items: [{dimension: api-calls, unit: 1, price: '0.01'}]}\n").await;
    for t in ["alpha", "beta"] {
        c.apply(&format!("apiVersion: landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: {t}-$ID}}\nspec:\n  quotaRef: metered-$ID\n  namespaces: [{{name: app}}]\n")).await;
        wait_condition(&c.client, &c.name(t), "Ready", "True", "Ready").await;
    }
    let (alpha, beta) = (c.name("alpha"), c.name("beta"));
    let token = service_account_token(&c.client, &format!("{alpha}-app"), "worker").await;
    let check = |amount: u64| Some(json!({"dimension": "api-calls", "amount": amount}));
    let port = c.engine_port;
    let check_path = |t: &str| format!("/v1/tenants/{t}/check");

    // A workload of tenant alpha may charge alpha, not beta; no token is 401.
    let (status, body) = engine_call(port, "POST", &check_path(&alpha), &token, check(5)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["allowed"], true);
    assert_eq!(body["remaining"], 95);
    let (status, _) = engine_call(port, "POST", &check_path(&beta), &token, check(1)).await;
    assert_eq!(status, 403);
    // A namespace labelled for alpha by someone else is not alpha's: alpha's status does not
    // list it, so its workloads speak for nobody.
    c.apply("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: rogue-$ID\n  labels: {landlord.dev/tenant: alpha-$ID}\n")
        .await;
    let rogue = service_account_token(&c.client, &c.name("rogue"), "worker").await;
    let (status, body) = engine_call(port, "POST", &check_path(&alpha), &rogue, check(1)).await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = engine_call(port, "POST", &check_path(&alpha), "not-a-token", check(1)).await;
    assert_eq!(status, 401);

    // The ledger flushes within its interval.
    let period = jiff::Timestamp::now().strftime("%Y-%m").to_string();
    let client = c.client.clone();
    let allowed = |n: u64| {
        let (client, alpha) = (client.clone(), alpha.clone());
        async move { ledger_allowed(&client, &alpha, "api-calls").await == n }
    };
    poll("usage flushed", || allowed(5)).await;

    // A restart reloads the month: the next charge counts on top of the 5.
    c.restart_operator();
    let stats = format!("/v1/tenants/{alpha}/stats");
    poll("engine back with alpha's usage", || async {
        let (status, body) = engine_call(port, "GET", &stats, &token, None).await;
        status == 200 && body["dimensions"]["api-calls"]["units"] == 5
    })
    .await;
    // Usage is durable; limiter state is not: the new process starts with a full bucket.
    let (status, body) = engine_call(port, "POST", &check_path(&alpha), &token, check(3)).await;
    assert_eq!(
        (status, body["remaining"].clone()),
        (200, json!(97)),
        "{body}"
    );
    poll("usage after restart flushed", || allowed(8)).await;

    // The Tenant's status carries rates and cost.
    let tenants: Api<Tenant> = Api::all(c.client.clone());
    poll("tenant status shows usage and cost", || async {
        let status = tenants
            .get(&alpha)
            .await
            .unwrap()
            .status
            .unwrap_or_default();
        status
            .rates
            .get("api-calls")
            .is_some_and(|r| r.allowed == 8 && r.limit.as_deref() == Some("100/1m"))
            && status
                .cost
                .as_ref()
                .is_some_and(|c| c.amount == "0.08" && c.currency == "USD" && c.period == period)
    })
    .await;
    c.finish().await;
}
