//! Hibernation: every ownerless Deployment, StatefulSet and ReplicaSet in a tenant's
//! namespaces scaled to 0 through the scale subresource, every CronJob suspended, and each
//! object's previous value remembered on the object itself (an annotation), so that an
//! operator restarted in between loses nothing. Waking gives every remembered value back
//! and removes the annotations.
//!
//! Who wins when an owner (or a GitOps tool) sets `replicas` while the tenant sleeps: the
//! owner. Landlord does not scale a workload down again once it sleeps (the quota's `pods: 0`
//! keeps any pod from starting), so nothing fights in a write loop; on waking, a workload
//! whose replicas are no longer 0 keeps the owner's value and only loses the annotation. A
//! workload created while hibernated is left as it is. An HPA does not scale a target at 0.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::CronJob;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;

use super::Error;
use crate::naming::FIELD_MANAGER;

/// The replicas a workload had before it was put to sleep.
pub const REPLICAS: &str = "landlord.dev/hibernated-replicas";
/// A CronJob's `spec.suspend` before it was suspended.
pub const SUSPEND: &str = "landlord.dev/hibernated-suspend";

/// What to write to one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Remember `value` in `annotation`, then set the object asleep.
    Sleep {
        annotation: &'static str,
        value: String,
    },
    /// Give back the remembered `value`, then drop the annotation.
    Wake {
        annotation: &'static str,
        value: String,
    },
    /// The owner changed it while it slept: only drop the annotation.
    Forget { annotation: &'static str },
}

/// For a scalable workload with `replicas` now and `remembered` in its annotation.
pub fn scalable(
    owned: bool,
    replicas: i32,
    remembered: Option<&str>,
    waking: bool,
) -> Option<Change> {
    if owned {
        return None;
    }
    match (waking, remembered) {
        // Remembered already: asleep, or an owner woke it by hand (their choice stands).
        (false, Some(_)) => None,
        (false, None) if replicas == 0 => None,
        (false, None) => Some(Change::Sleep {
            annotation: REPLICAS,
            value: replicas.to_string(),
        }),
        (true, None) => None,
        (true, Some(value)) if replicas == 0 => Some(Change::Wake {
            annotation: REPLICAS,
            value: value.to_string(),
        }),
        (true, Some(_)) => Some(Change::Forget {
            annotation: REPLICAS,
        }),
    }
}

/// For a CronJob with `suspend` now and `remembered` in its annotation.
pub fn cron(suspend: bool, remembered: Option<&str>, waking: bool) -> Option<Change> {
    match (waking, remembered) {
        (false, Some(_)) => None,
        (false, None) if suspend => None,
        (false, None) => Some(Change::Sleep {
            annotation: SUSPEND,
            value: "false".into(),
        }),
        (true, None) => None,
        (true, Some(value)) if suspend => Some(Change::Wake {
            annotation: SUSPEND,
            value: value.to_string(),
        }),
        (true, Some(_)) => Some(Change::Forget {
            annotation: SUSPEND,
        }),
    }
}

/// An exported object as it was before a hibernation put it to sleep: the remembered
/// replicas (Deployment, StatefulSet, ReplicaSet) or CronJob `suspend` given back and the
/// annotation dropped, as waking would. A Move's cutover copies workloads this way, so that
/// the target runs what the source ran. Anything else comes back unchanged.
pub fn woken(obj: &serde_json::Value) -> serde_json::Value {
    let mut out = obj.clone();
    let kind = obj.get("kind").and_then(|k| k.as_str()).unwrap_or_default();
    let (annotation, field) = match kind {
        "Deployment" | "StatefulSet" | "ReplicaSet" => (REPLICAS, "replicas"),
        "CronJob" => (SUSPEND, "suspend"),
        _ => return out,
    };
    let Some(remembered) = obj
        .pointer(&format!(
            "/metadata/annotations/{}",
            annotation.replace('/', "~1")
        ))
        .and_then(|v| v.as_str())
    else {
        return out;
    };
    let asleep = match field {
        "replicas" => obj.pointer("/spec/replicas").and_then(|r| r.as_i64()) == Some(0),
        _ => obj.pointer("/spec/suspend").and_then(|s| s.as_bool()) == Some(true),
    };
    if asleep {
        let value = match field {
            "replicas" => remembered.parse::<i64>().map(serde_json::Value::from).ok(),
            _ => Some(serde_json::Value::Bool(remembered == "true")),
        };
        if let (Some(value), Some(spec)) =
            (value, out.get_mut("spec").and_then(|s| s.as_object_mut()))
        {
            spec.insert(field.to_string(), value);
        }
    }
    if let Some(annotations) = out
        .pointer_mut("/metadata/annotations")
        .and_then(|a| a.as_object_mut())
    {
        annotations.remove(annotation);
        if annotations.is_empty()
            && let Some(meta) = out.get_mut("metadata").and_then(|m| m.as_object_mut())
        {
            meta.remove("annotations");
        }
    }
    out
}

/// Put every workload of `namespaces` to sleep (`waking == false`) or wake them. Returns
/// how many objects were changed.
pub async fn run(client: &Client, namespaces: &[String], waking: bool) -> Result<usize, Error> {
    let mut changed = 0;
    for ns in namespaces {
        changed += scale_all::<Deployment>(client, ns, waking, |d| {
            d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
        })
        .await?;
        changed += scale_all::<StatefulSet>(client, ns, waking, |s| {
            s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
        })
        .await?;
        changed += scale_all::<ReplicaSet>(client, ns, waking, |r| {
            r.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
        })
        .await?;
        let api: Api<CronJob> = Api::namespaced(client.clone(), ns);
        for job in list(&api).await? {
            let suspend = job.spec.as_ref().and_then(|s| s.suspend).unwrap_or(false);
            if let Some(change) = cron(
                suspend,
                job.annotations().get(SUSPEND).map(String::as_str),
                waking,
            ) {
                // Asleep: suspended. Awake: the CronJob's own setting, as remembered.
                let body = |value: &str| json!({"spec": {"suspend": !waking || value == "true"}});
                write(&api, &job.name_any(), &change, body, false).await?;
                changed += 1;
            }
        }
    }
    Ok(changed)
}

async fn scale_all<K>(
    client: &Client,
    ns: &str,
    waking: bool,
    replicas: impl Fn(&K) -> i32,
) -> Result<usize, Error>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + serde::Serialize,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    let mut changed = 0;
    for object in list(&api).await? {
        let owned = !object.owner_references().is_empty();
        let remembered = object.annotations().get(REPLICAS).map(String::as_str);
        if let Some(change) = scalable(owned, replicas(&object), remembered, waking) {
            write(&api, &object.name_any(), &change, |value| json!({"spec": {"replicas": if waking { value.parse::<i32>().unwrap_or(1) } else { 0 }}}), true).await?;
            changed += 1;
        }
    }
    Ok(changed)
}

async fn list<K>(api: &Api<K>) -> Result<Vec<K>, Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    Ok(api
        .list(&ListParams::default())
        .await
        .map_err(Error::Observe)?
        .items)
}

/// Remember first, then change (sleeping); change first, then forget (waking): an
/// interruption anywhere leaves the annotation wherever a value is still to be given back.
async fn write<K>(
    api: &Api<K>,
    name: &str,
    change: &Change,
    body: impl Fn(&str) -> serde_json::Value,
    scale: bool,
) -> Result<(), Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let params = PatchParams::apply(FIELD_MANAGER);
    let merge = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    let annotate = |value: Option<&str>, annotation: &str| {
        json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            "metadata": {"name": name, "annotations": value.map(|v| json!({annotation: v})).unwrap_or(json!({}))},
        })
    };
    let set = |value: &str| {
        let patch = Patch::Merge(body(value));
        async move {
            if scale {
                api.patch_scale(name, &merge, &patch).await.map(|_| ())
            } else {
                api.patch(name, &merge, &patch).await.map(|_| ())
            }
        }
    };
    match change {
        Change::Sleep { annotation, value } => {
            api.patch(
                name,
                &params.clone().force(),
                &Patch::Apply(annotate(Some(value), annotation)),
            )
            .await
            .map_err(Error::Apply)?;
            set(value).await.map_err(Error::Apply)?;
        }
        Change::Wake { annotation, value } => {
            set(value).await.map_err(Error::Apply)?;
            api.patch(
                name,
                &params.clone().force(),
                &Patch::Apply(annotate(None, annotation)),
            )
            .await
            .map_err(Error::Apply)?;
        }
        Change::Forget { annotation } => {
            api.patch(
                name,
                &params.clone().force(),
                &Patch::Apply(annotate(None, annotation)),
            )
            .await
            .map_err(Error::Apply)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn woken_gives_back_what_hibernation_remembered_and_drops_the_annotation() {
        let deployment = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "annotations": {REPLICAS: "3"}}, "spec": {"replicas": 0}});
        assert_eq!(
            woken(&deployment),
            serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web"}, "spec": {"replicas": 3}})
        );
        // The owner scaled it by hand while it slept: their value stands.
        let scaled = serde_json::json!({"kind": "StatefulSet",
            "metadata": {"annotations": {REPLICAS: "3", "team": "a"}}, "spec": {"replicas": 5}});
        assert_eq!(
            woken(&scaled),
            serde_json::json!({"kind": "StatefulSet", "metadata": {"annotations": {"team": "a"}}, "spec": {"replicas": 5}})
        );
        let cron = serde_json::json!({"kind": "CronJob",
            "metadata": {"annotations": {SUSPEND: "false"}}, "spec": {"suspend": true}});
        assert_eq!(
            woken(&cron),
            serde_json::json!({"kind": "CronJob", "metadata": {}, "spec": {"suspend": false}})
        );
        let plain =
            serde_json::json!({"kind": "ConfigMap", "metadata": {"annotations": {REPLICAS: "1"}}});
        assert_eq!(woken(&plain), plain);
    }

    use super::*;

    #[test]
    fn sleeping_remembers_once_and_skips_what_is_owned_or_already_at_zero() {
        assert_eq!(
            scalable(false, 3, None, false),
            Some(Change::Sleep {
                annotation: REPLICAS,
                value: "3".into()
            })
        );
        assert_eq!(scalable(false, 0, Some("3"), false), None);
        // An owner scaled it up while asleep: not scaled down again (no write loop).
        assert_eq!(scalable(false, 3, Some("2"), false), None);
        assert_eq!(scalable(true, 3, None, false), None);
        assert_eq!(scalable(false, 0, None, false), None);
    }

    #[test]
    fn waking_gives_back_exactly_what_was_remembered_unless_the_owner_changed_it() {
        assert_eq!(
            scalable(false, 0, Some("3"), true),
            Some(Change::Wake {
                annotation: REPLICAS,
                value: "3".into()
            })
        );
        assert_eq!(
            scalable(false, 5, Some("3"), true),
            Some(Change::Forget {
                annotation: REPLICAS
            })
        );
        // Created while hibernated (nothing remembered): left as it is.
        assert_eq!(scalable(false, 0, None, true), None);
    }

    #[test]
    fn cron_jobs_are_suspended_and_given_back_their_own_setting() {
        assert_eq!(
            cron(false, None, false),
            Some(Change::Sleep {
                annotation: SUSPEND,
                value: "false".into()
            })
        );
        assert_eq!(
            cron(true, None, false),
            None,
            "already suspended by its owner: nothing to remember"
        );
        assert_eq!(
            cron(true, Some("false"), true),
            Some(Change::Wake {
                annotation: SUSPEND,
                value: "false".into()
            })
        );
        assert_eq!(
            cron(false, Some("false"), true),
            Some(Change::Forget {
                annotation: SUSPEND
            })
        );
        assert_eq!(cron(true, None, true), None);
    }
}
