//! A tenant's objects are created, changed and removed exactly; what is not Landlord's is
//! never touched.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ResourceQuota};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};
use landlord::api::{Tenant, TenantQuota};
use serde_json::json;

use crate::support::*;

pub const PLAN: &str = "apiVersion: landlord.dev/v1alpha1\nkind: TenantQuota\nmetadata: {name: team-$ID}\nspec:\n  hard: {pods: 10, requests.cpu: '2'}\n  namespaceHard: {count/services: 5}\n  podSecurity: restricted\n";

#[tokio::test]
async fn a_tenant_is_provisioned_updated_and_deleted() {
    let c = Cluster::start("lifecycle", "5m").await;
    let (shop, web, db, jobs) = (
        c.name("shop"),
        c.name("shop") + "-web",
        c.name("shop") + "-db",
        c.name("shop") + "-jobs",
    );
    c.apply(PLAN).await;
    let tenant = |namespaces: &str| {
        format!(
            "apiVersion: landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: shop-$ID}}\nspec:\n  quotaRef: team-$ID\n  deletionPolicy: Delete\n  owners: [{{kind: Group, name: shop-devs}}]\n  namespaces: {namespaces}\n"
        )
    };
    c.apply(&tenant("[{name: web}, {name: db}]")).await;
    let t = wait_condition(&c.client, &shop, "Ready", "True", "Ready").await;
    let status = t.status.unwrap();
    assert_eq!(status.namespaces, [web.clone(), db.clone()]);
    assert_eq!(status.usage["pods"].hard.as_deref(), Some("10"));

    // Exactly the expected objects.
    let ns = Api::<Namespace>::all(c.client.clone())
        .get(&web)
        .await
        .unwrap();
    let labels = ns.labels();
    assert_eq!(labels["landlord.dev/tenant"], shop);
    assert_eq!(labels["pod-security.kubernetes.io/enforce"], "restricted");
    assert!(
        ns.metadata.owner_references.unwrap_or_default().is_empty(),
        "namespaces must not be garbage-collectable"
    );
    let expected = BTreeMap::from([
        ("pods".into(), "5".into()),
        ("requests.cpu".into(), "1".into()),
        ("count/services".into(), "5".into()),
    ]);
    assert_eq!(hard(&c.client, &web).await, expected);
    assert_eq!(hard(&c.client, &db).await, expected);
    let rb = Api::<RoleBinding>::namespaced(c.client.clone(), &db)
        .get("landlord-owners-admin")
        .await
        .unwrap();
    assert_eq!(rb.role_ref.name, "admin");
    assert_eq!(rb.subjects.unwrap()[0].name, "shop-devs");
    let np = Api::<NetworkPolicy>::namespaced(c.client.clone(), &db)
        .get("landlord-isolation")
        .await
        .unwrap();
    assert_eq!(
        np.spec.unwrap().policy_types.unwrap(),
        ["Ingress", "Egress"]
    );
    let plans: Api<TenantQuota> = Api::all(c.client.clone());
    poll("plan counts its tenant", || async {
        plans
            .get(&c.name("team"))
            .await
            .unwrap()
            .status
            .is_some_and(|s| s.tenants == 1)
    })
    .await;
    let (status, _) = engine_call(c.metrics_port, "GET", "/healthz", "", None).await;
    assert_eq!(status, 200);
    // The operator manages only this test's tenants (`--tenant-selector`), so its counts
    // are this test's whatever else the cluster holds.
    let metrics = metrics_text(c.metrics_port).await;
    assert!(
        metrics.contains("landlord_tenants{phase=\"Active\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("landlord_reconciles_total{outcome=\"success\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("landlord_reconcile_duration_seconds_bucket{"),
        "{metrics}"
    );

    // A plan change reaches the tenant.
    c.apply(&PLAN.replace("pods: 10", "pods: 20")).await;
    poll("plan change applied", || async {
        hard(&c.client, &web).await["pods"] == "10"
    })
    .await;

    // Add a namespace, then remove one (Delete policy: it goes).
    // The same manager applies the tenant again, as GitOps would, with `db` replaced by `jobs`.
    c.apply(&tenant("[{name: web}, {name: jobs}]")).await;
    let namespaces: Api<Namespace> = Api::all(c.client.clone());
    poll("jobs added, db removed", || async {
        let added = namespaces.get_opt(&jobs).await.unwrap().is_some();
        let db_gone = namespaces
            .get_opt(&db)
            .await
            .unwrap()
            .is_none_or(|n| n.metadata.deletion_timestamp.is_some());
        added && db_gone
    })
    .await;

    // Delete the tenant: its namespaces go, and the Tenant itself once the finalizer ran.
    Api::<Tenant>::all(c.client.clone())
        .delete(&shop, &DeleteParams::default())
        .await
        .unwrap();
    poll("tenant gone", || async {
        Api::<Tenant>::all(c.client.clone())
            .get_opt(&shop)
            .await
            .unwrap()
            .is_none()
    })
    .await;
    poll("namespaces gone", || async {
        let mut left = Vec::new();
        for ns in [&web, &db, &jobs] {
            if let Some(n) = namespaces.get_opt(ns).await.unwrap() {
                left.push(n);
            }
        }
        left.iter().all(|n| n.metadata.deletion_timestamp.is_some())
    })
    .await;
    c.finish().await;
}

#[tokio::test]
async fn a_missing_plan_and_a_foreign_namespace_change_nothing_they_must_not() {
    let c = Cluster::start("conflict", "5m").await;
    let bank = c.name("bank");
    let (vault, app) = (format!("{bank}-vault"), format!("{bank}-app"));
    let namespaces: Api<Namespace> = Api::all(c.client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": vault, "labels": {"owner": "someone"}}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    c.apply("apiVersion: landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {name: bank-$ID}\nspec:\n  quotaRef: gold-$ID\n  namespaces: [{name: vault}, {name: app}]\n").await;
    wait_condition(&c.client, &bank, "Ready", "False", "PlanNotFound").await;
    assert!(
        namespaces.get_opt(&app).await.unwrap().is_none(),
        "nothing is created without the plan"
    );

    c.apply(&PLAN.replace("name: team-$ID", "name: gold-$ID"))
        .await;
    let t = wait_condition(
        &c.client,
        &bank,
        "Provisioned",
        "False",
        "NamespaceConflict",
    )
    .await;
    assert_eq!(t.status.unwrap().namespaces, [app]);
    let foreign = namespaces.get(&vault).await.unwrap();
    assert_eq!(
        foreign.labels().get("landlord.dev/tenant"),
        None,
        "a foreign namespace is never adopted"
    );
    assert_eq!(foreign.labels()["owner"], "someone");
    assert!(
        Api::<ResourceQuota>::namespaced(c.client.clone(), &vault)
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    c.finish().await;
}

#[tokio::test]
async fn retain_releases_namespaces_without_deleting_them() {
    let c = Cluster::start("retain", "5m").await;
    let keep = c.name("keep");
    let data = format!("{keep}-data");
    c.apply(PLAN).await;
    c.apply("apiVersion: landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {name: keep-$ID}\nspec:\n  quotaRef: team-$ID\n  deletionPolicy: Retain\n  owners: [{kind: User, name: ann}]\n  namespaces: [{name: data, labels: {team: blue}}]\n").await;
    wait_condition(&c.client, &keep, "Ready", "True", "Ready").await;
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "precious"}, "data": {"k": "v"}}))
            .unwrap();
    Api::<ConfigMap>::namespaced(c.client.clone(), &data)
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();

    Api::<Tenant>::all(c.client.clone())
        .delete(&keep, &DeleteParams::default())
        .await
        .unwrap();
    poll("tenant gone", || async {
        Api::<Tenant>::all(c.client.clone())
            .get_opt(&keep)
            .await
            .unwrap()
            .is_none()
    })
    .await;
    let ns = Api::<Namespace>::all(c.client.clone())
        .get(&data)
        .await
        .unwrap();
    assert!(
        ns.metadata.deletion_timestamp.is_none(),
        "the namespace is kept"
    );
    assert!(
        !ns.labels().contains_key("landlord.dev/tenant"),
        "and released: {:?}",
        ns.labels()
    );
    assert!(
        Api::<ResourceQuota>::namespaced(c.client.clone(), &data)
            .get_opt("landlord-quota")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        Api::<RoleBinding>::namespaced(c.client.clone(), &data)
            .get_opt("landlord-owners-admin")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        Api::<NetworkPolicy>::namespaced(c.client.clone(), &data)
            .get_opt("landlord-isolation")
            .await
            .unwrap()
            .is_none()
    );
    let kept = Api::<ConfigMap>::namespaced(c.client.clone(), &data)
        .get("precious")
        .await
        .unwrap();
    assert_eq!(kept.data.unwrap()["k"], "v");
    c.finish().await;
}
