//! Built-in kinds beyond the core ones: discovery, storage, generation, the
//! status and scale subresources, through kube-rs.
mod common;
use common::*;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;

/// (name, namespaced, shortNames, verbs) of a group version's discovery list.
async fn resources(client: &kube::Client, gv: &str) -> Vec<(String, bool, Vec<String>, usize)> {
    let list = if gv == "v1" {
        client.list_core_api_resources("v1").await
    } else {
        client.list_api_group_resources(gv).await
    }
    .unwrap();
    list.resources
        .into_iter()
        .map(|r| {
            (
                r.name,
                r.namespaced,
                r.short_names.unwrap_or_default(),
                r.verbs.len(),
            )
        })
        .collect()
}

fn entry(
    name: &str,
    namespaced: bool,
    short: &[&str],
    verbs: usize,
) -> (String, bool, Vec<String>, usize) {
    (
        name.into(),
        namespaced,
        short.iter().map(|s| s.to_string()).collect(),
        verbs,
    )
}

#[tokio::test]
async fn discovery_lists_the_workload_and_cluster_kinds_as_a_real_server_does() {
    let (_server, client) = setup().await;
    assert_eq!(
        resources(&client, "batch/v1").await,
        vec![
            entry("cronjobs", true, &["cj"], 8),
            entry("cronjobs/status", true, &[], 3),
            entry("jobs", true, &[], 8),
            entry("jobs/status", true, &[], 3),
        ]
    );
    assert_eq!(
        resources(&client, "apps/v1").await,
        vec![
            entry("controllerrevisions", true, &[], 8),
            entry("daemonsets", true, &["ds"], 8),
            entry("daemonsets/status", true, &[], 3),
            entry("deployments", true, &["deploy"], 8),
            entry("deployments/status", true, &[], 3),
            entry("deployments/scale", true, &[], 3),
            entry("replicasets", true, &["rs"], 8),
            entry("replicasets/status", true, &[], 3),
            entry("replicasets/scale", true, &[], 3),
            entry("statefulsets", true, &["sts"], 8),
            entry("statefulsets/status", true, &[], 3),
            entry("statefulsets/scale", true, &[], 3),
        ]
    );
    assert_eq!(
        resources(&client, "storage.k8s.io/v1").await,
        vec![
            entry("csidrivers", false, &[], 8),
            entry("csinodes", false, &[], 8),
            entry("csistoragecapacities", true, &[], 8),
            entry("storageclasses", false, &["sc"], 8),
            entry("volumeattachments", false, &[], 8),
            entry("volumeattachments/status", false, &[], 3),
        ]
    );
    let core: Vec<String> = resources(&client, "v1")
        .await
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(
        core,
        [
            "namespaces",
            "namespaces/status",
            "namespaces/finalize",
            "resourcequotas",
            "resourcequotas/status",
            "limitranges",
            "serviceaccounts",
            "serviceaccounts/token",
            "configmaps",
            "secrets",
            "services",
            "services/status",
            "pods",
            "pods/status",
            "persistentvolumeclaims",
            "persistentvolumeclaims/status",
            "events",
            "endpoints",
            "nodes",
            "nodes/status",
            "persistentvolumes",
            "persistentvolumes/status",
            "podtemplates",
            "replicationcontrollers",
            "replicationcontrollers/status",
            "replicationcontrollers/scale",
        ]
    );
    let groups: Vec<String> = client
        .list_api_groups()
        .await
        .unwrap()
        .groups
        .into_iter()
        .map(|g| g.preferred_version.unwrap().group_version)
        .collect();
    assert_eq!(
        groups,
        [
            "admissionregistration.k8s.io/v1",
            "apiextensions.k8s.io/v1",
            "apiregistration.k8s.io/v1",
            "apps/v1",
            "autoscaling/v2",
            "batch/v1",
            "certificates.k8s.io/v1",
            "coordination.k8s.io/v1",
            "discovery.k8s.io/v1",
            "events.k8s.io/v1",
            "flowcontrol.apiserver.k8s.io/v1",
            "networking.k8s.io/v1",
            "node.k8s.io/v1",
            "policy/v1",
            "rbac.authorization.k8s.io/v1",
            "scheduling.k8s.io/v1",
            "storage.k8s.io/v1",
            "authentication.k8s.io/v1",
            "authorization.k8s.io/v1",
        ]
    );
}

fn cronjob(name: &str, schedule: &str) -> CronJob {
    serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": name},
        "spec": {"schedule": schedule, "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}},
    }))
    .unwrap()
}

#[tokio::test]
async fn cronjobs_get_list_watch_and_apply() {
    let (_server, client) = setup().await;
    create_ns(&client, "jobs").await;
    let api: Api<CronJob> = Api::namespaced(client.clone(), "jobs");
    let mut watch = api
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();

    let created = api
        .create(&PostParams::default(), &cronjob("nightly", "0 3 * * *"))
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    let got = api.get("nightly").await.unwrap();
    assert_eq!(got.spec.unwrap().schedule, "0 3 * * *");
    let names: Vec<String> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|c| c.metadata.name.unwrap())
        .collect();
    assert_eq!(names, ["nightly"]);

    let applied = api
        .patch(
            "nightly",
            &PatchParams::apply("ops").force(),
            &Patch::Apply(cronjob("nightly", "0 4 * * *")),
        )
        .await
        .unwrap();
    assert_eq!(applied.spec.unwrap().schedule, "0 4 * * *");
    assert_eq!(applied.metadata.generation, Some(2));
    let managers: Vec<(String, String)> = applied
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .map(|m| (m.manager.unwrap(), m.operation.unwrap()))
        .collect();
    assert_eq!(
        managers,
        [
            ("unknown".to_string(), "Update".to_string()),
            ("ops".to_string(), "Apply".to_string())
        ]
    );

    let mut seen = vec![];
    while seen.len() < 2 {
        match watch.try_next().await.unwrap().unwrap() {
            WatchEvent::Added(c) | WatchEvent::Modified(c) => {
                seen.push(c.spec.unwrap().schedule);
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
    assert_eq!(seen, ["0 3 * * *", "0 4 * * *"]);
}

#[tokio::test]
async fn job_status_is_written_through_its_subresource_only() {
    let (_server, client) = setup().await;
    create_ns(&client, "jobs").await;
    let api: Api<Job> = Api::namespaced(client.clone(), "jobs");
    let job: Job = serde_json::from_value(json!({
        "metadata": {"name": "once"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}},
        "status": {"active": 5},
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &job).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));

    let patched = api
        .patch_status(
            "once",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"succeeded": 1, "active": 0}})),
        )
        .await
        .unwrap();
    let status = patched.status.unwrap();
    assert_eq!((status.succeeded, status.active), (Some(1), Some(0)));
    assert_eq!(patched.metadata.generation, Some(1));

    // a main-resource write leaves status alone
    let patched = api
        .patch(
            "once",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}, "status": {"succeeded": 7}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.status.unwrap().succeeded, Some(1));
    assert_eq!(patched.metadata.generation, Some(1));
}

#[tokio::test]
async fn generation_is_set_only_where_a_real_server_sets_it() {
    let (_server, client) = setup().await;
    create_ns(&client, "gen").await;
    let hpa: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), "gen");
    let created = hpa
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "web"},
                "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 3},
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, None);

    // (plural, namespace, object, generation)
    let cases = [
        (
            "priorityclasses",
            None,
            json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "high"}, "value": 1000}),
            Some(1),
        ),
        (
            "endpointslices",
            Some("gen"),
            json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "web-1"}, "addressType": "IPv4", "endpoints": []}),
            Some(1),
        ),
        (
            "storageclasses",
            None,
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "fast"}, "provisioner": "example.com/disk"}),
            None,
        ),
        (
            "endpoints",
            Some("gen"),
            json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web"}}),
            None,
        ),
    ];
    for (plural, ns, o, generation) in cases {
        let (group, version) = match o["apiVersion"].as_str().unwrap().split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), "v1".to_string()),
        };
        let kind = o["kind"].as_str().unwrap().to_string();
        let api = dynamic(&client, &group, &version, &kind, plural, ns);
        let created = api.create(&PostParams::default(), &obj(o)).await.unwrap();
        assert_eq!(created.metadata.generation, generation, "{kind}");
    }
}

#[tokio::test]
async fn replicasets_scale_through_the_scale_subresource() {
    let (_server, client) = setup().await;
    create_ns(&client, "apps").await;
    let rs = dynamic(
        &client,
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        Some("apps"),
    );
    rs.create(
        &PostParams::default(),
        &obj(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "front"},
            "spec": {"selector": {"matchLabels": {"app": "front"}},
                "template": {"metadata": {"labels": {"app": "front"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})),
    )
    .await
    .unwrap();
    let scale = rs.get_scale("front").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(1));
    assert_eq!(scale.status.unwrap().selector.as_deref(), Some("app=front"));
    let scaled = rs
        .patch_scale(
            "front",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 4}})),
        )
        .await
        .unwrap();
    assert_eq!(scaled.spec.unwrap().replicas, Some(4));
    let stored = rs.get("front").await.unwrap();
    assert_eq!(stored.data["spec"]["replicas"], json!(4));
    assert_eq!(stored.metadata.generation, Some(2));

    // a DaemonSet has no scale subresource
    let ds = dynamic(
        &client,
        "apps",
        "v1",
        "DaemonSet",
        "daemonsets",
        Some("apps"),
    );
    let err = ds.get_scale("agent").await.unwrap_err();
    assert_eq!(status(err).code, 404);
}
