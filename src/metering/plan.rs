//! From a tenant's effective `TenantQuota` plan to the engine's own limit and price types.

use std::time::Duration;

use crate::api;
use crate::engine::{Algorithm, GaugeSpec, PriceItem, Pricing, RateSpec, SlotSpec, TenantLimits};

/// Lease of a concurrency slot when the plan does not say.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(300);

/// The engine limits of a plan. A tenant that is not `Active` is denied everything: suspended,
/// archived, or hibernated (then with its own reason).
pub fn limits(
    plan: &api::TenantQuotaSpec,
    state: api::TenantState,
) -> Result<TenantLimits, String> {
    let suspended = state != api::TenantState::Active;
    let hibernated = state == api::TenantState::Hibernated;
    let rates = plan
        .rates
        .iter()
        .flatten()
        .map(|r| {
            Ok(RateSpec {
                name: r.name.clone(),
                limit: r.limit,
                per: crate::duration::parse(&r.per)
                    .ok_or_else(|| format!("rate {}: `{}` is not a duration", r.name, r.per))?,
                burst: r.burst,
                algorithm: match r.algorithm {
                    api::Algorithm::TokenBucket => Algorithm::TokenBucket,
                    api::Algorithm::SlidingWindow => Algorithm::SlidingWindow,
                    api::Algorithm::FixedWindow => Algorithm::FixedWindow,
                },
            })
        })
        .collect::<Result<_, String>>()?;
    let concurrency = plan
        .concurrency
        .iter()
        .flatten()
        .map(|c| SlotSpec {
            name: c.name.clone(),
            limit: c.limit,
            lease: c
                .lease_seconds
                .map_or(DEFAULT_LEASE, |s| Duration::from_secs(s.into())),
        })
        .collect();
    let gauges = plan
        .gauges
        .iter()
        .flatten()
        .map(|g| GaugeSpec {
            name: g.name.clone(),
            limit: Some(g.limit),
        })
        .collect();
    let limits = TenantLimits {
        rates,
        concurrency,
        gauges,
        suspended,
        hibernated,
    };
    limits.validate().map_err(|e| e.to_string())?;
    Ok(limits)
}

/// The engine's pricing of a plan: the items priced per engine dimension. Items priced per
/// Kubernetes resource are costed by the ledger from quota usage.
pub fn pricing(plan: &api::TenantQuotaSpec) -> Option<Pricing> {
    let p = plan.pricing.as_ref()?;
    let items = p
        .items
        .iter()
        .filter_map(|i| {
            let unit = i
                .unit
                .as_ref()
                .and_then(|u| crate::quantity::parse_milli(&u.0))
                .map_or(1, |m| (m / 1000).max(1) as u64);
            Some(PriceItem {
                dimension: i.dimension.clone()?,
                unit,
                price: i.price.clone(),
            })
        })
        .collect();
    Some(Pricing {
        currency: p.currency.clone(),
        items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_becomes_engine_limits_and_prices() {
        let plan: api::TenantQuotaSpec = serde_saphyr::from_str(
            "rates: [{name: api-calls, limit: 1000, per: 1m, burst: 2000}, {name: tasks, limit: 10, per: 24h, algorithm: FixedWindow}]\n\
             concurrency: [{name: connections, limit: 5}]\ngauges: [{name: storage-bytes, limit: 100}]\n\
             pricing: {currency: USD, items: [{dimension: api-calls, unit: 1000, price: '0.01'}, {resource: requests.cpu, price: '0.03'}]}",
        )
        .unwrap();
        let l = limits(&plan, api::TenantState::Active).unwrap();
        assert_eq!(
            l.rates[0],
            RateSpec {
                name: "api-calls".into(),
                limit: 1000,
                per: Duration::from_secs(60),
                burst: Some(2000),
                algorithm: Algorithm::TokenBucket
            }
        );
        assert_eq!(l.rates[1].algorithm, Algorithm::FixedWindow);
        assert_eq!(
            l.concurrency[0],
            SlotSpec {
                name: "connections".into(),
                limit: 5,
                lease: DEFAULT_LEASE
            }
        );
        assert_eq!(
            l.gauges[0],
            GaugeSpec {
                name: "storage-bytes".into(),
                limit: Some(100)
            }
        );
        assert!(!l.suspended);
        assert!(
            limits(&plan, api::TenantState::Suspended)
                .unwrap()
                .suspended
        );
        let p = pricing(&plan).unwrap();
        assert_eq!(p.currency, "USD");
        assert_eq!(
            p.items,
            vec![PriceItem {
                dimension: "api-calls".into(),
                unit: 1000,
                price: "0.01".into()
            }]
        );
    }
}
