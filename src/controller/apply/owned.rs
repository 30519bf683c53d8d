//! The owned-object set: every object a reconcile wants next to the live ones it found,
//! applied in order (each only when it would change something) and, at the end, every live
//! object that is no longer wanted deleted. One loop for all kinds, so orphan cleanup needs
//! no special cases. Namespaces are not in it: they end by the deletion policy (`namespaces`).

use kube::api::{Api, ApiResource, DynamicObject};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;

use super::{apply, delete};
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
