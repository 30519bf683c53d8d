//! Server-side apply that writes only when something would change.
//!
//! Every object carries the hash of what Landlord last applied (`landlord.dev/applied`). An
//! apply is skipped when the live object has that hash and still contains every field we want
//! (someone else's edits to our fields show up as a difference and are put back). A hash
//! change catches fields we stopped wanting, which a containment check alone would miss.

use std::fmt::Debug;

pub mod namespaces;
pub mod owned;
pub mod rollout;

pub use owned::{OwnedSet, Tampered};

use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::Error;
use crate::naming::{APPLIED, FIELD_MANAGER};

/// Hash `object` and record it in its annotations.
pub fn stamp<K: Resource + Serialize>(object: &mut K) {
    let json = serde_json::to_vec(object).expect("Kubernetes objects serialise");
    let digest = Sha256::digest(&json);
    let hash: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    object.annotations_mut().insert(APPLIED.into(), hash);
}

/// Whether `live` already holds everything in `desired`.
pub fn contains(live: &Value, desired: &Value) -> bool {
    match (live, desired) {
        (Value::Object(l), Value::Object(d)) => d
            .iter()
            .all(|(k, v)| v.is_null() || l.get(k).is_some_and(|lv| contains(lv, v))),
        (Value::Array(l), Value::Array(d)) => {
            l.len() == d.len() && l.iter().zip(d).all(|(lv, dv)| contains(lv, dv))
        }
        (Value::Number(l), Value::String(d)) | (Value::String(d), Value::Number(l)) => {
            same_quantity(&l.to_string(), d)
        }
        (Value::String(l), Value::String(d)) => l == d || same_quantity(l, d),
        (l, d) => l == d,
    }
}

/// The API server stores quantities in canonical form ("1000" comes back as "1k"), so two
/// strings that are the same quantity count as equal.
fn same_quantity(a: &str, b: &str) -> bool {
    match (
        crate::quantity::parse_milli(a),
        crate::quantity::parse_milli(b),
    ) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// The `landlord.dev/applied` hash an object carries.
fn applied_hash(v: &Value) -> Option<&Value> {
    v.pointer(&format!(
        "/metadata/annotations/{}",
        APPLIED.replace('/', "~1")
    ))
}

/// Whether applying `desired` (already stamped) over `live` would change anything.
pub fn needs_apply<K: Serialize>(desired: &K, live: Option<&K>) -> bool {
    let Some(live) = live else { return true };
    let (desired, live) = (
        serde_json::to_value(desired).expect("serialises"),
        serde_json::to_value(live).expect("serialises"),
    );
    applied_hash(&live) != applied_hash(&desired) || !contains(&live, &desired)
}

/// Whether someone else changed `live`: it carries the hash of `desired` (already stamped),
/// so Landlord applied exactly this, yet no longer holds every field of it.
pub fn changed_by_others<K: Serialize>(desired: &K, live: &K) -> bool {
    let (desired, live) = (
        serde_json::to_value(desired).expect("serialises"),
        serde_json::to_value(live).expect("serialises"),
    );
    applied_hash(&live) == applied_hash(&desired) && !contains(&live, &desired)
}

/// Apply `desired` unless `live` already matches it. Returns whether a write was sent.
pub async fn apply<K>(
    api: &Api<K>,
    mut desired: K,
    live: Option<&K>,
    types: &K::DynamicType,
) -> Result<bool, Error>
where
    K: Resource + Clone + Debug + Serialize + DeserializeOwned,
{
    stamp(&mut desired);
    if !needs_apply(&desired, live) {
        return Ok(false);
    }
    let name = desired.name_any();
    let mut value = serde_json::to_value(&desired).expect("serialises");
    value["apiVersion"] = K::api_version(types).into();
    value["kind"] = K::kind(types).into();
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(&name, &params, &Patch::Apply(&value))
        .await
        .map_err(Error::Apply)?;
    Ok(true)
}

/// Delete `name`, treating "already gone" as done.
pub async fn delete<K>(api: &Api<K>, name: &str) -> Result<(), Error>
where
    K: Resource + Clone + Debug + DeserializeOwned,
{
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(Error::Delete(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn containment_ignores_extra_live_fields_but_not_list_changes() {
        let live = json!({"metadata": {"name": "a", "uid": "1"}, "spec": {"hard": {"pods": "3"}, "x": [1, 2]}});
        assert!(contains(
            &live,
            &json!({"metadata": {"name": "a"}, "spec": {"hard": {"pods": "3"}}})
        ));
        assert!(contains(&live, &json!({"spec": {"hard": {"pods": 3}}})));
        assert!(!contains(&live, &json!({"spec": {"hard": {"pods": "4"}}})));
        assert!(!contains(&live, &json!({"spec": {"x": [1]}})));
        assert!(contains(
            &json!({"hard": {"requests.storage": "1k"}}),
            &json!({"hard": {"requests.storage": "1000"}})
        ));
        assert!(!contains(&json!({"name": "a"}), &json!({"name": "b"})));
    }

    #[test]
    fn a_stamped_object_needs_no_apply_over_itself() {
        use k8s_openapi::api::core::v1::ConfigMap;
        let mut cm = ConfigMap {
            data: Some([("a".to_string(), "b".to_string())].into()),
            ..Default::default()
        };
        cm.metadata.name = Some("c".into());
        stamp(&mut cm);
        assert!(!needs_apply(&cm, Some(&cm.clone())));
        let mut changed = cm.clone();
        changed.data = Some([("a".to_string(), "z".to_string())].into());
        stamp(&mut changed);
        assert!(needs_apply(&changed, Some(&cm)));
        assert!(needs_apply(&cm, None));
    }

    /// An edit to an object Landlord applied is someone else's; a change of what Landlord
    /// wants is not.
    #[test]
    fn an_edit_under_our_hash_is_someone_elses() {
        use k8s_openapi::api::core::v1::ConfigMap;
        let mut cm = ConfigMap {
            data: Some([("a".to_string(), "b".to_string())].into()),
            ..Default::default()
        };
        stamp(&mut cm);
        assert!(!changed_by_others(&cm, &cm.clone()));
        let mut edited = cm.clone();
        edited.data = Some([("a".to_string(), "z".to_string())].into());
        assert!(changed_by_others(&cm, &edited));
        let mut wanted = edited.clone();
        stamp(&mut wanted);
        assert!(!changed_by_others(&wanted, &cm));
    }
}
