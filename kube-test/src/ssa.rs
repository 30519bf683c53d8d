//! managedFields bookkeeping and server-side apply.
use crate::fields::{self, Ctx, FieldSet, Path};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct Entry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: Option<String>,
    pub set: FieldSet,
}

pub fn read_entries(obj: &Value) -> Vec<Entry> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|e| Entry {
                    manager: e["manager"].as_str().unwrap_or_default().into(),
                    operation: e["operation"].as_str().unwrap_or_default().into(),
                    api_version: e["apiVersion"].as_str().unwrap_or_default().into(),
                    time: e["time"].as_str().unwrap_or_default().into(),
                    subresource: e["subresource"].as_str().map(String::from),
                    set: fields::from_fields_v1(&e["fieldsV1"]),
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn write_entries(obj: &mut Value, entries: &[Entry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.set.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager, "operation": e.operation, "apiVersion": e.api_version,
                "time": e.time, "fieldsType": "FieldsV1", "fieldsV1": fields::to_fields_v1(&e.set),
            });
            if let Some(s) = &e.subresource {
                v["subresource"] = json!(s);
            }
            v
        })
        .collect();
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            m.remove("managedFields");
        } else {
            m.insert("managedFields".into(), Value::Array(list));
        }
    }
}

/// Entries equal ignoring timestamps.
pub fn same_ownership(a: &Value, b: &Value) -> bool {
    let ea = read_entries(a);
    let eb = read_entries(b);
    ea.len() == eb.len()
        && ea.iter().zip(eb.iter()).all(|(x, y)| {
            x.manager == y.manager
                && x.operation == y.operation
                && x.subresource == y.subresource
                && x.set == y.set
        })
}

/// Which part of the object a request may touch.
#[derive(Clone, Copy, PartialEq)]
pub enum Scope {
    /// Everything (kinds without a status subresource).
    All,
    /// Everything but `.status`.
    Main,
    /// Only `.status`.
    Status,
}

/// The part of an object that field management tracks.
pub fn tracked(obj: &Value, scope: Scope) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("apiVersion");
        m.remove("kind");
        match scope {
            Scope::Main => {
                m.remove("status");
            }
            Scope::Status => m.retain(|k, _| k == "status"),
            Scope::All => {}
        }
        if let Some(md) = m.get_mut("metadata").and_then(Value::as_object_mut) {
            for k in [
                "name",
                "namespace",
                "uid",
                "resourceVersion",
                "generation",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "managedFields",
                "selfLink",
                "generateName",
            ] {
                md.remove(k);
            }
            if md.is_empty() {
                m.remove("metadata");
            }
        }
    }
    v
}

fn is_item(p: &Path) -> bool {
    p.last()
        .is_some_and(|e| e.starts_with("k:") || e.starts_with("v:"))
}

/// Record an Update-operation write by `manager` that turned `old` into `new`.
#[allow(clippy::too_many_arguments)]
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: Option<&str>,
    scope: Scope,
    ctx: &Ctx,
    api_version: &str,
    now: &str,
) {
    let mut entries = old.map(read_entries).unwrap_or_default();
    let empty = json!({});
    let old_t = old.map(|o| tracked(o, Scope::All)).unwrap_or(empty);
    let new_t = tracked(new, Scope::All);
    let old_set = fields::fields_of(&old_t, ctx);
    let new_set = fields::fields_of(&new_t, ctx);
    let scoped = fields::fields_of(&tracked(new, scope), ctx);
    let changed: FieldSet = new_set
        .iter()
        .filter(|p| {
            scoped.contains(*p)
                && (!old_set.contains(*p)
                    || (!is_item(p) && fields::get_path(&old_t, p) != fields::get_path(&new_t, p)))
        })
        .cloned()
        .collect();
    for e in entries.iter_mut() {
        e.set
            .retain(|p| new_set.contains(p) && !changed.contains(p));
    }
    if !changed.is_empty() {
        let sub = subresource.map(String::from);
        match entries
            .iter_mut()
            .find(|e| e.manager == manager && e.operation == "Update" && e.subresource == sub)
        {
            Some(e) => {
                e.set.extend(changed);
                e.time = now.into();
                e.api_version = api_version.into();
            }
            None => entries.push(Entry {
                manager: manager.into(),
                operation: "Update".into(),
                api_version: api_version.into(),
                time: now.into(),
                subresource: sub,
                set: changed,
            }),
        }
    }
    entries.retain(|e| !e.set.is_empty());
    write_entries(new, &entries);
}

/// A field owned by another manager with a different value.
#[derive(Debug, Clone)]
pub struct Conflict {
    pub manager: String,
    pub api_version: String,
    pub field: String,
}

pub fn path_string(p: &Path) -> String {
    let mut s = String::new();
    for e in p {
        if let Some(f) = e.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = e.strip_prefix("k:") {
            s.push('[');
            let m: serde_json::Map<String, Value> = serde_json::from_str(k).unwrap_or_default();
            let parts: Vec<String> = m
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{k}={}",
                        v.as_str().map(String::from).unwrap_or(v.to_string())
                    )
                })
                .collect();
            s.push_str(&parts.join(","));
            s.push(']');
        } else if let Some(v) = e.strip_prefix("v:") {
            s.push_str(&format!("[{v}]"));
        }
    }
    s
}

/// Server-side apply of `applied` onto `live` (None = create). Returns the new object
/// with managedFields updated, or the conflicts.
#[allow(clippy::too_many_arguments)]
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    subresource: Option<&str>,
    scope: Scope,
    ctx: &Ctx,
    api_version: &str,
    now: &str,
) -> Result<Value, Vec<Conflict>> {
    let base = live.cloned().unwrap_or_else(|| json!({}));
    let mut entries = read_entries(&base);
    let applied_t = tracked(applied, scope);
    let applied_set = fields::fields_of(&applied_t, ctx);
    let live_t = tracked(&base, Scope::All);
    let sub = subresource.map(String::from);
    let is_me = |e: &Entry| e.manager == manager && e.operation == "Apply" && e.subresource == sub;

    let mut conflicts = vec![];
    for e in entries
        .iter_mut()
        .filter(|e| !(e.manager == manager && e.operation == "Apply"))
    {
        let mut lost = vec![];
        for p in applied_set
            .iter()
            .filter(|p| e.set.contains(*p) && !is_item(p))
        {
            if fields::get_path(&live_t, p) != fields::get_path(&applied_t, p) {
                lost.push(p.clone());
                conflicts.push(Conflict {
                    manager: e.manager.clone(),
                    api_version: e.api_version.clone(),
                    field: path_string(p),
                });
            }
        }
        if force {
            for p in lost {
                e.set.remove(&p);
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }

    // merge the applied configuration (only the scoped part) into the live object
    let mut to_merge = applied.clone();
    if let Some(m) = to_merge.as_object_mut() {
        match scope {
            Scope::Main => {
                m.remove("status");
            }
            Scope::Status => m.retain(|k, _| {
                k == "status" || k == "metadata" || k == "apiVersion" || k == "kind"
            }),
            Scope::All => {}
        }
        if scope == Scope::Status
            && let Some(md) = m.get_mut("metadata").and_then(Value::as_object_mut)
        {
            md.retain(|k, _| k == "name" || k == "namespace");
        }
        if let Some(md) = m.get_mut("metadata").and_then(Value::as_object_mut) {
            md.remove("managedFields");
            md.remove("resourceVersion");
            md.remove("uid");
            md.remove("creationTimestamp");
        }
    }
    let mut merged = fields::merge_apply(&base, &to_merge, ctx, &mut vec![]);

    // remove fields this manager applied before, no longer applies, and nobody else owns
    let prev: FieldSet = entries
        .iter()
        .find(|e| is_me(e))
        .map(|e| e.set.clone())
        .unwrap_or_default();
    let mut removed: Vec<&Path> = prev.iter().filter(|p| !applied_set.contains(*p)).collect();
    // parents first; a removed parent takes its children with it
    removed.sort_by_key(|p| p.len());
    let mut gone: Vec<&Path> = vec![];
    for r in removed {
        if gone.iter().any(|g| r.starts_with(g)) {
            continue;
        }
        let owned_elsewhere = entries
            .iter()
            .filter(|e| !is_me(e))
            .any(|e| e.set.iter().any(|q| q.starts_with(r)));
        let still_applied = applied_set.iter().any(|q| q.starts_with(r));
        if !owned_elsewhere && !still_applied {
            fields::remove_path(&mut merged, r);
            gone.push(r);
        }
    }
    // A struct whose every field was removed goes too (as structured-merge-diff leaves no
    // empty map behind), unless the applied object still has it: removing `spec.migration`
    // must not leave `migration: {targetRef: {}}` for defaulting and validation to trip on.
    for r in &gone {
        for depth in (1..r.len()).rev() {
            let parent = &r[..depth];
            if !parent.last().is_some_and(|e| e.starts_with("f:"))
                || fields::get_path(&applied_t, parent).is_some()
            {
                break;
            }
            match fields::get_path(&merged, parent) {
                Some(Value::Object(m)) if m.is_empty() => fields::remove_path(&mut merged, parent),
                _ => break,
            }
        }
    }

    match entries.iter_mut().find(|e| is_me(e)) {
        Some(e) => {
            if e.set != applied_set {
                e.time = now.into();
            }
            e.set = applied_set;
            e.api_version = api_version.into();
        }
        None => entries.push(Entry {
            manager: manager.into(),
            operation: "Apply".into(),
            api_version: api_version.into(),
            time: now.into(),
            subresource: sub,
            set: applied_set,
        }),
    }
    // drop ownership of fields that no longer exist
    let merged_set = fields::fields_of(&tracked(&merged, Scope::All), ctx);
    for e in entries.iter_mut() {
        e.set.retain(|p| merged_set.contains(p));
    }
    entries.retain(|e| !e.set.is_empty());
    write_entries(&mut merged, &entries);
    Ok(merged)
}
