//! `TenantQuota.status`: how many tenants use each plan.
//!
//! Counted from watch-fed caches of tenants and plans and written only when a count changed,
//! so a steady state costs no reads and no writes.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::api::{Tenant, TenantQuota};

/// A cache of every `K`, kept current by a background watch.
fn cache<K>(api: Api<K>) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let events = reflector::reflector(writer, watcher(api, watcher::Config::default()))
        .default_backoff()
        .touched_objects();
    tokio::spawn(events.for_each(|_| async {}));
    reader
}

/// Whether `store` has had its first complete list.
fn filled<K: kube::Resource<DynamicType = ()> + Clone>(store: &Store<K>) -> bool {
    store
        .wait_until_ready()
        .now_or_never()
        .is_some_and(|r| r.is_ok())
}

/// Tenants per plan name.
pub fn count(tenants: &[std::sync::Arc<Tenant>]) -> BTreeMap<String, u32> {
    let mut counts = BTreeMap::new();
    for t in tenants
        .iter()
        .filter(|t| t.metadata.deletion_timestamp.is_none())
    {
        if let Some(plan) = &t.spec.quota_ref {
            *counts.entry(plan.clone()).or_default() += 1;
        }
    }
    counts
}

/// Which tenants an operator manages, for plan counts.
pub enum Managed {
    /// Every Tenant: this cache holds them all.
    All(Store<Tenant>),
    /// Those matching `--tenant-selector`, held here. The operator then writes the counts of
    /// the plans its own tenants use only (still counting every Tenant on them), so that
    /// operators sharing a cluster do not each write every plan.
    Selected(Store<Tenant>),
}

/// Keep plans' `status.tenants` equal to the number of Tenants on them, until the process
/// ends.
pub async fn run(client: Client, managed: Managed) {
    let api: Api<TenantQuota> = Api::all(client.clone());
    let plans = cache(api.clone());
    let (tenants, selected) = match managed {
        Managed::All(store) => (store, None),
        Managed::Selected(mine) => (cache(Api::<Tenant>::all(client)), Some(mine)),
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        // Counting before both caches are filled would write 0 and then the real count. This
        // asks without awaiting: a store's readiness wakes only its most recent waiter, and
        // the controller also waits on the tenant store, so an await here could sleep for ever.
        if !(filled(&tenants) && filled(&plans)) {
            continue;
        }
        let counts = count(&tenants.state());
        let ours = selected.as_ref().map(|mine| count(&mine.state()));
        for plan in plans.state() {
            if ours
                .as_ref()
                .is_some_and(|o| !o.contains_key(&plan.name_any()))
            {
                continue;
            }
            let want = counts.get(&plan.name_any()).copied().unwrap_or(0);
            let have = plan.status.as_ref().map(|s| s.tenants);
            if have == Some(want) {
                continue;
            }
            let status = json!({"tenants": want, "observedGeneration": plan.metadata.generation});
            if let Err(e) = crate::kube_client::apply_status(&api, &plan.name_any(), &status).await
            {
                tracing::warn!(plan = %plan.name_any(), error = %e, "could not update plan status");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn tenant(name: &str, plan: Option<&str>) -> Arc<Tenant> {
        let mut t = Tenant::new(name, Default::default());
        t.spec.quota_ref = plan.map(String::from);
        Arc::new(t)
    }

    #[test]
    fn tenants_are_counted_per_plan() {
        let counts = count(&[
            tenant("a", Some("pro")),
            tenant("b", Some("pro")),
            tenant("c", Some("free")),
            tenant("d", None),
        ]);
        assert_eq!(
            counts,
            BTreeMap::from([("free".to_string(), 1), ("pro".to_string(), 2)])
        );
    }
}
