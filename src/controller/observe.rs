//! The dereference step: what exists now for one tenant, read from the watch caches.
//!
//! The only requests left are a GET for a wanted namespace the caches do not hold (it may
//! exist without our label: a conflict to report) and, before a quota is raised, fresh GETs
//! of the tenant's quotas (see `apply::rollout`). A converged tenant costs none.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{LimitRange, Namespace, ResourceQuota};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding};
use kube::api::Api;
use kube::{Client, ResourceExt};

use super::Error;
use super::build::quotas::Observed;
use super::cache::{Caches, get};
use crate::api::{Tenant, TenantQuota};
use crate::naming::{
    ISOLATION_NAME, LIMITS_NAME, OWNERS_NAME, QUOTA_NAME, TENANT_LABEL, is_ours, namespace_name,
    reader_name,
};

/// What exists now for one tenant.
#[derive(Clone, Debug, Default)]
pub struct World {
    /// The plan, `None` when `quotaRef` is unset; `Some(None)` when it names a missing plan.
    pub plan: Option<Option<TenantQuota>>,
    /// The tenant's namespaces (labelled, named and written by Landlord for it).
    pub namespaces: Vec<Namespace>,
    /// Namespaces the tenant wants that exist but are not its own: name → owning tenant.
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
        observed(&self.quotas)
    }
}

fn observed(quotas: &[ResourceQuota]) -> BTreeMap<String, Observed> {
    quotas
        .iter()
        .filter(|q| q.name_any() == QUOTA_NAME)
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

/// A fresh read of our quota in each of `namespaces`, bypassing the cache: the quota
/// rollout must not rely on a `hard` or a `status.used` the cache has not caught up with.
pub async fn fresh_quota_objects<'a>(
    client: &Client,
    namespaces: impl Iterator<Item = &'a str>,
) -> Result<Vec<ResourceQuota>, Error> {
    let mut quotas = Vec::new();
    for ns in namespaces {
        let api: Api<ResourceQuota> = Api::namespaced(client.clone(), ns);
        if let Some(q) = api.get_opt(QUOTA_NAME).await.map_err(Error::Observe)? {
            quotas.push(q);
        }
    }
    Ok(quotas)
}

/// [`fresh_quota_objects`] as observed quota state.
pub async fn fresh_quotas<'a>(
    client: &Client,
    namespaces: impl Iterator<Item = &'a str>,
) -> Result<BTreeMap<String, Observed>, Error> {
    Ok(observed(&fresh_quota_objects(client, namespaces).await?))
}

/// The plan and every object Landlord keeps for `tenant`. `wanted` are the namespaces the
/// spec asks for (full names); the tenant's status names those it had, so that namespaces
/// leaving the spec are still found.
pub async fn observe(
    client: &Client,
    caches: &Caches,
    tenant: &Tenant,
    wanted: &[String],
) -> Result<World, Error> {
    let name = tenant.name_any();
    let plan = tenant
        .spec
        .quota_ref
        .as_deref()
        .map(|p| get(&caches.plans, p, None));
    let had = tenant.status.iter().flat_map(|s| s.namespaces.iter());
    let candidates: BTreeSet<&String> = wanted.iter().chain(had).collect();

    let mut world = World {
        plan,
        ..World::default()
    };
    for ns in candidates {
        match get(&caches.namespaces, ns, None) {
            Some(n) if n.labels().get(TENANT_LABEL) == Some(&name) && is_ours(&n, &name) => {
                world.namespaces.push(n)
            }
            Some(n) if wanted.contains(ns) => {
                world
                    .foreign
                    .insert(ns.clone(), n.labels().get(TENANT_LABEL).cloned());
            }
            Some(_) => {}
            // Not in the cache: absent, someone else's, or ours and the watch has not brought
            // it yet (a namespace just created); the same ownership test decides.
            None if wanted.contains(ns) => {
                let api: Api<Namespace> = Api::all(client.clone());
                match api.get_opt(ns).await.map_err(Error::Observe)? {
                    Some(n)
                        if n.labels().get(TENANT_LABEL) == Some(&name) && is_ours(&n, &name) =>
                    {
                        world.namespaces.push(n)
                    }
                    Some(n) => {
                        world
                            .foreign
                            .insert(ns.clone(), n.labels().get(TENANT_LABEL).cloned());
                    }
                    None => {}
                }
            }
            None => {}
        }
    }
    for ns in world.namespaces.iter().map(|n| n.name_any()) {
        let at = Some(ns.as_str());
        world.quotas.extend(get(&caches.quotas, QUOTA_NAME, at));
        world
            .limit_ranges
            .extend(get(&caches.limit_ranges, LIMITS_NAME, at));
        world
            .network_policies
            .extend(get(&caches.network_policies, ISOLATION_NAME, at));
        for role in ["admin", "view"] {
            let binding = format!("{OWNERS_NAME}-{role}");
            world
                .role_bindings
                .extend(get(&caches.role_bindings, &binding, at));
        }
    }
    let reader = reader_name(&name);
    world
        .cluster_roles
        .extend(get(&caches.cluster_roles, &reader, None));
    world
        .cluster_role_bindings
        .extend(get(&caches.cluster_role_bindings, &reader, None));
    // Only what carries this tenant's label is ours to change or delete.
    let ours = |labels: &BTreeMap<String, String>| labels.get(TENANT_LABEL) == Some(&name);
    world.quotas.retain(|o| ours(o.labels()));
    world.limit_ranges.retain(|o| ours(o.labels()));
    world.network_policies.retain(|o| ours(o.labels()));
    world.role_bindings.retain(|o| ours(o.labels()));
    world.cluster_roles.retain(|o| ours(o.labels()));
    world.cluster_role_bindings.retain(|o| ours(o.labels()));
    Ok(world)
}

/// The full names of the namespaces `tenant`'s spec lists, in order.
pub fn wanted(tenant: &Tenant) -> Vec<String> {
    let name = tenant.name_any();
    tenant
        .spec
        .namespaces
        .iter()
        .map(|n| namespace_name(&name, &n.name))
        .collect()
}
