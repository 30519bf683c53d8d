//! `landlord run`: the operator process — the controller, the quota engine's HTTP API, the
//! usage ledger and the metrics endpoint.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::routing::get;
use kube::Client;
use kube::runtime::events::{Recorder, Reporter};
use std::sync::atomic::{AtomicBool, Ordering};

use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::{mpsc, watch};

use crate::controller::cache::{Caches, Feeds};
use crate::controller::{Context, Settings};
use crate::engine::{Engine, QuotaMetrics};
use crate::metering::ledger::{self, Metering};
use crate::metering::tokenreview::TokenReviewer;
use crate::metrics::Metrics;

/// Options of `landlord run`.
#[derive(Clone, Debug, clap::Args)]
pub struct Options {
    /// Address of the Prometheus metrics and health endpoint.
    #[arg(long, default_value = "0.0.0.0:8080", env = "LANDLORD_METRICS_ADDR")]
    pub metrics_addr: SocketAddr,
    /// Address of the quota engine's HTTP API (`/v1/...`).
    #[arg(long, default_value = "0.0.0.0:8081", env = "LANDLORD_ENGINE_ADDR")]
    pub engine_addr: SocketAddr,
    /// How often a converged tenant is checked again (e.g. 5m, 30s).
    #[arg(long, default_value = "5m", value_parser = crate::duration::flag, env = "LANDLORD_RESYNC")]
    pub resync: Duration,
    /// How often metered usage is flushed to TenantUsage (the most a restart can lose).
    #[arg(long, default_value = "10s", value_parser = crate::duration::flag, env = "LANDLORD_FLUSH_INTERVAL")]
    pub flush_interval: Duration,
    /// Largest request body of the quota API, in bytes (413 beyond).
    #[arg(long, default_value_t = 1 << 20, value_parser = clap::value_parser!(u64).range(1..=(1 << 30)), env = "LANDLORD_ENGINE_MAX_BODY")]
    pub engine_max_body: u64,
    /// Largest request head (request line and headers) of the quota API, in bytes (431
    /// beyond); at least 8192.
    #[arg(long, default_value_t = 16 << 10, value_parser = clap::value_parser!(u64).range(8192..=(1 << 20)), env = "LANDLORD_ENGINE_MAX_HEADER_BYTES")]
    pub engine_max_header_bytes: u64,
    /// Time for a quota API request's headers to arrive (else the connection is closed), and
    /// for its body to arrive and be answered (else 408).
    #[arg(long, default_value = "10s", value_parser = crate::duration::flag, env = "LANDLORD_ENGINE_REQUEST_TIMEOUT")]
    pub engine_request_timeout: Duration,
    /// Quota API requests handled at once; more are answered 503 with `Retry-After` at once.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..), env = "LANDLORD_ENGINE_MAX_INFLIGHT")]
    pub engine_max_inflight: u32,
    /// Open connections to the quota API; each one more is answered 503 once and closed.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..), env = "LANDLORD_ENGINE_MAX_CONNECTIONS")]
    pub engine_max_connections: u32,
    /// TokenReviews of quota API callers in flight at once; a caller whose token would need
    /// one more gets 503 with `Retry-After` (cached and refused tokens need none).
    #[arg(long, default_value_t = crate::metering::tokenreview::MAX_REVIEWS_IN_FLIGHT as u32, value_parser = clap::value_parser!(u32).range(1..), env = "LANDLORD_ENGINE_MAX_TOKEN_REVIEWS")]
    pub engine_max_token_reviews: u32,
    /// Members of this group may call the quota engine for any tenant.
    #[arg(
        long,
        default_value = "landlord:engine-admins",
        env = "LANDLORD_ENGINE_ADMIN_GROUP"
    )]
    pub engine_admin_group: String,
    /// Address of Envoy's rate limit service (gRPC `envoy.service.ratelimit.v3`), e.g.
    /// `0.0.0.0:8082`; not served unless set.
    #[arg(long, env = "LANDLORD_RLS_ADDR")]
    pub rls_addr: Option<SocketAddr>,
    /// Callers of the rate limit service must be in one of these groups. A ServiceAccount is
    /// in `system:serviceaccounts:<its namespace>`; no tenant namespace is `landlord-gateways`
    /// unless Landlord made it for a tenant, and it never takes over one it did not make.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "system:serviceaccounts:landlord-gateways",
        env = "LANDLORD_RLS_ALLOWED_GROUP"
    )]
    pub rls_allowed_group: Vec<String>,
    /// What the rate limit service answers for a descriptor naming no tenant or dimension the
    /// engine knows: `allow` (OK, the rest decided without it) or `deny` (OVER_LIMIT).
    #[arg(
        long,
        value_enum,
        default_value = "allow",
        env = "LANDLORD_RLS_UNKNOWN"
    )]
    pub rls_unknown: crate::engine_http::ratelimit::Unknown,
    /// Run only while holding the `landlord-leader` Lease, so that one replica writes; a
    /// replica that loses the lease exits and is restarted as a standby.
    #[arg(long, env = "LANDLORD_LEADER_ELECT")]
    pub leader_elect: bool,
    /// Namespace of the leader Lease.
    #[arg(long, default_value = "default", env = "POD_NAMESPACE")]
    pub leader_election_namespace: String,
    /// Engine dimensions every tenant is metered on, limited or not.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "api-calls,messages,tasks,bytes,connections,storage-bytes",
        env = "LANDLORD_DIMENSIONS"
    )]
    pub dimensions: Vec<String>,
    /// Manage only the Tenants matching this label selector (e.g. `shard=a`), so that several
    /// operators can split a cluster's tenants between them, or a canary can take a few.
    /// Plan tenant counts still count every Tenant; only plans its own tenants use are written.
    #[arg(long, env = "LANDLORD_TENANT_SELECTOR")]
    pub tenant_selector: Option<String>,
    /// How many tenants are reconciled at once.
    #[arg(long, default_value_t = 8, env = "LANDLORD_CONCURRENCY")]
    pub concurrency: u16,
    /// Writes per second the operator sends to the API server at most (creates, updates,
    /// patches, deletes; reads are served from watch caches). kube's client has no limiter
    /// of its own, and 10,000 new tenants must not flood the API server.
    #[arg(long, default_value_t = 100, env = "LANDLORD_KUBE_QPS")]
    pub kube_qps: u32,
    /// Writes the operator may send at once above `--kube-qps`.
    #[arg(long, default_value_t = 200, env = "LANDLORD_KUBE_BURST")]
    pub kube_burst: u32,
    /// Where archives go: `file:///dir` (the chart mounts a volume there) or
    /// `s3://bucket/prefix` (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
    /// AWS_SESSION_TOKEN).
    #[arg(
        long,
        default_value = "file:///var/lib/landlord/archives",
        env = "LANDLORD_ARCHIVE_URL"
    )]
    pub archive_url: String,
    /// The Secret, in the operator's namespace (POD_NAMESPACE), holding the keys that encrypt
    /// archives; created with a new key on first use when absent.
    #[arg(
        long,
        default_value = "landlord-archive-key",
        env = "LANDLORD_ARCHIVE_KEY_SECRET"
    )]
    pub archive_key_secret: String,
    /// An S3-compatible endpoint (MinIO, Ceph, ...); unset for AWS.
    #[arg(long, env = "LANDLORD_ARCHIVE_S3_ENDPOINT")]
    pub archive_s3_endpoint: Option<String>,
    #[arg(long, env = "AWS_REGION")]
    pub archive_s3_region: Option<String>,
    /// Allow a plain-HTTP S3 endpoint (an in-cluster MinIO).
    #[arg(long, env = "LANDLORD_ARCHIVE_S3_ALLOW_HTTP")]
    pub archive_s3_allow_http: bool,
    /// How often archives past `retentionDays` are looked for and purged.
    #[arg(long, default_value = "1h", value_parser = crate::duration::flag, env = "LANDLORD_PURGE_INTERVAL")]
    pub purge_interval: Duration,
    /// Objects a migration copies between two checkpoints: a restarted operator redoes at
    /// most one batch.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=5000), env = "LANDLORD_MIGRATION_BATCH")]
    pub migration_batch: u32,
    /// Objects of one migration batch written to the target at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64), env = "LANDLORD_MIGRATION_PARALLELISM")]
    pub migration_parallelism: u32,
    /// The length of one retention day. For tests only: a day.
    #[arg(long, default_value = "24h", value_parser = crate::duration::flag, hide = true)]
    pub retention_day: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            metrics_addr: "127.0.0.1:0".parse().expect("valid"),
            engine_addr: "127.0.0.1:0".parse().expect("valid"),
            resync: Duration::from_secs(300),
            flush_interval: Duration::from_secs(10),
            engine_admin_group: "landlord:engine-admins".into(),
            engine_max_body: 1 << 20,
            engine_max_header_bytes: 16 << 10,
            engine_request_timeout: Duration::from_secs(10),
            engine_max_inflight: 1024,
            engine_max_connections: 4096,
            engine_max_token_reviews: crate::metering::tokenreview::MAX_REVIEWS_IN_FLIGHT as u32,
            rls_addr: None,
            rls_allowed_group: vec!["system:serviceaccounts:landlord-gateways".into()],
            rls_unknown: crate::engine_http::ratelimit::Unknown::Allow,
            leader_elect: false,
            leader_election_namespace: "default".into(),
            dimensions: [
                "api-calls",
                "messages",
                "tasks",
                "bytes",
                "connections",
                "storage-bytes",
            ]
            .map(String::from)
            .to_vec(),
            tenant_selector: None,
            concurrency: 8,
            kube_qps: 100,
            kube_burst: 200,
            archive_url: "file:///var/lib/landlord/archives".into(),
            archive_key_secret: "landlord-archive-key".into(),
            archive_s3_endpoint: None,
            archive_s3_region: None,
            archive_s3_allow_http: false,
            purge_interval: Duration::from_secs(3600),
            migration_batch: 50,
            migration_parallelism: 4,
            retention_day: Duration::from_secs(86_400),
        }
    }
}

/// Run the operator against the cluster in KUBECONFIG (or the in-cluster config) until
/// Ctrl-C or SIGTERM, or until it loses the leader lease.
pub async fn run(options: Options) -> anyhow::Result<()> {
    let engine = Arc::new(Engine::new(options.dimensions.clone()));
    let metrics = Metrics::new(vec![Box::new(QuotaMetrics::new(&engine))]);
    let config = kube::Config::infer()
        .await
        .context("connecting to Kubernetes (KUBECONFIG or in-cluster)")?;
    let budget = Arc::new(crate::engine::Pacer::new(
        options.kube_qps,
        options.kube_burst,
    ));
    let health = Arc::new(crate::kube_client::ApiHealth::default());
    let client = crate::kube_client::client(
        config,
        metrics.kube_requests.clone(),
        budget,
        health.clone(),
    )?;
    let ready = Arc::new(AtomicBool::new(false));
    serve_metrics(&options, &metrics, ready.clone(), health).await?;
    let mut lease = if options.leader_elect {
        Some(lead(client.clone(), &options).await?)
    } else {
        None
    };
    let operator = start_with(client, &options, engine, metrics).await?;
    ready.store(true, Ordering::Relaxed);
    tracing::info!("tenant controller starting");
    let handover = operator.handover();
    // The controller returns on SIGTERM or Ctrl-C (kube-runtime's graceful shutdown).
    let controller = operator.run();
    match lease.as_mut() {
        None => controller.await,
        Some(lease) => {
            tokio::select! {
                _ = controller => {}
                // Another replica writes now: no last flush, which would overwrite its ledger.
                _ = lost(&mut lease.leading) => anyhow::bail!("lost the leader lease; exiting so that the new leader alone writes"),
            }
        }
    }
    ready.store(false, Ordering::Relaxed);
    handover.run(lease).await;
    Ok(())
}

/// The leader lease this replica holds, and the task that renews it.
struct Lease {
    leading: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<kube_lease_manager::Result<kube_lease_manager::LeaseManager>>,
}

impl Lease {
    /// Give the lease up, so that a standby takes over when it next looks rather than after
    /// the lease expires. kube-lease-manager releases it once no receiver is left.
    async fn release(self) {
        drop(self.leading);
        match tokio::time::timeout(Duration::from_secs(5), self.task).await {
            Ok(Ok(Ok(_))) => tracing::info!("leader lease released"),
            Ok(Ok(Err(e))) => {
                tracing::warn!(error = %e, "releasing the leader lease failed; it expires instead")
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the leader lease task failed; the lease expires instead")
            }
            Err(_) => tracing::warn!("releasing the leader lease timed out; it expires instead"),
        }
    }
}

/// How long a stopping replica tries to write its last usage. Kubernetes grants 30 s by
/// default between SIGTERM and SIGKILL.
const LAST_FLUSH: Duration = Duration::from_secs(10);

/// What a stopping replica (a rollout, a drained node) does before it exits: stop deciding,
/// write every decision it made to the ledger, then give the lease up. The next leader
/// loads the ledger, so a handover loses no usage, where a crash loses what came after the
/// last flush.
pub struct Handover {
    engine: Arc<Engine>,
    ledger: Arc<tokio::sync::Mutex<ledger::Ledger>>,
}

impl Handover {
    async fn run(self, lease: Option<Lease>) {
        self.engine.close();
        let flushed =
            tokio::time::timeout(LAST_FLUSH, async { self.ledger.lock().await.pass().await }).await;
        match flushed {
            Ok(true) => tracing::info!("the quota engine is closed and its usage written"),
            Ok(false) => tracing::warn!(
                "the last usage flush failed for some tenants: what they used since the last flush is lost"
            ),
            Err(_) => tracing::warn!(
                "the last usage flush took over {} s: what was used since the last flush may be lost",
                LAST_FLUSH.as_secs()
            ),
        }
        if let Some(lease) = lease {
            lease.release().await;
        }
    }
}

/// Block until this process holds the leader lease; the receiver reports losing it.
async fn lead(client: Client, options: &Options) -> anyhow::Result<Lease> {
    let identity =
        std::env::var("POD_NAME").unwrap_or_else(|_| format!("landlord-{}", std::process::id()));
    let manager = || {
        LeaseManagerBuilder::new(client.clone(), "landlord-leader")
            .with_namespace(options.leader_election_namespace.clone())
            .with_identity(identity.clone())
            .with_duration(15)
            .with_grace(5)
            .with_field_manager("landlord")
            .build()
    };
    tracing::info!(%identity, "waiting for the leader lease");
    // kube-lease-manager's standby sleeps until the lease it read would expire, and has no
    // way to read it again sooner. A fresh manager every STANDBY_RETRY (client-go's retry
    // period) reads it afresh, so a lease released by a stopping leader is taken at once: a
    // rollout hands over in seconds rather than a lease time.
    let leader = loop {
        let candidate = match manager().await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "reading the leader lease failed; trying again");
                tokio::time::sleep(STANDBY_RETRY).await;
                continue;
            }
        };
        tokio::select! {
            leading = candidate.changed() => match leading {
                Ok(true) => break candidate,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "taking the leader lease failed; trying again");
                    tokio::time::sleep(STANDBY_RETRY).await;
                }
            },
            _ = tokio::time::sleep(STANDBY_RETRY) => {}
        }
    };
    // From here kube-lease-manager renews the lease and reports its loss.
    let (leading, task) = leader.watch().await;
    tracing::info!(%identity, "holding the leader lease");
    Ok(Lease { leading, task })
}

/// How often a standby looks at the leader lease.
const STANDBY_RETRY: Duration = Duration::from_secs(2);

async fn lost(leading: &mut watch::Receiver<bool>) {
    while *leading.borrow_and_update() {
        if leading.changed().await.is_err() {
            return;
        }
    }
}

/// An operator ready to run: the controller's context, the watches that feed its caches,
/// and the tenants whose usage moved.
pub struct Operator {
    pub ctx: Arc<Context>,
    feeds: Feeds,
    refresh: mpsc::Receiver<String>,
    engine: Arc<Engine>,
    ledger: Arc<tokio::sync::Mutex<ledger::Ledger>>,
}

impl Operator {
    /// What to do once the controller has stopped, before the process exits.
    pub fn handover(&self) -> Handover {
        Handover {
            engine: self.engine.clone(),
            ledger: self.ledger.clone(),
        }
    }

    /// Run the controller until the process is asked to stop.
    pub async fn run(self) {
        crate::controller::run::run(self.ctx, self.feeds, Some(self.refresh)).await
    }
}

/// Start the quota engine, its HTTP API, the usage ledger and the metrics endpoint, and
/// return the operator to run (`landlord dev`).
pub async fn start(client: Client, options: &Options) -> anyhow::Result<Operator> {
    let engine = Arc::new(Engine::new(options.dimensions.clone()));
    let metrics = Metrics::new(vec![Box::new(QuotaMetrics::new(&engine))]);
    let health = Arc::new(crate::kube_client::ApiHealth::default());
    serve_metrics(options, &metrics, Arc::new(AtomicBool::new(true)), health).await?;
    start_with(client, options, engine, metrics).await
}

/// The archive store and key Secret from the flags.
fn archives(options: &Options) -> anyhow::Result<crate::controller::archiving::Archives> {
    // Credentials from the environment; the rest from the flags (which read it too).
    let s3 = crate::archive::S3Options {
        endpoint: options.archive_s3_endpoint.clone(),
        region: options.archive_s3_region.clone(),
        allow_http: options.archive_s3_allow_http,
        ..crate::archive::inspect::s3_from_env()
    };
    Ok(crate::controller::archiving::Archives {
        store: crate::archive::ArchiveStore::from_url(&options.archive_url, &s3)
            .context("--archive-url")?,
        key_namespace: options.leader_election_namespace.clone(),
        key_secret: options.archive_key_secret.clone(),
        day: options.retention_day,
    })
}

/// `/metrics`, `/healthz` (the process is alive) and `/readyz` (it leads and serves).
async fn serve_metrics(
    options: &Options,
    metrics: &Metrics,
    ready: Arc<AtomicBool>,
    health: Arc<crate::kube_client::ApiHealth>,
) -> anyhow::Result<()> {
    let metrics = metrics.clone();
    let app =
        Router::new()
            .route("/metrics", get(move || async move { metrics.render() }))
            .route("/healthz", get(|| async { "ok" }))
            .route(
                "/readyz",
                get(move || async move {
                    readiness(ready.load(Ordering::Relaxed), health.failing_for())
                }),
            );
    serve("metrics", options.metrics_addr, app).await
}

/// How long the API server may fail to answer before `/readyz` calls the replica degraded.
const DEGRADED_AFTER: Duration = Duration::from_secs(5);

/// `/readyz`: 503 while this replica stands by; 200 once it leads, with "degraded" while the
/// API server does not answer. A degraded leader stays ready on purpose: its quota engine
/// keeps deciding from the limits it holds (fail static), and a 503 would take the engine's
/// traffic away with nowhere to send it.
fn readiness(leading: bool, failing_for: Option<Duration>) -> (axum::http::StatusCode, String) {
    match (leading, failing_for) {
        (false, _) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "waiting for the leader lease".into(),
        ),
        (true, Some(d)) if d >= DEGRADED_AFTER => (
            axum::http::StatusCode::OK,
            format!(
                "degraded: the API server has not answered for {} s; the quota engine decides from the limits it holds, and tenants are reconciled again once it answers",
                d.as_secs()
            ),
        ),
        (true, _) => (axum::http::StatusCode::OK, "ready".into()),
    }
}

impl Options {
    /// The quota API's limits from the flags.
    pub fn engine_limits(&self) -> crate::engine_http::Limits {
        crate::engine_http::Limits {
            max_body: self.engine_max_body as usize,
            max_header_bytes: self.engine_max_header_bytes as usize,
            request_timeout: self.engine_request_timeout,
            max_inflight: self.engine_max_inflight as usize,
            max_connections: self.engine_max_connections as usize,
        }
    }
}

async fn start_with(
    client: Client,
    options: &Options,
    engine: Arc<Engine>,
    metrics: Metrics,
) -> anyhow::Result<Operator> {
    // From here on this replica writes: it holds the lease, or elects no leader.
    metrics.leader.set(1);
    let auth = Arc::new(TokenReviewer::new(
        client.clone(),
        Some(options.engine_admin_group.clone()),
        options.engine_max_token_reviews as usize,
    ));
    serve_engine(options, engine.clone(), auth.clone()).await?;
    if let Some(addr) = options.rls_addr {
        serve_rate_limits(addr, options, engine.clone(), auth).await?;
    }
    let metering = Arc::new(Metering::new(engine.clone(), client.clone()));
    let (changed, refresh) = mpsc::channel(1024);
    let ledger = Arc::new(tokio::sync::Mutex::new(ledger::Ledger::new(
        metering.clone(),
        changed,
        metrics.last_flush.clone(),
    )));
    tokio::spawn(ledger::run(ledger.clone(), options.flush_interval));
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "landlord".into(),
            instance: std::env::var("POD_NAME").ok(),
        },
    );
    let (caches, feeds) = Caches::new(&client);
    let ctx = Context::new(
        client,
        caches,
        recorder,
        metrics,
        Settings {
            resync: options.resync,
            tenant_selector: options.tenant_selector.clone(),
            concurrency: options.concurrency,
            purge_interval: options.purge_interval,
            migration_batch: options.migration_batch as usize,
            migration_parallelism: options.migration_parallelism as usize,
        },
    )
    .with_metering(metering)
    .with_archives(Arc::new(archives(options)?));
    Ok(Operator {
        ctx: Arc::new(ctx),
        feeds,
        refresh,
        engine,
        ledger,
    })
}

/// Envoy's rate limit service, with the HTTP API's authenticator (and so its cache).
async fn serve_rate_limits(
    addr: SocketAddr,
    options: &Options,
    engine: Arc<Engine>,
    auth: Arc<TokenReviewer>,
) -> anyhow::Result<()> {
    use crate::engine_http::ratelimit::{self, RateLimiter};
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the rate limit service to {addr}"))?;
    tracing::info!(addr = %listener.local_addr()?, "rate limit service (gRPC) listening");
    let settings = ratelimit::Settings {
        allowed_groups: options.rls_allowed_group.clone(),
        unknown: options.rls_unknown,
    };
    ratelimit::serve(
        listener,
        RateLimiter::new(engine, auth, settings),
        options.engine_limits(),
    );
    Ok(())
}

/// The quota API, with its limits on size, time and load.
async fn serve_engine(
    options: &Options,
    engine: Arc<Engine>,
    auth: Arc<TokenReviewer>,
) -> anyhow::Result<()> {
    let addr = options.engine_addr;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the quota engine to {addr}"))?;
    tracing::info!(addr = %listener.local_addr()?, limits = ?options.engine_limits(), "quota engine listening");
    let limits = options.engine_limits();
    let app = crate::engine_http::router_with(engine, auth, limits);
    tokio::spawn(crate::engine_http::limits::serve(listener, app, limits));
    Ok(())
}

async fn serve(what: &'static str, addr: SocketAddr, app: Router) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {what} to {addr}"))?;
    tracing::info!(addr = %listener.local_addr()?, "{what} listening");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "{what} server stopped");
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_options_have_the_default_engine_limits() {
        assert_eq!(
            Options::default().engine_limits(),
            crate::engine_http::Limits::default()
        );
    }

    #[test]
    fn readiness_is_503_on_a_standby_and_degraded_only_after_a_lasting_outage() {
        use axum::http::StatusCode;
        assert_eq!(readiness(false, None).0, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(readiness(true, None), (StatusCode::OK, "ready".into()));
        assert_eq!(
            readiness(true, Some(Duration::from_secs(2))),
            (StatusCode::OK, "ready".into())
        );
        let (code, body) = readiness(true, Some(Duration::from_secs(61)));
        assert_eq!(code, StatusCode::OK);
        assert!(
            body.starts_with("degraded: the API server has not answered for 61 s"),
            "{body}"
        );
    }
}
