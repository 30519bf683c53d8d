//! Crashes: the operator SIGKILLed at ten random moments while tenants change (plans,
//! namespaces added and removed, suspensions) and the quota engine is under load. Each
//! restart must finish the job: the final state is what the specs say, with no namespace
//! twice or left over, and the usage the clients were allowed reaches the ledger, less at
//! most what the last flush interval before each kill held (`--flush-interval 1s` here).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use landlord::api::{Phase, Tenant};
use serde_json::json;

use crate::support::*;

const TENANTS: usize = 4;
const KILLS: usize = 10;

/// What one tenant's spec says now.
#[derive(Clone, Debug)]
struct Wish {
    plan: &'static str,
    suspended: bool,
    extra: bool,
}

fn tenant(i: usize, w: &Wish) -> String {
    let state = if w.suspended { "Suspended" } else { "Active" };
    let extra = if w.extra { ", {name: extra}" } else { "" };
    format!(
        "apiVersion: landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: crash{i}-$ID}}\nspec:\n  quotaRef: {}-$ID\n  state: {state}\n  namespaces: [{{name: app}}{extra}]\n",
        w.plan
    )
}

#[tokio::test]
async fn ten_kills_under_load_lose_nothing_but_the_last_flush_before_each() {
    let mut c = Cluster::start("crashes", "2s").await;
    c.apply("apiVersion: landlord.dev/v1alpha1\nkind: TenantQuota\nmetadata: {name: small-$ID}\nspec:\n  hard: {pods: 4}\n  rates: [{name: api-calls, limit: 10000000, per: 1h}]\n---\napiVersion: landlord.dev/v1alpha1\nkind: TenantQuota\nmetadata: {name: large-$ID}\nspec:\n  hard: {pods: 8}\n  rates: [{name: api-calls, limit: 10000000, per: 1h}]\n").await;
    let mut wishes: Vec<Wish> = (0..TENANTS)
        .map(|_| Wish {
            plan: "small",
            suspended: false,
            extra: false,
        })
        .collect();
    for (i, w) in wishes.iter().enumerate() {
        c.apply(&tenant(i, w)).await;
    }
    let names: Vec<String> = (0..TENANTS).map(|i| c.name(&format!("crash{i}"))).collect();
    for name in &names {
        wait_condition(&c.client, name, "Ready", "True", "Ready").await;
    }

    // Engine load on tenant 0 from a client that counts every allowed decision and when.
    let token = service_account_token(&c.client, &format!("{}-app", names[0]), "worker").await;
    // Each decision allowed: when the client sent it and when it saw the answer. An answer
    // a killed operator sent may be read only after the kill, when the test runs again.
    let allowed: Arc<Mutex<Vec<(Timestamp, Timestamp)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (allowed, stop, port) = (allowed.clone(), stop.clone(), c.engine_port);
        let path = format!("/v1/tenants/{}/check", names[0]);
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let call = Some(json!({"dimension": "api-calls", "amount": 1}));
                let sent = Timestamp::now();
                let (code, body) = engine_call(port, "POST", &path, &token, call).await;
                if code == 200 && body["allowed"] == true {
                    allowed.lock().unwrap().push((sent, Timestamp::now()));
                } else {
                    // Restarting, or not yet the tenant's again: a short pause, not a spin.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        })
    };

    // Ten kills at random moments while the specs change.
    // Each kill: when, and the last flush the killed operator left in the ledger.
    let mut kills: Vec<(Timestamp, Timestamp)> = Vec::new();
    for k in 0..KILLS {
        let i = k % TENANTS;
        let w = &mut wishes[i];
        match k % 3 {
            0 => w.plan = if w.plan == "small" { "large" } else { "small" },
            // Tenant 0 carries the engine load: never suspended.
            2 if i != 0 => w.suspended = !w.suspended,
            _ => w.extra = !w.extra,
        }
        c.apply(&tenant(i, &wishes[i])).await;
        // Random moments, at least two flush intervals apart, so that each kill can only
        // take what came in since the last flush.
        let pause = 2_000 + rand::random_range(0..1500);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        c.stop_operator();
        let killed = Timestamp::now();
        let left = ledger(&c.client, &names[0], "api-calls").await;
        kills.push((killed, left.last_flush.unwrap_or(Timestamp::UNIX_EPOCH)));
        c.restart_operator();
    }
    // The last restart serves for a while, then the load stops.
    poll("decisions after the last restart", || async {
        allowed
            .lock()
            .unwrap()
            .last()
            .is_some_and(|t| t.0 > kills.last().unwrap().0)
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    load.await.unwrap();

    // The final state is what the specs say.
    let tenants: Api<Tenant> = Api::all(c.client.clone());
    for (i, (name, w)) in names.iter().zip(&wishes).enumerate() {
        let want_phase = if w.suspended {
            Phase::Suspended
        } else {
            Phase::Active
        };
        let mut want: Vec<String> = vec![format!("{name}-app")];
        if w.extra {
            want.push(format!("{name}-extra"));
        }
        poll(&format!("tenant {i} converged"), || async {
            let t = tenants.get(name).await.unwrap();
            let s = t.status.clone().unwrap_or_default();
            s.phase == Some(want_phase)
                && s.observed_generation == t.metadata.generation
                && s.namespaces == want
                && s.effective
                    .as_ref()
                    .and_then(|e| e.plan.clone())
                    .is_some_and(|p| p == c.name(w.plan))
        })
        .await;
        // No namespace twice, none left over: exactly the wanted ones carry the label.
        let labelled: BTreeSet<String> = Api::<Namespace>::all(c.client.clone())
            .list(&ListParams::default().labels(&format!("landlord.dev/tenant={name}")))
            .await
            .unwrap()
            .items
            .iter()
            .filter(|n| n.metadata.deletion_timestamp.is_none())
            .map(|n| n.name_any())
            .collect();
        assert_eq!(labelled, want.iter().cloned().collect::<BTreeSet<_>>());
        let pods: u32 = if w.suspended {
            0
        } else if w.plan == "large" {
            8
        } else {
            4
        };
        // The plan's pods, split over the tenant's namespaces.
        poll(&format!("tenant {i}'s quotas"), || async {
            let mut sum = 0;
            for ns in &want {
                let quota = Api::<k8s_openapi::api::core::v1::ResourceQuota>::namespaced(
                    c.client.clone(),
                    ns,
                )
                .get_opt("landlord-quota")
                .await
                .unwrap();
                let hard = quota
                    .and_then(|q| q.spec)
                    .and_then(|s| s.hard)
                    .unwrap_or_default();
                sum += hard
                    .get("pods")
                    .and_then(|p| p.0.parse::<u32>().ok())
                    .unwrap_or(0);
            }
            sum == pods
        })
        .await;
    }

    // Usage: what the clients were allowed, against the ledger.
    let allowed = allowed.lock().unwrap().clone();
    let counted = allowed.len() as u64;
    // A kill loses what the operator counted after its last flush read the engine (the
    // `lastFlush` stamp): decisions sent before the kill, and seen after the stamp (one seen
    // before it was counted before it).
    let at_risk = allowed
        .iter()
        .filter(|(sent, seen)| {
            kills
                .iter()
                .any(|(killed, flushed)| sent <= killed && seen > flushed)
        })
        .count() as u64;
    let oldest = kills
        .iter()
        .map(|(killed, flushed)| killed.duration_since(*flushed).as_secs_f64())
        .fold(0.0, f64::max);
    let in_ledger = || ledger_allowed(&c.client, &names[0], "api-calls");
    // The last operator flushes what it counted within its interval.
    let mut ledger = in_ledger().await;
    let deadline = Instant::now() + DEADLINE;
    while counted.saturating_sub(ledger) > at_risk && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        ledger = in_ledger().await;
    }
    let lost = counted.saturating_sub(ledger);
    println!(
        "{KILLS} kills: {counted} decisions allowed, {ledger} in the ledger, {lost} lost ({:.2} %); {at_risk} came after the last flush before a kill (at most {oldest:.1} s before it)",
        100.0 * lost as f64 / counted as f64
    );
    assert!(
        ledger <= counted,
        "the ledger counts {ledger} but only {counted} were allowed"
    );
    assert!(
        lost <= at_risk,
        "lost {lost} decisions, more than the {at_risk} after the last flush before each kill"
    );
    c.finish().await;
}
