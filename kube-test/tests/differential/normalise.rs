//! Normalisation of outcomes: what legitimately differs between two servers
//! (or two runs) is removed or replaced by a placeholder.
use serde_json::{Value, json};

/// Metadata fields that are unique per object or per moment.
const VOLATILE: &[&str] = &["uid", "resourceVersion", "creationTimestamp", "selfLink"];

/// Replace the run id by `<id>`, drop uids, resourceVersions and creation
/// times, turn deletion timestamps and managedFields times into `<set>`,
/// and sort a Status's causes (the real server's order of causes follows Go
/// map iteration, so it is not stable).
pub fn normalise(v: Value, id: &str) -> Value {
    let mut v = replace_id(v, id);
    strip(&mut v);
    if v.get("kind") == Some(&json!("Status"))
        && let Some(causes) = v
            .pointer_mut("/details/causes")
            .and_then(Value::as_array_mut)
    {
        causes.sort_by_key(|c| c.to_string());
    }
    if let Some(d) = v.get_mut("details").and_then(Value::as_object_mut) {
        d.remove("uid");
    }
    v
}

fn replace_id(v: Value, id: &str) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace(id, "<id>")),
        Value::Array(a) => Value::Array(a.into_iter().map(|x| replace_id(x, id)).collect()),
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, x)| (k.replace(id, "<id>"), replace_id(x, id)))
                .collect(),
        ),
        other => other,
    }
}

fn strip(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let Some(md) = m.get_mut("metadata").and_then(Value::as_object_mut) {
                for k in VOLATILE {
                    md.remove(*k);
                }
                if md.contains_key("deletionTimestamp") {
                    md.insert("deletionTimestamp".into(), json!("<set>"));
                }
                if let Some(mf) = md.get_mut("managedFields").and_then(Value::as_array_mut) {
                    for e in mf.iter_mut() {
                        if let Some(e) = e.as_object_mut()
                            && e.contains_key("time")
                        {
                            e.insert("time".into(), json!("<set>"));
                        }
                    }
                }
            }
            for (_, c) in m.iter_mut() {
                strip(c);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(strip),
        _ => {}
    }
}

/// An object reduced to the fields a step compares.
pub fn pick(v: &Value, pointers: &[&str]) -> Value {
    let mut out = serde_json::Map::new();
    for p in pointers {
        out.insert(p.to_string(), v.pointer(p).cloned().unwrap_or(Value::Null));
    }
    Value::Object(out)
}
