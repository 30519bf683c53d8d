//! The kube-runtime Controller on Tenant, and the watches that bring a tenant back when
//! something it depends on changes.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{LimitRange, Namespace, ResourceQuota};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::Api;
use kube::runtime::controller::{Config, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use super::Context;
use super::tenant::{error_policy, reconcile};
use crate::api::{TENANT_LABEL, Tenant, TenantQuota};

/// The tenant a labelled object belongs to.
fn tenant_of<K: Resource>(object: K) -> Option<ObjectRef<Tenant>> {
    object
        .meta()
        .labels
        .as_ref()?
        .get(TENANT_LABEL)
        .map(|t| ObjectRef::new(t))
}

/// Run until the process is asked to stop. Tenant names sent on `refresh` are reconciled
/// again (the usage ledger sends those whose usage moved, so their status follows).
pub async fn run(ctx: Arc<Context>, refresh: Option<tokio::sync::mpsc::Receiver<String>>) {
    let client = ctx.client.clone();
    let labelled = || watcher::Config::default().labels(TENANT_LABEL);
    let tenants = match &ctx.settings.tenant_selector {
        Some(selector) => watcher::Config::default().labels(selector),
        None => watcher::Config::default(),
    };
    let controller = Controller::new(Api::<Tenant>::all(client.clone()), tenants)
        .with_config(Config::default().concurrency(4));
    let store = controller.store();
    tokio::spawn(super::plans::run(client.clone()));
    controller
        .watches(
            Api::<TenantQuota>::all(client.clone()),
            watcher::Config::default(),
            move |plan| {
                let name = plan.name_any();
                store
                    .state()
                    .into_iter()
                    .filter(|t| t.spec.quota_ref.as_deref() == Some(name.as_str()))
                    .map(|t| ObjectRef::from_obj(&*t))
                    .collect::<Vec<_>>()
            },
        )
        .watches(Api::<Namespace>::all(client.clone()), labelled(), tenant_of)
        .watches(
            Api::<ResourceQuota>::all(client.clone()),
            labelled(),
            tenant_of,
        )
        .watches(
            Api::<LimitRange>::all(client.clone()),
            labelled(),
            tenant_of,
        )
        .watches(
            Api::<NetworkPolicy>::all(client.clone()),
            labelled(),
            tenant_of,
        )
        .watches(
            Api::<RoleBinding>::all(client.clone()),
            labelled(),
            tenant_of,
        )
        .reconcile_on(futures::stream::unfold(refresh, |rx| async move {
            let mut rx = rx?;
            let name = rx.recv().await?;
            Some((ObjectRef::new(&name), Some(rx)))
        }))
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
