//! Prometheus metrics, read from the engine's own counters at scrape time.
//!
//! The hot path already counts every decision (the meter), so the metrics add nothing to it:
//! a [`Collector`] walks the tenants when Prometheus scrapes. Register with
//! `registry.register_collector(Box::new(QuotaMetrics::new(&engine)))`.

use std::sync::{Arc, Weak};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::Engine;

/// Exports `landlord_quota_decisions_total{tenant,dimension,result}` (result `allowed` or
/// `denied`, since the engine started) and `landlord_quota_period_units{tenant,dimension}`
/// (units allowed this month, ledger seeds included).
#[derive(Debug)]
pub struct QuotaMetrics {
    engine: Weak<Engine>,
}

impl QuotaMetrics {
    pub fn new(engine: &Arc<Engine>) -> Self {
        Self {
            engine: Arc::downgrade(engine),
        }
    }
}

impl Collector for QuotaMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(engine) = self.engine.upgrade() else {
            return Ok(());
        };
        let mut rows = Vec::new();
        engine.for_each_counter(|tenant, dimension, allowed, denied, units| {
            rows.push((
                tenant.to_owned(),
                dimension.to_owned(),
                allowed,
                denied,
                units,
            ));
        });
        {
            let mut family = encoder.encode_descriptor(
                "landlord_quota_decisions",
                "Quota decisions per tenant, dimension and result",
                None,
                MetricType::Counter,
            )?;
            for (tenant, dimension, allowed, denied, _) in &rows {
                for (result, n) in [("allowed", *allowed), ("denied", *denied)] {
                    let labels = [
                        ("tenant", tenant.as_str()),
                        ("dimension", dimension.as_str()),
                        ("result", result),
                    ];
                    ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        let mut family = encoder.encode_descriptor(
            "landlord_quota_period_units",
            "Units allowed this billing month per tenant and dimension",
            None,
            MetricType::Gauge,
        )?;
        for (tenant, dimension, _, _, units) in &rows {
            let labels = [
                ("tenant", tenant.as_str()),
                ("dimension", dimension.as_str()),
            ];
            ConstGauge::new(i64::try_from(*units).unwrap_or(i64::MAX))
                .encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}
