//! The Tenant documents the plugin server-side applies.
//!
//! Server-side apply removes a field its manager applied before and leaves out now. So a
//! change (say `--display-name`) is applied together with every field the plugin applied
//! earlier (its `quotaRef`, owners, a `state: Suspended`), at their current values, read
//! from the manager's entry in `managedFields`. Fields other managers own (a GitOps tool's,
//! the operator's) are neither sent nor taken over.

use serde_json::{Map, Value, json};

use crate::cluster::FIELD_MANAGER;

/// One change to `spec`: a top-level field and its new value.
pub type Change = (&'static str, Value);

/// The apply document for tenant `name`: what the plugin already applies on `live` (if it
/// exists), with `changes` on top.
pub fn document(name: &str, live: Option<&Value>, changes: &[Change]) -> Value {
    let mut spec = live
        .and_then(|l| owned(l).get("spec").cloned())
        .unwrap_or_else(|| json!({}));
    for (field, value) in changes {
        spec[*field] = value.clone();
    }
    json!({
        "apiVersion": "landlord.dev/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": name},
        "spec": spec,
    })
}

/// The fields of `live` the plugin's field manager applied, with their live values.
pub fn owned(live: &Value) -> Value {
    let entries = live
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mine = entries.iter().find(|e| {
        e["manager"] == FIELD_MANAGER
            && e["operation"] == "Apply"
            && e.get("subresource").is_none_or(|s| s == "")
    });
    mine.and_then(|e| e["fieldsV1"].as_object())
        .and_then(|fields| extract(fields, live))
        .unwrap_or_else(|| json!({}))
}

/// The part of `live` a `fieldsV1` set names: `f:<field>` for object fields, `k:{..}` for
/// items of keyed lists, `v:<value>` for items of sets; an empty set is a whole leaf.
fn extract(fields: &Map<String, Value>, live: &Value) -> Option<Value> {
    let leaf = |child: &Value| child.as_object().is_none_or(|c| c.keys().all(|k| k == "."));
    match live {
        Value::Object(object) => {
            let mut out = Map::new();
            for (key, child) in fields {
                let Some(field) = key.strip_prefix("f:") else {
                    continue;
                };
                let Some(value) = object.get(field) else {
                    continue;
                };
                let picked = if leaf(child) {
                    Some(value.clone())
                } else {
                    extract(child.as_object()?, value)
                };
                if let Some(p) = picked {
                    out.insert(field.to_string(), p);
                }
            }
            Some(Value::Object(out))
        }
        Value::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                for (key, child) in fields {
                    if let Some(k) = key.strip_prefix("k:") {
                        let Ok(Value::Object(wanted)) = serde_json::from_str::<Value>(k) else {
                            continue;
                        };
                        if !wanted.iter().all(|(f, v)| item.get(f) == Some(v)) {
                            continue;
                        }
                        let mut picked = if leaf(child) {
                            item.clone()
                        } else {
                            extract(child.as_object()?, item)?
                        };
                        // A keyed item must carry its keys to be applied.
                        for (f, v) in &wanted {
                            picked[f] = v.clone();
                        }
                        out.push(picked);
                    } else if let Some(v) = key.strip_prefix("v:")
                        && serde_json::from_str::<Value>(v).ok().as_ref() == Some(item)
                    {
                        out.push(item.clone());
                    }
                }
            }
            Some(Value::Array(out))
        }
        other => Some(other.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tenant the plugin created with a plan, an owner and a namespace, then suspended; a
    /// GitOps tool added a namespace and features; the operator wrote its status.
    fn live() -> Value {
        json!({
            "apiVersion": "landlord.dev/v1alpha1",
            "kind": "Tenant",
            "metadata": {
                "name": "acme",
                "managedFields": [
                    {"manager": "kubectl-tenant", "operation": "Apply", "fieldsV1": {"f:spec": {
                        "f:quotaRef": {},
                        "f:state": {},
                        "f:owners": {},
                        "f:namespaces": {"k:{\"name\":\"prod\"}": {".": {}, "f:name": {}}},
                    }}},
                    {"manager": "argocd", "operation": "Apply", "fieldsV1": {"f:spec": {
                        "f:features": {},
                        "f:namespaces": {"k:{\"name\":\"ci\"}": {".": {}, "f:name": {}, "f:labels": {}}},
                    }}},
                    {"manager": "landlord", "operation": "Apply", "subresource": "status",
                     "fieldsV1": {"f:status": {"f:phase": {}}}},
                ],
            },
            "spec": {
                "quotaRef": "pro",
                "state": "Suspended",
                "deletionPolicy": "Archive",
                "owners": [{"kind": "Group", "name": "acme-admins"}],
                "namespaces": [{"name": "ci", "labels": {"a": "b"}}, {"name": "prod"}],
                "features": ["sso"],
            },
            "status": {"phase": "Suspended"},
        })
    }

    #[test]
    fn a_change_keeps_every_field_the_plugin_applied_before_and_no_other() {
        let doc = document("acme", Some(&live()), &[("displayName", json!("ACME"))]);
        assert_eq!(
            doc,
            json!({
                "apiVersion": "landlord.dev/v1alpha1",
                "kind": "Tenant",
                "metadata": {"name": "acme"},
                "spec": {
                    "quotaRef": "pro",
                    "state": "Suspended",
                    "owners": [{"kind": "Group", "name": "acme-admins"}],
                    "namespaces": [{"name": "prod"}],
                    "displayName": "ACME",
                },
            })
        );
    }

    #[test]
    fn a_change_replaces_what_the_plugin_applied_for_that_field() {
        let doc = document("acme", Some(&live()), &[("state", json!("Active"))]);
        assert_eq!(doc["spec"]["state"], "Active");
        assert_eq!(doc["spec"]["quotaRef"], "pro");
    }

    #[test]
    fn a_new_tenant_or_one_the_plugin_never_applied_gets_only_the_changes() {
        let fresh = document("acme", None, &[("quotaRef", json!("free"))]);
        assert_eq!(fresh["spec"], json!({"quotaRef": "free"}));
        let mut foreign = live();
        foreign["metadata"]["managedFields"][0]["manager"] = json!("kubectl");
        let doc = document("acme", Some(&foreign), &[("state", json!("Hibernated"))]);
        assert_eq!(doc["spec"], json!({"state": "Hibernated"}));
    }

    #[test]
    fn keyed_and_set_items_are_picked_by_key_and_value() {
        let fields = json!({"f:items": {"k:{\"name\":\"b\"}": {".": {}, "f:x": {}}},
                            "f:tags": {"v:\"two\"": {}}});
        let live = json!({"items": [{"name": "a", "x": 1}, {"name": "b", "x": 2, "y": 3}],
                          "tags": ["one", "two"], "other": 1});
        assert_eq!(
            extract(fields.as_object().unwrap(), &live),
            Some(json!({"items": [{"name": "b", "x": 2}], "tags": ["two"]}))
        );
    }
}
