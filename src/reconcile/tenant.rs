//! One Tenant reconcile, behind the finalizer: provisioning on apply, the deletion policy on
//! cleanup.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, ResourceQuota};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::finalizer::{Event as Finalize, finalizer};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::apply::{self, FIELD_MANAGER};
use super::conditions::{self, Observation};
use super::desired::{self, Desired, Inputs};
use super::observe::{World, observe};
use super::{Context, Error, effective, quotas, status};
use crate::api::{
    DeletionPolicy, NetworkIsolation, Phase, Tenant, TenantNamespace, TenantState, TenantStatus,
};

/// Finalizer that runs the deletion policy before a Tenant goes.
pub const FINALIZER: &str = "landlord.dev/cleanup";

/// Entry point for the controller.
pub async fn reconcile(tenant: Arc<Tenant>, ctx: Arc<Context>) -> Result<Action, Error> {
    let mut timer = ctx.metrics.timer();
    let api: Api<Tenant> = Api::all(ctx.client.clone());
    let name = tenant.name_any();
    let result = finalizer(&api, FINALIZER, tenant, |event| async {
        match event {
            Finalize::Apply(t) => provision(&t, &ctx).await,
            Finalize::Cleanup(t) => cleanup(&t, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)));
    if result.is_ok() {
        timer.set_outcome("success");
        ctx.succeeded(&name);
    }
    result
}

/// When to look again at a Tenant whose cached copy was behind (see
/// [`Error::is_stale_finalizers`]): soon, and without growing its backoff.
const STALE_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// Retry a failed reconcile with exponential backoff.
pub fn error_policy(tenant: Arc<Tenant>, error: &Error, ctx: Arc<Context>) -> Action {
    if error.is_stale_finalizers() && ctx.still_stale(&tenant.name_any()) {
        tracing::debug!(tenant = %tenant.name_any(), %error, "finalizers changed since the cached copy; looking again");
        return Action::requeue(STALE_RETRY);
    }
    tracing::warn!(tenant = %tenant.name_any(), %error, "reconcile failed");
    ctx.metrics
        .errors
        .get_or_create(&crate::metrics::ErrorLabels {
            error: error.label().into(),
        })
        .inc();
    Action::requeue(ctx.backoff(&tenant.name_any()))
}

async fn provision(tenant: &Tenant, ctx: &Context) -> Result<Action, Error> {
    let name = tenant.name_any();
    let spec = &tenant.spec;
    let wanted: Vec<(String, &TenantNamespace)> = spec
        .namespaces
        .iter()
        .map(|n| (desired::namespace_name(&name, &n.name), n))
        .collect();
    let wanted_names: Vec<String> = wanted.iter().map(|(n, _)| n.clone()).collect();
    let world = observe(&ctx.client, &name, spec.quota_ref.as_deref(), &wanted_names).await?;

    let plan = match &world.plan {
        Some(None) => return plan_not_found(tenant, ctx).await,
        Some(Some(p)) => Some(&p.spec),
        None => None,
    };
    let effective = effective::effective(spec, plan);
    let limit = effective
        .spec
        .max_namespaces
        .map_or(usize::MAX, |m| m as usize);
    let (within, beyond) = wanted.split_at(wanted.len().min(limit));
    let conflicts: Vec<(String, Option<String>)> = within
        .iter()
        .filter_map(|(n, _)| world.foreign.get(n).map(|owner| (n.clone(), owner.clone())))
        .collect();
    let kept: Vec<(String, &TenantNamespace)> = within
        .iter()
        .filter(|(n, _)| !world.foreign.contains_key(n))
        .cloned()
        .collect();
    let kept_specs: Vec<TenantNamespace> = kept.iter().map(|(_, n)| (*n).clone()).collect();

    let suspended = spec.state == TenantState::Suspended;
    let observed = world.observed_quotas();
    let quotas = quotas::plan(&effective.spec, &kept, suspended, &observed)?;
    let usage_names = usage_names(&name, jiff::Timestamp::now());
    let inputs = Inputs {
        plan: &effective.spec,
        namespaces: &kept_specs,
        quotas: &quotas,
        usage_names: &usage_names,
    };
    let desired = desired::build(tenant, &inputs);
    apply_desired(
        ctx,
        &name,
        &world,
        &desired,
        effective.spec.hard.as_ref().unwrap_or(&BTreeMap::new()),
    )
    .await?;
    remove_orphans(ctx, &world, &desired, spec.deletion_policy).await?;

    for (ns, owner) in &conflicts {
        if !tenant.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.reason == "NamespaceConflict" && c.message.contains(ns.as_str()))
        }) {
            let whose = owner
                .as_deref()
                .map_or("someone else".to_string(), |o| format!("tenant {o}"));
            tracing::warn!(tenant = %name, namespace = %ns, "namespace belongs to {whose}");
        }
    }

    // Status.
    let usage = status::usage(&effective.spec, &observed);
    let (rates, cost) = match &ctx.metering {
        Some(metering) => {
            if let Err(problem) = metering.set_tenant(&name, &effective.spec, suspended).await {
                publish(
                    ctx,
                    tenant,
                    EventType::Warning,
                    "MeteringNotReady",
                    format!("the quota engine could not take this tenant's plan: {problem}"),
                )
                .await;
            }
            metering.observe_resources(&name, &usage);
            metering.summary(&name)
        }
        None => (Default::default(), None),
    };
    let mut observations = vec![];
    let provisioned = if conflicts.is_empty() {
        Observation::new(
            "Provisioned",
            true,
            "Provisioned",
            format!("{} namespace(s) provisioned", kept.len()),
        )
    } else {
        let names: Vec<String> = conflicts.iter().map(|(n, _)| n.clone()).collect();
        Observation::new(
            "Provisioned",
            false,
            "NamespaceConflict",
            format!(
                "namespace(s) {} exist and do not belong to this tenant; rename them in spec.namespaces or remove the existing namespaces",
                names.join(", ")
            ),
        )
    };
    let over_quota: Vec<&String> = usage
        .iter()
        .filter(|(_, u)| u.utilization.is_some_and(|p| p > 100))
        .map(|(r, _)| r)
        .collect();
    let quota_healthy = if !beyond.is_empty() {
        Observation::new(
            "QuotaHealthy",
            false,
            "NamespaceLimitExceeded",
            format!(
                "the plan allows {limit} namespace(s) but {} are listed; only the first {limit} are provisioned",
                wanted.len()
            ),
        )
    } else if !over_quota.is_empty() {
        Observation::new(
            "QuotaHealthy",
            false,
            "OverQuota",
            format!(
                "usage of {} is above the plan; nothing new can start until it falls",
                over_quota
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    } else {
        Observation::new(
            "QuotaHealthy",
            true,
            "WithinQuota",
            "usage is within the plan",
        )
    };
    let network = match spec
        .isolation
        .as_ref()
        .map(|i| i.network)
        .unwrap_or_default()
    {
        NetworkIsolation::Strict => Observation::new(
            "NetworkIsolated",
            true,
            "Strict",
            "ingress only from the tenant's namespaces and allowFrom",
        ),
        NetworkIsolation::Open => Observation::new(
            "NetworkIsolated",
            false,
            "IsolationOpen",
            "isolation.network is Open: no network policies",
        ),
    };
    let state_supported = matches!(spec.state, TenantState::Active | TenantState::Suspended);
    let ready = if !state_supported {
        Observation::new(
            "Ready",
            false,
            "StateNotSupported",
            format!(
                "state {:?} is not implemented by this version of Landlord; the tenant stays provisioned as Active",
                spec.state
            ),
        )
    } else if !provisioned.ok {
        Observation::new(
            "Ready",
            false,
            "NamespaceConflict",
            provisioned.message.clone(),
        )
    } else {
        Observation::new(
            "Ready",
            true,
            "Ready",
            "all namespaces, quotas, policies and bindings are in place",
        )
    };
    observations.extend([ready.clone(), provisioned, quota_healthy, network]);

    let phase = match (ready.ok, spec.state) {
        (false, _) if ready.reason == "NamespaceConflict" => Phase::Failed,
        (_, TenantState::Suspended) => Phase::Suspended,
        _ => Phase::Active,
    };
    let previous = tenant.status.clone().unwrap_or_default();
    let namespaces: Vec<String> = kept.iter().map(|(n, _)| n.clone()).collect();
    let next = TenantStatus {
        phase: Some(phase),
        observed_generation: tenant.metadata.generation,
        conditions: conditions::merge(
            &previous.conditions,
            &observations,
            tenant.metadata.generation,
            now(),
        ),
        namespace_count: Some(namespaces.len() as u32),
        namespaces,
        cpu_utilization: status::utilization_of(&usage, &["requests.cpu", "cpu"]),
        memory_utilization: status::utilization_of(&usage, &["requests.memory", "memory"]),
        usage: usage.clone(),
        effective: Some(effective),
        rates,
        cost,
        ..previous.clone()
    };
    for (resource, threshold, pct) in status::crossed(&previous.usage, &usage) {
        publish_for(
            ctx,
            tenant,
            EventType::Warning,
            if threshold >= 95 {
                "QuotaUtilizationCritical"
            } else {
                "QuotaUtilizationHigh"
            },
            &format!("Meter {resource}"),
            format!("{resource} is at {pct}% of the plan (threshold {threshold}%)"),
        )
        .await;
    }
    write_status(ctx, tenant, &previous, next).await?;
    ctx.set_phase(&name, Some(phase));
    Ok(Action::requeue(ctx.jittered_resync()))
}

async fn plan_not_found(tenant: &Tenant, ctx: &Context) -> Result<Action, Error> {
    let plan = tenant.spec.quota_ref.clone().unwrap_or_default();
    let previous = tenant.status.clone().unwrap_or_default();
    let observation = Observation::new(
        "Ready",
        false,
        "PlanNotFound",
        format!(
            "TenantQuota {plan} does not exist; create it or change spec.quotaRef. Nothing was changed."
        ),
    );
    let mut conditions = previous.conditions.clone();
    let merged = conditions::merge(
        &previous.conditions,
        &[observation],
        tenant.metadata.generation,
        now(),
    );
    conditions.retain(|c| c.type_ != "Ready");
    conditions.extend(merged);
    let phase = if previous.namespaces.is_empty() {
        Phase::Pending
    } else {
        previous.phase.unwrap_or_default()
    };
    let next = TenantStatus {
        phase: Some(phase),
        observed_generation: tenant.metadata.generation,
        conditions,
        ..previous.clone()
    };
    write_status(ctx, tenant, &previous, next).await?;
    ctx.set_phase(&tenant.name_any(), Some(phase));
    // The TenantQuota watch brings the tenant back as soon as the plan appears.
    Ok(Action::requeue(ctx.jittered_resync()))
}

/// Patch the status only when it changed, with an Event for every condition that moved.
async fn write_status(
    ctx: &Context,
    tenant: &Tenant,
    previous: &TenantStatus,
    mut next: TenantStatus,
) -> Result<(), Error> {
    next.conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
    let mut before = previous.clone();
    before.conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
    if before == next {
        return Ok(());
    }
    for c in conditions::changed(&previous.conditions, &next.conditions) {
        let kind = if c.status == "True" {
            EventType::Normal
        } else {
            EventType::Warning
        };
        publish(
            ctx,
            tenant,
            kind,
            &c.reason,
            format!("{} is {}: {}", c.type_, c.status, c.message),
        )
        .await;
    }
    let api: Api<Tenant> = Api::all(ctx.client.clone());
    let body = json!({"apiVersion": "landlord.dev/v1alpha1", "kind": "Tenant", "status": next});
    api.patch_status(
        &tenant.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(Error::Kube)?;
    Ok(())
}

async fn publish(ctx: &Context, tenant: &Tenant, type_: EventType, reason: &str, note: String) {
    publish_for(ctx, tenant, type_, reason, "Reconcile", note).await;
}

/// Events with the same type, reason and action on one object are folded into one series by
/// the recorder (only the first note is kept), so an `action` tells distinct happenings apart.
async fn publish_for(
    ctx: &Context,
    tenant: &Tenant,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: action.into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &tenant.object_ref(&())).await {
        tracing::warn!(error = %e, "could not publish event");
    }
}

/// Apply in the order that never opens a gap: namespaces, then quotas (every lowering before
/// any raise), limits, policies, and only then the bindings that let owners in.
async fn apply_desired(
    ctx: &Context,
    tenant: &str,
    world: &World,
    desired: &Desired,
    tenant_hard: &BTreeMap<String, Quantity>,
) -> Result<(), Error> {
    let c = &ctx.client;
    apply_each(&desired.namespaces, &world.namespaces, |_| {
        Api::all(c.clone())
    })
    .await?;
    for quota in &desired.quotas {
        let Some(live) = find(&world.quotas, quota) else {
            continue;
        };
        let current = live
            .spec
            .as_ref()
            .and_then(|s| s.hard.clone())
            .unwrap_or_default();
        let target = quota
            .spec
            .as_ref()
            .and_then(|s| s.hard.clone())
            .unwrap_or_default();
        if let Some(step) = quotas::lowering_step(&current, &target)? {
            let mut lowered = quota.clone();
            lowered.spec.as_mut().expect("quotas have a spec").hard = Some(step);
            apply::apply(&namespaced(c, quota), lowered, Some(live)).await?;
        }
    }
    // Quotas of namespaces leaving the tenant go before any raise, so their share is free.
    delete_unwanted(&world.quotas, &desired.quotas, |o| namespaced(c, o)).await?;
    let capped = cap_raises(ctx, tenant, world, desired, tenant_hard).await?;
    apply_each(&capped, &world.quotas, |o| namespaced(c, o)).await?;
    apply_each(&desired.limit_ranges, &world.limit_ranges, |o| {
        namespaced(c, o)
    })
    .await?;
    apply_each(&desired.network_policies, &world.network_policies, |o| {
        namespaced(c, o)
    })
    .await?;
    apply_each(&desired.role_bindings, &world.role_bindings, |o| {
        namespaced(c, o)
    })
    .await?;
    apply_each(&desired.cluster_roles, &world.cluster_roles, |_| {
        Api::all(c.clone())
    })
    .await?;
    apply_each(
        &desired.cluster_role_bindings,
        &world.cluster_role_bindings,
        |_| Api::all(c.clone()),
    )
    .await?;
    Ok(())
}

/// The desired quotas with every raise limited to the tenant's really free headroom, read
/// fresh after the lowerings; no extra read when nothing is raised.
async fn cap_raises(
    ctx: &Context,
    tenant: &str,
    world: &World,
    desired: &Desired,
    tenant_hard: &BTreeMap<String, Quantity>,
) -> Result<Vec<ResourceQuota>, Error> {
    let hard_of = |q: &ResourceQuota| {
        q.spec
            .as_ref()
            .and_then(|s| s.hard.clone())
            .unwrap_or_default()
    };
    let raises = desired.quotas.iter().any(|q| {
        let live = find(&world.quotas, q).map(hard_of).unwrap_or_default();
        hard_of(q).iter().any(|(r, v)| {
            tenant_hard.contains_key(r)
                && live.get(r).is_none_or(|l| {
                    crate::quantity::parse_milli(&l.0) < crate::quantity::parse_milli(&v.0)
                })
        })
    });
    if !raises {
        return Ok(desired.quotas.clone());
    }
    let fresh = super::observe::observe_quotas(&ctx.client, tenant).await?;
    let targets: quotas::Quotas = desired
        .quotas
        .iter()
        .map(|q| (q.namespace().unwrap_or_default(), hard_of(q)))
        .collect();
    let capped = quotas::cap_raises(tenant_hard, &targets, &fresh)?;
    Ok(desired
        .quotas
        .iter()
        .map(|q| {
            let mut q = q.clone();
            if let Some(hard) = capped.get(&q.namespace().unwrap_or_default()) {
                q.spec.get_or_insert_with(Default::default).hard = Some(hard.clone());
            }
            q
        })
        .collect())
}

/// Delete what carries the tenant's label but is no longer wanted. Namespaces follow the
/// deletion policy: deleted under `Delete`, otherwise released (labels removed, data kept).
async fn remove_orphans(
    ctx: &Context,
    world: &World,
    desired: &Desired,
    policy: DeletionPolicy,
) -> Result<(), Error> {
    let c = &ctx.client;
    let all = |_: &_| Api::all(c.clone());
    delete_unwanted(&world.role_bindings, &desired.role_bindings, |o| {
        namespaced(c, o)
    })
    .await?;
    delete_unwanted(&world.network_policies, &desired.network_policies, |o| {
        namespaced(c, o)
    })
    .await?;
    delete_unwanted(&world.limit_ranges, &desired.limit_ranges, |o| {
        namespaced(c, o)
    })
    .await?;
    delete_unwanted(
        &world.cluster_role_bindings,
        &desired.cluster_role_bindings,
        all,
    )
    .await?;
    delete_unwanted(&world.cluster_roles, &desired.cluster_roles, |_| {
        Api::all(c.clone())
    })
    .await?;
    let wanted: BTreeSet<String> = desired.namespaces.iter().map(|n| n.name_any()).collect();
    for ns in world
        .namespaces
        .iter()
        .filter(|n| !wanted.contains(&n.name_any()))
    {
        end_namespace(ctx, &ns.name_any(), policy).await?;
    }
    Ok(())
}

async fn end_namespace(ctx: &Context, name: &str, policy: DeletionPolicy) -> Result<(), Error> {
    let api: Api<Namespace> = Api::all(ctx.client.clone());
    match policy {
        DeletionPolicy::Delete => apply::delete(&api, name).await,
        DeletionPolicy::Retain | DeletionPolicy::Archive => {
            // Applying an empty namespace under our field manager drops every label and
            // annotation we set, and nothing anyone else set.
            let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
            api.patch(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
            .map_err(Error::Kube)?;
            Ok(())
        }
    }
}

/// The deletion policy, run by the finalizer when the Tenant is deleted.
async fn cleanup(tenant: &Tenant, ctx: &Context) -> Result<Action, Error> {
    let name = tenant.name_any();
    let policy = tenant.spec.deletion_policy;
    let world = observe(&ctx.client, &name, None, &[]).await?;
    // During provisioning quotas go earlier (before raises); here nothing else removes them.
    let c = &ctx.client;
    delete_unwanted(&world.quotas, &[], |o| namespaced(c, o)).await?;
    remove_orphans(ctx, &world, &Desired::default(), policy).await?;
    let note = match policy {
        DeletionPolicy::Delete => format!(
            "deleted {} namespace(s) and everything Landlord created",
            world.namespaces.len()
        ),
        DeletionPolicy::Retain => format!(
            "kept {} namespace(s) without Landlord's labels, quotas, policies or bindings",
            world.namespaces.len()
        ),
        DeletionPolicy::Archive => format!(
            "archiving is not implemented yet: kept {} namespace(s) as with Retain; nothing that could hold data was deleted",
            world.namespaces.len()
        ),
    };
    publish(ctx, tenant, EventType::Normal, "Cleanup", note).await;
    ctx.set_phase(&name, None);
    if let Some(metering) = &ctx.metering {
        metering.remove_tenant(&name);
    }
    Ok(Action::await_change())
}

/// Apply each wanted object over its live counterpart (skipped when nothing would change).
async fn apply_each<K>(
    wanted: &[K],
    live: &[K],
    api_for: impl Fn(&K) -> Api<K>,
) -> Result<(), Error>
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + Serialize + DeserializeOwned,
{
    for object in wanted {
        apply::apply(&api_for(object), object.clone(), find(live, object)).await?;
    }
    Ok(())
}

async fn delete_unwanted<K>(
    live: &[K],
    wanted: &[K],
    api_for: impl Fn(&K) -> Api<K>,
) -> Result<(), Error>
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + DeserializeOwned,
{
    for object in live.iter().filter(|l| find(wanted, *l).is_none()) {
        apply::delete(&api_for(object), &object.name_any()).await?;
    }
    Ok(())
}

fn find<'a, K: Resource>(list: &'a [K], like: &K) -> Option<&'a K> {
    list.iter()
        .find(|o| o.meta().name == like.meta().name && o.meta().namespace == like.meta().namespace)
}

fn namespaced<K>(client: &kube::Client, object: &K) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()> + Serialize,
{
    Api::namespaced(client.clone(), &object.namespace().unwrap_or_default())
}

fn now() -> Time {
    Time(jiff::Timestamp::now())
}

/// Names of the TenantUsage objects owners may read: this month and the eleven before it.
pub fn usage_names(tenant: &str, now: jiff::Timestamp) -> Vec<String> {
    let date = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    let (mut year, mut month) = (date.year() as i32, date.month() as i32);
    let mut names = Vec::with_capacity(12);
    for _ in 0..12 {
        names.push(format!("{tenant}-{year:04}-{month:02}"));
        month -= 1;
        if month == 0 {
            month = 12;
            year -= 1;
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(code: u16) -> kube::Error {
        let status = serde_json::from_value(serde_json::json!({"code": code, "reason": "x"}))
            .expect("a Status");
        kube::Error::Api(Box::new(status))
    }

    /// Only a finalizer patch refused for a changed list is a stale cache; everything else
    /// is a failure with backoff.
    #[test]
    fn only_refused_finalizer_patches_are_stale_copies() {
        use kube::runtime::finalizer::Error as F;
        let fin = |e: F<Error>| Error::Finalizer(Box::new(e));
        assert!(fin(F::AddFinalizer(api_error(422))).is_stale_finalizers());
        assert!(fin(F::RemoveFinalizer(api_error(409))).is_stale_finalizers());
        assert!(fin(F::RemoveFinalizer(api_error(404))).is_stale_finalizers());
        assert!(!fin(F::AddFinalizer(api_error(404))).is_stale_finalizers());
        assert!(!fin(F::AddFinalizer(api_error(403))).is_stale_finalizers());
        assert!(!fin(F::RemoveFinalizer(api_error(500))).is_stale_finalizers());
        assert!(!fin(F::ApplyFailed(Error::Kube(api_error(422)))).is_stale_finalizers());
        assert!(!fin(F::UnnamedObject).is_stale_finalizers());
        assert!(!Error::Kube(api_error(422)).is_stale_finalizers());
    }

    #[test]
    fn usage_names_cover_a_year_across_the_new_year() {
        let names = usage_names("acme", "2026-02-10T00:00:00Z".parse().unwrap());
        assert_eq!(names.len(), 12);
        assert_eq!(names[0], "acme-2026-02");
        assert_eq!(names[1], "acme-2026-01");
        assert_eq!(names[2], "acme-2025-12");
        assert_eq!(names[11], "acme-2025-03");
    }
}
