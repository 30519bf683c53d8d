//! The owned-object set: every object a reconcile wants next to the live ones it found,
//! applied in order (each only when it would change something) and, at the end, every live
//! object that is no longer wanted deleted. One loop for all kinds, so orphan cleanup needs
//! no special cases. Namespaces are not in it: they end by the deletion policy (`namespaces`).

use std::collections::BTreeSet;

use kube::api::{Api, ApiResource, DynamicObject};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;

use super::{apply, changed_by_others, delete, stamp};
use crate::controller::Error;

struct Entry {
    resource: ApiResource,
    object: DynamicObject,
}

impl Entry {
    fn of<K: Resource<DynamicType = ()> + Serialize>(object: &K) -> Entry {
        let value = serde_json::to_value(object).expect("Kubernetes objects serialise");
        let mut object: DynamicObject =
            serde_json::from_value(value).expect("every object has metadata");
        let resource = ApiResource::erase::<K>(&());
        object.types = Some(kube::api::TypeMeta {
            api_version: resource.api_version.clone(),
            kind: resource.kind.clone(),
        });
        Entry { resource, object }
    }

    /// `Kind namespace/name`, as Events and the restored-object bookkeeping name it.
    fn key(&self) -> String {
        let name = self.object.name_any();
        match &self.object.metadata.namespace {
            Some(ns) => format!("{} {ns}/{name}", self.resource.kind),
            None => format!("{} {name}", self.resource.kind),
        }
    }

    fn same(&self, other: &Entry) -> bool {
        self.resource == other.resource
            && self.object.metadata.name == other.object.metadata.name
            && self.object.metadata.namespace == other.object.metadata.namespace
    }

    fn api(&self, client: &Client) -> Api<DynamicObject> {
        match &self.object.metadata.namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &self.resource),
            None => Api::all_with(client.clone(), &self.resource),
        }
    }
}

/// A wanted object someone else deleted or changed (`Kind namespace/name`).
#[derive(Clone, Debug, PartialEq)]
pub enum Tampered {
    Deleted(String),
    Changed(String),
}

impl Tampered {
    /// The Event's note once the apply has put it back.
    pub fn note(&self) -> String {
        match self {
            Tampered::Deleted(key) => {
                format!("{key} was deleted by someone other than Landlord; Landlord re-created it")
            }
            Tampered::Changed(key) => format!(
                "{key} was changed by someone other than Landlord; Landlord put its fields back"
            ),
        }
    }

    /// The Event's action: one series per object and kind of repair (the recorder folds
    /// Events of equal action into one series that keeps the first note; an action holds
    /// 128 characters).
    pub fn action(&self) -> String {
        let action = match self {
            Tampered::Deleted(key) => format!("Recreate {key}"),
            Tampered::Changed(key) => format!("Revert {key}"),
        };
        action.chars().take(128).collect()
    }
}

/// Wanted and live objects of one tenant, in the order they are to be applied.
#[derive(Default)]
pub struct OwnedSet {
    wanted: Vec<Entry>,
    live: Vec<Entry>,
}

impl OwnedSet {
    /// Add objects to apply, after those added before.
    pub fn want<K: Resource<DynamicType = ()> + Serialize>(&mut self, objects: &[K]) -> &mut Self {
        self.wanted.extend(objects.iter().map(Entry::of));
        self
    }

    /// Add live objects: compared with the wanted ones of the same name, deleted if unwanted.
    pub fn have<K: Resource<DynamicType = ()> + Serialize>(&mut self, objects: &[K]) -> &mut Self {
        self.live.extend(objects.iter().map(Entry::of));
        self
    }

    /// The wanted objects that are live (`Kind namespace/name`), to pass to the next
    /// reconcile's [`OwnedSet::tampered`].
    pub fn live_wanted(&self) -> BTreeSet<String> {
        self.wanted
            .iter()
            .filter(|w| self.live.iter().any(|l| l.same(w)))
            .map(Entry::key)
            .collect()
    }

    /// What someone else did to wanted objects, which applying puts right: each one live at
    /// the last reconcile (`seen`, from [`OwnedSet::live_wanted`]) and gone now, and each
    /// one still carrying the hash of what is wanted but no longer holding it. A tenant
    /// owner's `admin` role may delete or edit NetworkPolicies and RoleBindings in its
    /// namespaces; this is how Landlord says it restored them.
    pub fn tampered(&self, seen: &BTreeSet<String>) -> Vec<Tampered> {
        self.wanted
            .iter()
            .filter_map(|w| {
                let key = w.key();
                match self.live.iter().find(|l| l.same(w)) {
                    None if seen.contains(&key) => Some(Tampered::Deleted(key)),
                    Some(live) => {
                        let mut desired = w.object.clone();
                        stamp(&mut desired);
                        changed_by_others(&desired, &live.object).then_some(Tampered::Changed(key))
                    }
                    None => None,
                }
            })
            .collect()
    }

    /// Apply every wanted object whose live counterpart differs, in order.
    pub async fn apply(&self, client: &Client) -> Result<(), Error> {
        for entry in &self.wanted {
            let live = self.live.iter().find(|l| l.same(entry)).map(|l| &l.object);
            apply(
                &entry.api(client),
                entry.object.clone(),
                live,
                &entry.resource,
            )
            .await?;
        }
        Ok(())
    }

    /// Delete every live object nobody wants any more, the last added kinds first (bindings
    /// that grant access go before the roles and policies they rely on).
    pub async fn delete_orphans(&self, client: &Client) -> Result<(), Error> {
        for entry in self.live.iter().rev() {
            if !self.wanted.iter().any(|w| w.same(entry)) {
                delete(&entry.api(client), &entry.object.name_any()).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicySpec};

    fn policy(ingress: bool) -> NetworkPolicy {
        let mut p = NetworkPolicy {
            spec: Some(NetworkPolicySpec {
                policy_types: Some(if ingress {
                    vec!["Ingress".into()]
                } else {
                    vec![]
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        p.metadata.name = Some("landlord-isolation".into());
        p.metadata.namespace = Some("acme-prod".into());
        p
    }

    /// Gone after being seen: deleted. Never seen: new, not restored. Carrying our hash with
    /// other fields: changed by someone. Carrying an older hash: our own change of mind.
    #[test]
    fn only_what_someone_else_did_is_reported() {
        let key = "NetworkPolicy acme-prod/landlord-isolation".to_string();
        let seen = BTreeSet::from([key.clone()]);
        let mut set = OwnedSet::default();
        set.want(&[policy(true)]);
        assert_eq!(set.live_wanted(), BTreeSet::new());
        assert_eq!(set.tampered(&seen), [Tampered::Deleted(key.clone())]);
        assert_eq!(set.tampered(&BTreeSet::new()), []);

        let mut applied = policy(true);
        stamp(&mut applied);
        let mut edited = applied.clone();
        edited.spec.as_mut().unwrap().policy_types = Some(vec![]);
        let mut set = OwnedSet::default();
        set.want(&[policy(true)]).have(&[edited]);
        assert_eq!(set.live_wanted(), seen);
        assert_eq!(set.tampered(&seen), [Tampered::Changed(key.clone())]);
        assert_eq!(
            set.tampered(&seen)[0].note(),
            "NetworkPolicy acme-prod/landlord-isolation was changed by someone other than Landlord; Landlord put its fields back"
        );

        let mut old = policy(false);
        stamp(&mut old);
        let mut set = OwnedSet::default();
        set.want(&[policy(true)]).have(&[old]);
        assert_eq!(set.tampered(&seen), []);
        let mut set = OwnedSet::default();
        set.want(&[policy(true)]).have(&[applied]);
        assert_eq!(set.tampered(&seen), []);
    }
}
