//! The kube-runtime Controller on Tenant: one watch per kind both wakes the tenant an object
//! belongs to and fills the caches reconciles read (`cache`).

use std::sync::Arc;

use futures::StreamExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Config, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

use super::Context;
use super::cache::Feeds;
use super::reconcile::{error_policy, reconcile};
use crate::api::Tenant;
use crate::naming::{FIELD_MANAGER, TENANT_LABEL};

/// The tenant a labelled object belongs to.
fn tenant_of<K: Resource>(object: K) -> Option<ObjectRef<Tenant>> {
    object
        .meta()
        .labels
        .as_ref()?
        .get(TENANT_LABEL)
        .map(|t| ObjectRef::new(t))
}

/// Run until the process is asked to stop. Tenant names sent on `refresh` (the usage ledger
/// sends those whose usage moved) get their `rates` and `cost` refreshed without a reconcile.
pub async fn run(
    ctx: Arc<Context>,
    feeds: Feeds,
    refresh: Option<tokio::sync::mpsc::Receiver<String>>,
) {
    let client = ctx.client.clone();
    let tenants = match &ctx.settings.tenant_selector {
        Some(selector) => watcher::Config::default().labels(selector),
        None => watcher::Config::default(),
    };
    // Tenants are cached without managedFields too: with a status they are most of it.
    let (store, writer) = reflector::store();
    let tenant_feed = watcher(Api::<Tenant>::all(client.clone()), tenants)
        .default_backoff()
        .modify(super::cache::slim)
        .reflect(writer)
        .touched_objects();
    let controller = Controller::for_stream(super::cache::passing(tenant_feed), store.clone())
        .with_config(Config::default().concurrency(ctx.settings.concurrency));
    // Plan counts need every Tenant: the controller's own cache has them unless a selector
    // narrows it.
    let managed = match ctx.settings.tenant_selector {
        None => super::plans::Managed::All(store.clone()),
        Some(_) => super::plans::Managed::Selected(store.clone()),
    };
    tokio::spawn(super::plans::run(client.clone(), managed));
    if let Some(archives) = ctx.archives.clone() {
        let interval = ctx.settings.purge_interval;
        let purge =
            super::archiving::purge(archives, store.clone(), ctx.recorder.clone(), interval);
        tokio::spawn(purge);
    }
    if let Some(refresh) = refresh {
        tokio::spawn(refresh_usage(ctx.clone(), store.clone(), refresh));
    }
    let plan_tenants = store.clone();
    controller
        .watches_stream(feeds.plans, move |plan| {
            let name = plan.name_any();
            plan_tenants
                .state()
                .into_iter()
                .filter(|t| t.spec.quota_ref.as_deref() == Some(name.as_str()))
                .map(|t| ObjectRef::from_obj(&*t))
                .collect::<Vec<_>>()
        })
        .watches_stream(feeds.namespaces, tenant_of)
        .watches_stream(feeds.quotas, tenant_of)
        .watches_stream(feeds.limit_ranges, tenant_of)
        .watches_stream(feeds.network_policies, tenant_of)
        .watches_stream(feeds.role_bindings, tenant_of)
        .watches_stream(feeds.cluster_roles, tenant_of)
        .watches_stream(feeds.cluster_role_bindings, tenant_of)
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((tenant, _)) => tracing::debug!(tenant = %tenant.name, "reconciled"),
                Err(error) => tracing::debug!(%error, "reconcile did not complete"),
            }
        })
        .await;
}

/// The status-only path for metered usage: a tenant whose usage moved gets its `rates` and
/// `cost` patched when they differ from its status, and nothing else is read or written.
/// A full reconcile every flush interval for every busy tenant would cost far more.
async fn refresh_usage(
    ctx: Arc<Context>,
    tenants: Store<Tenant>,
    mut refresh: tokio::sync::mpsc::Receiver<String>,
) {
    let Some(metering) = ctx.metering.clone() else {
        return;
    };
    let api: Api<Tenant> = Api::all(ctx.client.clone());
    while let Some(name) = refresh.recv().await {
        let Some(tenant) = tenants.get(&ObjectRef::new(&name)) else {
            continue;
        };
        let Some(status) = &tenant.status else {
            continue; // not provisioned yet: its first reconcile writes the summary
        };
        let (rates, cost) = metering.summary(&name);
        ctx.metrics.tenant_status.set_cost(&name, cost.as_ref());
        let Some(patch) = usage_patch(&status.rates, &rates, &status.cost, &cost) else {
            continue;
        };
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        if let Err(e) = api
            .patch_status(&name, &params, &Patch::Merge(&patch))
            .await
        {
            tracing::warn!(tenant = %name, error = %e, "could not refresh usage in status");
        }
    }
}

/// A merge patch that turns the status' `rates` and `cost` into the new ones (removed rates
/// set to null), or `None` when they are equal.
fn usage_patch<R: serde::Serialize + PartialEq, C: serde::Serialize + PartialEq>(
    old_rates: &std::collections::BTreeMap<String, R>,
    rates: &std::collections::BTreeMap<String, R>,
    old_cost: &Option<C>,
    cost: &Option<C>,
) -> Option<Value> {
    if old_rates == rates && old_cost == cost {
        return None;
    }
    let mut patch_rates = serde_json::to_value(rates).expect("serialises");
    for gone in old_rates.keys().filter(|k| !rates.contains_key(*k)) {
        patch_rates[gone] = Value::Null;
    }
    Some(json!({"status": {"rates": patch_rates, "cost": cost}}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn the_usage_patch_sends_only_what_changed_and_removes_what_went() {
        let old = BTreeMap::from([("a".to_string(), 1), ("b".to_string(), 2)]);
        assert_eq!(usage_patch(&old, &old, &Some(5), &Some(5)), None);
        let new = BTreeMap::from([("a".to_string(), 3)]);
        assert_eq!(
            usage_patch(&old, &new, &Some(5), &Some(6)),
            Some(json!({"status": {"rates": {"a": 3, "b": null}, "cost": 6}}))
        );
    }
}
