//! What every integration test needs: an API server (kube-test, or the cluster in KUBECONFIG
//! when `LANDLORD_E2E=1`), the unmodified `landlord` binary running against it, and polling
//! with deadlines written for a loaded two-core machine.
//!
//! Tests must hold on a shared real cluster too, so each test names its objects with its own
//! run id (`$ID` in the YAML it applies), labels them `test.landlord.dev/run=<id>`, runs its
//! operator with `--tenant-selector` on that label (so operators of other tests, or tenants
//! left behind by an earlier run, never meet), asserts only about its own objects, and cleans
//! up after itself with [`Cluster::finish`].

#![allow(dead_code)] // each subject module uses its own part of the support

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, ResourceQuota};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use landlord::api::{Tenant, TenantQuota, TenantUsage};
use serde_json::json;

/// How long any awaited state may take: generous, because CI shares two cores with the API
/// server, the controller manager and the other tests. A passing poll returns at once.
pub const DEADLINE: Duration = Duration::from_secs(120);

pub const RUN_LABEL: &str = "test.landlord.dev/run";

/// Whether the tests run against the cluster in KUBECONFIG rather than kube-test.
pub fn on_real_cluster() -> bool {
    std::env::var_os("LANDLORD_E2E").is_some()
}

pub struct Cluster {
    pub client: Client,
    /// The in-process kube-test server; `None` on a real cluster.
    pub server: Option<kube_test::RunningServer>,
    operator: Child,
    pub kubeconfig: PathBuf,
    resync: String,
    /// This test's run id: a suffix of every name it creates.
    pub id: String,
    /// Where the operator serves the quota engine's API and its metrics.
    pub engine_port: u16,
    pub metrics_port: u16,
    /// Flags every operator start of this test adds (`extra_args`).
    extra: Vec<String>,
    /// The kubeconfig the operator uses, when not the test's (`operator_kubeconfig`).
    operator_kubeconfig: Option<PathBuf>,
    _dir: TempDir,
}

impl Cluster {
    /// Start the API server (unless on a real cluster), install the CRDs, start the operator.
    pub async fn start(tag: &str, resync: &str) -> Cluster {
        let id = run_id();
        let dir = TempDir::new(&format!("{tag}-{id}"));
        let kubeconfig = dir.0.join("kubeconfig");
        let (client, server) = if on_real_cluster() {
            let from = std::env::var("KUBECONFIG").expect("KUBECONFIG for LANDLORD_E2E");
            std::fs::copy(from, &kubeconfig).unwrap();
            (Client::try_default().await.unwrap(), None)
        } else {
            let server = kube_test::ApiServer::start().await.unwrap();
            server.write_kubeconfig(&kubeconfig).unwrap();
            (server.client().await.unwrap(), Some(server))
        };
        install_crds(&client).await;
        let (engine_port, metrics_port) = (free_port(), free_port());
        let mut cluster = Cluster {
            client,
            server,
            operator: Command::new("true").spawn().unwrap(),
            kubeconfig,
            resync: resync.to_string(),
            id,
            engine_port,
            metrics_port,
            extra: Vec::new(),
            operator_kubeconfig: None,
            _dir: dir,
        };
        cluster.restart_operator();
        cluster
    }

    /// `base-<id>`: a name of this test's own.
    pub fn name(&self, base: &str) -> String {
        format!("{base}-{}", self.id)
    }

    /// The label selector that picks this test's objects.
    pub fn selector(&self) -> String {
        format!("{RUN_LABEL}={}", self.id)
    }

    /// Server-side apply YAML documents with `$ID` replaced by this test's id and the run
    /// label added to each.
    pub async fn apply(&self, yaml: &str) {
        landlord::dev::apply_yaml(&self.client, &self.ours(yaml))
            .await
            .unwrap();
    }

    /// `yaml` with `$ID` replaced by this test's id and the run label added to each document.
    fn ours(&self, yaml: &str) -> String {
        let yaml = yaml.replace("$ID", &self.id);
        let mut docs = Vec::new();
        for mut doc in serde_saphyr::from_multiple::<serde_json::Value>(&yaml).unwrap() {
            if doc.is_null() {
                continue;
            }
            doc["metadata"]["labels"][RUN_LABEL] = json!(self.id);
            docs.push(serde_saphyr::to_string(&doc).unwrap());
        }
        docs.join("---\n")
    }

    /// [`Cluster::apply`], tried again until it goes through: for an API server that fails
    /// some requests on purpose.
    pub async fn apply_retrying(&self, yaml: &str) {
        let yaml = self.ours(yaml);
        let deadline = Instant::now() + DEADLINE;
        while let Err(e) = landlord::dev::apply_yaml(&self.client, &yaml).await {
            assert!(Instant::now() < deadline, "never applied: {e}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// This test's archive key Secret (in `default`), so tests can break their own keys.
    pub fn key_secret(&self) -> String {
        format!("landlord-archive-key-{}", self.id)
    }

    /// This test's archive store.
    pub fn archive_url(&self) -> String {
        format!("file://{}", self._dir.0.join("archives").display())
    }

    /// The operator binary with this test's kubeconfig and tenant selector, plus `args`.
    pub fn operator_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_landlord"));
        command
            .arg("run")
            .args(["--tenant-selector", &self.selector()])
            // Archives in this test's own directory; a retention day of 4 s, looked at every second.
            .args(["--archive-url", &self.archive_url()])
            .args(["--archive-key-secret", &self.key_secret()])
            .args(["--purge-interval", "1s", "--retention-day", "4s"])
            .args(args)
            .env(
                "KUBECONFIG",
                self.operator_kubeconfig
                    .as_ref()
                    .unwrap_or(&self.kubeconfig),
            )
            // LANDLORD_TEST_LOG=debug shows what the operators do (on stderr).
            .env(
                "RUST_LOG",
                std::env::var("LANDLORD_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null());
        command
    }

    /// The kubeconfig later operator starts use (one through a proxy, say); the test's own
    /// client keeps its direct one.
    pub fn operator_kubeconfig(&mut self, path: PathBuf) {
        self.operator_kubeconfig = Some(path);
    }

    /// Put a [`Proxy`] between the operator and the API server, and restart the operator
    /// through it; the test's own client stays direct.
    pub async fn proxy_operator(&mut self) -> Proxy {
        let kubeconfig = std::fs::read_to_string(&self.kubeconfig).unwrap();
        let parsed = kube::config::Kubeconfig::from_yaml(&kubeconfig).unwrap();
        let server = parsed.clusters[0]
            .cluster
            .as_ref()
            .unwrap()
            .server
            .clone()
            .unwrap();
        let upstream: std::net::SocketAddr = server
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .unwrap();
        let proxy = Proxy::start(upstream).await;
        let proxied = self.path("kubeconfig-proxied");
        let through = server.replace(&upstream.port().to_string(), &proxy.port.to_string());
        std::fs::write(&proxied, kubeconfig.replace(&server, &through)).unwrap();
        self.operator_kubeconfig(proxied);
        self.restart_operator();
        proxy
    }

    /// A file in this test's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self._dir.0.join(name)
    }

    pub fn operator_pid(&self) -> u32 {
        self.operator.id()
    }

    /// SIGTERM the operator, as Kubernetes stops a pod, and wait for it to exit: its exit
    /// status, or a failure after [`DEADLINE`].
    pub async fn terminate_operator(&mut self) -> std::process::ExitStatus {
        terminate(&mut self.operator).await
    }

    /// Flags added to every later operator start (the next `restart_operator`).
    pub fn extra_args(&mut self, args: &[&str]) {
        self.extra = args.iter().map(|a| a.to_string()).collect();
    }

    /// A namespace of this test's own for the leader Lease, so other runs never share it.
    pub async fn lease_namespace(&self) -> String {
        let name = self.name("lease");
        Api::<Namespace>::all(self.client.clone())
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": name}})).unwrap(),
            )
            .await
            .unwrap();
        name
    }

    /// One replica of a leader-elected operator, with its lease in `lease_ns`, serving
    /// metrics and `/readyz` on `metrics` and the engine on `engine` (0: any port).
    pub fn replica(&self, lease_ns: &str, metrics: u16, engine: u16) -> Child {
        self.operator_command(&[
            "--leader-elect",
            "--leader-election-namespace",
            lease_ns,
            "--metrics-addr",
            &format!("127.0.0.1:{metrics}"),
            "--engine-addr",
            &format!("127.0.0.1:{engine}"),
            "--flush-interval",
            "1s",
        ])
        .env("POD_NAME", format!("replica-{metrics}"))
        .spawn()
        .unwrap()
    }

    /// Kill the operator and start none: a test that runs operators of its own.
    /// [`Cluster::restart_operator`] starts one again (`finish` needs one).
    pub fn stop_operator(&mut self) {
        let _ = self.operator.kill();
        let _ = self.operator.wait();
    }

    /// Kill the operator (if running) and start a new one, as a crash or a rollout would.
    pub fn restart_operator(&mut self) {
        let _ = self.operator.kill();
        let _ = self.operator.wait();
        let engine = format!("127.0.0.1:{}", self.engine_port);
        let metrics = format!("127.0.0.1:{}", self.metrics_port);
        self.operator = self
            .operator_command(&[
                "--metrics-addr",
                &metrics,
                "--engine-addr",
                &engine,
                "--resync",
                &self.resync,
                "--flush-interval",
                "1s",
            ])
            .args(&self.extra)
            .spawn()
            .unwrap();
    }

    /// Delete what this test made, while its operator still runs to release the finalizers:
    /// Tenants, plans, usage ledgers and every namespace named with the run id. On kube-test
    /// this also exercises deletion; on a shared cluster it keeps the next test's world small.
    pub async fn finish(self) {
        let by_run = ListParams::default().labels(&self.selector());
        let tenants: Api<Tenant> = Api::all(self.client.clone());
        tenants
            .delete_collection(&DeleteParams::default(), &by_run)
            .await
            .unwrap();
        poll("this test's tenants deleted", || async {
            tenants.list(&by_run).await.unwrap().items.is_empty()
        })
        .await;
        let plans: Api<TenantQuota> = Api::all(self.client.clone());
        plans
            .delete_collection(&DeleteParams::default(), &by_run)
            .await
            .unwrap();
        let mine = |name: &str| name.contains(&format!("-{}", self.id));
        let usages: Api<TenantUsage> = Api::all(self.client.clone());
        for u in usages.list(&ListParams::default()).await.unwrap() {
            if mine(&u.name_any()) {
                let _ = usages.delete(&u.name_any(), &DeleteParams::default()).await;
            }
        }
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        for ns in namespaces.list(&ListParams::default()).await.unwrap() {
            if mine(&ns.name_any()) && ns.metadata.deletion_timestamp.is_none() {
                let _ = namespaces
                    .delete(&ns.name_any(), &DeleteParams::default())
                    .await;
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.operator.kill();
        let _ = self.operator.wait();
    }
}

/// Server-side apply Landlord's CRDs and wait until they are served.
pub async fn install_crds(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in landlord::api::crds() {
        crds.patch(
            &crd.name_any(),
            &PatchParams::apply("landlord-tests").force(),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap();
    }
    // Served, and in discovery too, which a fresh API server updates a little later (the
    // admission test finds its kinds through discovery).
    let tenants: Api<Tenant> = Api::all(client.clone());
    let kinds: Vec<kube::api::GroupVersionKind> = landlord::api::crds()
        .iter()
        .map(|crd| {
            let version = &crd.spec.versions[0].name;
            kube::api::GroupVersionKind::gvk(&crd.spec.group, version, &crd.spec.names.kind)
        })
        .collect();
    poll("CRDs served and discovered", || async {
        if tenants.list(&ListParams::default().limit(1)).await.is_err() {
            return false;
        }
        for gvk in &kinds {
            if kube::discovery::pinned_kind(client, gvk).await.is_err() {
                return false;
            }
        }
        true
    })
    .await;
}

/// Six lowercase letters and digits, different for every test of every run.
fn run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    let mut n = hasher.finish();
    (0..6)
        .map(|_| {
            let c = b"abcdefghijklmnopqrstuvwxyz0123456789"[(n % 36) as usize];
            n /= 36;
            c as char
        })
        .collect()
}

/// A free port below the kernel's ephemeral range (32768 and up), so that no client
/// connection (to the API server, say) can take it between this choice and the operator's
/// bind, as one did when ports came from the ephemeral range.
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    loop {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        let port = 20_000 + (hasher.finish() % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("landlord-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Poll `check` every 50 ms until it holds, failing after [`DEADLINE`].
pub async fn poll<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + DEADLINE;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn condition(t: &Tenant, type_: &str) -> Option<(String, String)> {
    let c = t
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)?;
    Some((c.status.clone(), c.reason.clone()))
}

/// Wait until `tenant` reports condition `type_` with `status` and `reason` for its current
/// generation, and return it.
pub async fn wait_condition(
    client: &Client,
    tenant: &str,
    type_: &str,
    status: &str,
    reason: &str,
) -> Tenant {
    let api: Api<Tenant> = Api::all(client.clone());
    let want = Some((status.to_string(), reason.to_string()));
    poll(&format!("{tenant} {type_}={status} {reason}"), || async {
        api.get_opt(tenant).await.ok().flatten().is_some_and(|t| {
            condition(&t, type_) == want
                && t.status.as_ref().unwrap().observed_generation == t.metadata.generation
        })
    })
    .await;
    api.get(tenant).await.unwrap()
}

/// `spec.hard` of Landlord's quota in `ns`.
pub async fn hard(client: &Client, ns: &str) -> BTreeMap<String, String> {
    let rq = Api::<ResourceQuota>::namespaced(client.clone(), ns)
        .get("landlord-quota")
        .await
        .unwrap();
    rq.spec
        .unwrap()
        .hard
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect()
}

/// A request to the operator's HTTP ports with a bearer token: (status, JSON body);
/// status 0 when nothing answers.
/// SIGTERM `process`, as Kubernetes stops a pod, and wait for it to exit (other tasks run
/// meanwhile): its exit status, or a failure after [`DEADLINE`].
pub async fn terminate(process: &mut Child) -> std::process::ExitStatus {
    let sent = Command::new("kill")
        .args(["-TERM", &process.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = process.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "the process ignored SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A tenant's ledger of this month as far as the tests read it: one dimension's allowed
/// units, and when a flush last wrote it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LedgerEntry {
    pub allowed: u64,
    pub last_flush: Option<jiff::Timestamp>,
}

/// Read `tenant`'s ledger of this month for `dimension` (zero before the first flush).
pub async fn ledger(client: &Client, tenant: &str, dimension: &str) -> LedgerEntry {
    let name = format!("{tenant}-{}", jiff::Timestamp::now().strftime("%Y-%m"));
    let status = Api::<TenantUsage>::all(client.clone())
        .get_opt(&name)
        .await
        .unwrap()
        .and_then(|u| u.status)
        .unwrap_or_default();
    LedgerEntry {
        allowed: status.dimensions.get(dimension).map_or(0, |d| d.allowed),
        last_flush: status.last_flush.map(|t| t.0),
    }
}

/// Units of `dimension` the ledger holds for `tenant` this month.
pub async fn ledger_allowed(client: &Client, tenant: &str, dimension: &str) -> u64 {
    ledger(client, tenant, dimension).await.allowed
}

pub async fn engine_call(
    port: u16,
    method: &str,
    path: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::TokioExecutor;
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build_http::<Full<bytes::Bytes>>();
    let request = hyper::Request::builder()
        .method(method)
        .uri(format!("http://127.0.0.1:{port}{path}"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Full::new(bytes::Bytes::from(
            body.map(|b| b.to_string()).unwrap_or_default(),
        )))
        .unwrap();
    match client.request(request).await {
        Ok(response) => {
            let status = response.status().as_u16();
            // A replica killed mid-answer cuts the body: no answer, as for a refused connection.
            let Ok(body) = response.into_body().collect().await else {
                return (0, serde_json::Value::Null);
            };
            let bytes = body.to_bytes();
            (
                status,
                serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
            )
        }
        Err(_) => (0, serde_json::Value::Null),
    }
}

/// The operator's Prometheus text.
pub async fn metrics_text(port: u16) -> String {
    use http_body_util::{BodyExt, Empty};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<bytes::Bytes>>();
    let response = client
        .get(format!("http://127.0.0.1:{port}/metrics").parse().unwrap())
        .await
        .unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// The value of every sample of `metric` in Prometheus text, keyed by its label text
/// (`verb="patch",resource="namespaces"`).
pub fn samples(text: &str, metric: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(metric)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(r) => r.split_once("} ")?,
                None => ("", rest.strip_prefix(' ')?),
            };
            Some((labels.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

/// A new ServiceAccount in `namespace` and a token for it.
pub async fn service_account_token(client: &Client, namespace: &str, name: &str) -> String {
    use k8s_openapi::api::authentication::v1::TokenRequest;
    use k8s_openapi::api::core::v1::ServiceAccount;
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    api.create(&PostParams::default(), &sa).await.unwrap();
    let request: TokenRequest = serde_json::from_value(json!({"spec": {"audiences": []}})).unwrap();
    let answer: TokenRequest = api
        .create_subresource("token", name, &PostParams::default(), &request)
        .await
        .unwrap();
    answer.status.unwrap().token
}

/// A TCP proxy that can be cut: open connections are closed and new ones refused.
pub struct Proxy {
    pub port: u16,
    cut: tokio::sync::watch::Sender<bool>,
}

impl Proxy {
    pub async fn start(upstream: std::net::SocketAddr) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (cut, watching) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            loop {
                let Ok((mut downstream, _)) = listener.accept().await else {
                    return;
                };
                if *watching.borrow() {
                    continue; // dropped: the client sees its connection closed
                }
                let mut cut = watching.clone();
                tokio::spawn(async move {
                    let Ok(mut up) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut downstream, &mut up) => {}
                        _ = cut.wait_for(|c| *c) => {}
                    }
                });
            }
        });
        Proxy { port, cut }
    }

    /// Cut (`true`) or restore the connection.
    pub fn cut(&self, down: bool) {
        self.cut.send_replace(down);
    }
}
