//! The validate step, pure: from the spec and what was observed, what may be provisioned.
//! A bad spec becomes a condition and an Event (`status`), never a panic or a deletion.

use std::collections::BTreeMap;

use crate::api::{EffectivePlan, Tenant, TenantNamespace};

use super::build::effective;
use super::observe::World;

/// A tenant that can be provisioned, perhaps only in part.
#[derive(Clone, Debug, PartialEq)]
pub struct Valid {
    /// The plan merged with the tenant's overrides.
    pub effective: EffectivePlan,
    /// Namespaces to provision: within `maxNamespaces` and not someone else's, in spec order.
    pub kept: Vec<(String, TenantNamespace)>,
    /// How many namespaces the plan allows (`None`: no limit), and how many the spec lists.
    pub limit: Option<usize>,
    pub listed: usize,
    /// Namespaces that exist and are not this tenant's: name → owning tenant, if any.
    pub conflicts: BTreeMap<String, Option<String>>,
}

impl Valid {
    /// Whether the spec lists more namespaces than the plan allows.
    pub fn over_namespace_limit(&self) -> bool {
        self.limit.is_some_and(|l| self.listed > l)
    }
}

/// Why nothing may be provisioned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// `quotaRef` names a plan that does not exist.
    PlanNotFound(String),
}

pub fn validate(tenant: &Tenant, world: &World) -> Result<Valid, Invalid> {
    let spec = &tenant.spec;
    let plan = match &world.plan {
        Some(None) => {
            return Err(Invalid::PlanNotFound(
                spec.quota_ref.clone().unwrap_or_default(),
            ));
        }
        Some(Some(p)) => Some(&p.spec),
        None => None,
    };
    let effective = effective::effective(spec, plan);
    let limit = effective.spec.max_namespaces.map(|m| m as usize);
    let wanted = super::observe::wanted(tenant);
    let within = wanted
        .into_iter()
        .zip(spec.namespaces.iter().cloned())
        .take(limit.unwrap_or(usize::MAX));
    let (mut kept, mut conflicts) = (Vec::new(), BTreeMap::new());
    for (name, ns) in within {
        match world.foreign.get(&name) {
            Some(owner) => {
                conflicts.insert(name, owner.clone());
            }
            None => kept.push((name, ns)),
        }
    }
    Ok(Valid {
        effective,
        kept,
        limit,
        listed: spec.namespaces.len(),
        conflicts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::TenantQuota;

    fn tenant(yaml: &str) -> Tenant {
        serde_saphyr::from_str(yaml).unwrap()
    }

    fn plan(yaml: &str) -> Option<Option<TenantQuota>> {
        Some(Some(serde_saphyr::from_str(yaml).unwrap()))
    }

    const SHOP: &str = "apiVersion: landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {name: shop}\nspec:\n  quotaRef: small\n  namespaces: [{name: a}, {name: b}, {name: c}]\n";

    #[test]
    fn a_missing_plan_provisions_nothing() {
        let world = World {
            plan: Some(None),
            ..World::default()
        };
        assert_eq!(
            validate(&tenant(SHOP), &world),
            Err(Invalid::PlanNotFound("small".into()))
        );
    }

    #[test]
    fn namespaces_beyond_the_plan_and_foreign_ones_are_left_out() {
        let world = World {
            plan: plan(
                "apiVersion: landlord.dev/v1alpha1\nkind: TenantQuota\nmetadata: {name: small}\nspec: {maxNamespaces: 2}\n",
            ),
            foreign: BTreeMap::from([("shop-a".into(), Some("other".into()))]),
            ..World::default()
        };
        let valid = validate(&tenant(SHOP), &world).unwrap();
        let kept: Vec<&str> = valid.kept.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(kept, ["shop-b"]);
        assert_eq!(
            valid.conflicts,
            BTreeMap::from([("shop-a".to_string(), Some("other".to_string()))])
        );
        assert_eq!((valid.limit, valid.listed), (Some(2), 3));
        assert!(valid.over_namespace_limit());
    }

    #[test]
    fn no_plan_means_no_limits() {
        let t = tenant(&SHOP.replace("  quotaRef: small\n", ""));
        let valid = validate(&t, &World::default()).unwrap();
        assert_eq!(valid.kept.len(), 3);
        assert!(!valid.over_namespace_limit());
        assert_eq!(valid.effective.plan, None);
    }
}
