//! The operator binary, unmodified, against an API server: kube-test by default, or the
//! cluster in KUBECONFIG when LANDLORD_E2E=1 (`make e2e`). Tests only use the Kubernetes API;
//! the write-count test needs kube-test's request counters and is skipped on a real cluster.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Pod, ResourceQuota};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use landlord::api::{Tenant, TenantQuota};
use serde_json::json;

struct Cluster {
    client: Client,
    server: Option<kube_test::RunningServer>,
    operator: Child,
    kubeconfig: std::path::PathBuf,
    resync: String,
    /// Where the operator serves the quota engine's API and its metrics.
    engine_port: u16,
    metrics_port: u16,
    _dir: tempdir::Dir,
}

impl Cluster {
    /// Kill the operator and start a new one, as a crash or a rollout would.
    fn restart_operator(&mut self) {
        let _ = self.operator.kill();
        let _ = self.operator.wait();
        self.operator = operator(
            &self.kubeconfig,
            &self.resync,
            self.engine_port,
            self.metrics_port,
        );
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn operator(
    kubeconfig: &std::path::Path,
    resync: &str,
    engine_port: u16,
    metrics_port: u16,
) -> Child {
    let engine = format!("127.0.0.1:{engine_port}");
    let metrics = format!("127.0.0.1:{metrics_port}");
    Command::new(env!("CARGO_BIN_EXE_landlord"))
        .args([
            "run",
            "--metrics-addr",
            &metrics,
            "--engine-addr",
            &engine,
            "--resync",
            resync,
            "--flush-interval",
            "1s",
        ])
        .env("KUBECONFIG", kubeconfig)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

mod tempdir {
    /// A directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    pub fn new(tag: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!(
            "landlord-{tag}-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }
    fn rand_suffix() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.operator.kill();
        let _ = self.operator.wait();
    }
}

/// Start the API server (unless LANDLORD_E2E), install the CRDs, start the operator binary.
async fn cluster(tag: &str, resync: &str) -> Cluster {
    let dir = tempdir::new(tag);
    let kubeconfig = dir.0.join("kubeconfig");
    let (client, server) = if std::env::var("LANDLORD_E2E").is_ok() {
        std::fs::copy(
            std::env::var("KUBECONFIG").expect("KUBECONFIG for e2e"),
            &kubeconfig,
        )
        .unwrap();
        (Client::try_default().await.unwrap(), None)
    } else {
        let server = kube_test::ApiServer::start().await.unwrap();
        server.write_kubeconfig(&kubeconfig).unwrap();
        (server.client().await.unwrap(), Some(server))
    };
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> = Api::all(client.clone());
    for crd in landlord::api::crds() {
        crds.patch(
            &crd.name_any(),
            &PatchParams::apply("test").force(),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap();
    }
    let tenants: Api<Tenant> = Api::all(client.clone());
    poll("CRDs served", || async {
        tenants.list(&Default::default()).await.is_ok()
    })
    .await;
    let (engine_port, metrics_port) = (free_port(), free_port());
    let operator = operator(&kubeconfig, resync, engine_port, metrics_port);
    Cluster {
        client,
        server,
        operator,
        kubeconfig,
        resync: resync.to_string(),
        engine_port,
        metrics_port,
        _dir: dir,
    }
}

/// Poll `check` every 50 ms until it holds, failing after 30 s.
async fn poll<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn apply(client: &Client, yaml: &str) {
    landlord::dev::apply_yaml(client, yaml).await.unwrap();
}

fn condition(t: &Tenant, type_: &str) -> Option<(String, String)> {
    let c = t
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)?;
    Some((c.status.clone(), c.reason.clone()))
}

async fn wait_condition(
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

async fn hard(client: &Client, ns: &str) -> BTreeMap<String, String> {
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

const PLAN: &str = "apiVersion: landlord.dev/v1alpha1\nkind: TenantQuota\nmetadata: {name: team}\nspec:\n  hard: {pods: 10, requests.cpu: '2'}\n  namespaceHard: {count/services: 5}\n  podSecurity: restricted\n";

#[tokio::test]
async fn a_tenant_is_provisioned_updated_and_deleted() {
    let c = cluster("lifecycle", "5m").await;
    apply(&c.client, PLAN).await;
    apply(&c.client, "apiVersion: landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {name: shop}\nspec:\n  quotaRef: team\n  deletionPolicy: Delete\n  owners: [{kind: Group, name: shop-devs}]\n  namespaces: [{name: web}, {name: db}]\n").await;
    let t = wait_condition(&c.client, "shop", "Ready", "True", "Ready").await;
    let status = t.status.unwrap();
    assert_eq!(status.namespaces, ["shop-web", "shop-db"]);
    assert_eq!(status.usage["pods"].hard.as_deref(), Some("10"));

    // Exactly the expected objects.
    let ns = Api::<Namespace>::all(c.client.clone())
        .get("shop-web")
        .await
        .unwrap();
    let labels = ns.labels();
    assert_eq!(labels["landlord.dev/tenant"], "shop");
    assert_eq!(labels["pod-security.kubernetes.io/enforce"], "restricted");
    assert!(
        ns.metadata.owner_references.unwrap_or_default().is_empty(),
        "namespaces must not be garbage-collectable"
    );
    assert_eq!(
        hard(&c.client, "shop-web").await,
        BTreeMap::from([
            ("pods".into(), "5".into()),
            ("requests.cpu".into(), "1".into()),
            ("count/services".into(), "5".into())
        ])
    );
    assert_eq!(
        hard(&c.client, "shop-db").await,
        BTreeMap::from([
            ("pods".into(), "5".into()),
            ("requests.cpu".into(), "1".into()),
            ("count/services".into(), "5".into())
        ])
    );
    let rb = Api::<RoleBinding>::namespaced(c.client.clone(), "shop-db")
        .get("landlord-owners-admin")
        .await
        .unwrap();
    assert_eq!(rb.role_ref.name, "admin");
    assert_eq!(rb.subjects.unwrap()[0].name, "shop-devs");
    let np = Api::<NetworkPolicy>::namespaced(c.client.clone(), "shop-db")
        .get("landlord-isolation")
        .await
        .unwrap();
    assert_eq!(
        np.spec.unwrap().policy_types.unwrap(),
        ["Ingress", "Egress"]
    );
    let plans: Api<TenantQuota> = Api::all(c.client.clone());
    poll("plan counts its tenant", || async {
        plans
            .get("team")
            .await
            .unwrap()
            .status
            .is_some_and(|s| s.tenants == 1)
    })
    .await;
    let (status, _) = engine_call(c.metrics_port, "GET", "/healthz", "", None).await;
    assert_eq!(status, 200);
    let metrics = metrics_text(c.metrics_port).await;
    assert!(
        metrics.contains("landlord_tenants{phase=\"Active\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("landlord_reconciles_total{outcome=\"success\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("landlord_reconcile_duration_seconds_bucket{"),
        "{metrics}"
    );

    // A plan change reaches the tenant.
    apply(&c.client, &PLAN.replace("pods: 10", "pods: 20")).await;
    poll("plan change applied", || async {
        hard(&c.client, "shop-web").await["pods"] == "10"
    })
    .await;

    // Add a namespace, then remove one (Delete policy: it goes).
    // The same manager applies the tenant again, as GitOps would, with `db` replaced by `jobs`.
    apply(&c.client, "apiVersion: landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {name: shop}\nspec:\n  quotaRef: team\n  deletionPolicy: Delete\n  owners: [{kind: Group, name: shop-devs}]\n  namespaces: [{name: web}, {name: jobs}]\n").await;
    let namespaces: Api<Namespace> = Api::all(c.client.clone());
    poll("jobs added, db removed", || async {
        let jobs = namespaces.get_opt("shop-jobs").await.unwrap().is_some();
        let db_gone = namespaces
            .get_opt("shop-db")
            .await
            .unwrap()
            .is_none_or(|n| n.metadata.deletion_timestamp.is_some());
        jobs && db_gone
    })
    .await;

    // Delete the tenant: its namespaces go, and the Tenant itself once the finalizer ran.
    Api::<Tenant>::all(c.client.clone())
        .delete("shop", &DeleteParams::default())
        .await
        .unwrap();
    poll("tenant gone", || async {
        Api::<Tenant>::all(c.client.clone())
            .get_opt("shop")
            .await
            .unwrap()
            .is_none()
    })
    .await;
    poll("namespaces gone", || async {
        namespaces
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .filter(|n| n.name_any().starts_with("shop-"))
            .all(|n| n.metadata.deletion_timestamp.is_some())
    })
    .await;
}

#[tokio::test]
async fn a_missing_plan_and_a_foreign_namespace_change_nothing_they_must_not() {
    let c = cluster("conflict", "5m").await;
    let namespaces: Api<Namespace> = Api::all(c.client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "bank-vault", "labels": {"owner": "someone"}}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    apply(&c.client, "apiVersion: landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {name: bank}\nspec:\n  quotaRef: gold\n  namespaces: [{name: vault}, {name: app}]\n").await;
    wait_condition(&c.client, "bank", "Ready", "False", "PlanNotFound").await;
    assert!(
        namespaces.get_opt("bank-app").await.unwrap().is_none(),
        "nothing is created without the plan"
    );

    apply(&c.client, &PLAN.replace("name: team", "name: gold")).await;
    let t = wait_condition(
        &c.client,
        "bank",
        "Provisioned",
        "False",
        "NamespaceConflict",
    )
    .await;
    assert_eq!(t.status.unwrap().namespaces, ["bank-app"]);
    let vault = namespaces.get("bank-vault").await.unwrap();
    assert_eq!(
        vault.labels().get("landlord.dev/tenant"),
        None,
        "a foreign namespace is never adopted"
    );
    assert_eq!(vault.labels()["owner"], "someone");
    assert!(
        Api::<ResourceQuota>::namespaced(c.client.clone(), "bank-vault")
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn the_tenant_wide_pod_limit_holds_under_concurrency() {
    let c = cluster("pods", "5m").await;
    apply(&c.client, "apiVersion: landlord.dev/v1alpha1\nkind: TenantQuota\nmetadata: {name: ten}\nspec:\n  hard: {pods: 10}\n").await;
    apply(&c.client, "apiVersion: landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {name: race}\nspec:\n  quotaRef: ten\n  namespaces: [{name: a}, {name: b}, {name: c}]\n").await;
    wait_condition(&c.client, "race", "Ready", "True", "Ready").await;

    // 30 pods at once across the three namespaces, each retried until a deadline.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut tasks = Vec::new();
    for i in 0..30 {
        let client = c.client.clone();
        let ns = ["race-a", "race-b", "race-c"][i % 3];
        tasks.push(tokio::spawn(async move {
            let pods: Api<Pod> = Api::namespaced(client, ns);
            let pod: Pod = serde_json::from_value(json!({"metadata": {"name": format!("p{i}")}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}})).unwrap();
            while Instant::now() < deadline {
                if pods.create(&PostParams::default(), &pod).await.is_ok() {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            false
        }));
    }
    let mut created = 0;
    for t in tasks {
        created += t.await.unwrap() as usize;
    }
    let total: usize = futures::future::join_all(["race-a", "race-b", "race-c"].map(|ns| {
        let pods: Api<Pod> = Api::namespaced(c.client.clone(), ns);
        async move { pods.list(&Default::default()).await.unwrap().items.len() }
    }))
    .await
    .into_iter()
    .sum();
    assert_eq!(created, 10);
    assert_eq!(total, 10);
    let sum: i64 = futures::future::join_all(["race-a", "race-b", "race-c"].map(|ns| {
        let client = c.client.clone();
        async move { hard(&client, ns).await["pods"].parse::<i64>().unwrap() }
    }))
    .await
    .into_iter()
    .sum();
    assert!(sum <= 10, "namespace quotas sum to {sum}");
}

#[tokio::test]
async fn a_namespace_that_used_its_share_gets_the_others_headroom() {
    let c = cluster("headroom", "5m").await;
    apply(&c.client, "apiVersion: landlord.dev/v1alpha1\nkind: TenantQuota\nmetadata: {name: ten}\nspec:\n  hard: {pods: 10}\n").await;
    apply(&c.client, "apiVersion: landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {name: flow}\nspec:\n  quotaRef: ten\n  namespaces: [{name: a}, {name: b}, {name: c}]\n").await;
    wait_condition(&c.client, "flow", "Ready", "True", "Ready").await;
    assert_eq!(hard(&c.client, "flow-a").await["pods"], "4");

    // Only namespace a creates pods; as it fills its share, the others' unused share moves to it.
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "flow-a");
    let mut created = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while created < 10 && Instant::now() < deadline {
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": format!("p{created}")}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}})).unwrap();
        match pods.create(&PostParams::default(), &pod).await {
            Ok(_) => created += 1,
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::all(c.client.clone());
    poll("utilization events", || async {
        let list = events.list(&Default::default()).await.unwrap().items;
        let notes: Vec<String> = list
            .iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("flow"))
            .filter_map(|e| Some(format!("{} {}", e.reason.as_deref()?, e.note.as_deref()?)))
            .collect();
        notes.iter().any(|n| {
            n.starts_with("QuotaUtilizationHigh pods is at") && n.ends_with("(threshold 80%)")
        }) && notes.iter().any(|n| {
            n.starts_with("QuotaUtilizationCritical pods is at") && n.ends_with("(threshold 95%)")
        })
    })
    .await;
    assert_eq!(
        created, 10,
        "all ten pods fit in one namespace once the headroom moved"
    );
    assert_eq!(hard(&c.client, "flow-a").await["pods"], "10");
    assert_eq!(hard(&c.client, "flow-b").await["pods"], "0");
    let eleventh: Pod = serde_json::from_value(json!({"metadata": {"name": "p10"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}})).unwrap();
    let refused = Api::<Pod>::namespaced(c.client.clone(), "flow-b")
        .create(&PostParams::default(), &eleventh)
        .await;
    assert!(
        matches!(refused, Err(kube::Error::Api(ref s)) if s.code == 403),
        "{refused:?}"
    );
}

#[tokio::test]
async fn retain_releases_namespaces_without_deleting_them() {
    let c = cluster("retain", "5m").await;
    apply(&c.client, PLAN).await;
    apply(&c.client, "apiVersion: landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {name: keep}\nspec:\n  quotaRef: team\n  deletionPolicy: Retain\n  owners: [{kind: User, name: ann}]\n  namespaces: [{name: data, labels: {team: blue}}]\n").await;
    wait_condition(&c.client, "keep", "Ready", "True", "Ready").await;
    let cm: k8s_openapi::api::core::v1::ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "precious"}, "data": {"k": "v"}}))
            .unwrap();
    Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(c.client.clone(), "keep-data")
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();

    Api::<Tenant>::all(c.client.clone())
        .delete("keep", &DeleteParams::default())
        .await
        .unwrap();
    poll("tenant gone", || async {
        Api::<Tenant>::all(c.client.clone())
            .get_opt("keep")
            .await
            .unwrap()
            .is_none()
    })
    .await;
    let ns = Api::<Namespace>::all(c.client.clone())
        .get("keep-data")
        .await
        .unwrap();
    assert!(
        ns.metadata.deletion_timestamp.is_none(),
        "the namespace is kept"
    );
    assert!(
        !ns.labels().contains_key("landlord.dev/tenant"),
        "and released: {:?}",
        ns.labels()
    );
    assert!(
        Api::<ResourceQuota>::namespaced(c.client.clone(), "keep-data")
            .get_opt("landlord-quota")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        Api::<RoleBinding>::namespaced(c.client.clone(), "keep-data")
            .get_opt("landlord-owners-admin")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        Api::<NetworkPolicy>::namespaced(c.client.clone(), "keep-data")
            .get_opt("landlord-isolation")
            .await
            .unwrap()
            .is_none()
    );
    let kept =
        Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(c.client.clone(), "keep-data")
            .get("precious")
            .await
            .unwrap();
    assert_eq!(kept.data.unwrap()["k"], "v");
}

#[tokio::test]
async fn a_converged_operator_writes_nothing() {
    if std::env::var("LANDLORD_E2E").is_ok() {
        eprintln!("skipped on a real cluster: counts writes at kube-test");
        return;
    }
    let c = cluster("quiet", "1s").await;
    apply(&c.client, PLAN).await;
    for i in 0..50 {
        apply(&c.client, &format!("apiVersion: landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: t{i}}}\nspec:\n  quotaRef: team\n  owners: [{{kind: User, name: u{i}}}]\n  namespaces: [{{name: a}}, {{name: b}}]\n")).await;
    }
    for i in 0..50 {
        wait_condition(&c.client, &format!("t{i}"), "Ready", "True", "Ready").await;
    }
    let hooks = c.server.as_ref().unwrap().hooks();
    // Let in-flight reconciles triggered by our own writes settle, then count.
    poll("settled", || async {
        hooks.reset_counts();
        tokio::time::sleep(Duration::from_secs(2)).await;
        hooks.write_count() == 0
    })
    .await;
    let reads_before = hooks.request_count("list", "resourcequotas");
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(hooks.write_count(), 0, "writes during 60 s of resyncs");
    assert!(
        hooks.request_count("list", "resourcequotas") > reads_before + 50,
        "the tenants were resynced"
    );
}

/// POST or GET against the quota engine with a bearer token: (status, JSON body).
async fn engine_call(
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
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (
                status,
                serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
            )
        }
        Err(_) => (0, serde_json::Value::Null),
    }
}

async fn service_account_token(client: &Client, namespace: &str, name: &str) -> String {
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

#[tokio::test]
async fn the_quota_engine_authenticates_meters_and_survives_a_restart() {
    let mut c = cluster("engine", "5m").await;
    apply(&c.client, "apiVersion: landlord.dev/v1alpha1\nkind: TenantQuota\nmetadata: {name: metered}\nspec:\n  rates: [{name: api-calls, limit: 100, per: 1m}]\n  pricing: {currency: USD, items: [{dimension: api-calls, unit: 1, price: '0.01'}]}\n").await;
    for t in ["alpha", "beta"] {
        apply(&c.client, &format!("apiVersion: landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: {t}}}\nspec:\n  quotaRef: metered\n  namespaces: [{{name: app}}]\n")).await;
        wait_condition(&c.client, t, "Ready", "True", "Ready").await;
    }
    let token = service_account_token(&c.client, "alpha-app", "worker").await;
    let check = |amount: u64| Some(json!({"dimension": "api-calls", "amount": amount}));
    let port = c.engine_port;

    // A workload of tenant alpha may charge alpha, not beta; no token is 401.
    let (status, body) =
        engine_call(port, "POST", "/v1/tenants/alpha/check", &token, check(5)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["allowed"], true);
    assert_eq!(body["remaining"], 95);
    let (status, _) = engine_call(port, "POST", "/v1/tenants/beta/check", &token, check(1)).await;
    assert_eq!(status, 403);
    // A namespace labelled for alpha by someone else is not alpha's: alpha's status does not
    // list it, so its workloads speak for nobody.
    apply(
        &c.client,
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: rogue\n  labels: {landlord.dev/tenant: alpha}\n",
    )
    .await;
    let rogue = service_account_token(&c.client, "rogue", "worker").await;
    let (status, body) =
        engine_call(port, "POST", "/v1/tenants/alpha/check", &rogue, check(1)).await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = engine_call(
        port,
        "POST",
        "/v1/tenants/alpha/check",
        "not-a-token",
        check(1),
    )
    .await;
    assert_eq!(status, 401);

    // The ledger flushes within its interval.
    let usages: Api<landlord::api::TenantUsage> = Api::all(c.client.clone());
    let period = jiff::Timestamp::now().strftime("%Y-%m").to_string();
    let name = format!("alpha-{period}");
    let allowed = |n: u64| {
        let usages = usages.clone();
        let name = name.clone();
        async move {
            usages
                .get_opt(&name)
                .await
                .unwrap()
                .and_then(|u| u.status)
                .is_some_and(|s| {
                    s.dimensions
                        .get("api-calls")
                        .is_some_and(|d| d.allowed == n)
                })
        }
    };
    poll("usage flushed", || allowed(5)).await;

    // A restart reloads the month: the next charge counts on top of the 5.
    c.restart_operator();
    poll("engine back with alpha's usage", || async {
        let (status, body) =
            engine_call(port, "GET", "/v1/tenants/alpha/stats", &token, None).await;
        status == 200 && body["dimensions"]["api-calls"]["units"] == 5
    })
    .await;
    // Usage is durable; limiter state is not: the new process starts with a full bucket.
    let (status, body) =
        engine_call(port, "POST", "/v1/tenants/alpha/check", &token, check(3)).await;
    assert_eq!(
        (status, body["remaining"].clone()),
        (200, json!(97)),
        "{body}"
    );
    poll("usage after restart flushed", || allowed(8)).await;

    // The Tenant's status carries rates and cost.
    let tenants: Api<Tenant> = Api::all(c.client.clone());
    poll("tenant status shows usage and cost", || async {
        let status = tenants
            .get("alpha")
            .await
            .unwrap()
            .status
            .unwrap_or_default();
        status
            .rates
            .get("api-calls")
            .is_some_and(|r| r.allowed == 8 && r.limit.as_deref() == Some("100/1m"))
            && status
                .cost
                .as_ref()
                .is_some_and(|c| c.amount == "0.08" && c.currency == "USD" && c.period == period)
    })
    .await;
}

#[tokio::test]
async fn one_replica_leads_and_a_standby_takes_over() {
    let c = cluster("leader", "5m").await;
    let kubeconfig = c.kubeconfig.clone();
    let replica = |metrics: u16| {
        Command::new(env!("CARGO_BIN_EXE_landlord"))
            .args([
                "run",
                "--leader-elect",
                "--metrics-addr",
                &format!("127.0.0.1:{metrics}"),
                "--engine-addr",
                "127.0.0.1:0",
            ])
            .env("KUBECONFIG", &kubeconfig)
            .env("POD_NAME", format!("replica-{metrics}"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let ready = |port: u16| async move { engine_call(port, "GET", "/readyz", "", None).await.0 };
    let (pa, pb) = (free_port(), free_port());
    let mut a = replica(pa);
    poll("first replica leads", || async { ready(pa).await == 200 }).await;
    let mut b = replica(pb);
    poll("second replica is up, standing by", || async {
        ready(pb).await == 503
    })
    .await;
    assert_eq!(ready(pa).await, 200);

    a.kill().unwrap();
    a.wait().unwrap();
    poll("the standby takes over once the lease expires", || async {
        ready(pb).await == 200
    })
    .await;
    b.kill().unwrap();
    b.wait().unwrap();
}

async fn metrics_text(port: u16) -> String {
    use http_body_util::{BodyExt, Empty};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<bytes::Bytes>>();
    let response = client
        .get(format!("http://127.0.0.1:{port}/metrics").parse().unwrap())
        .await
        .unwrap();
    String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap()
}

#[tokio::test]
async fn suspension_stops_new_pods_demotes_owners_and_denies_the_engine() {
    let c = cluster("suspend", "5m").await;
    apply(&c.client, "apiVersion: landlord.dev/v1alpha1\nkind: TenantQuota\nmetadata: {name: small}\nspec:\n  hard: {pods: 5}\n  rates: [{name: api-calls, limit: 100, per: 1m}]\n").await;
    let tenant = |state: &str| {
        format!(
            "apiVersion: landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: paused}}\nspec:\n  quotaRef: small\n  state: {state}\n  owners: [{{kind: User, name: pat}}]\n  namespaces: [{{name: app}}]\n"
        )
    };
    apply(&c.client, &tenant("Active")).await;
    wait_condition(&c.client, "paused", "Ready", "True", "Ready").await;
    let token = service_account_token(&c.client, "paused-app", "worker").await;
    let check = Some(json!({"dimension": "api-calls", "amount": 1}));
    let (status, _) = engine_call(
        c.engine_port,
        "POST",
        "/v1/tenants/paused/check",
        &token,
        check.clone(),
    )
    .await;
    assert_eq!(status, 200);

    apply(&c.client, &tenant("Suspended")).await;
    let tenants: Api<Tenant> = Api::all(c.client.clone());
    poll("phase Suspended", || async {
        tenants
            .get("paused")
            .await
            .unwrap()
            .status
            .is_some_and(|s| s.phase == Some(landlord::api::Phase::Suspended))
    })
    .await;
    let bindings: Api<RoleBinding> = Api::namespaced(c.client.clone(), "paused-app");
    poll("owners demoted to view", || async {
        let names: Vec<String> = bindings
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .map(|b| b.name_any())
            .collect();
        names == ["landlord-owners-view"]
    })
    .await;
    assert_eq!(hard(&c.client, "paused-app").await["pods"], "0");
    let (status, body) = engine_call(
        c.engine_port,
        "POST",
        "/v1/tenants/paused/check",
        &token,
        check.clone(),
    )
    .await;
    assert_eq!(
        (status, body["reason"].clone()),
        (403, json!("TenantSuspended")),
        "{body}"
    );

    apply(&c.client, &tenant("Active")).await;
    poll("owners are admins again", || async {
        let names: Vec<String> = bindings
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .map(|b| b.name_any())
            .collect();
        names == ["landlord-owners-admin"]
    })
    .await;
    poll("engine allows again", || async {
        engine_call(
            c.engine_port,
            "POST",
            "/v1/tenants/paused/check",
            &token,
            check.clone(),
        )
        .await
        .0 == 200
    })
    .await;
}
