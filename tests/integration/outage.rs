//! The API server gone: the operator reaches it through a TCP proxy this test cuts, so the
//! same test runs on kube-test and on a real control plane. During the outage the quota
//! engine keeps deciding from the limits it holds (fail static), `/readyz` says "degraded",
//! the operator neither spins nor floods, and SIGTERM still stops it; afterwards a change
//! made meanwhile is reconciled and the usage counted meanwhile reaches the ledger.
//!
//! The outage lasts `LANDLORD_OUTAGE_SECS` (default 15 s; `make soak` runs 60 s).

use std::time::{Duration, Instant};

use kube::api::Api;
use landlord::api::Tenant;
use serde_json::json;

use crate::support::*;

/// CPU seconds (user and system) the process has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) start at its closing paren.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

async fn readyz(port: u16) -> (u16, String) {
    use http_body_util::{BodyExt, Empty};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<bytes::Bytes>>();
    match client
        .get(format!("http://127.0.0.1:{port}/readyz").parse().unwrap())
        .await
    {
        Ok(r) => {
            let status = r.status().as_u16();
            let body = r.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
        Err(_) => (0, String::new()),
    }
}

fn requests(text: &str) -> f64 {
    samples(text, "landlord_kube_requests_total").values().sum()
}

#[tokio::test]
async fn with_the_api_server_gone_the_engine_decides_and_everything_catches_up() {
    let outage = Duration::from_secs(
        std::env::var("LANDLORD_OUTAGE_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(15),
    );
    let mut c = Cluster::start("outage", "2s").await;
    c.apply("apiVersion: landlord.dev/v1alpha1\nkind: TenantQuota\nmetadata: {name: steady-$ID}\nspec:\n  hard: {pods: 5}\n  rates: [{name: api-calls, limit: 100000, per: 1h}]\n").await;
    let tenant = |extra: &str| {
        format!(
            "apiVersion: landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: calm-$ID}}\nspec:\n  quotaRef: steady-$ID\n  namespaces: [{{name: app}}{extra}]\n"
        )
    };
    c.apply(&tenant("")).await;
    let name = c.name("calm");
    wait_condition(&c.client, &name, "Ready", "True", "Ready").await;

    // The operator, from now on, through the proxy.
    let proxy = c.proxy_operator().await;

    let token = service_account_token(&c.client, &format!("{name}-app"), "worker").await;
    let check = || Some(json!({"dimension": "api-calls", "amount": 1}));
    let path = format!("/v1/tenants/{name}/check");
    let port = c.engine_port;
    poll("the engine answers through the new operator", || async {
        engine_call(port, "POST", &path, &token, check()).await.0 == 200
    })
    .await;
    let mut allowed = 1u64;
    assert_eq!(readyz(c.metrics_port).await, (200, "ready".into()));

    proxy.cut(true);
    let metrics = c.metrics_port;
    poll("/readyz says degraded", || async {
        let (code, body) = readyz(metrics).await;
        code == 200 && body.starts_with("degraded: the API server has not answered")
    })
    .await;
    let (cpu_before, requests_before) = (
        cpu_seconds(c.operator_pid()),
        requests(&metrics_text(metrics).await),
    );
    let start = Instant::now();
    // Fail static: decisions go on from the limits the engine holds, at a steady pace.
    while start.elapsed() < outage {
        let (code, body) = engine_call(port, "POST", &path, &token, check()).await;
        assert_eq!(code, 200, "during the outage: {body}");
        assert_eq!(body["allowed"], true);
        allowed += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds(c.operator_pid()) - cpu_before;
    let attempts = requests(&metrics_text(metrics).await) - requests_before;
    println!(
        "outage of {elapsed:.0} s: the operator used {cpu:.2} CPU s ({:.1} % of a core) and tried {attempts} requests ({:.1}/s); {allowed} decisions allowed",
        100.0 * cpu / elapsed,
        attempts / elapsed
    );
    assert!(
        cpu / elapsed < 0.10,
        "the operator spins while the API server is gone: {cpu:.2} CPU s in {elapsed:.0} s"
    );
    assert!(
        attempts / elapsed < 5.0,
        "the operator floods the absent API server: {attempts} requests in {elapsed:.0} s"
    );

    // A change made during the outage (straight to the API server), then the server back.
    c.apply(&tenant(", {name: extra}")).await;
    proxy.cut(false);
    let back = Instant::now();
    poll("/readyz ready again", || async {
        readyz(metrics).await == (200, "ready".to_string())
    })
    .await;
    let t = wait_condition(&c.client, &name, "Ready", "True", "Ready").await;
    assert_eq!(
        t.status.unwrap().namespaces,
        [format!("{name}-app"), format!("{name}-extra")]
    );
    // Every decision allowed during the outage reaches the ledger.
    poll(&format!("{allowed} calls in the ledger"), || async {
        ledger_allowed(&c.client, &name, "api-calls").await == allowed
    })
    .await;
    println!(
        "after the outage: the change made meanwhile reconciled and the ledger caught up in {:.1} s",
        back.elapsed().as_secs_f64()
    );

    // SIGTERM during an outage still stops the operator, cleanly.
    proxy.cut(true);
    poll("/readyz says degraded again", || async {
        readyz(metrics).await.1.starts_with("degraded")
    })
    .await;
    let status = c.terminate_operator().await;
    assert_eq!(status.code(), Some(0), "{status:?}");
    proxy.cut(false);
    c.restart_operator();
    let tenants: Api<Tenant> = Api::all(c.client.clone());
    assert!(tenants.get_opt(&name).await.unwrap().is_some());
    c.finish().await;
}
