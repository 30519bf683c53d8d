//! Prometheus metrics of the operator, served as text on the metrics port.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::Instant;

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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantResourceLabels {
    pub tenant: String,
    pub resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantCurrencyLabels {
    pub tenant: String,
    pub currency: String,
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
    /// Each tenant's quota utilization and cost, as its status says.
    pub tenant_status: TenantStatusGauges,
    /// 1 once this replica may write (it holds the leader lease, or runs without leader
    /// election), 0 while it stands by.
    pub leader: Gauge,
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
        let tenant_status = TenantStatusGauges::default();
        let leader = Gauge::default();
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
        registry.register(
            "landlord_tenant_quota_utilization_ratio",
            "Tenant-wide used over hard per quota resource, as in Tenant status.usage",
            tenant_status.utilization.clone(),
        );
        registry.register(
            "landlord_tenant_cost",
            "Cost of the current billing period per tenant, as in Tenant status.cost",
            tenant_status.cost.clone(),
        );
        registry.register(
            "landlord_leader",
            "1 on the replica that leads (or runs without leader election), 0 on a standby",
            leader.clone(),
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
            tenant_status,
            leader,
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

/// `landlord_tenant_quota_utilization_ratio{tenant,resource}` and
/// `landlord_tenant_cost{tenant,currency}`, set from the status a reconcile computes (and the
/// cost also from the status-only usage refresh), removed with the tenant.
#[derive(Clone, Default)]
pub struct TenantStatusGauges {
    pub utilization: Family<TenantResourceLabels, Gauge<f64, AtomicU64>>,
    pub cost: Family<TenantCurrencyLabels, Gauge<f64, AtomicU64>>,
    /// The label sets each tenant has now, so that what its status no longer has goes.
    series: Arc<Mutex<HashMap<String, TenantSeries>>>,
}

#[derive(Default)]
struct TenantSeries {
    resources: Vec<String>,
    currency: Option<String>,
}

impl TenantStatusGauges {
    /// The utilization of every resource of `status.usage` that has a `hard`, and the cost.
    pub fn set(&self, tenant: &str, status: &crate::api::TenantStatus) {
        self.set_usage(tenant, &status.usage);
        self.set_cost(tenant, status.cost.as_ref());
    }

    fn set_usage(&self, tenant: &str, usage: &BTreeMap<String, crate::api::ResourceUsage>) {
        let ratios: Vec<(&String, f64)> = usage
            .iter()
            .filter_map(|(r, u)| Some((r, utilization_ratio(u)?)))
            .collect();
        let mut series = self.series.lock().expect("not poisoned");
        let entry = series.entry(tenant.to_string()).or_default();
        for gone in entry
            .resources
            .iter()
            .filter(|r| !ratios.iter().any(|(now, _)| now == r))
        {
            self.utilization
                .remove(&resource_labels(tenant, gone.as_str()));
        }
        for (resource, ratio) in &ratios {
            self.utilization
                .get_or_create(&resource_labels(tenant, resource.as_str()))
                .set(*ratio);
        }
        entry.resources = ratios.into_iter().map(|(r, _)| r.clone()).collect();
    }

    /// The period's amount in its currency; `None` (no pricing) removes the series.
    pub fn set_cost(&self, tenant: &str, cost: Option<&crate::api::CostStatus>) {
        let mut series = self.series.lock().expect("not poisoned");
        let entry = series.entry(tenant.to_string()).or_default();
        let now = cost.and_then(|c| Some((c.currency.clone(), c.amount.parse::<f64>().ok()?)));
        if let Some(old) = &entry.currency
            && now.as_ref().is_none_or(|(currency, _)| currency != old)
        {
            self.cost.remove(&currency_labels(tenant, old));
        }
        entry.currency = now.as_ref().map(|(currency, _)| currency.clone());
        if let Some((currency, amount)) = now {
            self.cost
                .get_or_create(&currency_labels(tenant, &currency))
                .set(amount);
        }
    }

    /// Remove every series of a deleted tenant.
    pub fn forget(&self, tenant: &str) {
        let Some(gone) = self.series.lock().expect("not poisoned").remove(tenant) else {
            return;
        };
        for resource in &gone.resources {
            self.utilization.remove(&resource_labels(tenant, resource));
        }
        if let Some(currency) = &gone.currency {
            self.cost.remove(&currency_labels(tenant, currency));
        }
    }
}

fn resource_labels(tenant: &str, resource: &str) -> TenantResourceLabels {
    TenantResourceLabels {
        tenant: tenant.into(),
        resource: resource.into(),
    }
}

fn currency_labels(tenant: &str, currency: &str) -> TenantCurrencyLabels {
    TenantCurrencyLabels {
        tenant: tenant.into(),
        currency: currency.into(),
    }
}

/// `used / hard` of one status.usage entry, unrounded (the status' `utilization` is whole
/// percent, floored, so 95.9 % would read 95): `None` without a `hard`. A `hard` of 0 is
/// full (1) as soon as anything is used, as the status' 100 % says.
pub fn utilization_ratio(usage: &crate::api::ResourceUsage) -> Option<f64> {
    let hard = crate::quantity::parse_milli(usage.hard.as_deref()?)?;
    let used = crate::quantity::parse_milli(&usage.used)?;
    Some(match hard {
        0 if used == 0 => 0.0,
        0 => 1.0,
        h => used as f64 / h as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{CostStatus, ResourceUsage, TenantStatus};

    fn usage(used: &str, hard: Option<&str>) -> ResourceUsage {
        ResourceUsage {
            used: used.into(),
            hard: hard.map(Into::into),
            utilization: None,
        }
    }

    #[test]
    fn the_ratio_is_used_over_hard_in_any_unit() {
        assert_eq!(utilization_ratio(&usage("3", Some("4"))), Some(0.75));
        assert_eq!(utilization_ratio(&usage("500m", Some("2"))), Some(0.25));
        assert_eq!(utilization_ratio(&usage("1536Mi", Some("1Gi"))), Some(1.5));
        assert_eq!(utilization_ratio(&usage("0", Some("0"))), Some(0.0));
        assert_eq!(utilization_ratio(&usage("2", Some("0"))), Some(1.0));
        assert_eq!(utilization_ratio(&usage("2", None)), None);
    }

    /// The series follow the status: a resource or currency that went is removed, and a
    /// forgotten tenant has none left; other tenants keep theirs.
    #[test]
    fn tenant_series_follow_the_status_and_go_with_the_tenant() {
        let metrics = Metrics::default();
        let status = |resources: &[(&str, &str, &str)], cost: Option<(&str, &str)>| TenantStatus {
            usage: resources
                .iter()
                .map(|(r, used, hard)| (r.to_string(), usage(used, Some(hard))))
                .collect(),
            cost: cost.map(|(amount, currency)| CostStatus {
                period: "2026-11".into(),
                amount: amount.into(),
                currency: currency.into(),
            }),
            ..TenantStatus::default()
        };
        let gauges = &metrics.tenant_status;
        gauges.set(
            "acme",
            &status(
                &[("pods", "3", "4"), ("requests.cpu", "1", "2")],
                Some(("1.5", "EUR")),
            ),
        );
        gauges.set("globex", &status(&[("pods", "1", "10")], None));
        // A family's series come out in no particular order.
        let lines = |text: String| -> std::collections::BTreeSet<String> {
            text.lines()
                .filter(|l| l.starts_with("landlord_tenant_"))
                .map(String::from)
                .collect()
        };
        let set = |want: &[&str]| want.iter().map(|l| l.to_string()).collect();
        assert_eq!(
            lines(metrics.render()),
            set(&[
                r#"landlord_tenant_quota_utilization_ratio{tenant="acme",resource="pods"} 0.75"#,
                r#"landlord_tenant_quota_utilization_ratio{tenant="acme",resource="requests.cpu"} 0.5"#,
                r#"landlord_tenant_quota_utilization_ratio{tenant="globex",resource="pods"} 0.1"#,
                r#"landlord_tenant_cost{tenant="acme",currency="EUR"} 1.5"#,
            ])
        );
        gauges.set("acme", &status(&[("pods", "4", "4")], Some(("2", "USD"))));
        gauges.set_cost(
            "globex",
            Some(&status(&[], Some(("0.05", "USD"))).cost.unwrap()),
        );
        assert_eq!(
            lines(metrics.render()),
            set(&[
                r#"landlord_tenant_quota_utilization_ratio{tenant="acme",resource="pods"} 1.0"#,
                r#"landlord_tenant_quota_utilization_ratio{tenant="globex",resource="pods"} 0.1"#,
                r#"landlord_tenant_cost{tenant="acme",currency="USD"} 2.0"#,
                r#"landlord_tenant_cost{tenant="globex",currency="USD"} 0.05"#,
            ])
        );
        gauges.forget("acme");
        assert_eq!(
            lines(metrics.render()),
            set(&[
                r#"landlord_tenant_quota_utilization_ratio{tenant="globex",resource="pods"} 0.1"#,
                r#"landlord_tenant_cost{tenant="globex",currency="USD"} 0.05"#,
            ])
        );
    }
}
