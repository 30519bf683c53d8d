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

/// A string column.
fn c(name: &str, priority: i64, f: impl Fn(&Value) -> Value + 'static) -> (Value, CellFn) {
    (col(name, "string", "", "", priority), Box::new(f))
}

fn text(v: Option<&Value>) -> Value {
    match v {
        Some(Value::String(s)) if !s.is_empty() => json!(s),
        _ => json!("<none>"),
    }
}

fn selector_string(v: Option<&Value>) -> String {
    match v.and_then(Value::as_object) {
        Some(m) if !m.is_empty() => m
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(","),
        _ => "<none>".into(),
    }
}

fn containers_field(o: &Value, f: &str) -> String {
    o.pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| c[f].as_str())
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

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
        ("", "Pod") => {
            cols.push(c("Ready", 0, |o| {
                let total = o
                    .pointer("/spec/containers")
                    .and_then(Value::as_array)
                    .map_or(0, |a| a.len());
                let ready = o
                    .pointer("/status/containerStatuses")
                    .and_then(Value::as_array)
                    .map_or(0, |a| {
                        a.iter().filter(|c| c["ready"] == json!(true)).count()
                    });
                json!(format!("{ready}/{total}"))
            }));
            cols.push(c("Status", 0, |o| {
                o.pointer("/status/phase").cloned().unwrap_or(Value::Null)
            }));
            cols.push(c("Restarts", 0, |o| {
                json!(
                    o.pointer("/status/containerStatuses")
                        .and_then(Value::as_array)
                        .map_or(0, |a| a
                            .iter()
                            .map(|c| c["restartCount"].as_i64().unwrap_or(0))
                            .sum::<i64>())
                )
            }));
            cols.push(age_col());
            cols.push(c("IP", 1, |o| text(o.pointer("/status/podIP"))));
            cols.push(c("Node", 1, |o| text(o.pointer("/spec/nodeName"))));
            return cols;
        }
        ("", "Service") => {
            cols.push(c("Type", 0, |o| text(o.pointer("/spec/type"))));
            cols.push(c("Cluster-IP", 0, |o| text(o.pointer("/spec/clusterIP"))));
            cols.push(c("External-IP", 0, |o| {
                let ips: Vec<String> = o
                    .pointer("/status/loadBalancer/ingress")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|i| {
                                i["ip"]
                                    .as_str()
                                    .or(i["hostname"].as_str())
                                    .map(String::from)
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                json!(if ips.is_empty() {
                    "<none>".to_string()
                } else {
                    ips.join(",")
                })
            }));
            cols.push(c("Port(s)", 0, |o| {
                let ports: Vec<String> = o
                    .pointer("/spec/ports")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .map(|p| {
                                let np = p["nodePort"]
                                    .as_i64()
                                    .map(|n| format!(":{n}"))
                                    .unwrap_or_default();
                                format!(
                                    "{}{np}/{}",
                                    p["port"],
                                    p["protocol"].as_str().unwrap_or("TCP")
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                json!(if ports.is_empty() {
                    "<none>".to_string()
                } else {
                    ports.join(",")
                })
            }));
            cols.push(age_col());
            cols.push(c("Selector", 1, |o| {
                json!(selector_string(o.pointer("/spec/selector")))
            }));
            return cols;
        }
        ("apps", "Deployment") | ("apps", "StatefulSet") => {
            let is_dep = def.kind == "Deployment";
            cols.push(c("Ready", 0, |o| {
                json!(format!(
                    "{}/{}",
                    o.pointer("/status/readyReplicas")
                        .and_then(Value::as_i64)
                        .unwrap_or(0),
                    o.pointer("/spec/replicas")
                        .and_then(Value::as_i64)
                        .unwrap_or(1)
                ))
            }));
            if is_dep {
                cols.push(c("Up-to-date", 0, |o| {
                    json!(
                        o.pointer("/status/updatedReplicas")
                            .and_then(Value::as_i64)
                            .unwrap_or(0)
                    )
                }));
                cols.push(c("Available", 0, |o| {
                    json!(
                        o.pointer("/status/availableReplicas")
                            .and_then(Value::as_i64)
                            .unwrap_or(0)
                    )
                }));
            }
            cols.push(age_col());
            cols.push(c("Containers", 1, |o| json!(containers_field(o, "name"))));
            cols.push(c("Images", 1, |o| json!(containers_field(o, "image"))));
            if is_dep {
                cols.push(c("Selector", 1, |o| {
                    json!(selector_string(o.pointer("/spec/selector/matchLabels")))
                }));
            }
            return cols;
        }
        ("", "ResourceQuota") => {
            cols.push(age_col());
            let pairs = |o: &Value, limits: bool| -> Value {
                let hard = o
                    .pointer("/status/hard")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                let used = o.pointer("/status/used").cloned().unwrap_or(json!({}));
                let items: Vec<String> = hard
                    .iter()
                    .filter(|(k, _)| k.starts_with("limits.") == limits)
                    .map(|(k, v)| {
                        format!(
                            "{k}: {}/{}",
                            used[k].as_str().unwrap_or("0"),
                            v.as_str().unwrap_or_default()
                        )
                    })
                    .collect();
                json!(items.join(", "))
            };
            cols.push(c("Request", 0, move |o| pairs(o, false)));
            cols.push(c("Limit", 0, move |o| pairs(o, true)));
            return cols;
        }
        ("", "ServiceAccount") => cols.push(c("Secrets", 0, |o| {
            json!(o["secrets"].as_array().map_or(0, |a| a.len()))
        })),
        ("", "PersistentVolumeClaim") => {
            cols.push(c("Status", 0, |o| text(o.pointer("/status/phase"))));
            cols.push(c("Volume", 0, |o| text(o.pointer("/spec/volumeName"))));
            cols.push(c("Capacity", 0, |o| {
                text(o.pointer("/status/capacity/storage"))
            }));
            cols.push(c("Access Modes", 0, |o| {
                json!(
                    o.pointer("/spec/accessModes")
                        .and_then(Value::as_array)
                        .map(|a| a
                            .iter()
                            .filter_map(Value::as_str)
                            .map(|m| match m {
                                "ReadWriteOnce" => "RWO",
                                "ReadOnlyMany" => "ROX",
                                "ReadWriteMany" => "RWX",
                                "ReadWriteOncePod" => "RWOP",
                                x => x,
                            })
                            .collect::<Vec<_>>()
                            .join(","))
                        .unwrap_or_default()
                )
            }));
            cols.push(c("StorageClass", 0, |o| {
                text(o.pointer("/spec/storageClassName"))
            }));
        }
        ("rbac.authorization.k8s.io", "RoleBinding")
        | ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            cols.push(c("Role", 0, |o| {
                json!(format!(
                    "{}/{}",
                    o.pointer("/roleRef/kind")
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                    o.pointer("/roleRef/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                ))
            }));
            cols.push(age_col());
            for (title, kind) in [
                ("Users", "User"),
                ("Groups", "Group"),
                ("ServiceAccounts", "ServiceAccount"),
            ] {
                cols.push(c(title, 1, move |o| {
                    let names: Vec<String> = o["subjects"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter(|s| s["kind"] == kind)
                                .map(|s| match s["namespace"].as_str() {
                                    Some(ns) if kind == "ServiceAccount" => {
                                        format!("{ns}/{}", s["name"].as_str().unwrap_or_default())
                                    }
                                    _ => s["name"].as_str().unwrap_or_default().to_string(),
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    json!(names.join(", "))
                }));
            }
            return cols;
        }
        ("rbac.authorization.k8s.io", _) | ("", "LimitRange") => {
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
        ("coordination.k8s.io", "Lease") => {
            cols.push(c("Holder", 0, |o| text(o.pointer("/spec/holderIdentity"))))
        }
        ("networking.k8s.io", "NetworkPolicy") => cols.push(c("Pod-Selector", 0, |o| {
            json!(selector_string(o.pointer("/spec/podSelector/matchLabels")))
        })),
        ("", "Event") => {
            cols.clear();
            cols.push(c("Last Seen", 0, |o| {
                age(o["lastTimestamp"].as_str().or(o["eventTime"].as_str()).or(o
                    .pointer("/metadata/creationTimestamp")
                    .and_then(Value::as_str)))
            }));
            cols.push(c("Type", 0, |o| text(o.get("type"))));
            cols.push(c("Reason", 0, |o| text(o.get("reason"))));
            cols.push(c("Object", 0, |o| {
                json!(format!(
                    "{}/{}",
                    o.pointer("/involvedObject/kind")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_lowercase(),
                    o.pointer("/involvedObject/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                ))
            }));
            cols.push(c("Message", 0, |o| text(o.get("message"))));
            return cols;
        }
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
