//! Leader fail-over under load: replicas with leader election and a client calling the
//! quota engine of whichever replica serves.
//!
//! First the leader is SIGKILLed (a crash): the standby serves within the lease time, starts
//! from the ledger the dead leader left, and loses nothing it counts; the dead leader lost
//! only what it allowed after its last flush, which was at most one flush interval (plus a
//! write) before the kill. Then the new leader is SIGTERMed (a rollout) with a fresh standby
//! waiting: it stops deciding, writes all it counted, releases the lease and exits 0, so the
//! handover loses nothing at all.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use serde_json::json;

use crate::support::*;

/// Each decision allowed: when the client saw it, and which replica's engine made it.
type Decisions = Arc<Mutex<Vec<(Timestamp, u16)>>>;

#[tokio::test]
async fn a_crash_loses_one_flush_at_most_and_a_rollout_nothing() {
    let mut c = Cluster::start("failover", "5m").await;
    // Replicas of its own instead of the cluster's single operator.
    c.stop_operator();
    let lease_ns = c.lease_namespace().await;
    let replica = |metrics: u16, engine: u16| c.replica(&lease_ns, metrics, engine);
    let [ma, ea, mb, eb, mc, ec] = [(); 6].map(|()| free_port());
    let mut a = replica(ma, ea);
    let ready = |port: u16| async move { engine_call(port, "GET", "/readyz", "", None).await.0 };
    poll("the first replica leads", || async {
        ready(ma).await == 200
    })
    .await;
    let mut b = replica(mb, eb);
    poll("the second stands by", || async { ready(mb).await == 503 }).await;

    c.apply("apiVersion: landlord.dev/v1alpha1\nkind: TenantQuota\nmetadata: {name: busy-$ID}\nspec:\n  hard: {pods: 4}\n  rates: [{name: api-calls, limit: 10000000, per: 1h}]\n---\napiVersion: landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {name: busy-$ID}\nspec:\n  quotaRef: busy-$ID\n  namespaces: [{name: app}]\n").await;
    let name = c.name("busy");
    wait_condition(&c.client, &name, "Ready", "True", "Ready").await;
    let token = service_account_token(&c.client, &format!("{name}-app"), "worker").await;

    // A client of the engine, as a Service would route it: to whichever replica answers.
    let allowed: Decisions = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (allowed, stop) = (allowed.clone(), stop.clone());
        let path = format!("/v1/tenants/{name}/check");
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut served = false;
                for port in [ea, eb, ec] {
                    let call = Some(json!({"dimension": "api-calls", "amount": 1}));
                    let (code, body) = engine_call(port, "POST", &path, &token, call).await;
                    if code == 200 && body["allowed"] == true {
                        allowed.lock().unwrap().push((Timestamp::now(), port));
                        served = true;
                        break;
                    }
                }
                if !served {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        })
    };
    // An answer a replica sent before it died may be read after: the replica that answered
    // tells whose decision it was, not the time.
    let by = |port: u16| {
        let allowed = allowed.clone();
        move || {
            allowed
                .lock()
                .unwrap()
                .iter()
                .filter(|d| d.1 == port)
                .count() as u64
        }
    };
    let api_calls = || ledger(&c.client, &name, "api-calls");

    // 1. A crash. The leader has flushed for 2 s before it dies.
    poll("usage flushed by the leader", || async {
        api_calls().await.allowed > 0
    })
    .await;
    let first = Instant::now();
    poll("two more flush intervals", || async {
        first.elapsed() > Duration::from_secs(2) && by(ea)() > 500
    })
    .await;
    a.kill().unwrap();
    a.wait().unwrap();
    let killed = Timestamp::now();
    // What the dead leader left: nothing writes the ledger until the standby leads.
    let left = api_calls().await;
    let flushed_at = left.last_flush.expect("the leader stamped its flush");
    poll("the standby serves", || async { by(eb)() > 0 }).await;
    let takeover = first_decision(&allowed, eb).duration_since(killed);
    let by_a = by(ea)();
    // The dead leader lost what it counted after its last flush read the engine, the
    // `lastFlush` stamp; a decision the client saw before the stamp was counted before it.
    let unflushed = {
        let allowed = allowed.lock().unwrap();
        allowed
            .iter()
            .filter(|d| d.1 == ea && d.0 > flushed_at)
            .count() as u64
    };
    let lost = by_a.saturating_sub(left.allowed);
    println!(
        "fail-over after a crash: the standby served {:.1} s after the kill; the dead leader allowed {by_a} and had flushed {} ({lost} lost; its last flush read the engine {:.2} s before the kill, with {unflushed} decisions since)",
        takeover.as_secs_f64(),
        left.allowed,
        killed.duration_since(flushed_at).as_secs_f64(),
    );
    assert!(
        takeover <= SignedDuration::from_secs(30),
        "the standby took {takeover:?} (lease 15 s, grace 5 s)"
    );
    assert!(
        lost <= unflushed,
        "the dead leader lost {lost}, more than the {unflushed} it allowed after its last flush"
    );
    // It kept flushing until it died: one interval (1 s) and a write, on a loaded machine.
    assert!(
        killed.duration_since(flushed_at) <= SignedDuration::from_secs(6),
        "the dead leader's last flush read the engine at {flushed_at}, the kill came at {killed}"
    );

    // 2. A rollout: a new standby, then SIGTERM to the leader.
    poll("decisions from the new leader", || async { by(eb)() > 200 }).await;
    let mut c3 = replica(mc, ec);
    poll("a new standby", || async { ready(mc).await == 503 }).await;
    let status = terminate(&mut b).await;
    let terminated = Timestamp::now();
    assert!(
        status.success(),
        "the leader exited with {status} on SIGTERM"
    );
    // It closed its engine, wrote every decision it made, then let the lease go (checked below).
    let handed_over = api_calls().await.allowed;
    let lease = Api::<Lease>::namespaced(c.client.clone(), &lease_ns)
        .get("landlord-leader")
        .await
        .unwrap();
    let holder = lease.spec.and_then(|s| s.holder_identity);
    assert!(
        holder
            .as_ref()
            .is_none_or(|h| *h == format!("replica-{mc}")),
        "the stopped leader kept the lease: {holder:?}"
    );
    poll("the new standby serves", || async { by(ec)() > 0 }).await;
    // Counted once the next leader serves: by then the client has read every answer of the
    // second leader, which answered nothing after closing its engine.
    let by_b = by(eb)();
    assert_eq!(
        handed_over,
        left.allowed + by_b,
        "the ledger when the leader exited: what the dead one left plus all {by_b} the leader allowed"
    );
    let rollout = first_decision(&allowed, ec).duration_since(terminated);
    poll("decisions from the third leader", || async {
        by(ec)() > 100
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    load.await.unwrap();
    let by_c = by(ec)();
    // The third leader starts from the ledger and loses nothing it counts.
    let expected = handed_over + by_c;
    let deadline = Instant::now() + DEADLINE;
    let mut now = api_calls().await.allowed;
    while now < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        now = api_calls().await.allowed;
    }
    println!(
        "fail-over in a rollout: the leader exited 0 with all {by_b} decisions it allowed written; the next served {:.1} s after SIGTERM and allowed {by_c}; the ledger holds {now}",
        rollout.as_secs_f64(),
    );
    assert_eq!(
        now, expected,
        "the ledger: what the second leader handed over plus all the third allowed"
    );
    assert!(
        rollout <= SignedDuration::from_secs(30),
        "the standby took {rollout:?} after the rollout's SIGTERM"
    );
    assert!(terminate(&mut c3).await.success());
    c.restart_operator();
    c.finish().await;
}

/// When the client first saw a decision of the replica on `port`.
fn first_decision(allowed: &Decisions, port: u16) -> Timestamp {
    allowed
        .lock()
        .unwrap()
        .iter()
        .find(|d| d.1 == port)
        .expect("a decision")
        .0
}
