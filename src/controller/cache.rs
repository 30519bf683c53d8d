//! Watch-fed caches of everything a reconcile reads, so that a reconcile makes no LIST and,
//! for a converged tenant, no GET: its cost does not grow with the number of tenants.
//!
//! The streams that fill these stores are the controller's own triggers (see `run`), so one
//! watch per kind both wakes the right tenant and keeps its cache. Owned kinds are watched by
//! the `landlord.dev/tenant` label only. Landlord names every object it writes (`naming`), so
//! a reconcile finds a tenant's objects by name in O(its own size), never by scanning a store.
//! `managedFields` are dropped before caching (they are most of an object's bytes); for
//! namespaces only a bare entry for our own field manager is kept, which is all the
//! ownership test (`naming::is_ours`) looks at.

use futures::{FutureExt, Stream, StreamExt};
use k8s_openapi::api::core::v1::{LimitRange, Namespace, ResourceQuota};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;

use crate::api::TenantQuota;
use crate::naming::{FIELD_MANAGER, TENANT_LABEL};

/// The stores a reconcile reads. Cheap to clone.
#[derive(Clone)]
pub struct Caches {
    pub plans: Store<TenantQuota>,
    pub namespaces: Store<Namespace>,
    pub quotas: Store<ResourceQuota>,
    pub limit_ranges: Store<LimitRange>,
    pub network_policies: Store<NetworkPolicy>,
    pub role_bindings: Store<RoleBinding>,
    pub cluster_roles: Store<ClusterRole>,
    pub cluster_role_bindings: Store<ClusterRoleBinding>,
}

/// The watch streams that fill [`Caches`]; each must be polled (the controller does).
pub struct Feeds {
    pub plans: Feed<TenantQuota>,
    pub namespaces: Feed<Namespace>,
    pub quotas: Feed<ResourceQuota>,
    pub limit_ranges: Feed<LimitRange>,
    pub network_policies: Feed<NetworkPolicy>,
    pub role_bindings: Feed<RoleBinding>,
    pub cluster_roles: Feed<ClusterRole>,
    pub cluster_role_bindings: Feed<ClusterRoleBinding>,
}

pub type Feed<K> =
    std::pin::Pin<Box<dyn Stream<Item = Result<K, watcher::Error>> + Send + 'static>>;

impl Caches {
    /// Stores and the streams that fill them, for `client`.
    pub fn new(client: &Client) -> (Caches, Feeds) {
        let labelled = || watcher::Config::default().labels(TENANT_LABEL);
        let (plans, plans_feed) = cached(Api::all(client.clone()), watcher::Config::default());
        let (namespaces, namespaces_feed) = cached(Api::all(client.clone()), labelled());
        let (quotas, quotas_feed) = cached(Api::all(client.clone()), labelled());
        let (limit_ranges, limit_ranges_feed) = cached(Api::all(client.clone()), labelled());
        let (network_policies, network_policies_feed) =
            cached(Api::all(client.clone()), labelled());
        let (role_bindings, role_bindings_feed) = cached(Api::all(client.clone()), labelled());
        let (cluster_roles, cluster_roles_feed) = cached(Api::all(client.clone()), labelled());
        let (cluster_role_bindings, cluster_role_bindings_feed) =
            cached(Api::all(client.clone()), labelled());
        (
            Caches {
                plans,
                namespaces,
                quotas,
                limit_ranges,
                network_policies,
                role_bindings,
                cluster_roles,
                cluster_role_bindings,
            },
            Feeds {
                plans: plans_feed,
                namespaces: namespaces_feed,
                quotas: quotas_feed,
                limit_ranges: limit_ranges_feed,
                network_policies: network_policies_feed,
                role_bindings: role_bindings_feed,
                cluster_roles: cluster_roles_feed,
                cluster_role_bindings: cluster_role_bindings_feed,
            },
        )
    }

    /// Whether every store has had its first complete list, so that a reconcile never
    /// takes "not in the cache yet" for "does not exist". It does not wait: the stores are
    /// filled by the controller's trigger streams, which the controller stops polling while
    /// every reconcile slot is busy, so a reconcile that waited here could wait for ever.
    pub fn ready(&self) -> bool {
        fn filled<K: Resource<DynamicType = ()> + Clone>(store: &Store<K>) -> bool {
            store
                .wait_until_ready()
                .now_or_never()
                .is_some_and(|r| r.is_ok())
        }
        filled(&self.plans)
            && filled(&self.namespaces)
            && filled(&self.quotas)
            && filled(&self.limit_ranges)
            && filled(&self.network_policies)
            && filled(&self.role_bindings)
            && filled(&self.cluster_roles)
            && filled(&self.cluster_role_bindings)
    }
}

/// The cached object `name` (in `namespace`), if any.
pub fn get<K>(store: &Store<K>, name: &str, namespace: Option<&str>) -> Option<K>
where
    K: Resource<DynamicType = ()> + Clone,
{
    let mut key = ObjectRef::new(name);
    if let Some(ns) = namespace {
        key = key.within(ns);
    }
    store.get(&key).map(|o| (*o).clone())
}

fn cached<K>(api: Api<K>, config: watcher::Config) -> (Store<K>, Feed<K>)
where
    K: Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let feed = watcher(api, config)
        .default_backoff()
        .modify(slim)
        .reflect(writer)
        .touched_objects();
    (reader, passing(feed).boxed())
}

/// A watch's objects without its errors, which are logged instead. Each watch backs off on
/// its own errors already; the controller also backs off its merged trigger stream on any
/// error of any watch, so that one watch's errors (a 410 Gone after every etcd compaction,
/// say) would pause every other watch too, for ever longer: the caches fell behind and the
/// operator rewrote objects that were already right, until the errors stopped.
pub fn passing<K, S>(feed: S) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: Resource + Send + 'static,
    S: Stream<Item = Result<K, watcher::Error>> + Send + 'static,
{
    feed.filter_map(|item| {
        futures::future::ready(match item {
            Ok(object) => Some(Ok(object)),
            Err(e) => {
                tracing::debug!(error = %e, kind = %std::any::type_name::<K>(), "watch error; the watch backs off and resumes");
                None
            }
        })
    })
}

/// Drop what a reconcile never reads: `managedFields`, except a bare marker of our own.
pub fn slim<K: Resource>(object: &mut K) {
    let meta = object.meta_mut();
    let ours = meta
        .managed_fields
        .iter()
        .flatten()
        .any(|m| m.manager.as_deref() == Some(FIELD_MANAGER));
    meta.managed_fields = ours.then(|| {
        vec![ManagedFieldsEntry {
            manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        }]
    });
}
