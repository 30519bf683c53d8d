//! A tenant's objects through the whole archive path: export from two namespaces, bundle,
//! seal and open, delete the namespaces, recreate them, import, verify, and import again.
//!
//! It runs on an in-process kube-test, or with `LANDLORD_E2E=1` on the cluster in KUBECONFIG.
//! kube-test runs no controllers, so there the objects a controller would make (the
//! Deployment's ReplicaSet and Pod, the StatefulSet's Pod, the CronJob's Job, the Service's
//! Endpoints and EndpointSlice, a Lease) are made by hand with the owner references a
//! controller sets; a real cluster makes its own. Namespaces are named with a per-run id and
//! deleted at the end, even when the test fails.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret, Service, ServiceAccount};
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::gvk::GroupVersionKind;
use kube::{Client, ResourceExt};
use landlord::archive::import::{differences, verify};
use landlord::archive::{
    ArchiveError, Bundle, Key, KeyRing, export, import, open, seal, whole_checksum,
};
use serde_json::{Value, json};

/// How long any awaited state may take: generous for a loaded two-core machine and a real
/// namespace controller; a passing poll returns at once.
const DEADLINE: Duration = Duration::from_secs(120);
const SETUP: &str = "archive-test";
const RESTORE: &str = "landlord-restore-test";

fn on_real_cluster() -> bool {
    std::env::var_os("LANDLORD_E2E").is_some() && std::env::var_os("KUBECONFIG").is_some()
}

/// The test's namespaces, deleted when it ends however it ends (on a real cluster; kube-test
/// goes with its server).
struct Namespaces {
    names: Vec<String>,
    real: bool,
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        if !self.real {
            return;
        }
        let names = self.names.clone();
        // A client of its own on a runtime of its own: the test's runtime may be unwinding.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let Ok(client) = Client::try_default().await else {
                    return;
                };
                let api: Api<Namespace> = Api::all(client);
                for name in names {
                    let _ = api.delete(&name, &DeleteParams::default()).await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

fn run_id() -> String {
    (0..6)
        .map(|_| b"abcdefghijklmnopqrstuvwxyz0123456789"[rand::random_range(0..36)] as char)
        .collect()
}

async fn poll<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Server-side apply `obj` as `manager`; the object as stored.
async fn apply(client: &Client, manager: &str, obj: Value) -> Value {
    let api_version = obj["apiVersion"].as_str().unwrap();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, obj["kind"].as_str().unwrap());
    let (ar, _) = kube::discovery::pinned_kind(client, &gvk).await.unwrap();
    let ns = obj["metadata"]["namespace"].as_str().unwrap();
    let name = obj["metadata"]["name"].as_str().unwrap();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
    let stored = api
        .patch(
            name,
            &PatchParams::apply(manager).force(),
            &Patch::Apply(&obj),
        )
        .await
        .unwrap_or_else(|e| panic!("apply {} {ns}/{name}: {e}", obj["kind"]));
    serde_json::to_value(stored).unwrap()
}

fn owner(of: &Value, api_version: &str, kind: &str) -> Value {
    json!([{"apiVersion": api_version, "kind": kind,
        "name": of["metadata"]["name"], "uid": of["metadata"]["uid"],
        "controller": true, "blockOwnerDeletion": true}])
}

fn pod_spec(image: &str) -> Value {
    json!({"containers": [{"name": "app", "image": image,
        "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}}}]})
}

const IMAGE: &str = "registry.k8s.io/pause:3.10";

/// The tenant: what a user made in two namespaces, and what the cluster made beside it.
async fn populate(client: &Client, a: &str, b: &str, real: bool) {
    let web_labels = json!({"app": "web"});
    for obj in [
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "builder", "namespace": a}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": a, "labels": {"app": "web"}},
            "data": {"color": "blue", "greeting": "hello"}}),
        json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "db", "namespace": a},
            "data": {"password": "aHVudGVyMg=="}}),
        json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
            "metadata": {"name": "builder-token", "namespace": a,
                "annotations": {"kubernetes.io/service-account.name": "builder"}}}),
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": a},
            "spec": {"selector": web_labels, "ports": [{"port": 80, "targetPort": 8080}]}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": a},
            "spec": {"replicas": 2, "selector": {"matchLabels": web_labels},
                "template": {"metadata": {"labels": web_labels}, "spec": pod_spec(IMAGE)}}}),
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "bare", "namespace": a, "labels": {"app": "bare"}},
            "spec": pod_spec(IMAGE)}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "reader", "namespace": a},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "reader", "namespace": a},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "builder", "namespace": a}]}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "allow-web", "namespace": a},
            "spec": {"podSelector": {"matchLabels": web_labels}, "policyTypes": ["Ingress"],
                "ingress": [{"ports": [{"port": 8080, "protocol": "TCP"}]}]}}),
        json!({"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "web.1", "namespace": a},
            "involvedObject": {"kind": "Deployment", "name": "web", "namespace": a},
            "reason": "Tested", "message": "an event", "type": "Normal",
            "source": {"component": SETUP}, "count": 1}),
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": b},
            "data": {"color": "green"}}),
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "db", "namespace": b},
            "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"port": 5432}]}}),
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": b},
            "spec": {"serviceName": "db", "replicas": 1, "selector": {"matchLabels": {"app": "db"}},
                "template": {"metadata": {"labels": {"app": "db"}}, "spec": pod_spec(IMAGE)}}}),
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": b},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}),
        json!({"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "nightly", "namespace": b},
            "spec": {"schedule": "0 0 1 1 *", "jobTemplate": {"spec": {"template": {"spec":
                {"restartPolicy": "Never", "containers": [{"name": "run", "image": IMAGE}]}}}}}}),
        json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "once", "namespace": b},
            "spec": {"suspend": true, "template": {"spec":
                {"restartPolicy": "Never", "containers": [{"name": "run", "image": IMAGE}]}}}}),
    ] {
        apply(client, SETUP, obj).await;
    }
    // Landlord's own: its label and its field manager.
    apply(
        client,
        "landlord",
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "landlord-isolation", "namespace": a,
            "labels": {"landlord.dev/tenant": "acme", "app.kubernetes.io/managed-by": "landlord"}},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}),
    )
    .await;

    if real {
        // The controllers make the rest; wait for the ones the export must leave out.
        let pods: Api<Pod> = Api::namespaced(client.clone(), a);
        poll("the Deployment's Pods", || async {
            pods.list(&Default::default())
                .await
                .unwrap()
                .items
                .iter()
                .any(|p| p.owner_references().iter().any(|o| o.kind == "ReplicaSet"))
        })
        .await;
        return;
    }
    let deployment = get(client, "apps/v1", "Deployment", a, "web").await;
    let rs = apply(
        client,
        SETUP,
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "web-6b9f", "namespace": a, "labels": web_labels,
            "ownerReferences": owner(&deployment, "apps/v1", "Deployment")},
        "spec": {"replicas": 2, "selector": {"matchLabels": web_labels},
            "template": {"metadata": {"labels": web_labels}, "spec": pod_spec(IMAGE)}}}),
    )
    .await;
    apply(
        client,
        SETUP,
        json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-6b9f-x2x4q", "namespace": a, "labels": web_labels,
            "ownerReferences": owner(&rs, "apps/v1", "ReplicaSet")},
        "spec": pod_spec(IMAGE)}),
    )
    .await;
    let service = get(client, "v1", "Service", a, "web").await;
    apply(
        client,
        SETUP,
        json!({"apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "web", "namespace": a}, "subsets": []}),
    )
    .await;
    apply(
        client,
        SETUP,
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "web-k2jd8", "namespace": a,
            "labels": {"kubernetes.io/service-name": "web"},
            "ownerReferences": owner(&service, "v1", "Service")},
        "addressType": "IPv4", "endpoints": []}),
    )
    .await;
    apply(
        client,
        SETUP,
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "leader", "namespace": a}, "spec": {"holderIdentity": "web-1"}}),
    )
    .await;
    let sts = get(client, "apps/v1", "StatefulSet", b, "db").await;
    apply(
        client,
        SETUP,
        json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "db-0", "namespace": b, "labels": {"app": "db"},
            "ownerReferences": owner(&sts, "apps/v1", "StatefulSet")},
        "spec": pod_spec(IMAGE)}),
    )
    .await;
    let cron = get(client, "batch/v1", "CronJob", b, "nightly").await;
    apply(
        client,
        SETUP,
        json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "nightly-29000000", "namespace": b,
            "ownerReferences": owner(&cron, "batch/v1", "CronJob")},
        "spec": {"template": {"spec":
            {"restartPolicy": "Never", "containers": [{"name": "run", "image": IMAGE}]}}}}),
    )
    .await;
}

async fn get(client: &Client, api_version: &str, kind: &str, ns: &str, name: &str) -> Value {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (ar, _) = kube::discovery::pinned_kind(client, &gvk).await.unwrap();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
    serde_json::to_value(api.get(name).await.unwrap()).unwrap()
}

fn names(objects: &[Value]) -> Vec<String> {
    objects
        .iter()
        .map(|o| {
            format!(
                "{} {} {}/{}",
                o["apiVersion"].as_str().unwrap(),
                o["kind"].as_str().unwrap(),
                o["metadata"]["namespace"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect()
}

/// Every object of the kinds the test made, per kind, controller-made ones included.
async fn counts(client: &Client, namespaces: &[String]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for (api_version, kind) in [
        ("v1", "ConfigMap"),
        ("v1", "Secret"),
        ("v1", "ServiceAccount"),
        ("v1", "Service"),
        ("v1", "Pod"),
        ("v1", "PersistentVolumeClaim"),
        ("apps/v1", "Deployment"),
        ("apps/v1", "ReplicaSet"),
        ("apps/v1", "StatefulSet"),
        ("batch/v1", "Job"),
        ("batch/v1", "CronJob"),
        ("rbac.authorization.k8s.io/v1", "Role"),
        ("rbac.authorization.k8s.io/v1", "RoleBinding"),
        ("networking.k8s.io/v1", "NetworkPolicy"),
    ] {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let (ar, _) = kube::discovery::pinned_kind(client, &gvk).await.unwrap();
        for ns in namespaces {
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
            *counts.entry(format!("{api_version}/{kind}")).or_insert(0) +=
                api.list(&Default::default()).await.unwrap().items.len();
        }
    }
    counts
}

async fn create_namespaces(client: &Client, namespaces: &[String]) {
    let api: Api<Namespace> = Api::all(client.clone());
    for name in namespaces {
        let mut ns = Namespace::default();
        ns.metadata.name = Some(name.clone());
        api.create(&PostParams::default(), &ns).await.unwrap();
    }
    // A real cluster's ServiceAccount admission wants the `default` ServiceAccount before
    // it admits a Pod.
    for name in namespaces {
        let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), name);
        poll("the default ServiceAccount", || async {
            accounts.get_opt("default").await.unwrap().is_some()
        })
        .await;
    }
}

async fn delete_namespaces(client: &Client, namespaces: &[String]) {
    let api: Api<Namespace> = Api::all(client.clone());
    for name in namespaces {
        api.delete(name, &DeleteParams::default()).await.unwrap();
    }
    for name in namespaces {
        poll(&format!("namespace {name} gone"), || async {
            api.get_opt(name).await.unwrap().is_none()
        })
        .await;
    }
}

#[tokio::test]
async fn a_tenant_survives_export_archive_deletion_and_import() {
    let real = on_real_cluster();
    let (client, _server) = if real {
        (Client::try_default().await.unwrap(), None)
    } else {
        let server = kube_test::ApiServer::start().await.unwrap();
        (server.client().await.unwrap(), Some(server))
    };
    let id = run_id();
    let (a, b) = (format!("ar-{id}-a"), format!("ar-{id}-b"));
    let namespaces = Namespaces {
        names: vec![a.clone(), b.clone()],
        real,
    };
    let namespaces = &namespaces.names;
    create_namespaces(&client, namespaces).await;
    populate(&client, &a, &b, real).await;

    // Export: exactly what the user made, nothing the cluster, a controller or Landlord did.
    let exported = export(&client, namespaces).await.unwrap();
    assert_eq!(
        names(&exported),
        [
            format!("apps/v1 Deployment {a}/web"),
            format!("apps/v1 StatefulSet {b}/db"),
            format!("batch/v1 CronJob {b}/nightly"),
            format!("batch/v1 Job {b}/once"),
            format!("networking.k8s.io/v1 NetworkPolicy {a}/allow-web"),
            format!("rbac.authorization.k8s.io/v1 Role {a}/reader"),
            format!("rbac.authorization.k8s.io/v1 RoleBinding {a}/reader"),
            format!("v1 ConfigMap {a}/settings"),
            format!("v1 ConfigMap {b}/settings"),
            format!("v1 PersistentVolumeClaim {b}/data"),
            format!("v1 Pod {a}/bare"),
            format!("v1 Secret {a}/db"),
            format!("v1 Service {a}/web"),
            format!("v1 Service {b}/db"),
            format!("v1 ServiceAccount {a}/builder"),
        ]
    );
    let by_name = |kind: &str, ns: &str, name: &str| {
        exported
            .iter()
            .find(|o| {
                o["kind"] == kind
                    && o["metadata"]["namespace"] == ns
                    && o["metadata"]["name"] == name
            })
            .unwrap()
            .clone()
    };
    let web = by_name("Service", &a, "web");
    assert_eq!(web["spec"].get("clusterIP"), None, "{web}");
    assert_eq!(by_name("Service", &b, "db")["spec"]["clusterIP"], "None");
    let deployment = by_name("Deployment", &a, "web");
    assert_eq!(deployment.get("status"), None);
    assert_eq!(deployment["metadata"].get("uid"), None);
    assert_eq!(deployment["metadata"].get("managedFields"), None);

    // What the test compares field by field after the restore.
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &a);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &a);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &a);
    let headless: Api<Service> = Api::namespaced(client.clone(), &b);
    let settings = config_maps.get("settings").await.unwrap();
    let password = secrets.get("db").await.unwrap();
    let web_deployment = deployments.get("web").await.unwrap();

    // Archive: bundle, seal, open.
    let bundle = Bundle::new(
        "acme",
        None,
        json!({}),
        exported.clone(),
        jiff::Timestamp::now(),
    )
    .unwrap();
    assert_eq!(
        bundle.objects, exported,
        "the export is already in normal form and order"
    );
    let key = Key::generate();
    let opened = open(&seal(&bundle, &key), &KeyRing::new(key)).unwrap();
    assert_eq!(opened.objects, bundle.objects);

    delete_namespaces(&client, namespaces).await;
    create_namespaces(&client, namespaces).await;

    // Restore.
    let report = import(&client, &opened.objects, RESTORE).await.unwrap();
    assert_eq!(report.applied, 15);
    assert_eq!(report.counts, opened.manifest.counts);
    verify(&client, &opened.objects).await.unwrap();

    assert_eq!(
        config_maps.get("settings").await.unwrap().data,
        settings.data
    );
    assert_eq!(secrets.get("db").await.unwrap().data, password.data);
    let restored = deployments.get("web").await.unwrap();
    let (spec, original) = (restored.spec.unwrap(), web_deployment.spec.unwrap());
    assert_eq!(spec.replicas, Some(2));
    assert_eq!(spec.replicas, original.replicas);
    assert_eq!(spec.selector, original.selector);
    assert_eq!(spec.template, original.template);
    let db = headless.get("db").await.unwrap().spec.unwrap();
    assert_eq!(db.cluster_ip.as_deref(), Some("None"));

    // Every object equal to the original, minus server-set fields: exporting the restored
    // tenant makes the same archive.
    let again = export(&client, namespaces).await.unwrap();
    assert_eq!(names(&again), names(&exported));
    for (now, before) in again.iter().zip(&exported) {
        assert_eq!(
            differences(now, before),
            Vec::<String>::new(),
            "{} changed",
            names(std::slice::from_ref(before))[0]
        );
        assert_eq!(differences(before, now), Vec::<String>::new());
    }
    let rebundled = Bundle::new("acme", None, json!({}), again, jiff::Timestamp::now()).unwrap();
    assert_eq!(
        whole_checksum(&rebundled.manifest.objects),
        opened.manifest.sha256
    );

    // An import run again (after an interruption, say) duplicates nothing.
    let before = counts(&client, namespaces).await;
    let report = import(&client, &opened.objects, RESTORE).await.unwrap();
    assert_eq!(report.applied, 15);
    if !real {
        // On a real cluster controllers keep adding Pods and ReplicaSets meanwhile.
        assert_eq!(counts(&client, namespaces).await, before);
    }
    assert_eq!(
        names(&export(&client, namespaces).await.unwrap()),
        names(&exported)
    );
    verify(&client, &opened.objects).await.unwrap();

    // Verification names what someone changed or removed.
    config_maps
        .patch(
            "settings",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"color": "red"}})),
        )
        .await
        .unwrap();
    headless
        .delete("db", &DeleteParams::default())
        .await
        .unwrap();
    let err = verify(&client, &opened.objects).await.unwrap_err();
    let ArchiveError::VerifyFailed { objects } = &err else {
        panic!("{err}")
    };
    assert_eq!(
        objects,
        &[
            format!(r#"ConfigMap {a}/settings (v1): data.color: want "blue", found "red""#),
            format!("Service {b}/db (v1): missing"),
        ]
    );
    assert_eq!(err.reason(), "RestoreVerificationFailed");

    // Importing into a namespace that is not there fails and names the object.
    if !real {
        delete_namespaces(&client, std::slice::from_ref(&b)).await;
        let err = import(&client, &opened.objects, RESTORE).await.unwrap_err();
        let ArchiveError::Import { object, message } = &err else {
            panic!("{err}")
        };
        assert!(object.ends_with(&format!("{b}/settings (v1)")), "{err}");
        assert!(message.contains("not found"), "{err}");
    }
}
