//! `landlord run`: the operator process — the controller plus the metrics endpoint.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::routing::get;
use kube::Client;
use kube::runtime::events::{Recorder, Reporter};

use crate::metrics::Metrics;
use crate::reconcile::{self, Context, Settings};

/// Options of `landlord run`.
#[derive(Clone, Debug, clap::Args)]
pub struct Options {
    /// Address of the Prometheus metrics and health endpoint.
    #[arg(long, default_value = "0.0.0.0:8080", env = "LANDLORD_METRICS_ADDR")]
    pub metrics_addr: SocketAddr,
    /// How often a converged tenant is checked again (e.g. 5m, 30s).
    #[arg(long, default_value = "5m", value_parser = parse_duration, env = "LANDLORD_RESYNC")]
    pub resync: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            metrics_addr: "127.0.0.1:0".parse().expect("valid"),
            resync: Duration::from_secs(300),
        }
    }
}

/// `30s`, `5m`, `1h`, `250ms`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 30s or 5m"))?;
    Ok(match unit {
        "ms" => Duration::from_millis(n),
        "s" | "" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(format!("`{text}`: unit must be ms, s, m or h")),
    })
}

/// Run the operator until Ctrl-C or SIGTERM.
pub async fn run(client: Client, options: Options) -> anyhow::Result<()> {
    let metrics = Metrics::default();
    let listener = tokio::net::TcpListener::bind(options.metrics_addr)
        .await
        .with_context(|| format!("binding {}", options.metrics_addr))?;
    tracing::info!(addr = %listener.local_addr()?, "metrics listening");
    let app = {
        let metrics = metrics.clone();
        Router::new()
            .route("/metrics", get(move || async move { metrics.render() }))
            .route("/healthz", get(|| async { "ok" }))
    };
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics server stopped");
        }
    });
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "landlord".into(),
            instance: std::env::var("POD_NAME").ok(),
        },
    );
    let ctx = Arc::new(Context::new(
        client,
        recorder,
        metrics,
        Settings {
            resync: options.resync,
        },
    ));
    tracing::info!("tenant controller starting");
    reconcile::controller::run(ctx).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_kubectl_flags() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5d").is_err());
    }
}
