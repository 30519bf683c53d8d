//! One Tenant reconcile, behind the finalizer: provisioning on apply, the deletion policy on
//! cleanup. Provisioning is the pipeline of DESIGN.md: observe → validate → build → apply →
//! status, each step a module of its own.

use std::collections::BTreeMap;

use futures::FutureExt;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as Finalize, finalizer};

use super::apply::{OwnedSet, namespaces, rollout};
use super::archiving;
use super::build::{self, Inputs, quotas};
use super::hibernate;
use super::life::{self, Step};
use super::migrating;
use super::migration;
use super::observe::{self, World};
use super::status::{self, Metered};
use super::validate::{self, Invalid, Valid};
use super::{Context, Error};
use crate::api::{
    ArchiveStatus, DeletionPolicy, Phase, ResourceUsage, Tenant, TenantNamespace, TenantState,
};
use crate::naming::{FINALIZER, usage_names};

/// Entry point for the controller.
pub async fn reconcile(tenant: Arc<Tenant>, ctx: Arc<Context>) -> Result<Action, Error> {
    if !ctx.caches.ready() {
        return Ok(Action::requeue(CACHES_FILLING));
    }
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
    // The finalizer's removal found no Tenant: it is gone, which is what the cleanup was for.
    // Only the cache has not heard yet; asking again until it does would be a write loop.
    let result = match result {
        Err(e) if e.is_gone() => Ok(Action::await_change()),
        other => other,
    };
    if result.is_ok() {
        timer.set_outcome("success");
        ctx.succeeded(&name);
    }
    result
}

/// When to look again at a Tenant that came before the caches were filled.
const CACHES_FILLING: std::time::Duration = std::time::Duration::from_millis(200);

/// When to look again at a Tenant whose cached copy was behind (see
/// [`Error::is_stale_finalizers`]): soon, and without growing its backoff.
const STALE_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// Retry a failed reconcile with exponential backoff (with jitter, so that tenants failing
/// together do not retry together).
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
    let tenant = &ctx.as_last_written(tenant);
    let wanted = observe::wanted(tenant);
    let mut world = observe::observe(&ctx.client, &ctx.caches, tenant, &wanted).await?;
    let valid = match validate::validate(tenant, &world) {
        Ok(valid) => valid,
        Err(Invalid::PlanNotFound(plan)) => {
            // Nothing is created or deleted; the plan watch brings the tenant back.
            let next = status::plan_not_found(tenant, &plan, now());
            let phase = next.phase;
            status::write(ctx, tenant, next).await?;
            ctx.set_phase(&tenant.name_any(), phase);
            return Ok(Action::requeue(ctx.jittered_resync()));
        }
    };
    let record = unrestored_archive(tenant);
    let step = life::next(life::Facts {
        phase: tenant.status.as_ref().and_then(|s| s.phase),
        desired: tenant.spec.state,
        archive: record.is_some(),
        namespaces: !world.namespaces.is_empty(),
        migrating: migration::in_progress(
            tenant.spec.migration.as_ref(),
            tenant.status.as_ref().and_then(|s| s.migration.as_ref()),
        ),
    });
    if let Step::Refuse(refusal) = step {
        let message = refusal.message();
        // One Event per refusal, not one per resync.
        let said =
            tenant.status.iter().flat_map(|s| &s.conditions).any(|c| {
                c.type_ == "Ready" && c.reason == "TransitionRefused" && c.message == message
            });
        if !said {
            status::publish(
                ctx,
                tenant,
                EventType::Warning,
                "TransitionRefused",
                message.into(),
            )
            .await;
        }
        status::write(ctx, tenant, status::refused(tenant, message, now())).await?;
        return Ok(Action::requeue(ctx.jittered_resync()));
    }
    if matches!(
        step,
        Step::Archive | Step::DeleteNamespaces | Step::StayArchived
    ) {
        return pack(ctx, tenant, &step, &world).boxed().await;
    }
    let restoring = match (&step, &record) {
        (Step::Restore, Some(record)) => {
            // Said once: a restore retried after a failure keeps the failure's reason shown.
            if tenant.status.as_ref().and_then(|s| s.phase) != Some(Phase::Restoring) {
                let names = world.namespaces.iter().map(|n| n.name_any()).collect();
                let next = status::packing(tenant, Phase::Restoring, None, names, now());
                status::write(ctx, tenant, next).await?;
            }
            Some(record.clone())
        }
        _ => None,
    };
    let plan = &valid.effective.spec;
    let mut desired = desired(tenant, &valid, &world)?;
    // The quota rollout must never work from a cache that is behind (a raise it has not seen
    // yet would be taken for headroom): when any quota is to change, read them afresh and
    // decide again. A converged tenant skips this read.
    if rollout::needs_writes(&world, &desired.quotas) {
        let kept = valid.kept.iter().map(|(n, _)| n.as_str());
        let mut fresh = observe::fresh_quota_objects(&ctx.client, kept).await?;
        // Quotas of namespaces leaving the tenant stay as cached: they are only deleted.
        fresh.extend(world.quotas.drain(..).filter(|q| {
            !valid
                .kept
                .iter()
                .any(|(n, _)| Some(n) == q.metadata.namespace.as_ref())
        }));
        world.quotas = fresh;
        desired = self::desired(tenant, &valid, &world)?;
    }
    let observed = world.observed_quotas();

    namespaces::apply_all(ctx, &desired.namespaces, &world.namespaces).await?;
    let tenant_hard = plan.hard.clone().unwrap_or_default();
    let quotas = rollout::roll_out(ctx, &world, &desired.quotas, &tenant_hard).await?;
    let owned = owned_set(&world, &desired, &quotas);
    let tampered = owned.tampered(&ctx.owned_seen(&tenant.name_any()));
    owned.apply(&ctx.client).await?;
    owned.delete_orphans(&ctx.client).await?;
    ctx.saw_owned(&tenant.name_any(), owned.live_wanted());
    for t in tampered {
        let (note, action) = (t.note(), t.action());
        status::publish_for(ctx, tenant, EventType::Warning, "Restored", &action, note).await;
    }
    namespaces::end_unwanted(
        ctx,
        &desired.namespaces,
        &world.namespaces,
        tenant.spec.deletion_policy,
    )
    .await?;
    // Workloads sleep after `pods: 0` is in place and wake after it is lifted.
    match step {
        Step::Hibernate | Step::Provision { wake: true } => {
            let waking = step != Step::Hibernate;
            let changed = hibernate::run(
                &ctx.client,
                &valid
                    .kept
                    .iter()
                    .map(|(n, _)| n.clone())
                    .collect::<Vec<_>>(),
                waking,
            )
            .await?;
            let note = if waking {
                format!(
                    "woke {changed} workload(s): every remembered replica count and CronJob setting given back"
                )
            } else {
                format!(
                    "put {changed} workload(s) to sleep: scaled to 0 or suspended, each previous value kept in an annotation"
                )
            };
            status::publish(
                ctx,
                tenant,
                EventType::Normal,
                if waking { "Woken" } else { "Hibernated" },
                note,
            )
            .await;
        }
        _ => {}
    }

    let restored = match restoring {
        Some(record) => Some(restore(ctx, tenant, record, &valid).boxed().await?),
        None => None,
    };

    // A migration copies what provisioning has just put in place; it records its progress
    // as it goes, so the status is read back from what it last wrote.
    let driven = migrating::drive(ctx, tenant, &desired.namespaces)
        .boxed()
        .await?;
    if driven.moved {
        return Ok(Action::await_change());
    }
    let tenant = &ctx.as_last_written(tenant);

    let usage = status::usage(plan, &observed);
    let metered = meter(ctx, tenant, &valid, &usage).await;
    let mut next = status::provisioned(tenant, &valid, usage, metered, now());
    if restored.is_some() {
        next.archive = restored;
    }
    if let Some(progress) = driven.progress {
        next.migration = Some(progress);
    }
    if let Some(migrated) = driven.condition {
        let before = tenant.status.as_ref().map(|s| s.conditions.as_slice());
        next.conditions.extend(status::conditions::merge(
            before.unwrap_or_default(),
            &[migrated],
            tenant.metadata.generation,
            now(),
        ));
    }
    if driven.running {
        next.phase = Some(Phase::Migrating);
    }
    let phase = next.phase;
    status::write(ctx, tenant, next).await?;
    ctx.set_phase(&tenant.name_any(), phase);
    Ok(Action::requeue(
        driven.requeue.unwrap_or_else(|| ctx.jittered_resync()),
    ))
}

/// The archive recorded in the status and not restored yet, if any.
fn unrestored_archive(tenant: &Tenant) -> Option<ArchiveStatus> {
    tenant
        .status
        .as_ref()
        .and_then(|s| s.archive.clone())
        .filter(|a| a.restored_at.is_none())
}

/// Archive (export, seal, store, verify, record), then delete the namespaces, then stay
/// `Archived`. Each part records its progress before the next begins.
async fn pack(ctx: &Context, tenant: &Tenant, step: &Step, world: &World) -> Result<Action, Error> {
    // The objects go with the namespaces: their absence after a restore is no one's doing.
    ctx.saw_owned(&tenant.name_any(), Default::default());
    let namespaces: Vec<String> = world.namespaces.iter().map(|n| n.name_any()).collect();
    let mut record = None;
    if *step == Step::Archive {
        let made = archive_now(ctx, tenant, &namespaces).boxed().await?;
        let next = status::packing(
            tenant,
            Phase::Archiving,
            Some(made.clone()),
            namespaces.clone(),
            now(),
        );
        status::write(ctx, tenant, next).await?;
        ctx.set_phase(&tenant.name_any(), Some(Phase::Archiving));
        record = Some(made);
    }
    if !namespaces.is_empty() {
        namespaces::end_unwanted(ctx, &[], &world.namespaces, DeletionPolicy::Delete).await?;
        let next = status::packing(tenant, Phase::Archiving, record, namespaces, now());
        status::write(ctx, tenant, next).await?;
        // The namespace watch brings the tenant back as they go; this is the backstop.
        return Ok(Action::requeue(std::time::Duration::from_secs(5)));
    }
    let next = status::packing(tenant, Phase::Archived, record, Vec::new(), now());
    status::write(ctx, tenant, next).await?;
    ctx.set_phase(&tenant.name_any(), Some(Phase::Archived));
    Ok(Action::requeue(ctx.jittered_resync()))
}

/// Make and verify an archive of `namespaces`; a failure is reported (condition, Event) with
/// nothing deleted.
async fn archive_now(
    ctx: &Context,
    tenant: &Tenant,
    namespaces: &[String],
) -> Result<ArchiveStatus, Error> {
    let result = match &ctx.archives {
        Some(archives) => {
            archiving::archive(
                &ctx.client,
                archives,
                tenant,
                namespaces,
                jiff::Timestamp::now(),
            )
            .await
        }
        None => Err(crate::archive::ArchiveError::StoreUrl {
            url: String::new(),
            reason: "this operator runs without an archive store (--archive-url)".into(),
        }),
    };
    match result {
        Ok(made) => {
            let note = format!(
                "archive {} written and verified: {} objects, {} bytes; deleting the namespaces",
                made.location, made.object_count, made.bytes
            );
            status::publish(ctx, tenant, EventType::Normal, "Archived", note).await;
            Ok(made)
        }
        Err(e) => Err(report(ctx, tenant, e, None).await),
    }
}

/// Restore from `record` into the namespaces just provisioned, wake what slept when it was
/// archived, and return the record marked restored.
async fn restore(
    ctx: &Context,
    tenant: &Tenant,
    mut record: ArchiveStatus,
    valid: &Valid,
) -> Result<ArchiveStatus, Error> {
    let Some(archives) = &ctx.archives else {
        let e = crate::archive::ArchiveError::StoreUrl {
            url: record.location.clone(),
            reason: "this operator runs without an archive store (--archive-url)".into(),
        };
        return Err(report(ctx, tenant, e, Some(Phase::Restoring)).await);
    };
    let count = match archiving::restore(&ctx.client, archives, &record).await {
        Ok(count) => count,
        Err(e) => return Err(report(ctx, tenant, e, Some(Phase::Restoring)).await),
    };
    let names: Vec<String> = valid.kept.iter().map(|(n, _)| n.clone()).collect();
    hibernate::run(&ctx.client, &names, true).await?;
    let note = format!(
        "restored {count} objects from {} and verified each",
        record.location
    );
    status::publish(ctx, tenant, EventType::Normal, "Restored", note).await;
    record.restored_at = Some(now());
    Ok(record)
}

/// Say what went wrong with an archive step (condition and Event), in `phase` if given; the
/// error to return.
async fn report(
    ctx: &Context,
    tenant: &Tenant,
    e: crate::archive::ArchiveError,
    phase: Option<Phase>,
) -> Error {
    let message = format!("{e}; nothing was deleted");
    status::publish(ctx, tenant, EventType::Warning, e.reason(), message.clone()).await;
    let mut next = status::archive_failed(tenant, e.reason(), &message, now());
    if phase.is_some() {
        next.phase = phase;
    }
    if let Err(write) = status::write(ctx, tenant, next).await {
        tracing::warn!(tenant = %tenant.name_any(), error = %write, "could not report an archive failure");
    }
    Error::Archive(e)
}

/// The objects `tenant` should have, from its validated spec and what was observed.
fn desired(tenant: &Tenant, valid: &Valid, world: &World) -> Result<build::Desired, Error> {
    let kept: Vec<(String, &TenantNamespace)> =
        valid.kept.iter().map(|(n, ns)| (n.clone(), ns)).collect();
    let plan = &valid.effective.spec;
    // Suspended and hibernated tenants may start no pod.
    let asleep = matches!(
        tenant.spec.state,
        TenantState::Suspended | TenantState::Hibernated
    );
    let namespaces: Vec<TenantNamespace> = valid.kept.iter().map(|(_, ns)| ns.clone()).collect();
    Ok(build::build(
        tenant,
        &Inputs {
            plan,
            namespaces: &namespaces,
            quotas: &quotas::plan(plan, &kept, asleep, &world.observed_quotas())?,
            usage_names: &usage_names(&tenant.name_any(), jiff::Timestamp::now()),
        },
    ))
}

/// Everything but namespaces, wanted and live. Live quotas count only where still wanted:
/// the rollout has already removed the others.
fn owned_set(
    world: &World,
    desired: &build::Desired,
    quotas: &[k8s_openapi::api::core::v1::ResourceQuota],
) -> OwnedSet {
    let live_quotas: Vec<_> = world
        .quotas
        .iter()
        .filter(|q| {
            quotas
                .iter()
                .any(|d| d.name_any() == q.name_any() && d.namespace() == q.namespace())
        })
        .cloned()
        .collect();
    let mut set = OwnedSet::default();
    set.want(quotas)
        .want(&desired.limit_ranges)
        .want(&desired.network_policies)
        .want(&desired.role_bindings)
        .want(&desired.cluster_roles)
        .want(&desired.cluster_role_bindings)
        .have(&live_quotas)
        .have(&world.limit_ranges)
        .have(&world.network_policies)
        .have(&world.role_bindings)
        .have(&world.cluster_roles)
        .have(&world.cluster_role_bindings);
    set
}

/// Hand the plan to the quota engine and read back its summary for the status.
async fn meter(
    ctx: &Context,
    tenant: &Tenant,
    valid: &Valid,
    usage: &BTreeMap<String, ResourceUsage>,
) -> Metered {
    let Some(metering) = &ctx.metering else {
        return Metered::default();
    };
    let name = tenant.name_any();
    if let Err(problem) = metering
        .set_tenant(&name, &valid.effective.spec, tenant.spec.state)
        .await
    {
        let note = format!("the quota engine could not take this tenant's plan: {problem}");
        status::publish(ctx, tenant, EventType::Warning, "MeteringNotReady", note).await;
    }
    metering.observe_resources(&name, usage);
    let (rates, cost) = metering.summary(&name);
    Metered { rates, cost }
}

/// The deletion policy, run by the finalizer when the Tenant is deleted.
async fn cleanup(tenant: &Tenant, ctx: &Context) -> Result<Action, Error> {
    let name = tenant.name_any();
    let policy = tenant.spec.deletion_policy;
    let world = observe::observe(&ctx.client, &ctx.caches, tenant, &[]).await?;
    let mut set = OwnedSet::default();
    set.have(&world.quotas)
        .have(&world.limit_ranges)
        .have(&world.network_policies)
        .have(&world.role_bindings)
        .have(&world.cluster_roles)
        .have(&world.cluster_role_bindings);
    // Archive first: a failure stops here with nothing deleted, and the finalizer keeps the
    // Tenant until an archive is verified.
    let archived = match policy {
        // Namespaces already terminating were archived by an earlier attempt that got as far
        // as deleting them (or are going anyway): archiving them again would pack half of them.
        DeletionPolicy::Archive
            if world
                .namespaces
                .iter()
                .any(|n| n.metadata.deletion_timestamp.is_none()) =>
        {
            let names: Vec<String> = world
                .namespaces
                .iter()
                .filter(|n| n.metadata.deletion_timestamp.is_none())
                .map(|n| n.name_any())
                .collect();
            Some(archive_now(ctx, tenant, &names).boxed().await?)
        }
        _ => None,
    };
    set.delete_orphans(&ctx.client).await?;
    let effective = match policy {
        DeletionPolicy::Archive => DeletionPolicy::Delete,
        other => other,
    };
    namespaces::end_unwanted(ctx, &[], &world.namespaces, effective).await?;
    let count = world.namespaces.len();
    let note = match policy {
        DeletionPolicy::Delete => {
            format!("deleted {count} namespace(s) and everything Landlord created")
        }
        DeletionPolicy::Retain => format!(
            "kept {count} namespace(s) without Landlord's labels, quotas, policies or bindings"
        ),
        DeletionPolicy::Archive => match &archived {
            Some(a) => format!(
                "archived {} objects to {} and verified them, then deleted {count} namespace(s)",
                a.object_count, a.location
            ),
            None => "nothing left to archive: no namespace of the tenant is left, or an earlier attempt archived them".to_string(),
        },
    };
    status::publish(ctx, tenant, EventType::Normal, "Cleanup", note).await;
    ctx.set_phase(&name, None);
    ctx.forget(&name);
    if let Some(metering) = &ctx.metering {
        metering.remove_tenant(&name);
    }
    Ok(Action::await_change())
}

fn now() -> Time {
    Time(jiff::Timestamp::now())
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
        assert!(!fin(F::ApplyFailed(Error::Apply(api_error(422)))).is_stale_finalizers());
        assert!(!fin(F::UnnamedObject).is_stale_finalizers());
        assert!(!Error::Apply(api_error(422)).is_stale_finalizers());
        assert!(fin(F::RemoveFinalizer(api_error(404))).is_gone());
        assert!(!fin(F::RemoveFinalizer(api_error(409))).is_gone());
        assert!(!fin(F::AddFinalizer(api_error(404))).is_gone());
    }
}
