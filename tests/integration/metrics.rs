//! The operator's own metrics of a tenant: its quota utilization and cost as its status says,
//! gone with the tenant; and the leader gauge of an operator that elects no leader (the
//! fail-over test checks it on a leader and a standby).

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams};
use landlord::api::Tenant;
use serde_json::json;

use crate::support::*;

/// The value of one sample, `None` when the series is not exposed.
async fn sample(port: u16, metric: &str, labels: &str) -> Option<f64> {
    samples(&metrics_text(port).await, metric)
        .get(labels)
        .copied()
}

#[tokio::test]
async fn a_tenants_utilization_and_cost_are_exported_until_it_is_deleted() {
    let c = Cluster::start("metrics", "5m").await;
    c.apply("apiVersion: landlord.dev/v1alpha1\nkind: TenantQuota\nmetadata: {name: four-$ID}\nspec:\n  hard: {pods: 4}\n  rates: [{name: api-calls, limit: 100, per: 1m}]\n  pricing: {currency: USD, items: [{dimension: api-calls, unit: 1, price: '0.01'}]}\n").await;
    c.apply("apiVersion: landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {name: gauged-$ID}\nspec:\n  quotaRef: four-$ID\n  deletionPolicy: Delete\n  namespaces: [{name: app}]\n").await;
    let tenant = c.name("gauged");
    wait_condition(&c.client, &tenant, "Ready", "True", "Ready").await;
    let port = c.metrics_port;
    let pods_labels = format!(r#"tenant="{tenant}",resource="pods""#);
    let cost_labels = format!(r#"tenant="{tenant}",currency="USD""#);
    const RATIO: &str = "landlord_tenant_quota_utilization_ratio";
    const COST: &str = "landlord_tenant_cost";

    // An operator without leader election is the one writer.
    assert_eq!(sample(port, "landlord_leader", "").await, Some(1.0));
    poll(
        "utilization 0 and cost 0 before anything is used",
        || async {
            sample(port, RATIO, &pods_labels).await == Some(0.0)
                && sample(port, COST, &cost_labels).await == Some(0.0)
        },
    )
    .await;

    // Three pods of four: 0.75, the only resource of the plan with a limit.
    let ns = format!("{tenant}-app");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), &ns);
    for i in 0..3 {
        let pod = json!({"metadata": {"name": format!("p{i}")}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
        pods.create(
            &PostParams::default(),
            &serde_json::from_value(pod).unwrap(),
        )
        .await
        .unwrap();
    }
    poll("utilization 0.75", || async {
        sample(port, RATIO, &pods_labels).await == Some(0.75)
    })
    .await;
    let text = metrics_text(port).await;
    let mine: Vec<(String, f64)> = samples(&text, RATIO)
        .into_iter()
        .filter(|(labels, _)| labels.contains(&format!(r#"tenant="{tenant}""#)))
        .collect();
    assert_eq!(mine, [(pods_labels.clone(), 0.75)], "{text}");
    // The gauge is set as the status is written: the status agrees once the write lands.
    let tenants = Api::<Tenant>::all(c.client.clone());
    poll("the status says 75 %", || async {
        tenants
            .get(&tenant)
            .await
            .unwrap()
            .status
            .is_some_and(|s| s.usage.get("pods").and_then(|u| u.utilization) == Some(75))
    })
    .await;

    // Five calls at 0.01 USD: the status-only usage refresh brings the cost without a reconcile.
    let token = service_account_token(&c.client, &ns, "worker").await;
    let body = Some(json!({"dimension": "api-calls", "amount": 5}));
    let path = format!("/v1/tenants/{tenant}/check");
    let (code, answer) = engine_call(c.engine_port, "POST", &path, &token, body).await;
    assert_eq!((code, &answer["allowed"]), (200, &json!(true)), "{answer}");
    poll("cost 0.05 USD", || async {
        sample(port, COST, &cost_labels).await == Some(0.05)
    })
    .await;

    // Deleted: its series go.
    Api::<Tenant>::all(c.client.clone())
        .delete(&tenant, &DeleteParams::default())
        .await
        .unwrap();
    poll("the deleted tenant's series removed", || async {
        let text = metrics_text(port).await;
        text.lines()
            .filter(|l| l.starts_with(RATIO) || l.starts_with(COST))
            .all(|l| !l.contains(&format!(r#"tenant="{tenant}""#)))
    })
    .await;
    assert_eq!(sample(port, "landlord_leader", "").await, Some(1.0));
    c.finish().await;
}
