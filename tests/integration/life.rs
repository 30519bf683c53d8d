//! A tenant's life: hibernate and wake.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::CronJob;
use kube::api::Api;
use kube::{Client, Resource, ResourceExt};
use landlord::api::{Phase, Tenant};
use landlord::controller::hibernate::{REPLICAS, SUSPEND};
use serde::de::DeserializeOwned;

use crate::support::*;

const PLAN: &str = "apiVersion: landlord.dev/v1alpha1\nkind: TenantQuota\nmetadata: {name: sleepy-$ID}\nspec:\n  hard: {pods: 20}\n";

fn tenant(state: &str) -> String {
    format!(
        "apiVersion: landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: hib-$ID}}\nspec:\n  quotaRef: sleepy-$ID\n  state: {state}\n  owners: [{{kind: User, name: pat}}]\n  namespaces: [{{name: app}}]\n"
    )
}

fn template(app: &str) -> String {
    format!(
        "    selector: {{matchLabels: {{app: {app}}}}}\n    template:\n      metadata: {{labels: {{app: {app}}}}}\n      spec: {{containers: [{{name: c, image: busybox}}]}}\n"
    )
}

fn workloads(ns: &str, web_replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web, namespace: {ns}}}\nspec:\n  replicas: {web_replicas}\n{web}---\napiVersion: apps/v1\nkind: StatefulSet\nmetadata: {{name: db, namespace: {ns}}}\nspec:\n  replicas: 2\n  serviceName: db\n{db}---\napiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {{name: bare, namespace: {ns}}}\nspec:\n  replicas: 1\n{bare}---\napiVersion: batch/v1\nkind: CronJob\nmetadata: {{name: nightly, namespace: {ns}}}\nspec:\n  schedule: '0 3 * * *'\n  jobTemplate: {{spec: {{template: {{spec: {{restartPolicy: Never, containers: [{{name: c, image: busybox}}]}}}}}}}}\n---\napiVersion: batch/v1\nkind: CronJob\nmetadata: {{name: paused, namespace: {ns}}}\nspec:\n  schedule: '0 4 * * *'\n  suspend: true\n  jobTemplate: {{spec: {{template: {{spec: {{restartPolicy: Never, containers: [{{name: c, image: busybox}}]}}}}}}}}\n",
        web = template("web").replace("    ", "  "),
        db = template("db").replace("    ", "  "),
        bare = template("bare").replace("    ", "  "),
    )
}

async fn get<K>(client: &Client, ns: &str, name: &str) -> K
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    Api::<K>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .unwrap()
}

fn replicas_and_note<K: Resource>(
    object: &K,
    replicas: Option<i32>,
) -> (Option<i32>, Option<String>) {
    (
        replicas,
        object
            .meta()
            .annotations
            .as_ref()
            .and_then(|a| a.get(REPLICAS).cloned()),
    )
}

async fn phase(client: &Client, name: &str) -> Option<Phase> {
    Api::<Tenant>::all(client.clone())
        .get(name)
        .await
        .unwrap()
        .status
        .and_then(|s| s.phase)
}

async fn reconciles(port: u16) -> f64 {
    samples(&metrics_text(port).await, "landlord_reconciles_total")
        .get("outcome=\"success\"")
        .copied()
        .unwrap_or(0.0)
}

#[tokio::test]
async fn hibernation_sleeps_every_workload_and_waking_gives_back_each_value() {
    let c = Cluster::start("hibernate", "1s").await;
    c.apply(PLAN).await;
    c.apply(&tenant("Active")).await;
    let name = c.name("hib");
    let ns = format!("{name}-app");
    wait_condition(&c.client, &name, "Ready", "True", "Ready").await;
    c.apply(&workloads(&ns, 3)).await;
    // A ReplicaSet with an owner is its owner's business: never touched. (Its owner is a
    // ConfigMap, so that on a real cluster no controller scales or adopts it.)
    c.apply(&format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: owner, namespace: {ns}}}\n"
    ))
    .await;
    let owner: k8s_openapi::api::core::v1::ConfigMap = get(&c.client, &ns, "owner").await;
    c.apply(&format!(
        "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: web-owned\n  namespace: {ns}\n  ownerReferences: [{{apiVersion: v1, kind: ConfigMap, name: owner, uid: {}, controller: true}}]\nspec:\n  replicas: 3\n{}",
        owner.uid().unwrap(),
        template("owned").replace("    ", "  ")
    ))
    .await;

    c.apply(&tenant("Hibernated")).await;
    wait_condition(&c.client, &name, "Ready", "True", "Hibernated").await;
    assert_eq!(phase(&c.client, &name).await, Some(Phase::Hibernated));
    let web: Deployment = get(&c.client, &ns, "web").await;
    let db: StatefulSet = get(&c.client, &ns, "db").await;
    let bare: ReplicaSet = get(&c.client, &ns, "bare").await;
    let owned: ReplicaSet = get(&c.client, &ns, "web-owned").await;
    assert_eq!(
        replicas_and_note(&web, web.spec.as_ref().unwrap().replicas),
        (Some(0), Some("3".into()))
    );
    assert_eq!(
        replicas_and_note(&db, db.spec.as_ref().unwrap().replicas),
        (Some(0), Some("2".into()))
    );
    assert_eq!(
        replicas_and_note(&bare, bare.spec.as_ref().unwrap().replicas),
        (Some(0), Some("1".into()))
    );
    assert_eq!(
        replicas_and_note(&owned, owned.spec.as_ref().unwrap().replicas),
        (Some(3), None)
    );
    let nightly: CronJob = get(&c.client, &ns, "nightly").await;
    let paused: CronJob = get(&c.client, &ns, "paused").await;
    let cron = |j: &CronJob| {
        (
            j.spec.as_ref().unwrap().suspend,
            j.annotations().get(SUSPEND).cloned(),
        )
    };
    assert_eq!(cron(&nightly), (Some(true), Some("false".into())));
    assert_eq!(cron(&paused), (Some(true), None));
    assert_eq!(hard(&c.client, &ns).await["pods"], "0");

    // A GitOps tool re-applies `replicas: 3` while the tenant sleeps: no pod may start (the
    // quota says 0), and Landlord does not scale it down again: no write loop.
    c.apply(&workloads(&ns, 3)).await;
    let applied: Deployment = get(&c.client, &ns, "web").await;
    let before = reconciles(c.metrics_port).await;
    poll("three more reconciles", || async {
        reconciles(c.metrics_port).await >= before + 3.0
    })
    .await;
    let web: Deployment = get(&c.client, &ns, "web").await;
    assert_eq!(
        web.resource_version(),
        applied.resource_version(),
        "nothing wrote to the Deployment"
    );
    assert_eq!(web.spec.as_ref().unwrap().replicas, Some(3));
    assert_eq!(phase(&c.client, &name).await, Some(Phase::Hibernated));

    c.apply(&tenant("Active")).await;
    wait_condition(&c.client, &name, "Ready", "True", "Ready").await;
    poll("phase Active", || async {
        phase(&c.client, &name).await == Some(Phase::Active)
    })
    .await;
    let web: Deployment = get(&c.client, &ns, "web").await;
    let db: StatefulSet = get(&c.client, &ns, "db").await;
    let bare: ReplicaSet = get(&c.client, &ns, "bare").await;
    let owned: ReplicaSet = get(&c.client, &ns, "web-owned").await;
    // The owner's `replicas: 3` set while asleep wins; the others get their own value back.
    assert_eq!(
        replicas_and_note(&web, web.spec.as_ref().unwrap().replicas),
        (Some(3), None)
    );
    assert_eq!(
        replicas_and_note(&db, db.spec.as_ref().unwrap().replicas),
        (Some(2), None)
    );
    assert_eq!(
        replicas_and_note(&bare, bare.spec.as_ref().unwrap().replicas),
        (Some(1), None)
    );
    assert_eq!(owned.spec.as_ref().unwrap().replicas, Some(3));
    let nightly: CronJob = get(&c.client, &ns, "nightly").await;
    let paused: CronJob = get(&c.client, &ns, "paused").await;
    assert_eq!(cron(&nightly), (Some(false), None));
    assert_eq!(cron(&paused), (Some(true), None));
    assert_eq!(hard(&c.client, &ns).await["pods"], "20");
    c.finish().await;
}
