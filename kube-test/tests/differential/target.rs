//! One API server under test: a kube-rs client for raw requests (so that
//! status codes are seen exactly) and kubectl with the same kubeconfig.
use super::normalise::normalise;
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube_test::{ApiServer, RunningServer};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a step waits for a controller (GC, quota, namespaces) to act.
pub const DEADLINE: Duration = Duration::from_secs(120);

pub struct Target {
    pub id: String,
    pub client: Client,
    kubeconfig: PathBuf,
    dir: PathBuf,
    _server: Option<RunningServer>,
    real: bool,
}

impl Target {
    pub async fn kube_test(id: &str) -> Target {
        let server = ApiServer::start().await.expect("kube-test starts");
        let dir = scratch(id, "kube-test");
        let kubeconfig = dir.join("kubeconfig");
        server.write_kubeconfig(&kubeconfig).unwrap();
        Target {
            id: id.to_string(),
            client: server.client().await.unwrap(),
            kubeconfig,
            dir,
            _server: Some(server),
            real: false,
        }
    }

    pub async fn real(id: &str, kubeconfig: &Path) -> Target {
        let kc = Kubeconfig::read_from(kubeconfig).expect("read KUBECONFIG");
        let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .expect("KUBECONFIG is usable");
        Target {
            id: id.to_string(),
            client: Client::try_from(config).unwrap(),
            kubeconfig: kubeconfig.to_path_buf(),
            dir: scratch(id, "real"),
            _server: None,
            real: true,
        }
    }

    /// Namespaces of this run: `difftest-<id>` and `difftest-<id>-<suffix>`.
    pub fn ns(&self, suffix: &str) -> String {
        if suffix.is_empty() {
            format!("difftest-{}", self.id)
        } else {
            format!("difftest-{}-{suffix}", self.id)
        }
    }

    /// The API group of this run's CRD.
    pub fn group(&self) -> String {
        format!("d{}.difftest.example.com", self.id)
    }

    /// A request; the answer is `{code, body}` with the body normalised.
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let ct = if method == "PATCH" {
            "application/merge-patch+json"
        } else {
            "application/json"
        };
        self.call_as(method, path, ct, body).await
    }

    pub async fn call_as(&self, method: &str, path: &str, ct: &str, body: Option<Value>) -> Value {
        let (code, v) = self.raw(method, path, ct, body).await;
        json!({"code": code, "body": normalise(v, &self.id)})
    }

    /// A request whose body is returned as it came (for fields a step picks).
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        ct: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("Content-Type", ct)
            .header("Accept", "application/json")
            .body(kube::client::Body::from(
                body.map(|b| serde_json::to_vec(&b).unwrap())
                    .unwrap_or_default(),
            ))
            .unwrap();
        let resp = self.client.send(req).await.expect("request sent");
        let code = resp.status().as_u16();
        let bytes = resp.into_body().collect_bytes().await.unwrap();
        let v = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (code, v)
    }

    /// Poll a GET until `done` holds for `(code, body)`; the last answer and
    /// whether the condition was met within the deadline.
    pub async fn poll(&self, path: &str, done: impl Fn(u16, &Value) -> bool) -> (bool, u16, Value) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let (code, v) = self.raw("GET", path, "application/json", None).await;
            if done(code, &v) {
                return (true, code, v);
            }
            if Instant::now() > deadline {
                return (false, code, v);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Run kubectl; `{ok, stdout, stderr}` with this run's id normalised.
    pub async fn kubectl(&self, args: &[&str]) -> Value {
        let out = tokio::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.join("cache"))
            .args(args)
            .output()
            .await
            .expect("run kubectl");
        let id = &self.id;
        let clean = |b: &[u8]| String::from_utf8_lossy(b).replace(id.as_str(), "<id>");
        json!({"ok": out.status.success(), "stdout": clean(&out.stdout), "stderr": clean(&out.stderr)})
    }

    /// Write a manifest into this target's scratch folder.
    pub fn manifest(&self, name: &str, yaml: &str) -> String {
        let p = self.dir.join(name);
        std::fs::write(&p, yaml.replace("<id>", &self.id)).unwrap();
        p.to_string_lossy().into_owned()
    }

    /// Delete what this run created. On a real cluster everything has the
    /// run's id in its name; the namespaces go asynchronously.
    pub async fn cleanup(&self) {
        for ns in [self.ns(""), self.ns("q"), self.ns("w")] {
            self.raw(
                "DELETE",
                &format!("/api/v1/namespaces/{ns}"),
                "application/json",
                None,
            )
            .await;
        }
        let crd = format!(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{}",
            self.group()
        );
        self.raw("DELETE", &crd, "application/json", None).await;
        if self.real {
            // a finalizer left by a failed step must not keep a namespace
            for (ns, name) in [(self.ns(""), "blocker"), (self.ns(""), "fin")] {
                let p = format!("/api/v1/namespaces/{ns}/configmaps/{name}");
                self.raw(
                    "PATCH",
                    &p,
                    "application/merge-patch+json",
                    Some(json!({"metadata": {"finalizers": null}})),
                )
                .await;
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn scratch(id: &str, tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kube-test-differential-{id}-{tag}"));
    std::fs::create_dir_all(&d).unwrap();
    d
}
