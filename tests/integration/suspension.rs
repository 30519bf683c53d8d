//! A suspended tenant starts nothing new, its owners only view, and the engine denies it;
//! resuming undoes all three.

use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::ResourceExt;
use kube::api::Api;
use landlord::api::{Phase, Tenant};
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn suspension_stops_new_pods_demotes_owners_and_denies_the_engine() {
    let c = Cluster::start("suspend", "5m").await;
    c.apply("apiVersion: landlord.dev/v1alpha1\nkind: TenantQuota\nmetadata: {name: small-$ID}\nspec:\n  hard: {pods: 5}\n  rates: [{name: api-calls, limit: 100, per: 1m}]\n").await;
    let tenant = |state: &str| {
        format!(
            "apiVersion: landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: paused-$ID}}\nspec:\n  quotaRef: small-$ID\n  state: {state}\n  owners: [{{kind: User, name: pat}}]\n  namespaces: [{{name: app}}]\n"
        )
    };
    let paused = c.name("paused");
    let app = format!("{paused}-app");
    let check_path = format!("/v1/tenants/{paused}/check");
    c.apply(&tenant("Active")).await;
    wait_condition(&c.client, &paused, "Ready", "True", "Ready").await;
    let token = service_account_token(&c.client, &app, "worker").await;
    let check = Some(json!({"dimension": "api-calls", "amount": 1}));
    let (status, _) = engine_call(c.engine_port, "POST", &check_path, &token, check.clone()).await;
    assert_eq!(status, 200);

    c.apply(&tenant("Suspended")).await;
    let tenants: Api<Tenant> = Api::all(c.client.clone());
    poll("phase Suspended", || async {
        tenants
            .get(&paused)
            .await
            .unwrap()
            .status
            .is_some_and(|s| s.phase == Some(Phase::Suspended))
    })
    .await;
    let bindings: Api<RoleBinding> = Api::namespaced(c.client.clone(), &app);
    let binding_names = || async {
        bindings
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .map(|b| b.name_any())
            .collect::<Vec<_>>()
    };
    poll("owners demoted to view", || async {
        binding_names().await == ["landlord-owners-view"]
    })
    .await;
    assert_eq!(hard(&c.client, &app).await["pods"], "0");
    let (status, body) =
        engine_call(c.engine_port, "POST", &check_path, &token, check.clone()).await;
    assert_eq!(
        (status, body["reason"].clone()),
        (403, json!("TenantSuspended")),
        "{body}"
    );

    c.apply(&tenant("Active")).await;
    poll("owners are admins again", || async {
        binding_names().await == ["landlord-owners-admin"]
    })
    .await;
    poll("engine allows again", || async {
        engine_call(c.engine_port, "POST", &check_path, &token, check.clone())
            .await
            .0
            == 200
    })
    .await;
    c.finish().await;
}
