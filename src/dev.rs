//! `landlord dev`: kube-test on loopback, the CRDs, the example plans and tenants, and the
//! operator, in one process — a cluster to try Landlord on with `kubectl`, no Docker needed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};

use crate::api::{Tenant, crds};

/// The examples shipped in the binary, used when `--examples` is not given.
const EXAMPLES: [(&str, &str); 4] = [
    (
        "plan-free.yaml",
        include_str!("../manifests/examples/plan-free.yaml"),
    ),
    (
        "plan-pro.yaml",
        include_str!("../manifests/examples/plan-pro.yaml"),
    ),
    (
        "tenant-acme.yaml",
        include_str!("../manifests/examples/tenant-acme.yaml"),
    ),
    (
        "tenant-globex.yaml",
        include_str!("../manifests/examples/tenant-globex.yaml"),
    ),
];

/// Archives of `landlord dev` go next to its kubeconfig.
fn archive_url(kubeconfig: &std::path::Path) -> anyhow::Result<String> {
    let dir = kubeconfig
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."))
        .join("archives");
    std::fs::create_dir_all(&dir)?;
    Ok(format!("file://{}", std::fs::canonicalize(&dir)?.display()))
}

/// Options of `landlord dev`.
#[derive(Clone, Debug, clap::Args)]
pub struct Options {
    /// Loopback port of the embedded API server.
    #[arg(long, default_value_t = 16443)]
    pub port: u16,
    /// Where to write the kubeconfig for kubectl.
    #[arg(long, default_value = ".landlord-dev/kubeconfig")]
    pub kubeconfig: PathBuf,
    /// Apply the YAML files of this directory instead of the built-in examples.
    #[arg(long)]
    pub examples: Option<PathBuf>,
    /// Loopback port of the quota engine's HTTP API.
    #[arg(long, default_value_t = 16481)]
    pub engine_port: u16,
    /// Stop after printing "ready" instead of following the tenants (for scripts).
    #[arg(long)]
    pub exit_when_ready: bool,
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    let started = Instant::now();
    let server = kube_test::ApiServer::start_on(([127, 0, 0, 1], options.port).into())
        .await
        .with_context(|| format!("starting the API server on port {}", options.port))?;
    server.write_kubeconfig(&options.kubeconfig)?;
    let kubeconfig = std::fs::canonicalize(&options.kubeconfig)?;
    println!("API server  {}", server.url());
    println!("kubeconfig  {}", kubeconfig.display());
    println!(
        "try         kubectl --kubeconfig {} get tenants -o wide",
        kubeconfig.display()
    );
    let client = server.client().await?;

    install_crds(&client).await?;
    let examples = read_examples(options.examples.as_deref())?;
    for (file, yaml) in &examples {
        apply_yaml(&client, yaml)
            .await
            .with_context(|| format!("applying {file}"))?;
    }

    let operator_options = crate::operator::Options {
        engine_addr: ([127, 0, 0, 1], options.engine_port).into(),
        resync: Duration::from_secs(60),
        archive_url: archive_url(&options.kubeconfig)?,
        ..Default::default()
    };
    let operator = crate::operator::start(client.clone(), &operator_options).await?;
    println!(
        "quota API   http://127.0.0.1:{}/v1/tenants/<tenant>/check",
        options.engine_port
    );
    let operator = tokio::spawn(operator.run());

    wait_until_ready(&client, Duration::from_secs(30)).await?;
    println!(
        "ready in {:.1}s: every example tenant is Ready (Ctrl-C to stop)",
        started.elapsed().as_secs_f64()
    );
    if options.exit_when_ready {
        operator.abort();
        server.shutdown().await;
        return Ok(());
    }
    follow(&client).await;
    operator.abort();
    server.shutdown().await;
    Ok(())
}

async fn install_crds(client: &Client) -> anyhow::Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in crds() {
        let name = crd.name_any();
        api.patch(
            &name,
            &PatchParams::apply("landlord-dev").force(),
            &Patch::Apply(&crd),
        )
        .await
        .with_context(|| format!("installing CRD {name}"))?;
    }
    let tenants: Api<Tenant> = Api::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(10);
    while tenants.list(&Default::default()).await.is_err() {
        if Instant::now() > deadline {
            bail!("the Tenant CRD was not served within 10 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn read_examples(dir: Option<&std::path::Path>) -> anyhow::Result<Vec<(String, String)>> {
    let Some(dir) = dir else {
        return Ok(EXAMPLES
            .iter()
            .map(|(f, y)| (f.to_string(), y.to_string()))
            .collect());
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| Ok((p.display().to_string(), std::fs::read_to_string(&p)?)))
        .collect()
}

/// Server-side apply every document of a YAML stream, like `kubectl apply --server-side`.
pub async fn apply_yaml(client: &Client, yaml: &str) -> anyhow::Result<()> {
    for doc in serde_saphyr::from_multiple::<serde_json::Value>(yaml)? {
        if doc.is_null() {
            continue;
        }
        let object: DynamicObject = serde_json::from_value(doc.clone())?;
        let types = object
            .types
            .clone()
            .context("document without apiVersion/kind")?;
        let gvk = GroupVersionKind::try_from(&types)?;
        let (resource, caps) = kube::discovery::pinned_kind(client, &gvk).await?;
        let api: Api<DynamicObject> = match (caps.scope, object.namespace()) {
            (kube::discovery::Scope::Namespaced, ns) => Api::namespaced_with(
                client.clone(),
                ns.as_deref().unwrap_or("default"),
                &resource,
            ),
            (kube::discovery::Scope::Cluster, _) => Api::all_with(client.clone(), &resource),
        };
        api.patch(
            &object.name_any(),
            &PatchParams::apply("landlord-dev").force(),
            &Patch::Apply(&doc),
        )
        .await?;
    }
    Ok(())
}

fn is_ready(t: &Tenant) -> bool {
    t.status.as_ref().is_some_and(|s| {
        s.observed_generation == t.metadata.generation
            && s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

async fn wait_until_ready(client: &Client, within: Duration) -> anyhow::Result<()> {
    let api: Api<Tenant> = Api::all(client.clone());
    let deadline = Instant::now() + within;
    loop {
        let tenants = api.list(&Default::default()).await?.items;
        if !tenants.is_empty() && tenants.iter().all(is_ready) {
            return Ok(());
        }
        if Instant::now() > deadline {
            let waiting: Vec<String> = tenants
                .iter()
                .filter(|t| !is_ready(t))
                .map(|t| t.name_any())
                .collect();
            bail!("tenants not Ready after {within:?}: {}", waiting.join(", "));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Ctrl-C or SIGTERM. (The controller installs its own SIGTERM handler for a graceful stop, so
/// without this `kill` would leave `landlord dev` running.)
async fn stop_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Print a line whenever a tenant's phase, readiness or namespaces change, until Ctrl-C.
async fn follow(client: &Client) {
    let api: Api<Tenant> = Api::all(client.clone());
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    let mut stream = watcher(api, watcher::Config::default())
        .applied_objects()
        .boxed();
    let stop = stop_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            next = stream.next() => match next {
                Some(Ok(t)) => {
                    let line = summary(&t);
                    if last.get(&t.name_any()) != Some(&line) {
                        println!("{line}");
                        last.insert(t.name_any(), line);
                    }
                }
                Some(Err(e)) => tracing::warn!(error = %e, "watching tenants"),
                None => return,
            },
        }
    }
}

fn summary(t: &Tenant) -> String {
    let status = t.status.clone().unwrap_or_default();
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map_or("Unknown".to_string(), |c| {
            format!("{} ({})", c.status, c.reason)
        });
    format!(
        "tenant {:<12} phase {:<10} ready {:<28} namespaces {}",
        t.name_any(),
        status.phase.map_or("-".into(), |p| format!("{p:?}")),
        ready,
        status.namespaces.join(",")
    )
}
