//! Archive and restore throughput for 1,000 objects, against baselines in the same run.
//!
//! - sealing: `Bundle::new` + `seal` + `open` (checksums, compression, encryption, and every
//!   check on the way back) against plain `serde_json` serialisation and parsing of the same
//!   objects;
//! - export and import against kube-test (in process): `archive::export` of a namespace with
//!   1,000 ConfigMaps against one plain LIST of them, and `archive::import` +
//!   `import::verify` into an emptied namespace against plain server-side applies of the same
//!   objects with the same concurrency (8).
//!
//! `cargo bench --bench archive` (part of `make bench`).

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use landlord::archive::{self, Bundle, Key, KeyRing};
use serde_json::{Value, json};

const OBJECTS: usize = 1_000;

fn config_map(ns: &str, i: usize) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": format!("settings-{i:04}"), "namespace": ns, "labels": {"app": "bench"}},
        "data": {"payload": "x".repeat(1024), "index": i.to_string()},
    })
}

fn rate(what: &str, took: Duration, bytes: usize, baseline: Duration) {
    let secs = took.as_secs_f64();
    println!(
        "  {what:<34} {:>8.0} objects/s {:>7.1} MB/s   {:.2}x the baseline's time ({:.0} ms vs {:.0} ms)",
        OBJECTS as f64 / secs,
        bytes as f64 / secs / 1e6,
        secs / baseline.as_secs_f64(),
        secs * 1e3,
        baseline.as_secs_f64() * 1e3,
    );
}

#[tokio::main]
async fn main() {
    println!("archive: {OBJECTS} ConfigMaps of about 1 KiB");
    let objects: Vec<Value> = (0..OBJECTS).map(|i| config_map("bench", i)).collect();
    let bytes = serde_json::to_vec(&objects).unwrap().len();

    // Sealing, pure.
    let start = Instant::now();
    let plain = serde_json::to_vec(&objects).unwrap();
    let back: Vec<Value> = serde_json::from_slice(&plain).unwrap();
    let baseline = start.elapsed();
    assert_eq!(back.len(), OBJECTS);
    let key = Key::generate();
    let ring = KeyRing::new(key.clone());
    let start = Instant::now();
    let bundle = Bundle::new(
        "bench",
        None,
        json!({}),
        objects.clone(),
        jiff::Timestamp::now(),
    )
    .unwrap();
    let sealed = archive::seal(&bundle, &key);
    let opened = archive::open(&sealed, &ring).unwrap();
    let took = start.elapsed();
    assert_eq!(opened.objects.len(), OBJECTS);
    rate("seal + open (vs JSON round trip)", took, bytes, baseline);
    println!(
        "  sealed size: {} bytes for {} bytes of JSON",
        sealed.len(),
        bytes
    );

    // Export and import through an API server.
    let server = kube_test::ApiServer::start().await.unwrap();
    let client = server.client().await.unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let make_ns = || async {
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "bench"}})).unwrap();
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
    };
    make_ns().await;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "bench");
    let apply_all = |objects: Vec<Value>| {
        let maps = maps.clone();
        async move {
            futures::stream::iter(objects)
                .map(|o| {
                    let maps = maps.clone();
                    async move {
                        let name = o["metadata"]["name"].as_str().unwrap().to_string();
                        maps.patch(
                            &name,
                            &PatchParams::apply("bench").force(),
                            &Patch::Apply(&o),
                        )
                        .await
                        .unwrap();
                    }
                })
                .buffer_unordered(8)
                .collect::<Vec<_>>()
                .await;
        }
    };
    let start = Instant::now();
    apply_all(objects.clone()).await;
    let apply_baseline = start.elapsed();

    let start = Instant::now();
    let listed = maps.list(&ListParams::default()).await.unwrap();
    let list_baseline = start.elapsed();
    // Plus the kube-root-ca.crt the cluster puts in every namespace.
    assert!(listed.items.len() >= OBJECTS);
    let start = Instant::now();
    let exported = archive::export(&client, &["bench".to_string()])
        .await
        .unwrap();
    let took = start.elapsed();
    let extra: Vec<String> = exported
        .iter()
        .filter(|o| {
            o["kind"] != "ConfigMap"
                || !o["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("settings-")
        })
        .map(|o| format!("{} {}", o["kind"], o["metadata"]["name"]))
        .collect();
    assert_eq!(exported.len(), OBJECTS, "also exported: {extra:?}");
    rate("export (vs one plain LIST)", took, bytes, list_baseline);

    namespaces
        .delete("bench", &DeleteParams::default())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while namespaces.get_opt("bench").await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "namespace never went away");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    make_ns().await;
    let start = Instant::now();
    archive::import(&client, &exported, "bench-restore")
        .await
        .unwrap();
    archive::import::verify(&client, &exported).await.unwrap();
    let took = start.elapsed();
    rate(
        "import + verify (vs plain applies)",
        took,
        bytes,
        apply_baseline,
    );
    server.shutdown().await;
}
