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
    // The generation moves with every change of the spec (a controller's status writes do
    // not move it): nothing changed `replicas` back.
    assert_eq!(
        web.metadata.generation, applied.metadata.generation,
        "nothing wrote to the Deployment's spec"
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

/// Every kind a tenant typically has, in two namespaces.
fn belongings(app: &str, data: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: settings, namespace: {app}}}\ndata: {{color: blue, size: '3'}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: creds, namespace: {app}}}\ntype: Opaque\nstringData: {{password: hunter2}}\n---\napiVersion: v1\nkind: Service\nmetadata: {{name: web, namespace: {app}}}\nspec: {{selector: {{app: web}}, ports: [{{port: 80, targetPort: 8080}}]}}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web, namespace: {app}}}\nspec:\n  replicas: 2\n{web}---\napiVersion: batch/v1\nkind: CronJob\nmetadata: {{name: nightly, namespace: {app}}}\nspec:\n  schedule: '0 3 * * *'\n  jobTemplate: {{spec: {{template: {{spec: {{restartPolicy: Never, containers: [{{name: c, image: busybox}}]}}}}}}}}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: reader, namespace: {app}}}\nrules: [{{apiGroups: [''], resources: [configmaps], verbs: [get]}}]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: reader, namespace: {app}}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}}\nsubjects: [{{kind: User, name: dana}}]\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: deny-egress, namespace: {app}}}\nspec: {{podSelector: {{}}, policyTypes: [Egress]}}\n---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: store, namespace: {data}}}\nspec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}}}\n---\napiVersion: apps/v1\nkind: StatefulSet\nmetadata: {{name: db, namespace: {data}}}\nspec:\n  replicas: 1\n  serviceName: db\n{db}",
        web = template("web").replace("    ", "  "),
        db = template("db").replace("    ", "  "),
    )
}

/// `(apiVersion, kind, namespace, name)` of each object in `belongings`.
const BELONGINGS: [(&str, &str, &str, &str); 10] = [
    ("v1", "ConfigMap", "app", "settings"),
    ("v1", "Secret", "app", "creds"),
    ("v1", "Service", "app", "web"),
    ("apps/v1", "Deployment", "app", "web"),
    ("batch/v1", "CronJob", "app", "nightly"),
    ("rbac.authorization.k8s.io/v1", "Role", "app", "reader"),
    (
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        "app",
        "reader",
    ),
    (
        "networking.k8s.io/v1",
        "NetworkPolicy",
        "app",
        "deny-egress",
    ),
    ("v1", "PersistentVolumeClaim", "data", "store"),
    ("apps/v1", "StatefulSet", "data", "db"),
];

async fn read(
    client: &Client,
    api_version: &str,
    kind: &str,
    ns: &str,
    name: &str,
) -> Option<serde_json::Value> {
    let gvk = kube::api::GroupVersionKind::try_from(&kube::core::TypeMeta {
        api_version: api_version.into(),
        kind: kind.into(),
    })
    .unwrap();
    let (resource, _) = kube::discovery::pinned_kind(client, &gvk).await.unwrap();
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource);
    let mut object = serde_json::to_value(api.get_opt(name).await.unwrap()?).unwrap();
    object["apiVersion"] = api_version.into();
    object["kind"] = kind.into();
    Some(object)
}

/// A tenant with namespaces `app` and `data` in `state`, owned by user pat.
fn two_namespaces(base: &str, state: &str) -> String {
    format!(
        "apiVersion: landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: {base}-$ID}}\nspec:\n  quotaRef: sleepy-$ID\n  state: {state}\n  owners: [{{kind: User, name: pat}}]\n  namespaces: [{{name: app}}, {{name: data}}]\n"
    )
}

/// Apply `belongings` into `app` and `data`; each object as archived (server fields stripped).
async fn furnish(c: &Cluster, app: &str, data: &str) -> Vec<serde_json::Value> {
    c.apply(&belongings(app, data)).await;
    let mut originals = Vec::new();
    for (api_version, kind, short, object) in BELONGINGS {
        let ns = if short == "app" { app } else { data };
        let original = read(&c.client, api_version, kind, ns, object)
            .await
            .unwrap();
        originals.push(landlord::archive::strip_server_fields(&original));
    }
    originals
}

/// Every object of `belongings` is back, equal field by field to `originals`.
async fn assert_restored(c: &Cluster, app: &str, data: &str, originals: &[serde_json::Value]) {
    for ((api_version, kind, short, object), original) in BELONGINGS.iter().zip(originals) {
        let ns = if *short == "app" { app } else { data };
        let live = read(&c.client, api_version, kind, ns, object)
            .await
            .unwrap_or_else(|| panic!("{kind} {object} was not restored"));
        let differences = landlord::archive::import::differences(&live, original);
        assert_eq!(differences, Vec::<String>::new(), "{kind} {object}");
    }
}

#[tokio::test]
async fn archiving_packs_every_object_and_restoring_brings_each_back_field_by_field() {
    let c = Cluster::start("archive", "5s").await;
    c.apply(PLAN).await;
    let tenant = |state: &str| two_namespaces("box", state);
    c.apply(&tenant("Active")).await;
    let name = c.name("box");
    let ns = |short: &str| format!("{name}-{short}");
    wait_condition(&c.client, &name, "Ready", "True", "Ready").await;
    let originals = furnish(&c, &ns("app"), &ns("data")).await;

    c.apply(&tenant("Archived")).await;
    poll("phase Archived", || async {
        phase(&c.client, &name).await == Some(Phase::Archived)
    })
    .await;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(c.client.clone());
    for short in ["app", "data"] {
        poll("namespace gone", || async {
            namespaces.get_opt(&ns(short)).await.unwrap().is_none()
        })
        .await;
    }
    let tenants: Api<Tenant> = Api::all(c.client.clone());
    let archived = tenants.get(&name).await.unwrap().status.unwrap();
    let record = archived.archive.clone().unwrap();
    assert!(
        record.location.starts_with(&c.archive_url()),
        "{}",
        record.location
    );
    assert_eq!(
        record.object_count,
        BELONGINGS.len() as u64,
        "exactly the tenant's own objects"
    );
    assert_eq!(record.restored_at, None);
    assert_eq!(archived.namespaces, Vec::<String>::new());
    assert_eq!(
        condition(&tenants.get(&name).await.unwrap(), "Ready"),
        Some(("True".into(), "Archived".into()))
    );

    // Hibernating an archived tenant is refused, with what to do; nothing changes.
    c.apply(&tenant("Hibernated")).await;
    wait_condition(&c.client, &name, "Ready", "False", "TransitionRefused").await;
    assert_eq!(phase(&c.client, &name).await, Some(Phase::Archived));

    c.apply(&tenant("Active")).await;
    wait_condition(&c.client, &name, "Ready", "True", "Ready").await;
    let restored = tenants.get(&name).await.unwrap().status.unwrap();
    assert_eq!(restored.phase, Some(Phase::Active));
    assert!(restored.archive.unwrap().restored_at.is_some());
    assert_restored(&c, &ns("app"), &ns("data"), &originals).await;
    c.finish().await;
}

#[tokio::test]
async fn deleting_archives_first_and_retention_purges_the_archive_later() {
    let c = Cluster::start("purge", "5s").await;
    c.apply(PLAN).await;
    c.apply("apiVersion: landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {name: gone-$ID}\nspec:\n  quotaRef: sleepy-$ID\n  retentionDays: 5\n  namespaces: [{name: app}]\n").await;
    let name = c.name("gone");
    let app = format!("{name}-app");
    wait_condition(&c.client, &name, "Ready", "True", "Ready").await;
    c.apply(&format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: keep-me, namespace: {app}}}\ndata: {{k: v}}\n")).await;
    let tenants: Api<Tenant> = Api::all(c.client.clone());
    tenants.delete(&name, &Default::default()).await.unwrap();
    poll("tenant gone", || async {
        tenants.get_opt(&name).await.unwrap().is_none()
    })
    .await;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(c.client.clone());
    poll("namespace gone", || async {
        namespaces.get_opt(&app).await.unwrap().is_none()
    })
    .await;
    let dir = std::path::PathBuf::from(c.archive_url().trim_start_matches("file://")).join(&name);
    let archives = || {
        std::fs::read_dir(&dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.path().extension().is_some_and(|x| x == "llarch"))
                    .count()
            })
            .unwrap_or(0)
    };
    assert_eq!(
        archives(),
        1,
        "deleting under the default policy leaves one verified archive"
    );
    // retentionDays: 5 with a test day of 4 s: purged from the store's own manifests, with no
    // Tenant left.
    poll("archive purged", || async { archives() == 0 }).await;
    c.finish().await;
}

#[tokio::test]
async fn an_operator_killed_again_and_again_still_archives_and_restores_exactly() {
    let mut c = Cluster::start("crash", "2s").await;
    c.apply(PLAN).await;
    let tenant = |state: &str| two_namespaces("crash", state);
    c.apply(&tenant("Active")).await;
    let name = c.name("crash");
    let ns = |short: &str| format!("{name}-{short}");
    wait_condition(&c.client, &name, "Ready", "True", "Ready").await;
    let originals = furnish(&c, &ns("app"), &ns("data")).await;
    // On kube-test, every request in the tenant's namespaces takes 50 ms more, so that the
    // export and the restore take seconds and the kills below land in the middle of them. (On
    // a real cluster the kills land wherever they land.)
    let hooks = c.server.as_ref().map(|s| s.hooks());
    if let Some(hooks) = &hooks {
        for short in ["app", "data"] {
            let slow = kube_test::Injection::delay(std::time::Duration::from_millis(50));
            hooks.inject(slow.namespace(&ns(short)));
        }
    }
    // SIGKILL the operator at a random moment every 20–220 ms (and a little more each time) until the tenant gets there;
    // each restart must pick the job up where the last one left it.
    const KILLS_PER_STEP: u64 = 25;
    let mut kills = 0;
    for (state, goal) in [("Archived", Phase::Archived), ("Active", Phase::Active)] {
        c.apply(&tenant(state)).await;
        // At most KILLS_PER_STEP kills, then the last operator must get there on its own: on a
        // loaded machine a restart may need more time than the growing pauses have given it.
        let mut here = 0;
        while here < KILLS_PER_STEP && phase(&c.client, &name).await != Some(goal) {
            // Growing pauses: later restarts get more time to make progress.
            let pause = 20 + rand::random_range(0..200) + 100 * kills;
            tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
            c.restart_operator();
            kills += 1;
            here += 1;
        }
        poll(
            &format!("{name} reaches {goal:?} ({kills} kills)"),
            || async { phase(&c.client, &name).await == Some(goal) },
        )
        .await;
    }
    if let Some(hooks) = &hooks {
        hooks.clear_all_injections();
    }
    wait_condition(&c.client, &name, "Ready", "True", "Ready").await;
    let record = Api::<Tenant>::all(c.client.clone())
        .get(&name)
        .await
        .unwrap()
        .status
        .unwrap()
        .archive
        .unwrap();
    assert_eq!(record.object_count, BELONGINGS.len() as u64);
    assert!(record.restored_at.is_some());
    assert_restored(&c, &ns("app"), &ns("data"), &originals).await;
    println!("archived and restored through {kills} kills");
    c.finish().await;
}

#[tokio::test]
async fn a_broken_store_or_a_lost_key_deletes_nothing_and_says_why() {
    let c = Cluster::start("faults", "2s").await;
    c.apply(PLAN).await;
    let tenant = |state: &str| {
        format!(
            "apiVersion: landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: fault-$ID}}\nspec:\n  quotaRef: sleepy-$ID\n  state: {state}\n  namespaces: [{{name: app}}]\n"
        )
    };
    c.apply(&tenant("Active")).await;
    let name = c.name("fault");
    let app = format!("{name}-app");
    wait_condition(&c.client, &name, "Ready", "True", "Ready").await;
    c.apply(&format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: precious, namespace: {app}}}\ndata: {{k: v}}\n")).await;

    // The store cannot take the archive: a file stands where the tenant's folder must go.
    let store = std::path::PathBuf::from(c.archive_url().trim_start_matches("file://"));
    std::fs::create_dir_all(&store).unwrap();
    std::fs::write(store.join(&name), "in the way").unwrap();
    c.apply(&tenant("Archived")).await;
    wait_condition(
        &c.client,
        &name,
        "Ready",
        "False",
        "ArchiveStoreUnavailable",
    )
    .await;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(c.client.clone());
    assert!(
        namespaces.get_opt(&app).await.unwrap().is_some(),
        "nothing is deleted"
    );
    assert_eq!(phase(&c.client, &name).await, Some(Phase::Active));

    // Once the store works, the retry archives.
    std::fs::remove_file(store.join(&name)).unwrap();
    poll("phase Archived", || async {
        phase(&c.client, &name).await == Some(Phase::Archived)
    })
    .await;

    // The key is lost: the restore is refused and the archive kept.
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(c.client.clone(), "default");
    let key = secrets.get(&c.key_secret()).await.unwrap();
    secrets
        .delete(&c.key_secret(), &Default::default())
        .await
        .unwrap();
    c.apply(&tenant("Active")).await;
    wait_condition(&c.client, &name, "Ready", "False", "ArchiveKeyMissing").await;
    assert_eq!(phase(&c.client, &name).await, Some(Phase::Restoring));
    let dir = store.join(&name);
    let archives = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "llarch")
        })
        .count();
    assert_eq!(archives, 1, "the archive is kept");

    // The key is back (a new one was made meanwhile: the old one is put beside it).
    let mut data = secrets
        .get(&c.key_secret())
        .await
        .unwrap()
        .data
        .unwrap_or_default();
    for (entry, value) in key.data.unwrap() {
        if entry.starts_with("key-") {
            data.insert(entry, value);
        }
    }
    let mut restored = secrets.get(&c.key_secret()).await.unwrap();
    restored.data = Some(data);
    secrets
        .replace(&c.key_secret(), &Default::default(), &restored)
        .await
        .unwrap();
    wait_condition(&c.client, &name, "Ready", "True", "Ready").await;
    let maps: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(c.client.clone(), &app);
    assert_eq!(maps.get("precious").await.unwrap().data.unwrap()["k"], "v");
    secrets
        .delete(&c.key_secret(), &Default::default())
        .await
        .unwrap();
    c.finish().await;
}
