//! `make bench-scale`: what N tenants cost, against a baseline measured in the same run.
//!
//! 1. Baseline: a plain client server-side-applies exactly the objects Landlord would make
//!    for N tenants (built by Landlord's own pure `build` step: namespaces, quotas, limit
//!    ranges, policies, bindings, roles) plus one status patch a tenant, with the operator's
//!    concurrency and write budget.
//! 2. A fresh server, the same N Tenants applied, the `landlord` binary started as its own
//!    process: the time until every tenant is Ready.
//!
//! Printed: N, the ratio (2)/(1), the operator's requests per tenant by verb, its peak RSS,
//! its writes and LISTs during two resync periods after convergence, and p50/p99 of the time
//! to Ready of one new tenant added to the converged cluster.
//!
//! `cargo bench --bench scale -- --tenants N` (default 10,000 × 2 namespaces) runs on
//! kube-test; with `--real`, on the cluster in KUBECONFIG (both phases, with the API server's
//! own request counts; give it a smaller N, and a fresh cluster such as ../shared/k8s).
//!
//! `LANDLORD_BENCH_WRAPPER="heaptrack -o /tmp/op"` runs the operator under a profiler.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use landlord::api::{Tenant, TenantQuota};
use landlord::controller::build::{self, Inputs, effective, quotas};
use landlord::engine::Pacer;
use landlord::naming::FIELD_MANAGER;
use serde::Serialize;
use serde_json::json;

mod support;

struct Args {
    tenants: usize,
    namespaces: usize,
    qps: u32,
    burst: u32,
    concurrency: usize,
    resync: u64,
    real: bool,
}

impl Args {
    fn parse() -> Args {
        let mut args = Args {
            tenants: 10_000,
            namespaces: 2,
            qps: 2_000,
            burst: 4_000,
            concurrency: 8,
            resync: 30,
            real: false,
        };
        let mut it = std::env::args().skip(1);
        while let Some(a) = it.next() {
            let mut value = || {
                it.next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("{a} takes a number"))
            };
            match a.as_str() {
                "--tenants" => args.tenants = value() as usize,
                "--namespaces" => args.namespaces = value() as usize,
                "--kube-qps" => args.qps = value() as u32,
                "--kube-burst" => args.burst = value() as u32,
                "--concurrency" => args.concurrency = value() as usize,
                "--resync" => args.resync = value(),
                "--real" => args.real = true,
                _ => {} // cargo bench passes --bench
            }
        }
        args
    }
}

const PLAN: &str = "apiVersion: landlord.dev/v1alpha1\nkind: TenantQuota\nmetadata: {name: scale}\nspec:\n  hard: {pods: 20, requests.cpu: '4', requests.memory: 8Gi}\n  namespaceHard: {count/services: 5}\n  limitRange: {defaultRequest: {cpu: 100m, memory: 128Mi}, default: {cpu: 500m, memory: 512Mi}}\n";

/// Tenant `<prefix><i>`, labelled with its run (the prefix without its dash), which is what
/// the operator of that run selects.
fn tenant(prefix: &str, i: usize, namespaces: usize) -> Tenant {
    named(prefix, &format!("{prefix}{i}"), namespaces)
}

fn named(prefix: &str, name: &str, namespaces: usize) -> Tenant {
    let ns: Vec<_> = (0..namespaces)
        .map(|n| json!({"name": format!("n{n}")}))
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "landlord.dev/v1alpha1", "kind": "Tenant",
        "metadata": {"name": name, "labels": {"bench.landlord.dev/run": prefix.trim_end_matches('-')}},
        "spec": {"quotaRef": "scale", "owners": [{"kind": "User", "name": format!("owner-of-{name}")}], "namespaces": ns},
    }))
    .unwrap()
}

/// A server to run one phase against: kube-test, or the real cluster.
struct Server {
    client: Client,
    kubeconfig: std::path::PathBuf,
    local: Option<kube_test::RunningServer>,
}

impl Server {
    async fn start(args: &Args, dir: &std::path::Path, phase: &str) -> Server {
        let kubeconfig = dir.join(format!("{phase}.kubeconfig"));
        let (client, local) = if args.real {
            std::fs::copy(
                std::env::var("KUBECONFIG").expect("--real needs KUBECONFIG"),
                &kubeconfig,
            )
            .unwrap();
            (Client::try_default().await.unwrap(), None)
        } else {
            let server = kube_test::ApiServer::builder()
                .watch_history(200_000)
                .serve()
                .await
                .unwrap();
            server.write_kubeconfig(&kubeconfig).unwrap();
            (server.client().await.unwrap(), Some(server))
        };
        support::install_crds(&client).await;
        let plans: Api<TenantQuota> = Api::all(client.clone());
        let plan: TenantQuota = serde_saphyr::from_str(PLAN).unwrap();
        plans
            .patch(
                "scale",
                &PatchParams::apply("bench").force(),
                &Patch::Apply(&plan),
            )
            .await
            .unwrap();
        Server {
            client,
            kubeconfig,
            local,
        }
    }

    /// The API server's own request counts by verb: kube-test's counters, or the real
    /// server's `apiserver_request_total` (cluster-wide: the controller manager counts too).
    async fn counts(&self) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        if let Some(s) = &self.local {
            for (verb, _, n) in s.hooks().counts() {
                *out.entry(verb).or_insert(0.0) += n as f64;
            }
            return out;
        }
        let request = http::Request::get("/metrics").body(Vec::new()).unwrap();
        let text = self.client.request_text(request).await.unwrap_or_default();
        for line in text
            .lines()
            .filter(|l| l.starts_with("apiserver_request_total{"))
        {
            *out.entry(label(line, "verb").to_lowercase()).or_insert(0.0) += value(line);
        }
        out
    }
}

fn minus(a: &BTreeMap<String, f64>, b: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    a.iter()
        .map(|(k, v)| (k.clone(), v - b.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, v)| *v > 0.0)
        .collect()
}

async fn apply<K>(client: &Client, object: &K)
where
    K: Resource<DynamicType = ()>
        + Serialize
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let resource = kube::api::ApiResource::erase::<K>(&());
    let api: Api<kube::api::DynamicObject> = match object.meta().namespace.as_deref() {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    let mut value = serde_json::to_value(object).unwrap();
    value["apiVersion"] = K::api_version(&()).into();
    value["kind"] = K::kind(&()).into();
    api.patch(
        &object.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&value),
    )
    .await
    .unwrap();
}

/// Apply N Tenants (untimed in both phases: they are the input, not the work).
async fn create_tenants(args: &Args, client: &Client, prefix: &str) {
    let tenants: Api<Tenant> = Api::all(client.clone());
    futures::stream::iter(0..args.tenants)
        .map(|i| {
            let (tenants, t) = (tenants.clone(), tenant(prefix, i, args.namespaces));
            async move {
                tenants
                    .patch(
                        &t.name_any(),
                        &PatchParams::apply("bench").force(),
                        &Patch::Apply(&t),
                    )
                    .await
                    .unwrap();
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
}

/// Phase 1: Landlord's objects for N tenants, applied by a plain client with the same budget.
async fn baseline(args: &Args, server: &Server, prefix: &str) -> Duration {
    create_tenants(args, &server.client, prefix).await;
    let pacer = Arc::new(Pacer::new(args.qps, args.burst));
    let plan: TenantQuota = serde_saphyr::from_str(PLAN).unwrap();
    let tenants: Api<Tenant> = Api::all(server.client.clone());
    let start = Instant::now();
    futures::stream::iter(0..args.tenants)
        .map(|i| {
            let (pacer, plan, tenants) = (pacer.clone(), plan.clone(), tenants.clone());
            let client = server.client.clone();
            async move {
                let t = tenant(prefix, i, args.namespaces);
                let eff = effective::effective(&t.spec, Some(&plan.spec));
                let named: Vec<(String, &landlord::api::TenantNamespace)> =
                    t.spec.namespaces.iter().map(|n| (landlord::naming::namespace_name(&t.name_any(), &n.name), n)).collect();
                let q = quotas::plan(&eff.spec, &named, false, &BTreeMap::new()).unwrap();
                let d = build::build(&t, &Inputs { plan: &eff.spec, namespaces: &t.spec.namespaces, quotas: &q, usage_names: &landlord::naming::usage_names(&t.name_any(), jiff::Timestamp::now()) });
                let wait = || async {
                    while let Some(w) = pacer.take() {
                        tokio::time::sleep(w).await;
                    }
                };
                for o in &d.namespaces { wait().await; apply(&client, o).await; }
                for o in &d.quotas { wait().await; apply(&client, o).await; }
                for o in &d.limit_ranges { wait().await; apply(&client, o).await; }
                for o in &d.network_policies { wait().await; apply(&client, o).await; }
                for o in &d.role_bindings { wait().await; apply(&client, o).await; }
                for o in &d.cluster_roles { wait().await; apply(&client, o).await; }
                for o in &d.cluster_role_bindings { wait().await; apply(&client, o).await; }
                wait().await;
                let status = json!({"phase": "Active", "namespaces": named.iter().map(|(n, _)| n).collect::<Vec<_>>()});
                landlord::kube_client::apply_status(&tenants, &t.name_any(), &status).await.unwrap();
            }
        })
        .buffer_unordered(args.concurrency)
        .collect::<Vec<_>>()
        .await;
    start.elapsed()
}

fn operator(args: &Args, server: &Server, metrics: u16, prefix: &str) -> Child {
    let selector = format!("bench.landlord.dev/run={}", prefix.trim_end_matches('-'));
    // A profiler may wrap the operator: LANDLORD_BENCH_WRAPPER="heaptrack -o /tmp/op".
    let wrapper = std::env::var("LANDLORD_BENCH_WRAPPER").unwrap_or_default();
    let mut words = wrapper.split_whitespace();
    let mut command = match words.next() {
        Some(program) => {
            let mut c = Command::new(program);
            c.args(words).arg(env!("CARGO_BIN_EXE_landlord"));
            c
        }
        None => Command::new(env!("CARGO_BIN_EXE_landlord")),
    };
    command
        .args([
            "run",
            "--metrics-addr",
            &format!("127.0.0.1:{metrics}"),
            "--engine-addr",
            "127.0.0.1:0",
        ])
        .args(["--tenant-selector", &selector])
        .args([
            "--resync",
            &format!("{}s", args.resync),
            "--concurrency",
            &args.concurrency.to_string(),
        ])
        .args([
            "--kube-qps",
            &args.qps.to_string(),
            "--kube-burst",
            &args.burst.to_string(),
        ])
        .env("KUBECONFIG", &server.kubeconfig)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

fn ready(t: &Tenant) -> bool {
    t.status.as_ref().is_some_and(|s| {
        s.observed_generation == t.metadata.generation
            && s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

/// Wait until `want` tenants named `prefix…` are Ready, watching (a LIST a second of 10,000
/// tenants would weigh on the server being measured).
async fn all_ready(client: &Client, prefix: &str, want: usize) {
    let api: Api<Tenant> = Api::all(client.clone());
    let mut seen = std::collections::HashSet::new();
    let mut events = std::pin::pin!(
        watcher(api, watcher::Config::default())
            .default_backoff()
            .applied_objects()
    );
    while seen.len() < want {
        let t = events.try_next().await.unwrap().expect("watch ended");
        if t.name_any().starts_with(prefix) && ready(&t) {
            seen.insert(t.name_any());
        }
    }
}

async fn operator_requests(port: u16) -> BTreeMap<String, f64> {
    operator_requests_by(port, false).await
}

/// The operator's own request counts by verb, or by verb and resource.
async fn operator_requests_by(port: u16, resource: bool) -> BTreeMap<String, f64> {
    let text = reqwest_text(port).await;
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with("landlord_kube_requests_total{"))
    {
        let key = match resource {
            true => format!("{} {}", label(line, "verb"), label(line, "resource")),
            false => label(line, "verb").to_string(),
        };
        *out.entry(key).or_insert(0.0) += value(line);
    }
    out
}

/// A label's value in a Prometheus text line.
fn label<'a>(line: &'a str, name: &str) -> &'a str {
    line.split(&format!("{name}=\""))
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or("")
}

/// The sample value of a Prometheus text line.
fn value(line: &str) -> f64 {
    line.rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

async fn reqwest_text(port: u16) -> String {
    use http_body_util::{BodyExt, Empty};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<bytes::Bytes>>();
    match client
        .get(format!("http://127.0.0.1:{port}/metrics").parse().unwrap())
        .await
    {
        Ok(r) => {
            String::from_utf8_lossy(&r.into_body().collect().await.unwrap().to_bytes()).into_owned()
        }
        Err(_) => String::new(),
    }
}

fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn per_tenant(counts: &BTreeMap<String, f64>, n: usize) -> String {
    counts
        .iter()
        .filter(|(v, _)| !v.starts_with("watch") && !v.starts_with("list"))
        .map(|(v, c)| format!("{v} {:.1}", c / n as f64))
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let n = args.tenants;
    let dir = std::env::temp_dir().join(format!("landlord-bench-scale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = format!("{:x}", std::process::id());
    println!(
        "scale: {n} tenants x {} namespaces on {}, concurrency {}, write budget {}/s burst {}",
        args.namespaces,
        if args.real {
            "the cluster in KUBECONFIG"
        } else {
            "kube-test (in-process)"
        },
        args.concurrency,
        args.qps,
        args.burst
    );

    // 1. The baseline.
    let first = Server::start(&args, &dir, "baseline").await;
    let base = baseline(&args, &first, &format!("b{run}-")).await;
    println!(
        "  baseline: Landlord's objects for {n} tenants applied by a plain client in {:.1}s",
        base.as_secs_f64()
    );
    if let Some(s) = first.local {
        s.shutdown().await;
    }

    // 2. The operator on a fresh server with N tenants waiting.
    let server = Server::start(&args, &dir, "operator").await;
    let prefix = format!("o{run}-");
    let tenants: Api<Tenant> = Api::all(server.client.clone());
    create_tenants(&args, &server.client, &prefix).await;
    let metrics = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server_before = server.counts().await;
    let start = Instant::now();
    let mut child = operator(&args, &server, metrics, &prefix);
    all_ready(&server.client, &prefix, n).await;
    let took = start.elapsed();
    let mine = operator_requests(metrics).await;
    let mine_by = operator_requests_by(metrics, true).await;
    let theirs = minus(&server.counts().await, &server_before);
    println!(
        "  operator: all {n} Ready in {:.1}s; ratio {:.2} (target <= 1.5)",
        took.as_secs_f64(),
        took.as_secs_f64() / base.as_secs_f64()
    );
    println!(
        "  requests per tenant, as the operator counts them: {}",
        per_tenant(&mine, n)
    );
    println!("    by resource: {}", per_tenant(&mine_by, n));
    println!(
        "  requests per tenant, as the API server counts them{}: {}",
        if args.real { " (cluster-wide)" } else { "" },
        per_tenant(&theirs, n)
    );

    // Steady state: two resync periods, once the operator has been quiet for 5 s (on a real
    // cluster the controller manager fills in quotas' `status.used` a while after they are
    // created, and that is news the status must carry).
    let settle_deadline = Instant::now() + Duration::from_secs(300);
    let mut quiet = operator_requests_by(metrics, true).await;
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let now = operator_requests_by(metrics, true).await;
        if now == quiet || Instant::now() > settle_deadline {
            break;
        }
        quiet = now;
    }
    tokio::time::sleep(Duration::from_secs(2 * args.resync)).await;
    let steady_by = minus(&operator_requests_by(metrics, true).await, &quiet);
    let mut steady = BTreeMap::new();
    for (k, v) in &steady_by {
        *steady
            .entry(k.split(' ').next().unwrap_or("").to_string())
            .or_insert(0.0) += v;
    }
    let writes: f64 = ["create", "update", "patch", "delete"]
        .iter()
        .map(|v| steady.get(*v).copied().unwrap_or(0.0))
        .sum();
    println!(
        "  steady state, {}s (two resyncs): {writes} writes, {} LISTs, {} GETs (targets 0, 0)",
        2 * args.resync,
        steady.get("list").copied().unwrap_or(0.0),
        steady.get("get").copied().unwrap_or(0.0)
    );
    if !steady_by.is_empty() {
        println!("    by resource: {steady_by:?}");
    }

    // One new tenant at a time into the converged cluster.
    let mut latencies = Vec::new();
    for i in 0..20 {
        let t = named(&prefix, &format!("{prefix}new-{i}"), args.namespaces);
        let start = Instant::now();
        tenants
            .patch(
                &t.name_any(),
                &PatchParams::apply("bench").force(),
                &Patch::Apply(&t),
            )
            .await
            .unwrap();
        loop {
            if tenants.get(&t.name_any()).await.is_ok_and(|t| ready(&t)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        latencies.push(start.elapsed());
    }
    latencies.sort();
    println!(
        "  one new tenant in a converged cluster of {n}: Ready in p50 {:.0} ms, p99 {:.0} ms (target p99 <= 100 ms)",
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3
    );
    println!(
        "  operator peak RSS: {:.0} MB (target < 100 MB at 10,000)",
        peak_rss_mb(child.id())
    );
    let _ = child.kill();
    let _ = child.wait();
    if args.real {
        println!(
            "  (the bench's tenants stay on the cluster: delete them with kubectl delete tenants -l ... or reset the cluster)"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
