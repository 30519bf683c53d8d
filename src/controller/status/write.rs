//! The one write of a reconcile's status, and the Events that tell what changed.

use kube::Resource;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::events::{Event, EventType};

use super::conditions;
use crate::api::{Tenant, TenantStatus};
use crate::controller::{Context, Error};

/// Patch the status only when it changed, with an Event for every condition that moved and
/// for every utilization threshold crossed. `tenant` carries the status last written
/// (`Context::as_last_written`).
pub async fn write(ctx: &Context, tenant: &Tenant, mut next: TenantStatus) -> Result<(), Error> {
    // Before the no-change return: a restarted operator writes nothing but must still export.
    ctx.metrics.tenant_status.set(&tenant.name_any(), &next);
    let mut previous = tenant.status.clone().unwrap_or_default();
    next.conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
    previous.conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
    if previous == next {
        return Ok(());
    }
    for c in conditions::worth_an_event(&previous.conditions, &next.conditions) {
        let kind = if c.status == "True" {
            EventType::Normal
        } else {
            EventType::Warning
        };
        let note = format!("{} is {}: {}", c.type_, c.status, c.message);
        publish(ctx, tenant, kind, &c.reason, note).await;
    }
    for (resource, threshold, pct) in super::crossed(&previous.usage, &next.usage) {
        let reason = if threshold >= 95 {
            "QuotaUtilizationCritical"
        } else {
            "QuotaUtilizationHigh"
        };
        let note = format!("{resource} is at {pct}% of the plan (threshold {threshold}%)");
        // One series per resource: the recorder folds events of equal reason and action.
        let action = format!("Meter {resource}");
        publish_for(ctx, tenant, EventType::Warning, reason, &action, note).await;
    }
    let api: Api<Tenant> = Api::all(ctx.client.clone());
    crate::kube_client::apply_status(&api, &tenant.name_any(), &next)
        .await
        .map_err(Error::Status)?;
    ctx.wrote_status(tenant, next);
    Ok(())
}

/// An Event about `tenant` from the reconciler.
pub async fn publish(ctx: &Context, tenant: &Tenant, type_: EventType, reason: &str, note: String) {
    publish_for(ctx, tenant, type_, reason, "Reconcile", note).await;
}

/// Events with the same type, reason and action on one object are folded into one series by
/// the recorder (only the first note is kept), so an `action` tells distinct happenings apart.
pub async fn publish_for(
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
