//! Leader election: one replica leads; a standby takes over when the leader dies.

use crate::support::*;

#[tokio::test]
async fn one_replica_leads_and_a_standby_takes_over() {
    let c = Cluster::start("leader", "5m").await;
    let lease_ns = c.lease_namespace().await;
    let replica = |metrics: u16| c.replica(&lease_ns, metrics, 0);
    let ready = |port: u16| async move { engine_call(port, "GET", "/readyz", "", None).await.0 };
    let leader = |port: u16| async move {
        samples(&metrics_text(port).await, "landlord_leader")
            .get("")
            .copied()
    };
    let (pa, pb) = (free_port(), free_port());
    let mut a = replica(pa);
    poll("first replica leads", || async { ready(pa).await == 200 }).await;
    let mut b = replica(pb);
    poll("second replica is up, standing by", || async {
        ready(pb).await == 503
    })
    .await;
    assert_eq!(ready(pa).await, 200);
    // The leader gauge says the same: 1 on the leader, 0 on the standby.
    assert_eq!((leader(pa).await, leader(pb).await), (Some(1.0), Some(0.0)));

    a.kill().unwrap();
    a.wait().unwrap();
    poll("the standby takes over once the lease expires", || async {
        ready(pb).await == 200
    })
    .await;
    assert_eq!(leader(pb).await, Some(1.0));
    b.kill().unwrap();
    b.wait().unwrap();
    c.finish().await;
}
