//! The tenant-wide limit holds across namespaces under concurrency, and unused headroom
//! moves to the namespace that needs it. Pods never run on either server (no scheduler or
//! kubelet on the real control plane either); what is tested is that the API server's own
//! quota admission admits or refuses them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use serde_json::json;

use crate::support::*;

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}})).unwrap()
}

#[tokio::test]
async fn the_tenant_wide_pod_limit_holds_under_concurrency() {
    let c = Cluster::start("pods", "5m").await;
    c.apply("apiVersion: landlord.dev/v1alpha1\nkind: TenantQuota\nmetadata: {name: ten-$ID}\nspec:\n  hard: {pods: 10}\n").await;
    c.apply("apiVersion: landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {name: race-$ID}\nspec:\n  quotaRef: ten-$ID\n  namespaces: [{name: a}, {name: b}, {name: c}]\n").await;
    let race = c.name("race");
    wait_condition(&c.client, &race, "Ready", "True", "Ready").await;
    let namespaces = ["a", "b", "c"].map(|n| format!("{race}-{n}"));

    // 30 pods at once across the three namespaces. Refused ones are retried while the
    // tenant has fewer than ten (the headroom moves between namespaces meanwhile).
    let created = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + DEADLINE;
    let mut tasks = Vec::new();
    for i in 0..30 {
        let client = c.client.clone();
        let ns = namespaces[i % 3].clone();
        let created = created.clone();
        tasks.push(tokio::spawn(async move {
            let pods: Api<Pod> = Api::namespaced(client, &ns);
            while Instant::now() < deadline && created.load(Ordering::SeqCst) < 10 {
                if pods
                    .create(&PostParams::default(), &pod(&format!("p{i}")))
                    .await
                    .is_ok()
                {
                    created.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let total: usize = futures::future::join_all(namespaces.iter().map(|ns| {
        let pods: Api<Pod> = Api::namespaced(c.client.clone(), ns);
        async move { pods.list(&Default::default()).await.unwrap().items.len() }
    }))
    .await
    .into_iter()
    .sum();
    assert_eq!(created.load(Ordering::SeqCst), 10);
    assert_eq!(total, 10);
    let sum: i64 = futures::future::join_all(namespaces.iter().map(|ns| {
        let client = c.client.clone();
        async move { hard(&client, ns).await["pods"].parse::<i64>().unwrap() }
    }))
    .await
    .into_iter()
    .sum();
    assert!(sum <= 10, "namespace quotas sum to {sum}");
    for ns in &namespaces {
        let refused = Api::<Pod>::namespaced(c.client.clone(), ns)
            .create(&PostParams::default(), &pod("one-more"))
            .await;
        assert!(
            matches!(refused, Err(kube::Error::Api(ref s)) if s.code == 403),
            "{ns}: {refused:?}"
        );
    }
    c.finish().await;
}

#[tokio::test]
async fn a_namespace_that_used_its_share_gets_the_others_headroom() {
    let c = Cluster::start("headroom", "5m").await;
    c.apply("apiVersion: landlord.dev/v1alpha1\nkind: TenantQuota\nmetadata: {name: ten-$ID}\nspec:\n  hard: {pods: 10}\n").await;
    c.apply("apiVersion: landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {name: flow-$ID}\nspec:\n  quotaRef: ten-$ID\n  namespaces: [{name: a}, {name: b}, {name: c}]\n").await;
    let flow = c.name("flow");
    let (a, b) = (format!("{flow}-a"), format!("{flow}-b"));
    wait_condition(&c.client, &flow, "Ready", "True", "Ready").await;
    assert_eq!(hard(&c.client, &a).await["pods"], "4");

    // Only namespace a creates pods; as it fills its share, the others' unused share moves to it.
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), &a);
    let mut created = 0;
    let deadline = Instant::now() + DEADLINE;
    while created < 10 && Instant::now() < deadline {
        match pods
            .create(&PostParams::default(), &pod(&format!("p{created}")))
            .await
        {
            Ok(_) => created += 1,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::all(c.client.clone());
    poll("utilization events", || async {
        let list = events.list(&Default::default()).await.unwrap().items;
        let notes: Vec<String> = list
            .iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(&flow))
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
    assert_eq!(hard(&c.client, &a).await["pods"], "10");
    assert_eq!(hard(&c.client, &b).await["pods"], "0");
    let refused = Api::<Pod>::namespaced(c.client.clone(), &b)
        .create(&PostParams::default(), &pod("p10"))
        .await;
    assert!(
        matches!(refused, Err(kube::Error::Api(ref s)) if s.code == 403),
        "{refused:?}"
    );
    c.finish().await;
}
