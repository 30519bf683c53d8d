//! API faults: the same workload (tenants created, then plans changed, namespaces added and
//! removed, suspensions, deletions) run twice, once without faults and once with them, and
//! the two final states compared object by object.
//!
//! On kube-test the faults are HTTP: 10 % of the operator's requests fail at random (500,
//! 429 with `Retry-After`, 409) or take 30–500 ms longer, watches are dropped, and the watch
//! history is compacted now and then, so that re-watches get 410 Gone (`FAULTS_NO_HTTP=1`
//! leaves only the watch faults).
//!
//! On a real control plane, where nothing can be injected into the API server, the
//! operator's connection is cut for 100–300 ms every 2–4 s, which breaks its watches and
//! its requests in flight.
//!
//! `LANDLORD_FAULT_TENANTS` sets the number of tenants (default 20; `make soak` runs 100).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, ResourceQuota};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use landlord::api::Tenant;

use crate::support::*;

fn tenants() -> usize {
    std::env::var("LANDLORD_FAULT_TENANTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
}

const PLANS: &str = "apiVersion: landlord.dev/v1alpha1\nkind: TenantQuota\nmetadata: {name: bronze-$ID}\nspec:\n  hard: {pods: 4, requests.cpu: '2'}\n---\napiVersion: landlord.dev/v1alpha1\nkind: TenantQuota\nmetadata: {name: gold-$ID}\nspec:\n  hard: {pods: 10, requests.cpu: '6'}\n";

fn tenant(i: usize, plan: &str, state: &str, namespaces: &[&str]) -> String {
    let namespaces: Vec<String> = namespaces
        .iter()
        .map(|n| format!("{{name: {n}}}"))
        .collect();
    format!(
        "apiVersion: landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: f{i}-$ID}}\nspec:\n  quotaRef: {plan}-$ID\n  state: {state}\n  owners: [{{kind: User, name: owner{i}}}]\n  namespaces: [{}]\n",
        namespaces.join(", ")
    )
}

/// The tenants' final specs after the workload: `None` for a deleted tenant.
fn final_spec(i: usize) -> Option<(&'static str, &'static str, Vec<&'static str>)> {
    match i % 5 {
        0 => Some(("gold", "Active", vec!["app", "data"])),
        1 => Some(("bronze", "Active", vec!["app", "data", "extra"])),
        2 => Some(("bronze", "Active", vec!["app"])),
        3 => Some(("bronze", "Suspended", vec!["app", "data"])),
        _ if i % 10 == 4 => None,
        _ => Some(("bronze", "Active", vec!["app", "data"])),
    }
}

/// Run the workload on `c` and wait until every tenant says it is done.
async fn workload(c: &Cluster) -> Duration {
    let start = Instant::now();
    c.apply_retrying(PLANS).await;
    let n = tenants();
    for i in 0..n {
        c.apply_retrying(&tenant(i, "bronze", "Active", &["app", "data"]))
            .await;
    }
    let api: Api<Tenant> = Api::all(c.client.clone());
    for i in 0..n {
        let name = c.name(&format!("f{i}"));
        poll(&format!("{name} ready"), || async {
            api.get_opt(&name).await.ok().flatten().is_some_and(|t| {
                condition(&t, "Ready") == Some(("True".into(), "Ready".into()))
                    && t.status.as_ref().unwrap().observed_generation == t.metadata.generation
            })
        })
        .await;
    }
    for i in 0..n {
        match final_spec(i) {
            Some((plan, state, namespaces)) => {
                c.apply_retrying(&tenant(i, plan, state, &namespaces)).await;
            }
            None => {
                let name = c.name(&format!("f{i}"));
                poll(&format!("{name} delete accepted"), || async {
                    match api.delete(&name, &Default::default()).await {
                        Ok(_) => true,
                        Err(kube::Error::Api(s)) => s.code == 404,
                        Err(_) => false,
                    }
                })
                .await;
            }
        }
    }
    for i in 0..n {
        let name = c.name(&format!("f{i}"));
        match final_spec(i) {
            None => {
                poll(&format!("{name} deleted"), || async {
                    matches!(api.get_opt(&name).await, Ok(None))
                })
                .await
            }
            Some((_, state, namespaces)) => {
                poll(&format!("{name} converged"), || async {
                    let Ok(t) = api.get(&name).await else {
                        return false;
                    };
                    let s = t.status.clone().unwrap_or_default();
                    let ready = s
                        .conditions
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "True");
                    ready
                        && s.observed_generation == t.metadata.generation
                        && format!("{:?}", s.phase.unwrap_or_default()) == state
                        && s.namespaces.len() == namespaces.len()
                })
                .await
            }
        }
    }
    start.elapsed()
}

/// Everything Landlord owns for the test's tenants, with the run id taken out of names.
async fn snapshot(c: &Cluster) -> BTreeMap<String, String> {
    let id = format!("-{}", c.id);
    let plain = |s: &str| s.replace(&id, "");
    let mut out = BTreeMap::new();
    let namespaces: Vec<Namespace> = Api::<Namespace>::all(c.client.clone())
        .list(&ListParams::default().labels("landlord.dev/tenant"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|n| n.name_any().contains(&id) && n.metadata.deletion_timestamp.is_none())
        .collect();
    for ns in &namespaces {
        let name = ns.name_any();
        let labels: BTreeMap<&String, &String> = ns
            .labels()
            .iter()
            .filter(|(k, _)| k.starts_with("landlord.dev/") || k.starts_with("pod-security"))
            .collect();
        out.insert(
            format!("namespace {}", plain(&name)),
            plain(&format!("{labels:?}")),
        );
        let quotas: Api<ResourceQuota> = Api::namespaced(c.client.clone(), &name);
        for q in quotas.list(&ListParams::default()).await.unwrap() {
            let hard = q.spec.and_then(|s| s.hard).unwrap_or_default();
            let hard: BTreeMap<String, String> = hard.into_iter().map(|(k, v)| (k, v.0)).collect();
            out.insert(
                format!("quota {}/{}", plain(&name), q.metadata.name.unwrap()),
                format!("{hard:?}"),
            );
        }
        let bindings: Api<RoleBinding> = Api::namespaced(c.client.clone(), &name);
        for b in bindings.list(&ListParams::default()).await.unwrap() {
            out.insert(
                format!("rolebinding {}/{}", plain(&name), b.name_any()),
                plain(&format!("{:?} {:?}", b.role_ref.name, b.subjects)),
            );
        }
        let policies: Api<NetworkPolicy> = Api::namespaced(c.client.clone(), &name);
        for p in policies.list(&ListParams::default()).await.unwrap() {
            out.insert(
                format!("networkpolicy {}/{}", plain(&name), p.name_any()),
                plain(&serde_json::to_string(&p.spec).unwrap()),
            );
        }
    }
    out
}

fn counter(text: &str, metric: &str) -> f64 {
    samples(text, metric).values().sum()
}

#[tokio::test]
async fn api_faults_change_nothing_but_the_time_it_takes() {
    // Without faults.
    let calm = Cluster::start("faults-off", "2s").await;
    let calm_took = workload(&calm).await;
    let calm_requests = counter(
        &metrics_text(calm.metrics_port).await,
        "landlord_kube_requests_total",
    );
    let want = snapshot(&calm).await;
    calm.finish().await;

    // With faults.
    let mut c = Cluster::start("faults-on", "2s").await;
    let hooks = c.server.as_ref().map(|s| s.hooks());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut kept = None;
    let chaos = match &hooks {
        Some(hooks) => {
            use kube_test::Injection;
            // Stacked: each rule takes its share of what the ones before let through.
            for rule in [
                Injection::error(500).chance(0.03),
                Injection::error(429).chance(0.03),
                Injection::error(409).verb("patch").chance(0.03),
                Injection::delay(Duration::from_millis(30 + rand::random_range(0..470)))
                    .chance(0.02),
            ] {
                // The test's own requests meet them too: it retries (`apply_retrying`,
                // polls that take an error for "not yet").
                if std::env::var_os("FAULTS_NO_HTTP").is_none() {
                    hooks.inject(rule);
                }
            }
            let (hooks, stop) = (hooks.clone(), stop.clone());
            tokio::spawn(async move {
                let mut round = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(700 + rand::random_range(0..600)))
                        .await;
                    round += 1;
                    if round.is_multiple_of(3) {
                        hooks.compact();
                    }
                    hooks.drop_watches();
                }
            })
        }
        None => {
            // Kept here, not moved into the task: a dropped proxy passes nothing any more.
            let proxy = std::sync::Arc::new(c.proxy_operator().await);
            kept = Some(proxy.clone());
            let stop = stop.clone();
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(2_000 + rand::random_range(0..2000)))
                        .await;
                    proxy.cut(true);
                    tokio::time::sleep(Duration::from_millis(100 + rand::random_range(0..200)))
                        .await;
                    proxy.cut(false);
                }
            })
        }
    };
    let took = workload(&c).await;
    let text = metrics_text(c.metrics_port).await;
    let requests = counter(&text, "landlord_kube_requests_total");
    let errors = counter(&text, "landlord_reconcile_errors_total");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    chaos.await.unwrap();
    let injected = hooks.as_ref().map(|h| h.faults_injected());
    if let Some(hooks) = &hooks {
        hooks.clear_all_injections();
    }
    let got = snapshot(&c).await;
    println!(
        "{} tenants: converged in {:.1} s with faults against {:.1} s without ({:.2}x); the operator sent {requests} requests against {calm_requests}, {} faults injected, {errors} reconcile errors",
        tenants(),
        took.as_secs_f64(),
        calm_took.as_secs_f64(),
        took.as_secs_f64() / calm_took.as_secs_f64(),
        injected
            .map(|n| n.to_string())
            .unwrap_or_else(|| "connection cuts:".into())
    );
    assert_eq!(got.len(), want.len(), "same number of objects");
    for (key, value) in &want {
        assert_eq!(got.get(key), Some(value), "{key}");
    }
    // No error loop. Retries still waiting in their backoff may write a little after the
    // tenants report done; once the writes stop (no write for a resync and a half), three
    // more resyncs (every 2 s) write nothing and fail nothing.
    let quiet_for = |d: Duration| {
        let port = c.metrics_port;
        async move {
            let before = metrics_text(port).await;
            let until = Instant::now() + d;
            while Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            let after = metrics_text(port).await;
            if writes(&before) != writes(&after) {
                let (b, a) = (
                    samples(&before, "landlord_kube_requests_total"),
                    samples(&after, "landlord_kube_requests_total"),
                );
                let moved: Vec<String> = a
                    .iter()
                    .filter(|(k, v)| b.get(*k) != Some(v))
                    .map(|(k, v)| format!("{k}: +{}", v - b.get(k).copied().unwrap_or(0.0)))
                    .collect();
                println!("still writing: {moved:?}");
            }
            (writes(&before) == writes(&after), before, after)
        }
    };
    poll("the writes stop", || async {
        quiet_for(Duration::from_secs(3)).await.0
    })
    .await;
    let (quiet, before, after) = quiet_for(Duration::from_secs(6)).await;
    assert!(
        quiet,
        "writes after convergence: {} then {}",
        writes(&before),
        writes(&after)
    );
    assert_eq!(
        counter(&after, "landlord_reconcile_errors_total"),
        counter(&before, "landlord_reconcile_errors_total"),
        "errors after convergence"
    );
    c.finish().await;
    drop(kept);
}

/// Writes the operator sent (creates, updates, patches, deletes), events excluded.
fn writes(text: &str) -> f64 {
    samples(text, "landlord_kube_requests_total")
        .iter()
        .filter(|(labels, _)| {
            ["create", "update", "patch", "delete"]
                .iter()
                .any(|v| labels.contains(&format!("verb=\"{v}\"")))
                && !labels.contains("events")
        })
        .map(|(_, v)| v)
        .sum()
}
