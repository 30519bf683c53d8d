//! Per-namespace ResourceQuota values for a tenant: the partition of each tenant-wide limit,
//! plus the per-namespace limits, from the plan and what the namespaces use now.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::partition::{Share, lower_first, partition};
use crate::api::{TenantNamespace, TenantQuotaSpec};
use crate::quantity::{self, QuantityError};

/// ResourceQuota `hard` per full namespace name.
pub type Quotas = BTreeMap<String, BTreeMap<String, Quantity>>;

/// What a namespace's ResourceQuota says now.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    pub hard: BTreeMap<String, Quantity>,
    pub used: BTreeMap<String, Quantity>,
}

/// The `hard` of every namespace (`(full name, spec)` pairs, in spec order).
///
/// A resource in the plan's `hard` is partitioned across the namespaces, each share capped by
/// the namespace's own limit (`namespaces[].hard` over `namespaceHard`); a resource only in the
/// per-namespace limits is that limit. A suspended tenant gets `pods: 0` everywhere.
pub fn plan(
    plan: &TenantQuotaSpec,
    namespaces: &[(String, &TenantNamespace)],
    suspended: bool,
    observed: &BTreeMap<String, Observed>,
) -> Result<Quotas, QuantityError> {
    let tenant_hard = plan.hard.clone().unwrap_or_default();
    let caps: Vec<BTreeMap<String, Quantity>> = namespaces
        .iter()
        .map(|(_, ns)| {
            let mut cap = plan.namespace_hard.clone().unwrap_or_default();
            cap.extend(ns.hard.clone().unwrap_or_default());
            cap
        })
        .collect();
    let mut out: Quotas = namespaces
        .iter()
        .map(|(full, _)| (full.clone(), BTreeMap::new()))
        .collect();

    for (resource, limit) in &tenant_hard {
        let limit = quantity::parse(resource, limit)?;
        let mut shares = Vec::with_capacity(namespaces.len());
        for ((full, _), cap) in namespaces.iter().zip(&caps) {
            let used = match observed.get(full).and_then(|o| o.used.get(resource)) {
                Some(q) => quantity::parse(resource, q)?,
                None => 0,
            };
            let cap = cap
                .get(resource)
                .map(|q| quantity::parse(resource, q))
                .transpose()?;
            shares.push(Share { used, cap });
        }
        for ((full, _), hard) in namespaces.iter().zip(partition(limit, &shares)) {
            out.get_mut(full)
                .expect("every namespace has an entry")
                .insert(resource.clone(), quantity::format(resource, hard));
        }
    }
    for ((full, _), cap) in namespaces.iter().zip(&caps) {
        let hard = out.get_mut(full).expect("every namespace has an entry");
        for (resource, value) in cap {
            if !tenant_hard.contains_key(resource) {
                hard.insert(resource.clone(), value.clone());
            }
        }
        if suspended {
            hard.insert("pods".into(), Quantity("0".into()));
        }
    }
    Ok(out)
}

/// The values to write before `target` so that the namespaces' sum never passes a tenant
/// limit mid-update: every resource at the lower of its current and target value. `None`
/// when that is already what is there (nothing to lower) or already the target.
pub fn lowering_step(
    current: &BTreeMap<String, Quantity>,
    target: &BTreeMap<String, Quantity>,
) -> Result<Option<BTreeMap<String, Quantity>>, QuantityError> {
    let mut step = BTreeMap::new();
    let resources: BTreeSet<&String> = target.keys().collect();
    for resource in resources {
        let t = quantity::parse(resource, &target[resource])?;
        let c = current
            .get(resource)
            .map(|q| quantity::parse(resource, q))
            .transpose()?;
        step.insert(
            resource.clone(),
            quantity::format(resource, lower_first(c, t)),
        );
    }
    let same_as = |m: &BTreeMap<String, Quantity>| -> Result<bool, QuantityError> {
        Ok(step.len() == m.len()
            && step.iter().all(|(r, v)| {
                m.get(r)
                    .map(|q| quantity::parse(r, q))
                    .transpose()
                    .ok()
                    .flatten()
                    == quantity::parse(r, v).ok()
            }))
    };
    if same_as(target)? || same_as(current)? {
        return Ok(None);
    }
    Ok(Some(step))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity(s.into())
    }

    fn ns(name: &str, hard: Option<&str>) -> TenantNamespace {
        TenantNamespace {
            name: name.into(),
            hard: hard.map(|h| serde_saphyr::from_str(h).unwrap()),
            ..Default::default()
        }
    }

    fn observed(used: &[(&str, &str)]) -> Observed {
        Observed {
            hard: BTreeMap::new(),
            used: used.iter().map(|(k, v)| (k.to_string(), q(v))).collect(),
        }
    }

    #[test]
    fn tenant_limits_are_partitioned_and_namespace_limits_copied() {
        let plan: TenantQuotaSpec = serde_saphyr::from_str(
            "hard: {pods: 10, requests.cpu: '3'}\nnamespaceHard: {pods: 6, count/services: 5}",
        )
        .unwrap();
        let (a, b, c) = (ns("a", None), ns("b", Some("{pods: 2}")), ns("c", None));
        let list = [
            ("t-a".to_string(), &a),
            ("t-b".to_string(), &b),
            ("t-c".to_string(), &c),
        ];
        let seen = BTreeMap::from([(
            "t-a".to_string(),
            observed(&[("pods", "5"), ("requests.cpu", "1500m")]),
        )]);
        let quotas = plan_quotas(&plan, &list, &seen);
        // pods: a keeps 5 (cap 6), b capped at 2, c gets the rest of 10.
        assert_eq!(quotas["t-a"]["pods"], q("6"));
        assert_eq!(quotas["t-b"]["pods"], q("2"));
        assert_eq!(quotas["t-c"]["pods"], q("2"));
        // cpu: 1500m used by a, 1500m left split in three.
        assert_eq!(quotas["t-a"]["requests.cpu"], q("2"));
        assert_eq!(quotas["t-b"]["requests.cpu"], q("500m"));
        assert_eq!(quotas["t-c"]["requests.cpu"], q("500m"));
        assert_eq!(quotas["t-b"]["count/services"], q("5"));
    }

    fn plan_quotas(
        plan: &TenantQuotaSpec,
        list: &[(String, &TenantNamespace)],
        seen: &BTreeMap<String, Observed>,
    ) -> Quotas {
        super::plan(plan, list, false, seen).unwrap()
    }

    #[test]
    fn suspension_sets_pods_to_zero() {
        let plan: TenantQuotaSpec = serde_saphyr::from_str("hard: {pods: 10}").unwrap();
        let a = ns("a", None);
        let quotas = super::plan(&plan, &[("t-a".into(), &a)], true, &BTreeMap::new()).unwrap();
        assert_eq!(
            quotas["t-a"],
            BTreeMap::from([("pods".to_string(), q("0"))])
        );
    }

    #[test]
    fn lowering_step_lowers_what_falls_and_holds_what_rises() {
        let current = BTreeMap::from([
            ("pods".to_string(), q("4")),
            ("requests.cpu".to_string(), q("1")),
        ]);
        let target = BTreeMap::from([
            ("pods".to_string(), q("2")),
            ("requests.cpu".to_string(), q("2")),
        ]);
        let step = lowering_step(&current, &target).unwrap().unwrap();
        assert_eq!(
            step,
            BTreeMap::from([
                ("pods".to_string(), q("2")),
                ("requests.cpu".to_string(), q("1"))
            ])
        );
        // Only raises: no separate step.
        let raise = BTreeMap::from([
            ("pods".to_string(), q("8")),
            ("requests.cpu".to_string(), q("2")),
        ]);
        assert_eq!(lowering_step(&current, &raise).unwrap(), None);
        // Only lowers: the target is the step.
        let lower = BTreeMap::from([
            ("pods".to_string(), q("1")),
            ("requests.cpu".to_string(), q("1")),
        ]);
        assert_eq!(lowering_step(&current, &lower).unwrap(), None);
    }
}

/// Raises made safe against usage that moved since the targets were computed.
///
/// Between observing `status.used` and writing, a namespace may have started more, and the
/// API server lets a quota be lowered below use. So before raising, the tenant's headroom is
/// recomputed from a fresh read: each namespace holds `max(hard, used)` of the limit, and raises
/// (in namespace order) only take what is left. Lowerings and per-namespace limits pass through.
pub fn cap_raises(
    tenant_hard: &BTreeMap<String, Quantity>,
    targets: &Quotas,
    fresh: &BTreeMap<String, Observed>,
) -> Result<Quotas, QuantityError> {
    let mut out = targets.clone();
    for (resource, limit) in tenant_hard {
        let limit = quantity::parse(resource, limit)?;
        let mut held = 0;
        let mut current = BTreeMap::new();
        for ns in targets.keys() {
            let observed = fresh.get(ns);
            let hard = observed
                .and_then(|o| o.hard.get(resource))
                .map(|q| quantity::parse(resource, q))
                .transpose()?;
            let used = observed
                .and_then(|o| o.used.get(resource))
                .map(|q| quantity::parse(resource, q))
                .transpose()?
                .unwrap_or(0);
            held += hard.unwrap_or(0).max(used);
            current.insert(ns.clone(), hard);
        }
        let mut budget = (limit - held).max(0);
        for (ns, hard) in out.iter_mut() {
            let Some(target) = hard
                .get(resource)
                .map(|q| quantity::parse(resource, q))
                .transpose()?
            else {
                continue;
            };
            let now = current.get(ns).copied().flatten();
            if now.is_some_and(|n| target <= n) {
                continue;
            }
            let base = now.unwrap_or(0);
            let give = (target - base).min(budget);
            budget -= give;
            hard.insert(resource.clone(), quantity::format(resource, base + give));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod cap_tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity(s.into())
    }

    fn quotas(v: &[(&str, &str)]) -> Quotas {
        v.iter()
            .map(|(ns, pods)| {
                (
                    ns.to_string(),
                    BTreeMap::from([("pods".to_string(), q(pods))]),
                )
            })
            .collect()
    }

    fn seen(hard: &str, used: &str) -> Observed {
        Observed {
            hard: BTreeMap::from([("pods".to_string(), q(hard))]),
            used: BTreeMap::from([("pods".to_string(), q(used))]),
        }
    }

    #[test]
    fn a_raise_never_takes_what_another_namespace_started_meanwhile() {
        // Targets were a=8, b=2 from b using 0; b lowered to 2 but had started 4 pods since.
        let limit = BTreeMap::from([("pods".to_string(), q("10"))]);
        let fresh = BTreeMap::from([
            ("a".to_string(), seen("6", "6")),
            ("b".to_string(), seen("2", "4")),
        ]);
        let capped = cap_raises(&limit, &quotas(&[("a", "8"), ("b", "2")]), &fresh).unwrap();
        assert_eq!(capped, quotas(&[("a", "6"), ("b", "2")]));
    }

    #[test]
    fn raises_fit_in_the_headroom_that_is_really_free() {
        let limit = BTreeMap::from([("pods".to_string(), q("10"))]);
        let fresh = BTreeMap::from([
            ("a".to_string(), seen("4", "4")),
            ("b".to_string(), seen("3", "1")),
        ]);
        // 7 held, 3 free: a asks +3 and gets them.
        let capped = cap_raises(&limit, &quotas(&[("a", "7"), ("b", "3")]), &fresh).unwrap();
        assert_eq!(capped, quotas(&[("a", "7"), ("b", "3")]));
        // A new namespace (no quota yet) gets only what is free.
        let capped = cap_raises(
            &limit,
            &quotas(&[("a", "4"), ("b", "3"), ("c", "5")]),
            &fresh,
        )
        .unwrap();
        assert_eq!(capped["c"]["pods"], q("3"));
    }
}
