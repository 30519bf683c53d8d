//! The real `kubectl` binary against the server (skipped if kubectl is absent).
mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn kubectl_available() -> bool {
    Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "kube-test-{tag}-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// Run kubectl asynchronously (the server runs on this test's runtime).
async fn kubectl(kubeconfig: &Path, cache: &Path, args: &[&str]) -> (bool, String, String) {
    let mut cmd = tokio::process::Command::new("kubectl");
    cmd.arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(cache)
        .args(args);
    let out = cmd.output().await.expect("run kubectl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const OBJECTS: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
data:
  mode: fast
---
apiVersion: example.com/v1
kind: Widget
metadata:
  name: w1
  namespace: shop
spec:
  size: 3
  color: red
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_apply_delete() {
    if !kubectl_available() {
        println!("SKIPPED: kubectl is not on PATH");
        return;
    }
    let (server, _client) = setup().await;
    let dir = tempdir("kubectl");
    let kc = dir.join("kubeconfig");
    server.write_kubeconfig(&kc).unwrap();
    let cache = dir.join("cache");
    let manifests = dir.join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    let crd: serde_json::Value = serde_json::from_str(WIDGET_CRD).unwrap();
    std::fs::write(
        manifests.join("00-crd.json"),
        serde_json::to_string_pretty(&crd).unwrap(),
    )
    .unwrap();
    std::fs::write(manifests.join("10-objects.yaml"), OBJECTS).unwrap();

    let (ok, out, err) = kubectl(&kc, &cache, &["get", "ns"]).await;
    assert!(ok, "get ns failed: {err}");
    let first = out.lines().next().unwrap();
    assert!(
        first.starts_with("NAME") && first.contains("STATUS") && first.contains("AGE"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("default ") && l.contains("Active")),
        "{out}"
    );

    let m = manifests.to_str().unwrap();
    let (ok, out, err) = kubectl(&kc, &cache, &["apply", "--server-side", "-f", m]).await;
    if !ok {
        // Like a real cluster, the CR may be rejected if kubectl resolved its
        // mapping before the CRD existed; a second apply succeeds.
        let (ok2, out2, err2) = kubectl(&kc, &cache, &["apply", "--server-side", "-f", m]).await;
        assert!(ok2, "apply failed: {err}\n{out}\nthen: {err2}\n{out2}");
    }
    let (ok, out, err) = kubectl(&kc, &cache, &["apply", "--server-side", "-f", m]).await;
    assert!(ok, "re-apply failed: {err}");
    assert!(
        out.contains("widget.example.com/w1 serverside-applied"),
        "{out}"
    );

    let (ok, out, err) =
        kubectl(&kc, &cache, &["get", "widgets", "-n", "shop", "-o", "wide"]).await;
    assert!(ok, "{err}");
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["NAME", "SIZE", "PHASE", "COLOR"], "{out}");
    // the server sends a null cell for the missing .status.phase, which kubectl prints blank
    assert_eq!(lines[1], ["w1", "3", "red"], "{out}");
    let (ok, out, _) = kubectl(&kc, &cache, &["get", "wd", "-n", "shop"]).await;
    assert!(ok);
    assert_eq!(
        out.lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["NAME", "SIZE", "PHASE"],
        "priority>0 columns only with -o wide"
    );

    let (ok, out, err) = kubectl(
        &kc,
        &cache,
        &[
            "get",
            "configmap",
            "settings",
            "-n",
            "shop",
            "-o",
            "jsonpath={.data.mode}",
        ],
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(out, "fast");

    let (ok, out, err) = kubectl(&kc, &cache, &["delete", "widget", "w1", "-n", "shop"]).await;
    assert!(ok, "delete failed: {err}");
    assert!(out.contains("widget.example.com \"w1\" deleted"), "{out}");
    let (ok, _, err) = kubectl(&kc, &cache, &["get", "widget", "w1", "-n", "shop"]).await;
    assert!(!ok);
    assert!(
        err.contains("NotFound") || err.contains("not found"),
        "{err}"
    );

    // imperative commands send protobuf bodies for these kinds
    for args in [
        &["create", "namespace", "imperative"][..],
        &[
            "create",
            "configmap",
            "c1",
            "-n",
            "imperative",
            "--from-literal=k=v",
        ],
        &[
            "create",
            "secret",
            "generic",
            "s1",
            "-n",
            "imperative",
            "--from-literal=pw=hunter2",
        ],
        &["create", "serviceaccount", "bot", "-n", "imperative"],
    ] {
        let (ok, _, err) = kubectl(&kc, &cache, args).await;
        assert!(ok, "{args:?}: {err}");
    }
    let (ok, out, _) = kubectl(
        &kc,
        &cache,
        &[
            "get",
            "secret",
            "s1",
            "-n",
            "imperative",
            "-o",
            "jsonpath={.data.pw}",
        ],
    )
    .await;
    assert!(ok);
    assert_eq!(out, "aHVudGVyMg==");
    let (ok, out, err) =
        kubectl(&kc, &cache, &["create", "token", "bot", "-n", "imperative"]).await;
    assert!(ok && !out.trim().is_empty(), "{err}");
    let (_, out, _) = kubectl(
        &kc,
        &cache,
        &["auth", "can-i", "create", "pods", "-n", "imperative"],
    )
    .await;
    assert_eq!(out.trim(), "yes");
    let (_, out, _) = kubectl(
        &kc,
        &cache,
        &[
            "auth",
            "can-i",
            "list",
            "pods",
            "--as",
            "system:serviceaccount:imperative:bot",
        ],
    )
    .await;
    assert_eq!(out.trim(), "no");

    let (ok, out, err) = kubectl(&kc, &cache, &["delete", "namespace", "shop"]).await;
    assert!(ok, "delete ns failed: {err}");
    assert!(out.contains("namespace \"shop\" deleted"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
