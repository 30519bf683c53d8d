//! From a tenant's effective `TenantQuota` plan to the engine's own limit and price types.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::api;
use crate::engine::{
    Algorithm, AllowedSpec, GaugeSpec, MAX_AMOUNT, PriceItem, Pricing, RateSpec, SizeSpec,
    SlotSpec, TenantLimits,
};

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
        .map(|g| {
            Ok(GaugeSpec {
                name: g.name.clone(),
                limit: Some(whole(&g.limit).map_err(|e| format!("gauge {}: limit {e}", g.name))?),
            })
        })
        .collect::<Result<_, String>>()?;
    let sizes = plan
        .sizes
        .iter()
        .flatten()
        .map(|z| {
            Ok(SizeSpec {
                name: z.name.clone(),
                max: whole(&z.max).map_err(|e| format!("size {}: max {e}", z.name))?,
            })
        })
        .collect::<Result<_, String>>()?;
    let allowed = plan
        .allowed
        .iter()
        .flatten()
        .map(|a| AllowedSpec {
            name: a.name.clone(),
            values: a.values.clone(),
        })
        .collect();
    let limits = TenantLimits {
        rates,
        concurrency,
        gauges,
        sizes,
        allowed,
        suspended,
        hibernated,
    };
    limits.validate().map_err(|e| e.to_string())?;
    Ok(limits)
}

/// A quantity as the whole number of units the engine counts (`1Mi` is 1048576), at most
/// 2^53. The CRD refuses anything else at admission; this is the check for what got past it.
fn whole(q: &Quantity) -> Result<u64, String> {
    crate::quantity::parse_milli(&q.0)
        .filter(|m| m % 1000 == 0)
        .and_then(|m| u64::try_from(m / 1000).ok())
        .filter(|n| *n <= MAX_AMOUNT)
        .ok_or_else(|| format!("{:?} is not a whole number from 0 to 2^53", q.0))
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
    fn quantities_become_whole_units() {
        let plan: api::TenantQuotaSpec = serde_saphyr::from_str(
            "gauges: [{name: storage-bytes, limit: 1Gi}, {name: seats, limit: 25}]\n\
             sizes: [{name: task-bytes, max: 1Mi}, {name: result-bytes, max: '5M'}]\n\
             allowed: [{name: queue, values: [default, emails]}]",
        )
        .unwrap();
        let l = limits(&plan, api::TenantState::Active).unwrap();
        let gauges: Vec<_> = l
            .gauges
            .iter()
            .map(|g| (g.name.as_str(), g.limit))
            .collect();
        assert_eq!(
            gauges,
            [("storage-bytes", Some(1 << 30)), ("seats", Some(25))]
        );
        assert_eq!(
            l.sizes,
            [
                SizeSpec {
                    name: "task-bytes".into(),
                    max: 1 << 20
                },
                SizeSpec {
                    name: "result-bytes".into(),
                    max: 5_000_000
                }
            ]
        );
        assert_eq!(
            l.allowed,
            [AllowedSpec {
                name: "queue".into(),
                values: vec!["default".into(), "emails".into()]
            }]
        );
        for (limit, refused) in [
            ("1.5", "\"1.5\" is not a whole number from 0 to 2^53"),
            ("500m", "\"500m\" is not a whole number from 0 to 2^53"),
            ("9Pi", "\"9Pi\" is not a whole number from 0 to 2^53"),
        ] {
            let plan: api::TenantQuotaSpec =
                serde_saphyr::from_str(&format!("gauges: [{{name: g, limit: '{limit}'}}]"))
                    .unwrap();
            assert_eq!(
                limits(&plan, api::TenantState::Active),
                Err(format!("gauge g: limit {refused}"))
            );
        }
    }

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
        assert!(l.sizes.is_empty() && l.allowed.is_empty());
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
