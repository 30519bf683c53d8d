//! `meta.k8s.io/v1` Table output (kubectl get).
use crate::resources::ResourceDef;
use serde_json::{Value, json};

pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    let s = secs.max(0);
    let m = s / 60;
    let h = s / 3600;
    let d = h / 24;
    let y = d / 365;
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", s % 60)
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        if h % 24 == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{}h", h % 24)
        }
    } else if d < 365 * 2 {
        format!("{d}d")
    } else if y < 8 {
        if d % 365 == 0 {
            format!("{y}y")
        } else {
            format!("{y}y{}d", d % 365)
        }
    } else {
        format!("{y}y")
    }
}

fn age(ts: Option<&str>) -> Value {
    let Some(ts) = ts else {
        return json!("<unknown>");
    };
    match ts.parse::<jiff::Timestamp>() {
        Ok(t) => json!(human_duration(
            jiff::Timestamp::now().as_second() - t.as_second()
        )),
        Err(_) => json!("<unknown>"),
    }
}

/// Evaluate a simple JSONPath (`.a.b`, `.a[0].b`, `.a['x.y']`).
pub fn json_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let p = path
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim_start_matches('$');
    let mut cur = v;
    let mut rest = p;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let key = &r[..end];
            if !key.is_empty() {
                cur = cur.get(key)?;
            }
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let inner = r[..end].trim_matches(|c| c == '\'' || c == '"');
            cur = match inner.parse::<usize>() {
                Ok(i) => cur.get(i)?,
                Err(_) => cur.get(inner)?,
            };
            rest = &r[end + 1..];
        } else {
            return None;
        }
    }
    Some(cur)
}

fn col(name: &str, ty: &str, format: &str, desc: &str, priority: i64) -> Value {
    json!({"name": name, "type": ty, "format": format, "description": desc, "priority": priority})
}

type CellFn = Box<dyn Fn(&Value) -> Value>;

fn columns(def: &ResourceDef) -> Vec<(Value, CellFn)> {
    let name_col = (
        col(
            "Name",
            "string",
            "name",
            "Name must be unique within a namespace.",
            0,
        ),
        Box::new(|o: &Value| o.pointer("/metadata/name").cloned().unwrap_or(Value::Null)) as CellFn,
    );
    let age_col = || {
        (
            col(
                "Age",
                "string",
                "",
                "CreationTimestamp is a timestamp representing the server time when this object was created.",
                0,
            ),
            Box::new(|o: &Value| {
                age(o
                    .pointer("/metadata/creationTimestamp")
                    .and_then(Value::as_str))
            }) as CellFn,
        )
    };
    if let Some(crd) = &def.crd {
        let mut cols = vec![name_col];
        if crd.printer_columns.is_empty() {
            cols.push(age_col());
        }
        for pc in &crd.printer_columns {
            let ty = pc["type"].as_str().unwrap_or("string").to_string();
            let path = pc["jsonPath"].as_str().unwrap_or_default().to_string();
            let c = col(
                pc["name"].as_str().unwrap_or_default(),
                &ty,
                pc["format"].as_str().unwrap_or_default(),
                pc["description"].as_str().unwrap_or_default(),
                pc["priority"].as_i64().unwrap_or(0),
            );
            let f: CellFn = Box::new(move |o: &Value| match json_path(o, &path) {
                None | Some(Value::Null) => Value::Null,
                Some(v) if ty == "date" => age(v.as_str()),
                Some(v) if ty == "string" => match v {
                    Value::String(_) => v.clone(),
                    other => json!(other.to_string()),
                },
                Some(v) => v.clone(),
            });
            cols.push((c, f));
        }
        return cols;
    }
    let mut cols = vec![name_col];
    match (def.group.as_str(), def.kind.as_str()) {
        ("", "Namespace") => cols.push((
            col("Status", "string", "", "The status of the namespace", 0),
            Box::new(|o: &Value| o.pointer("/status/phase").cloned().unwrap_or(Value::Null)),
        )),
        ("", "ConfigMap") | ("", "Secret") => {
            if def.kind == "Secret" {
                cols.push((
                    col("Type", "string", "", "The type of the secret", 0),
                    Box::new(|o: &Value| o.get("type").cloned().unwrap_or(json!("Opaque"))),
                ));
            }
            cols.push((
                col("Data", "string", "", "Number of data entries", 0),
                Box::new(|o: &Value| {
                    let n = o
                        .get("data")
                        .and_then(Value::as_object)
                        .map_or(0, |m| m.len())
                        + o.get("binaryData")
                            .and_then(Value::as_object)
                            .map_or(0, |m| m.len())
                        + o.get("stringData")
                            .and_then(Value::as_object)
                            .map_or(0, |m| m.len());
                    json!(n)
                }),
            ));
        }
        ("", "Pod") => cols.push((
            col(
                "Status",
                "string",
                "",
                "The aggregate status of the containers in this pod.",
                0,
            ),
            Box::new(|o: &Value| o.pointer("/status/phase").cloned().unwrap_or(Value::Null)),
        )),
        ("apiextensions.k8s.io", _) => {
            cols.push((
                col("Created At", "date", "", "", 0),
                Box::new(|o: &Value| {
                    o.pointer("/metadata/creationTimestamp")
                        .cloned()
                        .unwrap_or(Value::Null)
                }),
            ));
            return cols;
        }
        _ => {}
    }
    cols.push(age_col());
    cols
}

pub fn to_table(
    def: &ResourceDef,
    items: &[Value],
    list_meta: Value,
    include_object: &str,
) -> Value {
    let cols = columns(def);
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let cells: Vec<Value> = cols.iter().map(|(_, f)| f(o)).collect();
            let object = match include_object {
                "None" => Value::Null,
                "Object" => o.clone(),
                _ => json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]}),
            };
            let mut row = json!({"cells": cells});
            if !object.is_null() {
                row["object"] = object;
            }
            row
        })
        .collect();
    json!({
        "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
        "columnDefinitions": cols.iter().map(|(c, _)| c.clone()).collect::<Vec<_>>(),
        "rows": rows,
    })
}
