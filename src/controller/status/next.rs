//! The next status of a Tenant, pure: conditions, phase, usage and what the engine reports,
//! from what validate and build decided. Conditions keep their times unless they flip
//! (`conditions::merge`), so a converged tenant's next status equals its current one.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::conditions::{self, ConditionType as Type, Observation, Reason};
use super::utilization_of;
use crate::api::{
    ArchiveStatus, CostStatus, NetworkIsolation, Phase, RateStatus, ResourceUsage, Tenant,
    TenantState, TenantStatus,
};
use crate::controller::validate::Valid;

/// What the engine says about the tenant this period.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metered {
    pub rates: BTreeMap<String, RateStatus>,
    pub cost: Option<CostStatus>,
}

/// The status after a provisioning reconcile.
pub fn provisioned(
    tenant: &Tenant,
    valid: &Valid,
    usage: BTreeMap<String, ResourceUsage>,
    metered: Metered,
    now: Time,
) -> TenantStatus {
    let spec = &tenant.spec;
    let conflict_names: Vec<&str> = valid.conflicts.keys().map(String::as_str).collect();
    let provisioned = if conflict_names.is_empty() {
        Observation::new(
            Type::Provisioned,
            true,
            Reason::Provisioned,
            format!("{} namespace(s) provisioned", valid.kept.len()),
        )
    } else {
        Observation::new(
            Type::Provisioned,
            false,
            Reason::NamespaceConflict,
            format!(
                "namespace(s) {} exist and do not belong to this tenant; rename them in spec.namespaces or remove the existing namespaces",
                conflict_names.join(", ")
            ),
        )
    };
    let over_quota: Vec<&str> = usage
        .iter()
        .filter(|(_, u)| u.utilization.is_some_and(|p| p > 100))
        .map(|(r, _)| r.as_str())
        .collect();
    let quota_healthy = match (valid.limit, over_quota.is_empty()) {
        (Some(limit), _) if valid.over_namespace_limit() => Observation::new(
            Type::QuotaHealthy,
            false,
            Reason::NamespaceLimitExceeded,
            format!(
                "the plan allows {limit} namespace(s) but {} are listed; only the first {limit} are provisioned",
                valid.listed
            ),
        ),
        (_, false) => Observation::new(
            Type::QuotaHealthy,
            false,
            Reason::OverQuota,
            format!(
                "usage of {} is above the plan; nothing new can start until it falls",
                over_quota.join(", ")
            ),
        ),
        _ => Observation::new(
            Type::QuotaHealthy,
            true,
            Reason::WithinQuota,
            "usage is within the plan",
        ),
    };
    let network = match spec
        .isolation
        .as_ref()
        .map(|i| i.network)
        .unwrap_or_default()
    {
        NetworkIsolation::Strict => Observation::new(
            Type::NetworkIsolated,
            true,
            Reason::Strict,
            "ingress only from the tenant's namespaces and allowFrom",
        ),
        NetworkIsolation::Open => Observation::new(
            Type::NetworkIsolated,
            false,
            Reason::IsolationOpen,
            "isolation.network is Open: no network policies",
        ),
    };
    // `Archived` never reaches here: `controller::life` takes it to the archive steps.
    let state_supported = matches!(
        spec.state,
        TenantState::Active | TenantState::Suspended | TenantState::Hibernated
    );
    let (ready, phase) = if !state_supported {
        let ready = Observation::new(
            Type::Ready,
            false,
            Reason::StateNotSupported,
            format!(
                "state {:?} is not implemented by this version of Landlord; the tenant stays provisioned as Active",
                spec.state
            ),
        );
        (ready, Phase::Active)
    } else if !provisioned.ok {
        let ready = Observation::new(
            Type::Ready,
            false,
            Reason::NamespaceConflict,
            provisioned.message.clone(),
        );
        (ready, Phase::Failed)
    } else if spec.state == TenantState::Hibernated {
        let ready = Observation::new(
            Type::Ready,
            true,
            Reason::Hibernated,
            "every workload sleeps and no pod may start; set spec.state to Active to wake them",
        );
        (ready, Phase::Hibernated)
    } else {
        let ready = Observation::new(
            Type::Ready,
            true,
            Reason::Ready,
            "all namespaces, quotas, policies and bindings are in place",
        );
        let phase = match spec.state {
            TenantState::Suspended => Phase::Suspended,
            _ => Phase::Active,
        };
        (ready, phase)
    };
    let previous = tenant.status.clone().unwrap_or_default();
    let namespaces: Vec<String> = valid.kept.iter().map(|(n, _)| n.clone()).collect();
    TenantStatus {
        phase: Some(phase),
        observed_generation: tenant.metadata.generation,
        conditions: conditions::merge(
            &previous.conditions,
            &[ready, provisioned, quota_healthy, network],
            tenant.metadata.generation,
            now,
        ),
        namespace_count: Some(namespaces.len() as u32),
        namespaces,
        cpu_utilization: utilization_of(&usage, &["requests.cpu", "cpu"]),
        memory_utilization: utilization_of(&usage, &["requests.memory", "memory"]),
        usage,
        effective: Some(valid.effective.clone()),
        rates: metered.rates,
        cost: metered.cost,
        ..previous
    }
}

/// The status of a tenant whose plan is missing: `Ready=False PlanNotFound`, the other
/// conditions and everything observed before kept as they were.
pub fn plan_not_found(tenant: &Tenant, plan: &str, now: Time) -> TenantStatus {
    let previous = tenant.status.clone().unwrap_or_default();
    let observation = Observation::new(
        Type::Ready,
        false,
        Reason::PlanNotFound,
        format!(
            "TenantQuota {plan} does not exist; create it or change spec.quotaRef. Nothing was changed."
        ),
    );
    let conditions = with_condition(tenant, &previous, observation, now);
    let phase = if previous.namespaces.is_empty() {
        Phase::Pending
    } else {
        previous.phase.unwrap_or_default()
    };
    TenantStatus {
        phase: Some(phase),
        observed_generation: tenant.metadata.generation,
        conditions,
        ..previous
    }
}

/// `previous`'s conditions with the one of `observation`'s type replaced (its transition time
/// kept when it did not change).
pub fn with_condition(
    tenant: &Tenant,
    previous: &TenantStatus,
    observation: Observation,
    now: Time,
) -> Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    let mut conditions = previous.conditions.clone();
    conditions.retain(|c| c.type_ != observation.type_.as_str());
    conditions.extend(conditions::merge(
        &previous.conditions,
        &[observation],
        tenant.metadata.generation,
        now,
    ));
    conditions
}

/// The status of a tenant being archived, archived, or being restored from `archive`.
pub fn packing(
    tenant: &Tenant,
    phase: Phase,
    archive: Option<ArchiveStatus>,
    namespaces: Vec<String>,
    now: Time,
) -> TenantStatus {
    let previous = tenant.status.clone().unwrap_or_default();
    let archive = archive.or(previous.archive.clone());
    let location = archive.as_ref().map(|a| a.location.as_str()).unwrap_or("?");
    let objects = archive.as_ref().map(|a| a.object_count).unwrap_or(0);
    let ready = match phase {
        Phase::Archived => Observation::new(
            Type::Ready,
            true,
            Reason::Archived,
            format!(
                "archived to {location} ({objects} objects; PersistentVolumeClaims with their spec, volume data is not archived); set spec.state to Active to restore"
            ),
        ),
        Phase::Restoring => Observation::new(
            Type::Ready,
            false,
            Reason::Restoring,
            format!("restoring {objects} objects from {location}"),
        ),
        _ => Observation::new(
            Type::Ready,
            false,
            Reason::Archiving,
            format!(
                "archive {location} written and verified ({objects} objects); deleting the namespaces"
            ),
        ),
    };
    let conditions = with_condition(tenant, &previous, ready, now);
    TenantStatus {
        phase: Some(phase),
        observed_generation: tenant.metadata.generation,
        conditions,
        namespace_count: Some(namespaces.len() as u32),
        namespaces,
        archive,
        ..previous
    }
}

/// The status of a tenant whose archive step failed: `Ready=False` with the archive error's
/// reason and message; the phase and everything else stay as they were.
pub fn archive_failed(
    tenant: &Tenant,
    reason: &'static str,
    message: &str,
    now: Time,
) -> TenantStatus {
    let mut status = refused(tenant, message, now);
    if let Some(c) = status
        .conditions
        .iter_mut()
        .find(|c| c.type_ == Type::Ready.as_str())
    {
        c.reason = reason.into();
    }
    status
}

/// The status of a tenant whose wished-for state is refused (`controller::life`): `Ready=False
/// TransitionRefused` with what to do; the phase and everything else stay as they were.
pub fn refused(tenant: &Tenant, message: &str, now: Time) -> TenantStatus {
    let previous = tenant.status.clone().unwrap_or_default();
    let observation = Observation::new(Type::Ready, false, Reason::TransitionRefused, message);
    let conditions = with_condition(tenant, &previous, observation, now);
    TenantStatus {
        phase: Some(previous.phase.unwrap_or_default()),
        observed_generation: tenant.metadata.generation,
        conditions,
        ..previous
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::observe::World;
    use crate::controller::validate::validate;

    fn time(s: &str) -> Time {
        Time(s.parse().unwrap())
    }

    fn tenant(extra: &str) -> Tenant {
        serde_saphyr::from_str(&format!(
            "apiVersion: landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: shop, generation: 3}}\nspec:\n  namespaces: [{{name: a}}]\n{extra}"
        ))
        .unwrap()
    }

    fn reasons(status: &TenantStatus) -> Vec<(String, String, String)> {
        status
            .conditions
            .iter()
            .map(|c| (c.type_.clone(), c.status.clone(), c.reason.clone()))
            .collect()
    }

    /// The status after provisioning `t` at `when`, with no usage and nothing metered.
    fn at(t: &Tenant, valid: &Valid, when: &str) -> TenantStatus {
        provisioned(t, valid, BTreeMap::new(), Metered::default(), time(when))
    }

    fn triple(t: &str, s: &str, r: &str) -> (String, String, String) {
        (t.into(), s.into(), r.into())
    }

    #[test]
    fn a_provisioned_tenant_is_ready_and_active() {
        let t = tenant("");
        let valid = validate(&t, &World::default()).unwrap();
        let status = at(&t, &valid, "2026-01-01T00:00:00Z");
        assert_eq!(status.phase, Some(Phase::Active));
        assert_eq!(status.observed_generation, Some(3));
        assert_eq!(status.namespaces, ["shop-a"]);
        assert_eq!(
            reasons(&status),
            [
                triple("Ready", "True", "Ready"),
                triple("Provisioned", "True", "Provisioned"),
                triple("QuotaHealthy", "True", "WithinQuota"),
                triple("NetworkIsolated", "True", "Strict"),
            ]
        );
    }

    #[test]
    fn a_conflict_fails_the_tenant_and_says_which_namespace() {
        let t = tenant("");
        let world = World {
            foreign: BTreeMap::from([("shop-a".into(), None)]),
            ..World::default()
        };
        let valid = validate(&t, &world).unwrap();
        let status = at(&t, &valid, "2026-01-01T00:00:00Z");
        assert_eq!(status.phase, Some(Phase::Failed));
        assert_eq!(
            reasons(&status)[0],
            triple("Ready", "False", "NamespaceConflict")
        );
        assert!(
            status.conditions[0]
                .message
                .starts_with("namespace(s) shop-a exist")
        );
        assert!(status.namespaces.is_empty());
    }

    #[test]
    fn suspended_and_unsupported_states() {
        let t = tenant("  state: Suspended\n");
        let valid = validate(&t, &World::default()).unwrap();
        let status = at(&t, &valid, "2026-01-01T00:00:00Z");
        assert_eq!(status.phase, Some(Phase::Suspended));
        let t = tenant("  state: Hibernated\n");
        let status = at(&t, &valid, "2026-01-01T00:00:00Z");
        assert_eq!(status.phase, Some(Phase::Hibernated));
        assert_eq!(reasons(&status)[0], triple("Ready", "True", "Hibernated"));
        let t = tenant("  state: Archived\n");
        let status = at(&t, &valid, "2026-01-01T00:00:00Z");
        assert_eq!(
            reasons(&status)[0],
            triple("Ready", "False", "StateNotSupported")
        );
    }

    #[test]
    fn a_refusal_keeps_the_phase_and_says_what_to_do() {
        let mut t = tenant("  state: Hibernated\n");
        t.status = Some(TenantStatus {
            phase: Some(Phase::Archived),
            ..Default::default()
        });
        let status = refused(
            &t,
            "set spec.state to Active first",
            time("2026-01-01T00:00:00Z"),
        );
        assert_eq!(status.phase, Some(Phase::Archived));
        assert_eq!(
            reasons(&status)[0],
            triple("Ready", "False", "TransitionRefused")
        );
        assert_eq!(
            status.conditions[0].message,
            "set spec.state to Active first"
        );
    }

    #[test]
    fn the_same_observation_twice_gives_the_same_status() {
        let mut t = tenant("");
        let valid = validate(&t, &World::default()).unwrap();
        let first = at(&t, &valid, "2026-01-01T00:00:00Z");
        t.status = Some(first.clone());
        let second = at(&t, &valid, "2026-02-01T00:00:00Z");
        assert_eq!(first, second);
    }

    #[test]
    fn a_missing_plan_keeps_what_was_there() {
        let mut t = tenant("  quotaRef: gold\n");
        let valid = validate(&tenant(""), &World::default()).unwrap();
        t.status = Some(at(&t, &valid, "2026-01-01T00:00:00Z"));
        let status = plan_not_found(&t, "gold", time("2026-01-02T00:00:00Z"));
        assert_eq!(status.phase, Some(Phase::Active));
        assert_eq!(status.namespaces, ["shop-a"]);
        let ready = status
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "PlanNotFound")
        );
        assert_eq!(status.conditions.len(), 4);
    }
}
