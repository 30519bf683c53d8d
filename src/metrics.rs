//! Prometheus metrics of the operator, served as text on the metrics port.

use std::sync::Arc;
use std::time::Instant;

use std::sync::atomic::AtomicI64;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub phase: String,
}

/// Reconcile metrics; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    pub reconciles: Family<OutcomeLabels, Counter>,
    pub errors: Family<ErrorLabels, Counter>,
    pub duration: Family<OutcomeLabels, Histogram>,
    pub tenants: Family<PhaseLabels, Gauge>,
    /// Unix time of the last complete usage flush; `time() - x` is the flush lag.
    pub last_flush: Gauge<i64, AtomicI64>,
    /// Requests sent to the API server, by verb and resource.
    pub kube_requests: crate::kube_client::RequestCounts,
    pub registry: Arc<Registry>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

impl Metrics {
    /// The operator's metrics plus `collectors` (the quota engine's, read at scrape time).
    pub fn new(collectors: Vec<Box<dyn Collector>>) -> Self {
        let mut registry = Registry::default();
        let reconciles = Family::<OutcomeLabels, Counter>::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let duration = Family::<OutcomeLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 14))
        });
        let tenants = Family::<PhaseLabels, Gauge>::default();
        let last_flush = Gauge::<i64, AtomicI64>::default();
        let kube_requests = crate::kube_client::RequestCounts::default();
        registry.register(
            "landlord_reconciles",
            "Tenant reconciles by outcome",
            reconciles.clone(),
        );
        registry.register(
            "landlord_reconcile_errors",
            "Failed tenant reconciles by error",
            errors.clone(),
        );
        registry.register(
            "landlord_reconcile_duration_seconds",
            "Tenant reconcile duration by outcome",
            duration.clone(),
        );
        registry.register("landlord_tenants", "Tenants by phase", tenants.clone());
        registry.register(
            "landlord_usage_last_flush_timestamp_seconds",
            "Unix time of the last complete usage flush to TenantUsage",
            last_flush.clone(),
        );
        registry.register(
            "landlord_kube_requests",
            "Requests sent to the Kubernetes API server, by verb and resource",
            kube_requests.clone(),
        );
        for collector in collectors {
            registry.register_collector(collector);
        }
        Self {
            reconciles,
            errors,
            duration,
            tenants,
            last_flush,
            kube_requests,
            registry: Arc::new(registry),
        }
    }
}

impl Metrics {
    /// Start timing a reconcile; the guard records it however the reconcile returns.
    pub fn timer(&self) -> ReconcileTimer {
        ReconcileTimer {
            metrics: self.clone(),
            start: Instant::now(),
            outcome: "error",
        }
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// Records count and duration on drop, under the outcome set last (default `error`).
pub struct ReconcileTimer {
    metrics: Metrics,
    start: Instant,
    outcome: &'static str,
}

impl ReconcileTimer {
    pub fn set_outcome(&mut self, outcome: &'static str) {
        self.outcome = outcome;
    }
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        let labels = OutcomeLabels {
            outcome: self.outcome.into(),
        };
        self.metrics.reconciles.get_or_create(&labels).inc();
        self.metrics
            .duration
            .get_or_create(&labels)
            .observe(self.start.elapsed().as_secs_f64());
    }
}
