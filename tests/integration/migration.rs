//! A tenant's life, part 2: copy and move to another cluster. The source is this test's API
//! server (kube-test, or the real cluster with `LANDLORD_E2E=1`); the target is always a
//! second kube-test server started here, whose fault hooks slow and refuse its writes.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use landlord::api::{Phase, Tenant, TenantQuota};
use landlord::archive;
use landlord::controller::migration;
use serde_json::{Value, json};

use crate::support::*;

const PLAN: &str = "apiVersion: landlord.dev/v1alpha1\nkind: TenantQuota\nmetadata: {name: mover-$ID}\nspec:\n  hard: {pods: 20}\n  rates: [{name: api-calls, limit: 100, per: 1m}]\n";
const SHORTS: [&str; 3] = ["a", "b", "c"];
/// Objects the tenant holds: 497 ConfigMaps, a Secret, a Service and a Deployment.
const OBJECTS: usize = 500;

fn tenant(migration: &str) -> String {
    format!(
        "apiVersion: landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: mig-$ID}}\nspec:\n  quotaRef: mover-$ID\n  owners: [{{kind: User, name: pat}}]\n  namespaces: [{{name: a}}, {{name: b}}, {{name: c}}]\n{migration}"
    )
}

fn migrate_to(secret: &str, mode: &str) -> String {
    format!("  migration: {{targetRef: {{namespace: default, name: {secret}}}, mode: {mode}}}\n")
}

/// A second API server with Landlord's CRDs (or without), and its kubeconfig's text.
async fn target(with_crds: bool) -> (kube_test::RunningServer, Client, String) {
    let server = kube_test::ApiServer::start().await.unwrap();
    let client = server.client().await.unwrap();
    if with_crds {
        install_crds(&client).await;
    }
    let path = std::env::temp_dir().join(format!(
        "landlord-migration-target-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    server.write_kubeconfig(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    (server, client, text)
}

/// A Secret in `default` at the source holding `kubeconfig`.
async fn secret(c: &Cluster, name: &str, kubeconfig: &str) {
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            labels: Some(BTreeMap::from([(RUN_LABEL.to_string(), c.id.clone())])),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "kubeconfig".to_string(),
            ByteString(kubeconfig.as_bytes().to_vec()),
        )])),
        ..Default::default()
    };
    let api: Api<Secret> = Api::namespaced(c.client.clone(), "default");
    api.patch(
        name,
        &PatchParams::apply("landlord-tests").force(),
        &Patch::Apply(&secret),
    )
    .await
    .unwrap();
}

/// 500 objects over the three namespaces.
async fn furnish(client: &Client, name: &str) {
    let ns = |short: &str| format!("{name}-{short}");
    let configmaps = OBJECTS - 3;
    for i in 0..configmaps {
        let short = SHORTS[i % 3];
        let api: Api<k8s_openapi::api::core::v1::ConfigMap> =
            Api::namespaced(client.clone(), &ns(short));
        let color = ["blue", "red", "green"][i % 3];
        let cm = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("settings-{i:03}"), "labels": {"app": "shop"}},
            "data": {"index": i.to_string(), "color": color},
        }))
        .unwrap();
        api.create(&PostParams::default(), &cm).await.unwrap();
    }
    let first = ns("a");
    let yaml = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: db-password, namespace: {first}}}\ntype: Opaque\ndata: {{password: aHVudGVyMg==}}\n---\napiVersion: v1\nkind: Service\nmetadata: {{name: web, namespace: {first}}}\nspec:\n  selector: {{app: web}}\n  ports: [{{port: 80, targetPort: 8080}}]\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web, namespace: {first}}}\nspec:\n  replicas: 2\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n      containers: [{{name: web, image: nginx, resources: {{requests: {{cpu: 10m, memory: 16Mi}}, limits: {{cpu: 10m, memory: 16Mi}}}}}}]\n"
    );
    landlord::dev::apply_yaml(client, &yaml).await.unwrap();
}

fn namespaces(name: &str) -> Vec<String> {
    SHORTS.iter().map(|s| format!("{name}-{s}")).collect()
}

/// The tenant's objects on both sides, each as an archive keeps it.
async fn both_sides(source: &Client, target: &Client, name: &str) -> (Vec<Value>, Vec<Value>) {
    let names = namespaces(name);
    (
        archive::export(source, &names).await.unwrap(),
        archive::export(target, &names).await.unwrap(),
    )
}

async fn progress(client: &Client, name: &str) -> Option<landlord::api::MigrationStatus> {
    Api::<Tenant>::all(client.clone())
        .get_opt(name)
        .await
        .ok()
        .flatten()
        .and_then(|t| t.status)
        .and_then(|s| s.migration)
}

#[tokio::test]
async fn a_tenant_copies_then_moves_through_kills_and_a_refusing_target() {
    let mut c = Cluster::start("migrate", "2s").await;
    // Small batches written two at a time, so that the copy takes seconds and the kills
    // below land in the middle of it.
    c.extra_args(&["--migration-batch", "20", "--migration-parallelism", "2"]);
    c.restart_operator();
    let (server, there, kubeconfig) = target(true).await;
    let hooks = server.hooks();
    let secret_name = c.name("east");
    secret(&c, &secret_name, &kubeconfig).await;
    c.apply(PLAN).await;
    c.apply(&tenant("")).await;
    let name = c.name("mig");
    wait_condition(&c.client, &name, "Ready", "True", "Ready").await;
    furnish(&c.client, &name).await;

    // Every write at the target takes 20 ms more.
    let slow = hooks
        .inject(kube_test::Injection::delay(std::time::Duration::from_millis(20)).verb("patch"));
    c.apply(&tenant(&migrate_to(&secret_name, "Copy"))).await;

    // Three kills at random points of the copy, then 10 s of refused writes; progress is
    // sampled all along and must never go back.
    let mut samples: Vec<u64> = Vec::new();
    let deadline = std::time::Instant::now() + DEADLINE * 2;
    let mut kill_at: Vec<u64> = [60u64, 200, 330]
        .iter()
        .map(|from| from + rand::random_range(0..80))
        .collect();
    let mut refused_since: Option<std::time::Instant> = None;
    let mut refusal = None;
    let mut saw_refusal = false;
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the copy never finished: {:?}",
            progress(&c.client, &name).await
        );
        let Some(p) = progress(&c.client, &name).await else {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            continue;
        };
        samples.push(p.completed_items);
        if p.phase == "Done" {
            break;
        }
        if kill_at.first().is_some_and(|at| p.completed_items >= *at) {
            c.restart_operator();
            if kill_at.len() == 3 {
                // A source object changes after it was copied: verification catches it up.
                let api: Api<k8s_openapi::api::core::v1::ConfigMap> =
                    Api::namespaced(c.client.clone(), &format!("{name}-a"));
                let patch = json!({"data": {"color": "violet"}});
                api.patch(
                    "settings-000",
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
                .unwrap();
            }
            kill_at.remove(0);
            if kill_at.is_empty() {
                // The first matching injection wins: the refusal replaces the delay.
                hooks.clear_injection(slow);
                refusal = Some(hooks.inject(kube_test::Injection::error(500).verb("patch")));
                refused_since = Some(std::time::Instant::now());
            }
        }
        if refusal.is_some() && p.last_error.as_deref().is_some_and(|e| e.contains("500")) {
            saw_refusal = true;
        }
        if let (Some(id), Some(since)) = (refusal, refused_since)
            && since.elapsed() >= std::time::Duration::from_secs(10)
        {
            hooks.clear_injection(id);
            refusal = None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        kill_at.is_empty(),
        "the copy ended before all kills: {kill_at:?} left"
    );
    assert!(
        saw_refusal,
        "the refused writes were never reported in lastError"
    );
    assert!(
        samples.windows(2).all(|w| w[0] <= w[1]),
        "progress went back: {samples:?}"
    );
    let p = progress(&c.client, &name).await.unwrap();
    assert_eq!(
        (p.total_items, p.completed_items, p.percentage),
        (OBJECTS as u64, OBJECTS as u64, 100)
    );
    assert!(p.last_error.is_none() && p.finished_at.is_some());
    let t = wait_condition(&c.client, &name, "Migrated", "True", "Copied").await;
    assert_eq!(t.status.unwrap().phase, Some(Phase::Active));

    // The same objects on both sides, field by field once server fields are stripped.
    let (here, mut theirs) = both_sides(&c.client, &there, &name).await;
    assert_eq!(here.len(), OBJECTS);
    assert!(migration::compare(&here, &theirs).same());
    if !on_real_cluster() {
        let mut here = here.clone();
        here.sort_by_key(archive::import::describe);
        theirs.sort_by_key(archive::import::describe);
        assert_eq!(here, theirs, "identical objects on kube-test");
    }
    // The Tenant, its plan and its namespaces, owned so that the target's Landlord takes them.
    let copy = Api::<Tenant>::all(there.clone()).get(&name).await.unwrap();
    let source = Api::<Tenant>::all(c.client.clone())
        .get(&name)
        .await
        .unwrap();
    let mut spec = source.spec.clone();
    spec.migration = None;
    assert_eq!(copy.spec, spec);
    assert!(
        Api::<TenantQuota>::all(there.clone())
            .get_opt(&c.name("mover"))
            .await
            .unwrap()
            .is_some()
    );
    for ns in namespaces(&name) {
        let ns = Api::<Namespace>::all(there.clone()).get(&ns).await.unwrap();
        assert!(
            landlord::naming::is_ours(&ns, &name),
            "{} is Landlord's",
            ns.name_any()
        );
        assert_eq!(ns.labels().get(landlord::naming::TENANT_LABEL), Some(&name));
    }

    let changed = Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(
        there.clone(),
        &format!("{name}-a"),
    )
    .get("settings-000")
    .await
    .unwrap();
    assert_eq!(changed.data.unwrap()["color"], "violet");

    // Usage this month, and one more object (the caller's ServiceAccount) since the copy.
    let token = service_account_token(&c.client, &format!("{name}-a"), "worker").await;
    let call = json!({"dimension": "api-calls", "amount": 7});
    let (code, body) = engine_call(
        c.engine_port,
        "POST",
        &format!("/v1/tenants/{name}/check"),
        &token,
        Some(call),
    )
    .await;
    assert_eq!(code, 200, "{body}");

    // Move: the source's workloads sleep, what changed is copied, the source goes under its
    // deletion policy (Archive), and the target runs what the source ran.
    c.apply(&tenant(&migrate_to(&secret_name, "Move"))).await;
    let tenants: Api<Tenant> = Api::all(c.client.clone());
    poll("the source Tenant deleted", || async {
        tenants.get_opt(&name).await.unwrap().is_none()
    })
    .await;
    let source_namespaces: Api<Namespace> = Api::all(c.client.clone());
    for ns in namespaces(&name) {
        poll(&format!("{ns} deleted at the source"), || async {
            source_namespaces.get_opt(&ns).await.unwrap().is_none()
        })
        .await;
    }
    let dir = std::path::PathBuf::from(c.archive_url().trim_start_matches("file://")).join(&name);
    let archives = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "llarch"))
        .count();
    assert_eq!(archives, 1, "the moved tenant's archive is kept");
    let web = Api::<Deployment>::namespaced(there.clone(), &format!("{name}-a"))
        .get("web")
        .await
        .unwrap();
    assert_eq!(web.spec.as_ref().unwrap().replicas, Some(2));
    assert!(
        !web.annotations()
            .contains_key(landlord::controller::hibernate::REPLICAS)
    );
    let moved = archive::export(&there, &namespaces(&name)).await.unwrap();
    assert_eq!(moved.len(), OBJECTS + 1, "nothing lost, nothing twice");
    assert!(
        moved
            .iter()
            .any(|o| o["kind"] == "ServiceAccount" && o["metadata"]["name"] == "worker")
    );
    // This month's usage travelled in the ledger.
    assert_eq!(ledger_allowed(&there, &name, "api-calls").await, 7);
    c.finish().await;
}

#[tokio::test]
async fn bad_targets_say_what_to_do_delete_nothing_and_a_cancel_stops_cleanly() {
    let c = Cluster::start("migrate-bad", "2s").await;
    c.apply(PLAN).await;
    c.apply(&tenant("")).await;
    let name = c.name("mig");
    wait_condition(&c.client, &name, "Ready", "True", "Ready").await;

    let expect = |secret: String, reason: &'static str, says: &'static str| {
        let c = &c;
        let name = name.clone();
        async move {
            c.apply(&tenant(&migrate_to(&secret, "Copy"))).await;
            let t = wait_condition(&c.client, &name, "Migrated", "False", reason).await;
            let status = t.status.unwrap();
            let message = &status
                .conditions
                .iter()
                .find(|c| c.type_ == "Migrated")
                .unwrap()
                .message;
            assert!(message.contains(says), "{reason}: {message}");
            // Nothing at the source is touched.
            for ns in namespaces(&name) {
                let ns = Api::<Namespace>::all(c.client.clone())
                    .get(&ns)
                    .await
                    .unwrap();
                assert!(ns.metadata.deletion_timestamp.is_none());
            }
            status.migration.unwrap()
        }
    };
    let p = expect(c.name("nothing"), "MigrationSecretMissing", "create it").await;
    assert_eq!(p.phase, "Failed");

    secret(&c, &c.name("garbage"), "this: [is not a kubeconfig").await;
    let p = expect(
        c.name("garbage"),
        "NotAKubeconfig",
        "store the target cluster's kubeconfig",
    )
    .await;
    assert_eq!(p.phase, "Failed");

    let (_bare, _, bare) = target(false).await;
    secret(&c, &c.name("bare"), &bare).await;
    let p = expect(
        c.name("bare"),
        "TargetNotReady",
        "install Landlord there first",
    )
    .await;
    assert_eq!(p.phase, "Failed");

    let (gone, _, unreachable) = target(true).await;
    drop(gone);
    secret(&c, &c.name("gone"), &unreachable).await;
    let p = expect(c.name("gone"), "TargetUnreachable", "retries").await;
    assert_eq!(
        p.phase, "Planning",
        "an unreachable target may come back: not Failed"
    );

    let (_taken, taken_client, taken) = target(true).await;
    let squatter: Namespace =
        serde_json::from_value(json!({"metadata": {"name": format!("{name}-b")}})).unwrap();
    Api::<Namespace>::all(taken_client.clone())
        .create(&PostParams::default(), &squatter)
        .await
        .unwrap();
    secret(&c, &c.name("taken"), &taken).await;
    let p = expect(
        c.name("taken"),
        "TargetNamespaceConflict",
        "delete or rename them",
    )
    .await;
    assert_eq!(p.phase, "Failed");
    assert!(
        p.last_error.unwrap().contains(&format!("{name}-b")),
        "the conflict names the namespace"
    );

    // Cancelling: the run stops, the source is untouched and says what the target holds.
    c.apply(&tenant("")).await;
    let t = wait_condition(&c.client, &name, "Migrated", "False", "Cancelled").await;
    let status = t.status.unwrap();
    assert_eq!(status.phase, Some(Phase::Active));
    assert_eq!(status.migration.unwrap().phase, "Cancelled");
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::all(c.client.clone());
    poll("a MigrationCancelled event", || async {
        events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .any(|e| {
                e.reason.as_deref() == Some("MigrationCancelled")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name.as_str())
            })
    })
    .await;
    c.finish().await;
}
