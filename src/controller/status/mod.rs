//! Tenant status from what was observed: usage summed over namespaces, utilization, and the
//! utilization thresholds worth an Event.

pub mod conditions;
pub mod next;
pub mod write;

pub use next::{
    Metered, archive_failed, packing, plan_not_found, provisioned, refused, with_condition,
};
pub use write::{publish, publish_for, write};

use std::collections::BTreeMap;

use super::build::quotas::Observed;
use crate::api::{ResourceUsage, TenantQuotaSpec};
use crate::quantity;

/// Utilization levels that earn a Warning event when first crossed.
pub const THRESHOLDS: [u32; 2] = [80, 95];

/// Tenant-wide usage per resource: the sum of `used` over the namespaces, against the plan's
/// tenant-wide `hard` where there is one, else against the sum of the namespaces' `hard`.
pub fn usage(
    plan: &TenantQuotaSpec,
    observed: &BTreeMap<String, Observed>,
) -> BTreeMap<String, ResourceUsage> {
    let tenant_hard = plan.hard.clone().unwrap_or_default();
    let mut used: BTreeMap<String, i128> = BTreeMap::new();
    let mut hard: BTreeMap<String, i128> = BTreeMap::new();
    for o in observed.values() {
        for (r, q) in &o.used {
            *used.entry(r.clone()).or_default() += quantity::parse(r, q).unwrap_or(0);
        }
        for (r, q) in o.hard.iter().filter(|(r, _)| !tenant_hard.contains_key(*r)) {
            *hard.entry(r.clone()).or_default() += quantity::parse(r, q).unwrap_or(0);
        }
    }
    for (r, q) in &tenant_hard {
        hard.insert(r.clone(), quantity::parse(r, q).unwrap_or(0));
        used.entry(r.clone()).or_default();
    }
    used.into_iter()
        .map(|(r, u)| {
            let h = hard.get(&r).copied();
            let utilization = h.map(|h| {
                if h == 0 {
                    if u == 0 { 0 } else { 100 }
                } else {
                    (u * 100 / h) as u32
                }
            });
            let entry = ResourceUsage {
                used: quantity::format(&r, u).0,
                hard: h.map(|h| quantity::format(&r, h).0),
                utilization,
            };
            (r, entry)
        })
        .collect()
}

/// `(resource, threshold, utilization)` for every threshold crossed upwards since `before`
/// (both, when one step jumps over 80 % and 95 %).
pub fn crossed(
    before: &BTreeMap<String, ResourceUsage>,
    now: &BTreeMap<String, ResourceUsage>,
) -> Vec<(String, u32, u32)> {
    let mut out = Vec::new();
    for (r, u) in now {
        let (Some(now_pct), prev) = (
            u.utilization,
            before.get(r).and_then(|b| b.utilization).unwrap_or(0),
        ) else {
            continue;
        };
        for t in THRESHOLDS.iter().filter(|&&t| now_pct >= t && prev < t) {
            out.push((r.clone(), *t, now_pct));
        }
    }
    out
}

/// Utilization of the first resource present among `names`, for the printer columns.
pub fn utilization_of(usage: &BTreeMap<String, ResourceUsage>, names: &[&str]) -> Option<u32> {
    names
        .iter()
        .find_map(|n| usage.get(*n).and_then(|u| u.utilization))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    fn obs(hard: &[(&str, &str)], used: &[(&str, &str)]) -> Observed {
        let m = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(k, q)| (k.to_string(), Quantity(q.to_string())))
                .collect()
        };
        Observed {
            hard: m(hard),
            used: m(used),
        }
    }

    #[test]
    fn usage_sums_namespaces_against_the_tenant_limit() {
        let plan: TenantQuotaSpec =
            serde_saphyr::from_str("hard: {pods: 10, requests.cpu: '2'}").unwrap();
        let observed = BTreeMap::from([
            (
                "t-a".to_string(),
                obs(
                    &[("pods", "6"), ("count/services", "5")],
                    &[
                        ("pods", "6"),
                        ("requests.cpu", "500m"),
                        ("count/services", "1"),
                    ],
                ),
            ),
            (
                "t-b".to_string(),
                obs(
                    &[("pods", "4"), ("count/services", "5")],
                    &[("pods", "2"), ("requests.cpu", "1")],
                ),
            ),
        ]);
        let u = usage(&plan, &observed);
        assert_eq!(
            u["pods"],
            ResourceUsage {
                used: "8".into(),
                hard: Some("10".into()),
                utilization: Some(80)
            }
        );
        assert_eq!(
            u["requests.cpu"],
            ResourceUsage {
                used: "1500m".into(),
                hard: Some("2".into()),
                utilization: Some(75)
            }
        );
        assert_eq!(
            u["count/services"],
            ResourceUsage {
                used: "1".into(),
                hard: Some("10".into()),
                utilization: Some(10)
            }
        );
    }

    #[test]
    fn each_threshold_fires_once_when_crossed_upwards() {
        let at = |p| {
            BTreeMap::from([(
                "pods".to_string(),
                ResourceUsage {
                    used: String::new(),
                    hard: None,
                    utilization: Some(p),
                },
            )])
        };
        assert_eq!(
            crossed(&at(70), &at(85)),
            vec![("pods".to_string(), 80, 85)]
        );
        assert_eq!(
            crossed(&at(70), &at(96)),
            vec![("pods".to_string(), 80, 96), ("pods".to_string(), 95, 96)]
        );
        assert_eq!(
            crossed(&at(90), &at(96)),
            vec![("pods".to_string(), 95, 96)]
        );
        assert_eq!(crossed(&at(85), &at(90)), vec![]);
        assert_eq!(crossed(&at(96), &at(50)), vec![]);
        assert_eq!(
            crossed(&BTreeMap::new(), &at(80)),
            vec![("pods".to_string(), 80, 80)]
        );
    }
}
