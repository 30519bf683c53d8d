//! A converged operator sends no writes, however often it resyncs: GitOps tools see no
//! drift and the API server no load. Counted by the operator itself
//! (`landlord_kube_requests_total`), so it holds on any cluster; on kube-test the server's
//! own counters must agree.

use std::time::Duration;

use k8s_openapi::api::core::v1::ResourceQuota;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use landlord::naming::TENANT_LABEL;

use crate::support::*;

const WRITES: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];

/// The operator's requests so far: (writes, successful reconciles).
async fn counts(port: u16) -> (f64, f64) {
    let text = metrics_text(port).await;
    let writes = samples(&text, "landlord_kube_requests_total")
        .into_iter()
        .filter(|(labels, _)| {
            WRITES
                .iter()
                .any(|v| labels.contains(&format!("verb=\"{v}\"")))
        })
        .map(|(_, n)| n)
        .sum();
    let reconciles = samples(&text, "landlord_reconciles_total")
        .get("outcome=\"success\"")
        .copied()
        .unwrap_or(0.0);
    (writes, reconciles)
}

#[tokio::test]
async fn a_converged_operator_writes_nothing() {
    let c = Cluster::start("quiet", "1s").await;
    c.apply(crate::provisioning::PLAN).await;
    for i in 0..50 {
        c.apply(&format!("apiVersion: landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: t{i}-$ID}}\nspec:\n  quotaRef: team-$ID\n  owners: [{{kind: User, name: u{i}}}]\n  namespaces: [{{name: a}}, {{name: b}}]\n")).await;
    }
    for i in 0..50 {
        wait_condition(
            &c.client,
            &c.name(&format!("t{i}")),
            "Ready",
            "True",
            "Ready",
        )
        .await;
    }
    // The real controller manager fills in the quotas' `status.used` a while after they are
    // created (longer on a loaded machine), and that is news for the tenants' status. Wait
    // for it, then for five seconds without a write from the operator.
    let quotas: Api<ResourceQuota> = Api::all(c.client.clone());
    poll("every quota has its status.used", || async {
        let mine: Vec<ResourceQuota> = quotas
            .list(&ListParams::default().labels(TENANT_LABEL))
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|q| q.namespace().unwrap_or_default().contains(&c.id))
            .collect();
        mine.len() == 100
            && mine.iter().all(|q| {
                let hard = q
                    .spec
                    .as_ref()
                    .and_then(|s| s.hard.as_ref())
                    .map(|h| h.len());
                let used = q
                    .status
                    .as_ref()
                    .and_then(|s| s.used.as_ref())
                    .map(|u| u.len());
                hard.is_some() && hard == used
            })
    })
    .await;
    poll("settled", || async {
        let before = counts(c.metrics_port).await.0;
        tokio::time::sleep(Duration::from_secs(5)).await;
        counts(c.metrics_port).await.0 == before
    })
    .await;
    let server_writes = c.server.as_ref().map(|s| {
        s.hooks().reset_counts();
        s.hooks()
    });
    let (writes, reconciles) = counts(c.metrics_port).await;
    tokio::time::sleep(Duration::from_secs(20)).await;
    let (writes_after, reconciles_after) = counts(c.metrics_port).await;
    assert_eq!(
        writes_after - writes,
        0.0,
        "writes during 20 s of resyncs; all writes so far: {:?}",
        samples(
            &metrics_text(c.metrics_port).await,
            "landlord_kube_requests_total"
        )
    );
    assert!(
        reconciles_after - reconciles >= 100.0,
        "the 50 tenants were resynced: {} reconciles",
        reconciles_after - reconciles
    );
    if let Some(hooks) = server_writes {
        assert_eq!(hooks.write_count(), 0, "writes counted at kube-test");
    }
    c.finish().await;
}
