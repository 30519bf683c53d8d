//! In-memory Kubernetes API server served over HTTP on loopback, for tests
//! and `landlord dev`. See README.md.
//!
//! ```no_run
//! # async fn f() -> anyhow::Result<()> {
//! let server = kube_test::ApiServer::start().await?;
//! let client = server.client().await?;
//! # Ok(()) }
//! ```

mod catalog;
mod error;
mod fields;
mod hooks;
mod pod_security;
mod policy;
mod proto;
mod proto_json;
pub mod quantity;
mod quota;
mod rbac;
mod resources;
mod schema;
mod selectors;
mod server;
mod ssa;
mod state;
mod table;
mod typed_patch;

pub use hooks::{Hooks, Injection, InjectionId};

use axum::body::{Body, Bytes};
use axum::response::Response;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(crate) struct Shared {
    pub(crate) state: Mutex<state::State>,
    pub(crate) hooks: hooks::HookData,
    pub(crate) addr: SocketAddr,
    pub(crate) admin_token: String,
    pub(crate) bookmark_interval: Duration,
}

/// Entry point: starts a server.
pub struct ApiServer {
    addr: SocketAddr,
    history: usize,
    bookmark_interval: Duration,
}

impl Default for ApiServer {
    fn default() -> Self {
        ApiServer {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            history: 10_000,
            bookmark_interval: Duration::from_secs(1),
        }
    }
}

impl ApiServer {
    /// Start on 127.0.0.1 with an OS-chosen port, in a tokio task.
    pub async fn start() -> anyhow::Result<RunningServer> {
        Self::default().serve().await
    }

    /// Start on the given address.
    pub async fn start_on(addr: SocketAddr) -> anyhow::Result<RunningServer> {
        ApiServer {
            addr,
            ..Self::default()
        }
        .serve()
        .await
    }

    /// Builder: a server configuration with defaults (random loopback port).
    pub fn builder() -> Self {
        Self::default()
    }
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }
    /// How many watch events are kept for resuming watches (default 10000).
    pub fn watch_history(mut self, n: usize) -> Self {
        self.history = n.max(1);
        self
    }
    /// Interval of periodic watch bookmarks when clients allow them (default 1s).
    pub fn bookmark_interval(mut self, d: Duration) -> Self {
        self.bookmark_interval = d;
        self
    }

    pub async fn serve(self) -> anyhow::Result<RunningServer> {
        let listener = tokio::net::TcpListener::bind(self.addr).await?;
        let addr = listener.local_addr()?;
        let bytes: [u8; 24] = rand::random();
        let admin_token = format!(
            "kube-test.admin.{}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let mut st = state::State::new(self.history);
        st.tokens.insert(
            admin_token.clone(),
            state::UserInfo {
                username: "kube-test-admin".into(),
                uid: state::random_uid(),
                groups: vec!["system:masters".into(), "system:authenticated".into()],
                sa: None,
                audiences: vec![],
                expires: None,
            },
        );
        let shared = Arc::new(Shared {
            state: Mutex::new(st),
            hooks: Default::default(),
            addr,
            admin_token,
            bookmark_interval: self.bookmark_interval,
        });
        let sh = shared.clone();
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let sh = sh.clone();
            async move { server::handle(sh, req).await }
        });
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop_rx.await;
                })
                .await;
        });
        Ok(RunningServer {
            shared,
            stop: Some(stop_tx),
            task: Some(task),
        })
    }
}

/// A running server; dropping it stops the server.
pub struct RunningServer {
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningServer {
    /// "http://127.0.0.1:PORT"
    pub fn url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// Bearer token of the admin user (system:masters).
    pub fn admin_token(&self) -> String {
        self.shared.admin_token.clone()
    }

    /// A kubeconfig with cluster, user and context named "kube-test".
    pub fn kubeconfig_yaml(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kube-test\n  cluster:\n    server: {}\nusers:\n- name: kube-test\n  user:\n    token: {}\ncontexts:\n- name: kube-test\n  context:\n    cluster: kube-test\n    user: kube-test\n    namespace: default\ncurrent-context: kube-test\npreferences: {{}}\n",
            self.url(),
            self.shared.admin_token
        )
    }

    pub fn write_kubeconfig(&self, path: &std::path::Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, self.kubeconfig_yaml())?;
        Ok(())
    }

    /// A kube::Client for this server, authenticated as the admin user.
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        let kc: kube::config::Kubeconfig =
            kube::config::Kubeconfig::from_yaml(&self.kubeconfig_yaml())?;
        let cfg =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await?;
        Ok(kube::Client::try_from(cfg)?)
    }

    pub fn hooks(&self) -> Hooks {
        Hooks {
            shared: self.shared.clone(),
        }
    }

    /// Stop serving and wait for the server task to finish.
    pub async fn shutdown(mut self) {
        self.hooks().drop_watches();
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Ok(mut s) = self.shared.state.try_lock() {
            s.watchers.clear();
        }
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

fn admin_json(code: u16, v: &Value) -> Response {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(v).unwrap()))
        .unwrap()
}

/// `/kube-test/...` endpoints: the hooks over HTTP.
pub(crate) fn admin_http(
    shared: &Arc<Shared>,
    method: &http::Method,
    path: &str,
    body: &Bytes,
) -> Response {
    let hooks = Hooks {
        shared: shared.clone(),
    };
    let path = path.trim_end_matches('/');
    match (method.as_str(), path) {
        ("GET", "counts") => {
            let counts: Vec<Value> = hooks
                .counts()
                .into_iter()
                .map(|(v, r, c)| json!({"verb": v, "resource": r, "count": c}))
                .collect();
            admin_json(
                200,
                &json!({"counts": counts, "writes": hooks.write_count(), "resourceVersion": hooks.resource_version()}),
            )
        }
        ("POST", "reset") => {
            hooks.reset_counts();
            admin_json(200, &json!({}))
        }
        ("POST", "drop-watches") => {
            hooks.drop_watches();
            admin_json(200, &json!({}))
        }
        ("POST", "compact") => {
            hooks.compact();
            admin_json(200, &json!({}))
        }
        ("POST", "inject") => {
            let v: Value = match serde_json::from_slice(body) {
                Ok(v) => v,
                Err(e) => return admin_json(400, &json!({"error": e.to_string()})),
            };
            let s = |k: &str| v.get(k).and_then(Value::as_str).map(String::from);
            let rule = Injection {
                verb: s("verb"),
                resource: s("resource"),
                namespace: s("namespace"),
                name: s("name"),
                status: v.get("status").and_then(Value::as_u64).map(|x| x as u16),
                message: s("message"),
                latency: v
                    .get("latencyMs")
                    .and_then(Value::as_u64)
                    .map(Duration::from_millis),
                times: v.get("times").and_then(Value::as_u64),
                probability: v.get("probability").and_then(Value::as_f64),
            };
            let id = hooks.inject(rule);
            admin_json(200, &json!({"id": id.0}))
        }
        ("DELETE", "inject") => {
            hooks.clear_all_injections();
            admin_json(200, &json!({}))
        }
        ("DELETE", p) if p.starts_with("inject/") => match p[7..].parse::<u64>() {
            Ok(id) => {
                hooks.clear_injection(InjectionId(id));
                admin_json(200, &json!({}))
            }
            Err(_) => admin_json(400, &json!({"error": "bad id"})),
        },
        _ => admin_json(
            404,
            &json!({"error": "unknown kube-test endpoint", "endpoints": ["GET counts", "POST reset", "POST drop-watches", "POST compact", "POST inject", "DELETE inject[/ID]"]}),
        ),
    }
}
