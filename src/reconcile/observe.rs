//! The dereference step: everything a reconcile reads from the API server, in one place.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{LimitRange, Namespace, ResourceQuota};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding};
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use serde::de::DeserializeOwned;

use super::Error;
use super::quotas::Observed;
use crate::api::{TENANT_LABEL, TenantQuota};

/// What exists now for one tenant.
#[derive(Clone, Debug, Default)]
pub struct World {
    /// The plan, `None` when `quotaRef` is unset; `Some(None)` when it names a missing plan.
    pub plan: Option<Option<TenantQuota>>,
    /// Namespaces carrying this tenant's label.
    pub namespaces: Vec<Namespace>,
    /// Namespaces the tenant wants that exist without its label: name → owning tenant, if any.
    pub foreign: BTreeMap<String, Option<String>>,
    pub quotas: Vec<ResourceQuota>,
    pub limit_ranges: Vec<LimitRange>,
    pub network_policies: Vec<NetworkPolicy>,
    pub role_bindings: Vec<RoleBinding>,
    pub cluster_roles: Vec<ClusterRole>,
    pub cluster_role_bindings: Vec<ClusterRoleBinding>,
}

impl World {
    /// ResourceQuota state of our `landlord-quota` objects, by namespace.
    pub fn observed_quotas(&self) -> BTreeMap<String, Observed> {
        self.quotas
            .iter()
            .filter(|q| q.name_any() == super::desired::QUOTA_NAME)
            .map(|q| {
                let status = q.status.clone().unwrap_or_default();
                let hard = q
                    .spec
                    .as_ref()
                    .and_then(|s| s.hard.clone())
                    .unwrap_or_default();
                (
                    q.namespace().unwrap_or_default(),
                    Observed {
                        hard,
                        used: status.used.unwrap_or_default(),
                    },
                )
            })
            .collect()
    }
}

/// A fresh read of the tenant's `landlord-quota` objects, by namespace.
pub async fn observe_quotas(
    client: &Client,
    tenant: &str,
) -> Result<BTreeMap<String, Observed>, Error> {
    let world = World {
        quotas: owned(client, tenant).await?,
        ..World::default()
    };
    Ok(world.observed_quotas())
}

/// Whether a namespace labelled for `tenant` was made by Landlord for it.
pub fn is_ours(ns: &Namespace, tenant: &str) -> bool {
    ns.name_any().starts_with(&format!("{tenant}-"))
        && ns
            .metadata
            .managed_fields
            .iter()
            .flatten()
            .any(|m| m.manager.as_deref() == Some(super::apply::FIELD_MANAGER))
}

async fn owned<K>(client: &Client, tenant: &str) -> Result<Vec<K>, Error>
where
    K: kube::Resource + Clone + std::fmt::Debug + DeserializeOwned,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::all(client.clone());
    let list = api
        .list(&ListParams::default().labels(&format!("{TENANT_LABEL}={tenant}")))
        .await
        .map_err(Error::Kube)?;
    Ok(list.items)
}

/// Read the plan and every object labelled with the tenant; look up wanted namespaces that
/// exist without the label.
pub async fn observe(
    client: &Client,
    tenant: &str,
    quota_ref: Option<&str>,
    wanted: &[String],
) -> Result<World, Error> {
    let plan = match quota_ref {
        None => None,
        Some(name) => Some(
            Api::<TenantQuota>::all(client.clone())
                .get_opt(name)
                .await
                .map_err(Error::Kube)?,
        ),
    };
    // The label alone is not proof: anyone who can label a namespace could make Landlord
    // delete it. Ours are named `<tenant>-…` and carry our field manager's entry.
    let namespaces: Vec<Namespace> = owned::<Namespace>(client, tenant)
        .await?
        .into_iter()
        .filter(|n| is_ours(n, tenant))
        .collect();
    let mut foreign = BTreeMap::new();
    let ns_api: Api<Namespace> = Api::all(client.clone());
    for name in wanted
        .iter()
        .filter(|w| !namespaces.iter().any(|n| &n.name_any() == *w))
    {
        if let Some(ns) = ns_api.get_opt(name).await.map_err(Error::Kube)? {
            foreign.insert(name.clone(), ns.labels().get(TENANT_LABEL).cloned());
        }
    }
    Ok(World {
        plan,
        namespaces,
        foreign,
        quotas: owned(client, tenant).await?,
        limit_ranges: owned(client, tenant).await?,
        network_policies: owned(client, tenant).await?,
        role_bindings: owned(client, tenant).await?,
        cluster_roles: owned(client, tenant).await?,
        cluster_role_bindings: owned(client, tenant).await?,
    })
}
