//! Migration throughput: a tenant of 1,000 ConfigMaps (about 1 KiB each) copied by the real
//! operator between two kube-test servers in this process, against a baseline measured in the
//! same run: one LIST of the source namespace and a plain server-side apply of the same
//! objects to the target with the same parallelism (4), which is the least any copy must do.
//!
//! The migration does more on top: discovery on both sides, the plan's checksum, a checkpoint
//! (status at the source, annotation at the target) after every batch of 50, the Tenant, plan,
//! namespace and ledgers, and a verification that exports both sides and compares them.
//!
//! `cargo bench --bench migration` (part of `make bench`).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use landlord::api::Tenant;
use serde_json::{Value, json};

mod support;
use support::install_crds;

const OBJECTS: usize = 1_000;
const PARALLELISM: usize = 4;
const DEADLINE: Duration = Duration::from_secs(300);

fn config_map(ns: &str, i: usize) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": format!("settings-{i:04}"), "namespace": ns, "labels": {"app": "bench"}},
        "data": {"payload": "x".repeat(1024), "index": i.to_string()},
    })
}

async fn wait<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + DEADLINE;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn apply_all(client: &Client, ns: &str, objects: &[Value]) {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let params = PatchParams::apply("bench").force();
    futures::stream::iter(objects.iter().cloned())
        .map(|mut o| {
            let (api, params) = (api.clone(), params.clone());
            o["metadata"]["namespace"] = json!(ns);
            async move {
                let name = o["metadata"]["name"].as_str().unwrap().to_string();
                api.patch(&name, &params, &Patch::Apply(&o)).await.unwrap();
            }
        })
        .buffer_unordered(PARALLELISM)
        .collect::<Vec<()>>()
        .await;
}

fn operator(kubeconfig: &std::path::Path, archives: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_landlord"))
        .args([
            "run",
            "--metrics-addr",
            "127.0.0.1:0",
            "--engine-addr",
            "127.0.0.1:0",
        ])
        .args(["--archive-url", &format!("file://{}", archives.display())])
        .env("KUBECONFIG", kubeconfig)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

#[tokio::main]
async fn main() {
    println!(
        "migration: a tenant of {OBJECTS} ConfigMaps of about 1 KiB, between two kube-test servers"
    );
    let dir = std::env::temp_dir().join(format!("landlord-bench-migration-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let source = kube_test::ApiServer::start().await.unwrap();
    let target = kube_test::ApiServer::start().await.unwrap();
    let (here, there) = (
        source.client().await.unwrap(),
        target.client().await.unwrap(),
    );
    install_crds(&here).await;
    install_crds(&there).await;
    let source_config = dir.join("source");
    let target_config = dir.join("target");
    source.write_kubeconfig(&source_config).unwrap();
    target.write_kubeconfig(&target_config).unwrap();

    let mut op = operator(&source_config, &dir.join("archives"));
    let yaml = "apiVersion: landlord.dev/v1alpha1\nkind: TenantQuota\nmetadata: {name: bench}\nspec:\n  hard: {pods: 10}\n---\napiVersion: landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {name: bench}\nspec:\n  quotaRef: bench\n  namespaces: [{name: data}]\n";
    landlord::dev::apply_yaml(&here, yaml).await.unwrap();
    let namespaces: Api<Namespace> = Api::all(here.clone());
    wait("the tenant's namespace", || async {
        namespaces.get_opt("bench-data").await.unwrap().is_some()
    })
    .await;
    let objects: Vec<Value> = (0..OBJECTS).map(|i| config_map("bench-data", i)).collect();
    apply_all(&here, "bench-data", &objects).await;

    // Baseline: one LIST at the source, plain applies at the target.
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "baseline"}})).unwrap();
    Api::<Namespace>::all(there.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let start = Instant::now();
    let listed = Api::<ConfigMap>::namespaced(here.clone(), "bench-data")
        .list(&ListParams::default())
        .await
        .unwrap();
    let listed: Vec<Value> = listed
        .items
        .iter()
        .filter(|c| c.name_any().starts_with("settings-"))
        .map(|c| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": c.name_any(), "labels": c.labels()}, "data": c.data}))
        .collect();
    apply_all(&there, "baseline", &listed).await;
    let baseline = start.elapsed();

    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("target".into()),
            ..Default::default()
        },
        data: Some(
            [(
                "kubeconfig".to_string(),
                ByteString(std::fs::read(&target_config).unwrap()),
            )]
            .into(),
        ),
        ..Default::default()
    };
    Api::<Secret>::namespaced(here.clone(), "default")
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let tenants: Api<Tenant> = Api::all(here.clone());
    let start = Instant::now();
    tenants
        .patch(
            "bench",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"migration": {"targetRef": {"namespace": "default", "name": "target"}, "mode": "Copy"}}})),
        )
        .await
        .unwrap();
    wait("the migration done", || async {
        tenants
            .get("bench")
            .await
            .unwrap()
            .status
            .and_then(|s| s.migration)
            .is_some_and(|m| m.phase == "Done")
    })
    .await;
    let took = start.elapsed();
    let copied = Api::<ConfigMap>::namespaced(there.clone(), "bench-data")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter(|c| c.name_any().starts_with("settings-"))
        .count();
    assert_eq!(copied, OBJECTS, "every object copied");
    let _ = op.kill();
    let _ = op.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let per_second = |d: Duration| OBJECTS as f64 / d.as_secs_f64();
    println!(
        "  baseline (LIST + plain applies)    {:>8.0} objects/s ({:.0} ms)",
        per_second(baseline),
        baseline.as_secs_f64() * 1e3
    );
    println!(
        "  migration (Copy, verified)         {:>8.0} objects/s ({:.0} ms)   {:.2}x the baseline's time",
        per_second(took),
        took.as_secs_f64() * 1e3,
        took.as_secs_f64() / baseline.as_secs_f64()
    );
}
