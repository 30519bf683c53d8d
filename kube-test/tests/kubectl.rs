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

const WORKLOADS: &str = r#"apiVersion: v1
kind: Namespace
metadata: {name: work}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: work}
spec:
  schedule: "0 3 * * *"
  jobTemplate: {spec: {template: {spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}}}}
---
apiVersion: batch/v1
kind: Job
metadata: {name: once, namespace: work}
spec: {backoffLimit: 2, template: {spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}}}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: work}
spec: {selector: {matchLabels: {app: agent}}, template: {metadata: {labels: {app: agent}}, spec: {containers: [{name: c, image: busybox}]}}}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: front, namespace: work}
spec: {replicas: 2, selector: {matchLabels: {app: front}}, template: {metadata: {labels: {app: front}}, spec: {containers: [{name: c, image: nginx}]}}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: front, namespace: work}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: ReplicaSet, name: front}
  minReplicas: 1
  maxReplicas: 5
  metrics: [{type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 80}}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: work}
spec:
  rules: [{host: shop.example.com, http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: front, port: {number: 80}}}}]}}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: front, namespace: work}
spec: {minAvailable: 1, selector: {matchLabels: {app: front}}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: front-abc, namespace: work, labels: {kubernetes.io/service-name: front}}
addressType: IPv4
endpoints: [{addresses: [10.0.0.1]}]
ports: [{name: http, port: 80, protocol: TCP}]
"#;

/// The first column of every non-header line.
fn names_in(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| !l.is_empty() && !l.starts_with("NAME"))
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_workload_kinds_apply_get_scale_and_create() {
    if !kubectl_available() {
        println!("SKIPPED: kubectl is not on PATH");
        return;
    }
    let (server, client) = setup().await;
    let dir = tempdir("kubectl-workloads");
    let kc = dir.join("kubeconfig");
    server.write_kubeconfig(&kc).unwrap();
    let cache = dir.join("cache");
    let file = dir.join("workloads.yaml");
    std::fs::write(&file, WORKLOADS).unwrap();

    let (ok, out, err) = kubectl(&kc, &cache, &["apply", "-f", file.to_str().unwrap()]).await;
    assert!(ok, "apply failed: {err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "namespace/work created",
            "cronjob.batch/nightly created",
            "job.batch/once created",
            "daemonset.apps/agent created",
            "replicaset.apps/front created",
            "horizontalpodautoscaler.autoscaling/front created",
            "ingress.networking.k8s.io/web created",
            "poddisruptionbudget.policy/front created",
            "endpointslice.discovery.k8s.io/front-abc created",
        ]
    );
    let (ok, out, err) = kubectl(
        &kc,
        &cache,
        &["get", "cj,job,ds,rs,hpa,ing,pdb", "-n", "work"],
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(
        names_in(&out),
        [
            "cronjob.batch/nightly",
            "job.batch/once",
            "daemonset.apps/agent",
            "replicaset.apps/front",
            "horizontalpodautoscaler.autoscaling/front",
            "ingress.networking.k8s.io/web",
            "poddisruptionbudget.policy/front",
        ]
    );

    let (ok, out, err) = kubectl(
        &kc,
        &cache,
        &["scale", "rs", "front", "--replicas=4", "-n", "work"],
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "replicaset.apps/front scaled");
    let rs = dynamic(
        &client,
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        Some("work"),
    );
    assert_eq!(rs.get("front").await.unwrap().data["spec"]["replicas"], 4);

    // these generators send protobuf bodies
    for args in [
        &[
            "create",
            "quota",
            "q",
            "--hard=pods=2,requests.cpu=1",
            "-n",
            "work",
        ][..],
        &[
            "create",
            "deployment",
            "web",
            "--image=nginx:1.27",
            "--replicas=3",
            "--port=8080",
            "-n",
            "work",
        ],
        &[
            "create",
            "cronjob",
            "report",
            "--image=busybox",
            "--schedule=*/5 * * * *",
            "-n",
            "work",
            "--",
            "echo",
            "hi",
        ],
        &[
            "create",
            "job",
            "migrate",
            "--image=busybox",
            "-n",
            "work",
            "--",
            "true",
        ],
    ] {
        let (ok, _, err) = kubectl(&kc, &cache, args).await;
        assert!(ok, "{args:?}: {err}");
    }
    let get = |group: &str, kind: &str, plural: &str, name: &str| {
        let api = dynamic(&client, group, "v1", kind, plural, Some("work"));
        let name = name.to_string();
        async move { api.get(&name).await.unwrap() }
    };
    let quota = get("", "ResourceQuota", "resourcequotas", "q").await;
    assert_eq!(
        quota.data["spec"],
        serde_json::json!({"hard": {"pods": "2", "requests.cpu": "1"}})
    );
    assert_eq!(
        quota.data["status"]["used"],
        serde_json::json!({"pods": "0", "requests.cpu": "0"})
    );

    let deploy = get("apps", "Deployment", "deployments", "web").await;
    assert_eq!(deploy.metadata.generation, Some(1));
    assert_eq!(deploy.data["spec"]["replicas"], 3);
    assert_eq!(
        deploy.data["spec"]["selector"],
        serde_json::json!({"matchLabels": {"app": "web"}})
    );
    let c = &deploy.data["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        (&c["name"], &c["image"], &c["ports"][0]["containerPort"]),
        (&"nginx".into(), &"nginx:1.27".into(), &8080.into())
    );
    assert_eq!(
        deploy.data["spec"]["template"]["metadata"],
        serde_json::json!({"labels": {"app": "web"}})
    );

    let cj = get("batch", "CronJob", "cronjobs", "report").await;
    assert_eq!(cj.data["spec"]["schedule"], "*/5 * * * *");
    let pod = &cj.data["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "OnFailure");
    assert_eq!(
        pod["containers"][0]["command"],
        serde_json::json!(["echo", "hi"])
    );

    let job = get("batch", "Job", "jobs", "migrate").await;
    assert_eq!(job.metadata.generation, Some(1));
    let pod = &job.data["spec"]["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    assert_eq!(
        (
            &pod["containers"][0]["image"],
            &pod["containers"][0]["command"]
        ),
        (&"busybox".into(), &serde_json::json!(["true"]))
    );

    let (ok, _, err) = kubectl(&kc, &cache, &["delete", "namespace", "work"]).await;
    assert!(ok, "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
