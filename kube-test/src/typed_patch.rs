//! The structural check that a real API server makes when it turns a
//! server-side apply body into a typed object, before merging or validating
//! anything: every field must be declared in the schema (whatever
//! `fieldValidation` says), scalars and containers must have the declared
//! type, and `x-kubernetes-list-type` map and set lists must not repeat a
//! key. The real server answers a failure with a 500 whose message is
//! `failed to create typed patch object (...)`, not with a 422, so an apply
//! that would be 422 as a POST gets a different answer.
use crate::error::ApiError;
use serde_json::Value;

/// Fields of ObjectMeta, the only ones accepted under `metadata`.
const OBJECT_META_FIELDS: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// Check an apply body against a CRD schema. `ns`/`name` and the
/// group/version/kind name the object in the error as the real server does:
/// `(/acme; landlord.dev/v1alpha1, Kind=Tenant)`.
pub fn check(
    applied: &Value,
    schema: &Value,
    ns: &str,
    name: &str,
    api_version: &str,
    kind: &str,
) -> Result<(), ApiError> {
    let mut errors = vec![];
    walk_root(applied, schema, &mut errors);
    if errors.is_empty() {
        return Ok(());
    }
    let detail = if errors.len() == 1 {
        errors.remove(0)
    } else {
        format!("errors:\n  {}", errors.join("\n  "))
    };
    Err(ApiError::new(
        500,
        "",
        format!(
            "failed to create typed patch object ({ns}/{name}; {api_version}, Kind={kind}): {detail}"
        ),
    ))
}

fn walk_root(v: &Value, schema: &Value, out: &mut Vec<String>) {
    let Some(m) = v.as_object() else {
        return;
    };
    let mut rest = serde_json::Map::new();
    for (k, c) in sorted(m) {
        match k.as_str() {
            "apiVersion" | "kind" => {}
            "metadata" => {
                if let Some(md) = c.as_object() {
                    for key in sorted(md).map(|(k, _)| k) {
                        if !OBJECT_META_FIELDS.contains(&key.as_str()) {
                            out.push(format!(".metadata.{key}: field not declared in schema"));
                        }
                    }
                }
            }
            _ => {
                rest.insert(k.clone(), c.clone());
            }
        }
    }
    walk(&Value::Object(rest), schema, "", out);
}

fn sorted(m: &serde_json::Map<String, Value>) -> impl Iterator<Item = (&String, &Value)> {
    let mut v: Vec<_> = m.iter().collect();
    v.sort_by(|a, b| a.0.cmp(b.0));
    v.into_iter()
}

fn flag(s: &Value, k: &str) -> bool {
    s.get(k).and_then(Value::as_bool) == Some(true)
}

fn walk(v: &Value, s: &Value, path: &str, out: &mut Vec<String>) {
    if v.is_null() {
        return;
    }
    if flag(s, "x-kubernetes-int-or-string") {
        // accepted as an untyped scalar; the 422 validation reports the type
        return;
    }
    let preserve = flag(s, "x-kubernetes-preserve-unknown-fields");
    match s.get("type").and_then(Value::as_str) {
        Some("string") if !v.is_string() => out.push(format!(
            "{path}: expected string, got &value.valueUnstructured{{Value:{}}}",
            go_sharp_v(v)
        )),
        Some("boolean") if !v.is_boolean() => out.push(format!(
            "{path}: expected boolean, got &value.valueUnstructured{{Value:{}}}",
            go_sharp_v(v)
        )),
        Some("integer" | "number") if !v.is_number() => out.push(format!(
            "{path}: expected numeric (int or float), got {}",
            go_type(v)
        )),
        Some("object") => match v.as_object() {
            None => out.push(format!("{path}: expected map, got &{{{}}}", go_v(v))),
            Some(m) => {
                let props = s.get("properties").and_then(Value::as_object);
                let addl = s.get("additionalProperties").filter(|a| a.is_object());
                for (k, c) in sorted(m) {
                    let p = format!("{path}.{k}");
                    match props.and_then(|p| p.get(k)).or(addl) {
                        Some(cs) => walk(c, cs, &p, out),
                        None if preserve
                            || s.get("additionalProperties") == Some(&Value::Bool(true)) => {}
                        None => out.push(format!("{p}: field not declared in schema")),
                    }
                }
            }
        },
        Some("array") => match v.as_array() {
            None => out.push(format!("{path}: expected list, got &{{{}}}", go_v(v))),
            Some(items) => walk_list(items, s, path, out),
        },
        _ => {}
    }
}

fn walk_list(items: &[Value], s: &Value, path: &str, out: &mut Vec<String>) {
    let item_schema = s.get("items").cloned().unwrap_or(Value::Null);
    let list_type = s.get("x-kubernetes-list-type").and_then(Value::as_str);
    let keys: Vec<&str> = s
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut seen: Vec<String> = vec![];
    for (i, it) in items.iter().enumerate() {
        let element = match list_type {
            Some("set") => {
                if it.is_null() {
                    out.push(format!("{path}: element {i}: associative list without keys has an element that's an explicit null"));
                    return;
                }
                format!("[={}]", json_scalar(it))
            }
            Some("map") => {
                let parts: Vec<String> = keys
                    .iter()
                    .filter_map(|k| it.get(*k).map(|v| format!("{k}={}", json_scalar(v))))
                    .collect();
                if parts.is_empty() {
                    let quoted: Vec<String> = keys.iter().map(|k| format!("{k:?}")).collect();
                    out.push(format!("{path}: element {i}: associative list with keys has an element that omits all key fields [{}] (and doesn't have default values for any key fields)", quoted.join(" ")));
                    return;
                }
                format!("[{}]", parts.join(","))
            }
            _ => format!("[{i}]"),
        };
        if list_type.is_some() {
            if seen.contains(&element) {
                out.push(format!("{path}: duplicate entries for key {element}"));
            }
            seen.push(element.clone());
        }
        walk(it, &item_schema, &format!("{path}{element}"), out);
    }
}

/// A key value as it appears in a path element: JSON for scalars.
fn json_scalar(v: &Value) -> String {
    v.to_string()
}

/// Go's name for the type of a decoded JSON value.
fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// Go's `%v` rendering of a decoded JSON value.
fn go_v(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_v).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => format!(
            "map[{}]",
            sorted(m)
                .map(|(k, v)| format!("{k}:{}", go_v(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        other => other.to_string(),
    }
}

/// Go's `%#v` rendering of a decoded JSON value.
fn go_sharp_v(v: &Value) -> String {
    match v {
        Value::Null => "interface {}(nil)".into(),
        Value::String(s) => format!("{s:?}"),
        Value::Array(a) => format!(
            "[]interface {{}}{{{}}}",
            a.iter().map(go_sharp_v).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(m) => format!(
            "map[string]interface {{}}{{{}}}",
            sorted(m)
                .map(|(k, v)| format!("{k:?}:{}", go_sharp_v(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "name": {"type": "string"},
            "size": {"type": "integer"},
            "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            "items": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                      "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
        }}}})
    }

    fn message(spec: Value) -> Option<String> {
        let obj = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec});
        check(&obj, &schema(), "ns", "w", "example.com/v1", "Widget")
            .err()
            .map(|e| e.message)
    }

    #[test]
    fn accepts_declared_fields() {
        assert_eq!(
            message(json!({"name": "a", "size": 1, "tags": ["x"], "free": {"any": [1]}})),
            None
        );
    }

    #[test]
    fn reports_like_the_real_server() {
        let p = "failed to create typed patch object (ns/w; example.com/v1, Kind=Widget): ";
        assert_eq!(
            message(json!({"tags": ["a", "a"]})).unwrap(),
            format!("{p}.spec.tags: duplicate entries for key [=\"a\"]")
        );
        assert_eq!(
            message(json!({"items": [{"name": "a"}, {"name": "a"}]})).unwrap(),
            format!("{p}.spec.items: duplicate entries for key [name=\"a\"]")
        );
        assert_eq!(
            message(json!({"zzz": 1})).unwrap(),
            format!("{p}.spec.zzz: field not declared in schema")
        );
        assert_eq!(
            message(json!({"name": {"a": 1}})).unwrap(),
            format!(
                "{p}.spec.name: expected string, got &value.valueUnstructured{{Value:map[string]interface {{}}{{\"a\":1}}}}"
            )
        );
        assert_eq!(
            message(json!({"size": "x"})).unwrap(),
            format!("{p}.spec.size: expected numeric (int or float), got string")
        );
        assert_eq!(
            message(json!({"tags": "x"})).unwrap(),
            format!("{p}.spec.tags: expected list, got &{{x}}")
        );
        assert_eq!(
            message(json!({"items": [{"name": "a", "x": 1}, {"name": "a"}], "y": 2})).unwrap(),
            format!(
                "{p}errors:\n  .spec.items[name=\"a\"].x: field not declared in schema\n  .spec.items: duplicate entries for key [name=\"a\"]\n  .spec.y: field not declared in schema"
            )
        );
    }
}
