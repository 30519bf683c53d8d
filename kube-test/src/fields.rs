//! Field paths and list semantics shared by strategic merge patch and
//! server-side apply (managedFields in the `FieldsV1` format).
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

/// How a list is merged.
#[derive(Debug, Clone, PartialEq)]
pub enum ListKind {
    Atomic,
    Set,
    Map(Vec<String>),
}

/// Per-object knowledge of list types: built-in table or the CRD schema.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub kind: &'a str,
    pub schema: Option<&'a Value>,
}

impl Ctx<'_> {
    /// `names` is the path of field names from the object root (list items add nothing).
    pub fn list_kind(&self, names: &[String]) -> ListKind {
        let keys = |k: &[&str]| ListKind::Map(k.iter().map(|s| s.to_string()).collect());
        if names.first().map(String::as_str) == Some("metadata") {
            return match names.get(1).map(String::as_str) {
                Some("finalizers") if names.len() == 2 => ListKind::Set,
                Some("ownerReferences") if names.len() == 2 => keys(&["uid"]),
                _ => ListKind::Atomic,
            };
        }
        if let Some(schema) = self.schema {
            let mut node = schema;
            for n in names {
                while node.get("type").and_then(Value::as_str) == Some("array") {
                    node = node.get("items").unwrap_or(&Value::Null);
                }
                node = match node.get("properties").and_then(|p| p.get(n)) {
                    Some(x) => x,
                    None => match node.get("additionalProperties") {
                        Some(x) if x.is_object() => x,
                        _ => return ListKind::Atomic,
                    },
                };
            }
            return match node.get("x-kubernetes-list-type").and_then(Value::as_str) {
                Some("set") => ListKind::Set,
                Some("map") => ListKind::Map(
                    node.get("x-kubernetes-list-map-keys")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_default(),
                ),
                _ => ListKind::Atomic,
            };
        }
        let last = names.last().map(String::as_str).unwrap_or_default();
        let parent = if names.len() >= 2 {
            names[names.len() - 2].as_str()
        } else {
            ""
        };
        match last {
            "containers"
            | "initContainers"
            | "ephemeralContainers"
            | "env"
            | "volumes"
            | "imagePullSecrets" => keys(&["name"]),
            "volumeMounts" => keys(&["mountPath"]),
            "volumeDevices" => keys(&["devicePath"]),
            "conditions" => keys(&["type"]),
            "ports" if self.kind == "Service" && parent == "spec" => keys(&["port", "protocol"]),
            "ports"
                if matches!(
                    parent,
                    "containers" | "initContainers" | "ephemeralContainers"
                ) =>
            {
                keys(&["containerPort", "protocol"])
            }
            "finalizers" if self.kind == "Namespace" => ListKind::Set,
            _ => ListKind::Atomic,
        }
    }
}

pub type Path = Vec<String>;
pub type FieldSet = BTreeSet<Path>;

/// `k:{...}` path element for a list-map item (None when it has no key fields).
pub fn item_key(item: &Value, keys: &[String]) -> Option<String> {
    let mut parts = vec![];
    for k in keys {
        if let Some(v) = item.get(k) {
            parts.push(format!(
                "{}:{}",
                serde_json::to_string(k).unwrap(),
                serde_json::to_string(v).unwrap()
            ));
        }
    }
    if parts.is_empty() {
        None
    } else {
        Some(format!("k:{{{}}}", parts.join(",")))
    }
}

/// Collect the field paths set in `v`.
pub fn fields_of(v: &Value, ctx: &Ctx) -> FieldSet {
    let mut out = FieldSet::new();
    walk(v, ctx, &mut vec![], &mut vec![], &mut out);
    out
}

fn walk(v: &Value, ctx: &Ctx, path: &mut Path, names: &mut Vec<String>, out: &mut FieldSet) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, c) in m {
                path.push(format!("f:{k}"));
                names.push(k.clone());
                walk(c, ctx, path, names, out);
                names.pop();
                path.pop();
            }
        }
        Value::Array(items) if !path.is_empty() => match ctx.list_kind(names) {
            ListKind::Atomic => {
                out.insert(path.clone());
            }
            ListKind::Set => {
                for it in items {
                    let mut p = path.clone();
                    p.push(format!("v:{}", serde_json::to_string(it).unwrap()));
                    out.insert(p);
                }
                if items.is_empty() {
                    out.insert(path.clone());
                }
            }
            ListKind::Map(keys) => {
                if items.is_empty() {
                    out.insert(path.clone());
                }
                for it in items {
                    match item_key(it, &keys) {
                        Some(k) => {
                            path.push(k);
                            out.insert(path.clone());
                            if let Value::Object(m) = it {
                                for (f, c) in m {
                                    path.push(format!("f:{f}"));
                                    names.push(f.clone());
                                    walk(c, ctx, path, names, out);
                                    names.pop();
                                    path.pop();
                                }
                            }
                            path.pop();
                        }
                        None => {
                            out.insert(path.clone());
                        }
                    }
                }
            }
        },
        _ => {
            if !path.is_empty() {
                out.insert(path.clone());
            }
        }
    }
}

/// Serialise a field set as a FieldsV1 tree.
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for p in set {
        let mut node = &mut root;
        for (i, e) in p.iter().enumerate() {
            let child = node.entry(e.clone()).or_insert_with(|| json!({}));
            let m = child.as_object_mut().unwrap();
            if i == p.len() - 1 && !m.is_empty() {
                m.insert(".".into(), json!({}));
            }
            node = m;
        }
    }
    // an element that is a member and has children got "." above only if the
    // children came first; fix up members inserted before their children.
    fn fix(v: &mut Map<String, Value>, set: &FieldSet, path: &mut Path) {
        for (k, c) in v.iter_mut() {
            if k == "." {
                continue;
            }
            path.push(k.clone());
            if let Value::Object(m) = c {
                if !m.is_empty() && set.contains(path) && !m.contains_key(".") {
                    m.insert(".".into(), json!({}));
                }
                fix(m, set, path);
            }
            path.pop();
        }
    }
    fix(&mut root, set, &mut vec![]);
    Value::Object(root)
}

pub fn from_fields_v1(v: &Value) -> FieldSet {
    fn rec(v: &Value, path: &mut Path, out: &mut FieldSet) {
        if let Value::Object(m) = v {
            if m.is_empty() && !path.is_empty() {
                out.insert(path.clone());
            }
            for (k, c) in m {
                if k == "." {
                    out.insert(path.clone());
                    continue;
                }
                path.push(k.clone());
                rec(c, path, out);
                path.pop();
            }
        }
    }
    let mut out = FieldSet::new();
    rec(v, &mut vec![], &mut out);
    out
}

fn find_item(items: &[Value], elem: &str) -> Option<usize> {
    if let Some(k) = elem.strip_prefix("k:") {
        let want: Map<String, Value> = serde_json::from_str(k).ok()?;
        items
            .iter()
            .position(|it| want.iter().all(|(f, v)| it.get(f) == Some(v)))
    } else if let Some(v) = elem.strip_prefix("v:") {
        let want: Value = serde_json::from_str(v).ok()?;
        items.iter().position(|it| *it == want)
    } else {
        None
    }
}

pub fn get_path<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = v;
    for e in path {
        cur = if let Some(f) = e.strip_prefix("f:") {
            cur.get(f)?
        } else {
            let items = cur.as_array()?;
            &items[find_item(items, e)?]
        };
    }
    Some(cur)
}

pub fn remove_path(v: &mut Value, path: &[String]) {
    let Some((last, parent)) = path.split_last() else {
        return;
    };
    let mut cur = v;
    for e in parent {
        cur = if let Some(f) = e.strip_prefix("f:") {
            match cur.get_mut(f) {
                Some(x) => x,
                None => return,
            }
        } else {
            let Some(items) = cur.as_array_mut() else {
                return;
            };
            let Some(i) = find_item(items, e) else { return };
            &mut items[i]
        };
    }
    if let Some(f) = last.strip_prefix("f:") {
        if let Some(m) = cur.as_object_mut() {
            m.remove(f);
        }
    } else if let Some(items) = cur.as_array_mut()
        && let Some(i) = find_item(items, last)
    {
        items.remove(i);
    }
}

/// Merge an applied configuration into the live object (SSA merge).
pub fn merge_apply(live: &Value, applied: &Value, ctx: &Ctx, names: &mut Vec<String>) -> Value {
    match (live, applied) {
        (Value::Object(l), Value::Object(a)) => {
            let mut out = l.clone();
            for (k, av) in a {
                if av.is_null() {
                    out.remove(k);
                    continue;
                }
                names.push(k.clone());
                let merged = match l.get(k) {
                    Some(lv) => merge_apply(lv, av, ctx, names),
                    None => av.clone(),
                };
                names.pop();
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(a)) => match ctx.list_kind(names) {
            ListKind::Atomic => applied.clone(),
            ListKind::Set => {
                let mut out = l.clone();
                for x in a {
                    if !out.contains(x) {
                        out.push(x.clone());
                    }
                }
                Value::Array(out)
            }
            ListKind::Map(keys) => {
                let mut out = l.clone();
                for it in a {
                    let pos = item_key(it, &keys).and_then(|k| find_item(&out, &k));
                    match pos {
                        Some(i) => out[i] = merge_apply(&out[i], it, ctx, names),
                        None => out.push(it.clone()),
                    }
                }
                Value::Array(out)
            }
        },
        _ => applied.clone(),
    }
}

/// Strategic merge patch for built-in kinds.
pub fn strategic_merge(live: &Value, patch: &Value, ctx: &Ctx, names: &mut Vec<String>) -> Value {
    match (live, patch) {
        (_, Value::Object(p)) if p.get("$patch").and_then(Value::as_str) == Some("replace") => {
            let mut p = p.clone();
            p.remove("$patch");
            Value::Object(p)
        }
        (Value::Object(l), Value::Object(p)) => {
            let mut out = l.clone();
            for (k, pv) in p {
                if k.starts_with("$setElementOrder/") || k == "$retainKeys" {
                    continue;
                }
                if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
                    if let (Some(Value::Array(cur)), Some(del)) =
                        (out.get_mut(field), pv.as_array())
                    {
                        cur.retain(|x| !del.contains(x));
                    }
                    continue;
                }
                if pv.is_null() {
                    out.remove(k);
                    continue;
                }
                names.push(k.clone());
                let merged = match l.get(k) {
                    Some(lv) => strategic_merge(lv, pv, ctx, names),
                    None => strip_directives(pv),
                };
                names.pop();
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(p)) => match ctx.list_kind(names) {
            ListKind::Atomic => strip_directives(patch),
            ListKind::Set => {
                let mut out = l.clone();
                for x in p {
                    if !out.contains(x) {
                        out.push(x.clone());
                    }
                }
                Value::Array(out)
            }
            ListKind::Map(keys) => {
                let key = &keys[..1];
                let mut out = l.clone();
                for it in p {
                    let pos = item_key(it, key).and_then(|k| find_item(&out, &k));
                    let directive = it.get("$patch").and_then(Value::as_str);
                    match (pos, directive) {
                        (Some(i), Some("delete")) => {
                            out.remove(i);
                        }
                        (None, Some("delete")) => {}
                        (Some(i), _) => out[i] = strategic_merge(&out[i], it, ctx, names),
                        (None, _) => out.push(strip_directives(it)),
                    }
                }
                Value::Array(out)
            }
        },
        _ => strip_directives(patch),
    }
}

fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, v)| !k.starts_with('$') && !v.is_null())
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        _ => v.clone(),
    }
}

/// Paths of list-map items whose keys repeat an earlier item's (SSA rejects them).
pub fn duplicate_keys(v: &Value, ctx: &Ctx) -> Vec<String> {
    fn rec(v: &Value, ctx: &Ctx, names: &mut Vec<String>, path: &str, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, c) in m {
                    names.push(k.clone());
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    rec(c, ctx, names, &p, out);
                    names.pop();
                }
            }
            Value::Array(items) => {
                if let ListKind::Map(keys) = ctx.list_kind(names) {
                    let mut seen = vec![];
                    for (i, it) in items.iter().enumerate() {
                        let k = item_key(it, &keys);
                        if k.is_some() && seen.contains(&k) {
                            out.push(format!("{path}[{i}]"));
                        }
                        seen.push(k);
                    }
                }
                for (i, it) in items.iter().enumerate() {
                    rec(it, ctx, names, &format!("{path}[{i}]"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = vec![];
    rec(v, ctx, &mut vec![], "", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn roundtrip_fields_v1() {
        let ctx = Ctx {
            kind: "Pod",
            schema: None,
        };
        let obj = json!({"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}});
        let set = fields_of(&obj, &ctx);
        let v1 = to_fields_v1(&set);
        assert_eq!(
            v1,
            json!({"f:metadata": {"f:labels": {"f:a": {}}}, "f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:image": {}, "f:name": {}}}}})
        );
        assert_eq!(from_fields_v1(&v1), set);
    }
    #[test]
    fn strategic() {
        let ctx = Ctx {
            kind: "Pod",
            schema: None,
        };
        let live = json!({"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}]}});
        let patch = json!({"spec": {"containers": [{"name": "b", "image": "3"}, {"name": "c", "image": "4"}]}});
        let out = strategic_merge(&live, &patch, &ctx, &mut vec![]);
        assert_eq!(out["spec"]["containers"].as_array().unwrap().len(), 3);
        assert_eq!(out["spec"]["containers"][1]["image"], "3");
    }
}
