//! What a tenant costs the API server does not depend on how many tenants there are: a
//! reconcile reads the operator's watch caches, not the cluster. Counted by the operator
//! itself (`landlord_kube_requests_total`), so the same test holds on the real control plane.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::support::*;

/// The operator's requests by verb, watches excluded (they are long-lived, one per kind).
async fn requests(port: u16) -> BTreeMap<String, f64> {
    let mut by_verb = BTreeMap::new();
    for (labels, n) in samples(&metrics_text(port).await, "landlord_kube_requests_total") {
        let verb = labels
            .split("verb=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_default()
            .to_string();
        if verb != "watch" {
            *by_verb.entry(verb).or_insert(0.0) += n;
        }
    }
    by_verb
}

fn minus(after: &BTreeMap<String, f64>, before: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    after
        .iter()
        .map(|(v, n)| (v.clone(), n - before.get(v).copied().unwrap_or(0.0)))
        .filter(|(_, n)| *n > 0.0)
        .collect()
}

async fn add_tenants(c: &Cluster, from: usize, to: usize) {
    for i in from..to {
        c.apply(&format!("apiVersion: landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: s{i}-$ID}}\nspec:\n  quotaRef: team-$ID\n  namespaces: [{{name: a}}]\n")).await;
    }
    for i in from..to {
        wait_condition(
            &c.client,
            &c.name(&format!("s{i}")),
            "Ready",
            "True",
            "Ready",
        )
        .await;
    }
}

/// Requests so far, once nothing has been sent for two seconds.
async fn settle(port: u16) -> BTreeMap<String, f64> {
    let deadline = std::time::Instant::now() + DEADLINE;
    let mut last = requests(port).await;
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = requests(port).await;
        if now == last {
            return now;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the operator never settled"
        );
        last = now;
    }
}

#[tokio::test]
async fn requests_per_tenant_do_not_grow_with_the_number_of_tenants() {
    const SMALL: usize = 10;
    const LARGE: usize = 200;
    const ADDED: usize = 10;
    let c = Cluster::start("scale", "2s").await;
    c.apply(crate::provisioning::PLAN).await;

    // Ten tenants, then ten more: what the second ten cost.
    add_tenants(&c, 0, SMALL).await;
    let before = settle(c.metrics_port).await;
    add_tenants(&c, SMALL, SMALL + ADDED).await;
    let after = settle(c.metrics_port).await;
    let among_few = minus(&after, &before);

    // Two hundred tenants, then ten more: the same ten must cost the same.
    add_tenants(&c, SMALL + ADDED, LARGE).await;
    let before = settle(c.metrics_port).await;
    add_tenants(&c, LARGE, LARGE + ADDED).await;
    let after = settle(c.metrics_port).await;
    let among_many = minus(&after, &before);

    eprintln!(
        "{ADDED} new tenants cost {among_few:?} among {SMALL} and {among_many:?} among {LARGE}"
    );
    assert_eq!(
        among_few.get("list"),
        None,
        "no LIST per tenant: {among_few:?}"
    );
    assert_eq!(
        among_many.get("list"),
        None,
        "no LIST per tenant: {among_many:?}"
    );
    let total = |m: &BTreeMap<String, f64>| m.values().sum::<f64>();
    // Resyncs and retries make the two runs differ by a request or two per tenant, never by
    // anything that grows with the cluster.
    assert!(
        total(&among_many) <= total(&among_few) * 1.25,
        "{ADDED} new tenants cost {among_few:?} among {SMALL} and {among_many:?} among {LARGE}"
    );

    // And a converged cluster of 210 tenants, resynced every 2 s, sends nothing at all.
    let quiet = requests(c.metrics_port).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        minus(&requests(c.metrics_port).await, &quiet),
        BTreeMap::new(),
        "requests during 6 s of resyncs of {} tenants",
        LARGE + ADDED
    );
    c.finish().await;
}
