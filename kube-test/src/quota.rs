//! ResourceQuota accounting/admission and LimitRange defaulting.
use crate::error::{ApiError, ApiResult};
use crate::quantity::{self, Quantity};
use crate::resources::ResourceDef;
use crate::state::{State, meta};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

const COMPUTE: &[&str] = &[
    "requests.cpu",
    "requests.memory",
    "limits.cpu",
    "limits.memory",
    "cpu",
    "memory",
];

fn containers(pod: &Value, field: &str) -> Vec<Value> {
    pod.pointer(&format!("/spec/{field}"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Pod-level resource (`requests.cpu` etc.): sum over containers, max with init containers.
fn pod_resource(pod: &Value, kind: &str, res: &str) -> Option<Quantity> {
    let get = |c: &Value| {
        c.pointer(&format!("/resources/{kind}/{res}"))
            .and_then(quantity::from_json)
    };
    let mut sum: Option<Quantity> = None;
    for c in containers(pod, "containers") {
        if let Some(q) = get(&c) {
            sum = Some(sum.map_or(q, |s| s.add(&q)));
        }
    }
    for c in containers(pod, "initContainers") {
        if let Some(q) = get(&c)
            && sum.is_none_or(|s| q > s)
        {
            sum = Some(q);
        }
    }
    sum
}

fn pod_terminal(pod: &Value) -> bool {
    matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded") | Some("Failed")
    )
}

/// The quota usage one object contributes.
fn object_usage(def_group: &str, plural: &str, obj: &Value) -> BTreeMap<String, Quantity> {
    let mut u = BTreeMap::new();
    let one = Quantity::from_int(1);
    let count_key = if def_group.is_empty() {
        format!("count/{plural}")
    } else {
        format!("count/{plural}.{def_group}")
    };
    u.insert(count_key, one);
    if def_group.is_empty() {
        match plural {
            "pods" if !pod_terminal(obj) => {
                u.insert("pods".into(), one);
                for (k, kind, res) in [
                    ("requests.cpu", "requests", "cpu"),
                    ("requests.memory", "requests", "memory"),
                    ("limits.cpu", "limits", "cpu"),
                    ("limits.memory", "limits", "memory"),
                    ("cpu", "requests", "cpu"),
                    ("memory", "requests", "memory"),
                    (
                        "requests.ephemeral-storage",
                        "requests",
                        "ephemeral-storage",
                    ),
                    ("limits.ephemeral-storage", "limits", "ephemeral-storage"),
                ] {
                    if let Some(q) = pod_resource(obj, kind, res) {
                        u.insert(k.into(), q);
                    }
                }
            }
            "services" => {
                u.insert("services".into(), one);
                match obj.pointer("/spec/type").and_then(Value::as_str) {
                    Some("LoadBalancer") => {
                        u.insert("services.loadbalancers".into(), one);
                        u.insert("services.nodeports".into(), one);
                    }
                    Some("NodePort") => {
                        u.insert("services.nodeports".into(), one);
                    }
                    _ => {}
                }
            }
            "configmaps" | "secrets" | "resourcequotas" | "replicationcontrollers" => {
                u.insert(plural.into(), one);
            }
            "persistentvolumeclaims" => {
                u.insert("persistentvolumeclaims".into(), one);
                if let Some(q) = obj
                    .pointer("/spec/resources/requests/storage")
                    .and_then(quantity::from_json)
                {
                    u.insert("requests.storage".into(), q);
                }
            }
            _ => {}
        }
    }
    u
}

/// Does `obj` fall under the quota's scopes (spec.scopes and scopeSelector)?
fn quota_matches(quota: &Value, group: &str, plural: &str, obj: &Value) -> bool {
    let mut scopes: Vec<(String, String, Vec<String>)> = quota
        .pointer("/spec/scopes")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|s| (s.to_string(), "Exists".to_string(), vec![]))
                .collect()
        })
        .unwrap_or_default();
    if let Some(exprs) = quota
        .pointer("/spec/scopeSelector/matchExpressions")
        .and_then(Value::as_array)
    {
        for e in exprs {
            let vals = e["values"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            scopes.push((
                e["scopeName"].as_str().unwrap_or_default().into(),
                e["operator"].as_str().unwrap_or_default().into(),
                vals,
            ));
        }
    }
    if scopes.is_empty() {
        return true;
    }
    if !(group.is_empty() && plural == "pods") {
        return false;
    }
    scopes.iter().all(|(scope, op, vals)| {
        let matched = match scope.as_str() {
            "BestEffort" => qos_class(obj) == "BestEffort",
            "NotBestEffort" => qos_class(obj) != "BestEffort",
            "Terminating" => obj
                .pointer("/spec/activeDeadlineSeconds")
                .is_some_and(|v| !v.is_null()),
            "NotTerminating" => obj
                .pointer("/spec/activeDeadlineSeconds")
                .is_none_or(Value::is_null),
            "PriorityClass" => {
                let pc = obj
                    .pointer("/spec/priorityClassName")
                    .and_then(Value::as_str);
                return match op.as_str() {
                    "In" => pc.is_some_and(|p| vals.iter().any(|v| v == p)),
                    "NotIn" => pc.is_none_or(|p| !vals.iter().any(|v| v == p)),
                    "Exists" => pc.is_some(),
                    "DoesNotExist" => pc.is_none(),
                    _ => false,
                };
            }
            _ => false,
        };
        if op == "DoesNotExist" {
            !matched
        } else {
            matched
        }
    })
}

fn namespace_usage(state: &State, ns: &str, quota: &Value) -> BTreeMap<String, Quantity> {
    let mut total: BTreeMap<String, Quantity> = BTreeMap::new();
    for ((group, plural), m) in &state.objects {
        for ((ons, _), o) in m.range((ns.to_string(), String::new())..) {
            if ons != ns {
                break;
            }
            if !quota_matches(quota, group, plural, o) {
                continue;
            }
            for (k, q) in object_usage(group, plural, o) {
                let e = total.entry(k).or_insert_with(Quantity::zero);
                *e = e.add(&q);
            }
        }
    }
    total
}

fn fmt_q(k: &str, q: &Quantity) -> String {
    // counts are plain integers; resource quantities canonical
    if !COMPUTE.contains(&k) && !k.starts_with("requests.") && !k.starts_with("limits.") {
        return Quantity {
            nanos: q.nanos,
            format: quantity::Format::DecimalSI,
        }
        .to_string();
    }
    q.to_string()
}

pub fn canonical(hard: &Value) -> Value {
    let mut out = Map::new();
    if let Some(h) = hard.as_object() {
        for (k, v) in h {
            let s = quantity::from_json(v)
                .map(|q| q.to_string())
                .unwrap_or_else(|| v.as_str().unwrap_or_default().to_string());
            out.insert(k.clone(), json!(s));
        }
    }
    Value::Object(out)
}

/// `status.used` for a quota object.
pub fn usage_for(state: &State, ns: &str, quota: &Value) -> Value {
    let hard = quota.pointer("/spec/hard").cloned().unwrap_or(json!({}));
    let usage = namespace_usage(state, ns, quota);
    let mut out = Map::new();
    if let Some(h) = hard.as_object() {
        for k in h.keys() {
            let hq = quantity::from_json(&h[k]).unwrap_or_else(Quantity::zero);
            let q = usage.get(k).copied().unwrap_or_else(Quantity::zero);
            let q = Quantity {
                nanos: q.nanos,
                format: if q.is_zero() { hq.format } else { q.format },
            };
            out.insert(k.clone(), json!(fmt_q(k, &q)));
        }
    }
    Value::Object(out)
}

fn quotas(state: &State, ns: &str) -> Vec<Value> {
    state
        .in_namespace(&("".to_string(), "resourcequotas".to_string()), ns)
        .cloned()
        .collect()
}

/// Recompute `status.used` of every quota in `ns`.
pub fn refresh(state: &mut State, ns: &str) {
    for q in quotas(state, ns) {
        let hard = q.pointer("/spec/hard").cloned().unwrap_or(json!({}));
        let status = json!({"hard": canonical(&hard), "used": usage_for(state, ns, &q)});
        if q.get("status") != Some(&status) {
            let name = meta(&q, "name").unwrap_or_default().to_string();
            state.internal_set_status(&("".into(), "resourcequotas".into()), ns, &name, status);
        }
    }
}

fn pretty(m: &BTreeMap<String, String>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Quota admission for a create in `ns` (atomic: runs under the store lock).
pub fn admit_create(
    state: &State,
    def: &ResourceDef,
    ns: &str,
    name: &str,
    obj: &Value,
) -> ApiResult<()> {
    admit(state, def, ns, name, obj, None)
}

/// Quota admission for an update: only increases of usage are checked.
pub fn admit_update(
    state: &State,
    def: &ResourceDef,
    ns: &str,
    name: &str,
    old: &Value,
    obj: &Value,
) -> ApiResult<()> {
    admit(state, def, ns, name, obj, Some(old))
}

fn admit(
    state: &State,
    def: &ResourceDef,
    ns: &str,
    name: &str,
    obj: &Value,
    old: Option<&Value>,
) -> ApiResult<()> {
    let qs = quotas(state, ns);
    if qs.is_empty() {
        return Ok(());
    }
    let mut delta = object_usage(&def.group, &def.plural, obj);
    if let Some(old) = old {
        let before = object_usage(&def.group, &def.plural, old);
        for (k, d) in delta.iter_mut() {
            if let Some(b) = before.get(k) {
                *d = d.sub(b);
            }
        }
    }
    let is_pod = def.group.is_empty() && def.plural == "pods" && old.is_none();
    for q in &qs {
        if !quota_matches(q, &def.group, &def.plural, obj) {
            continue;
        }
        let usage = namespace_usage(state, ns, q);
        let qname = meta(q, "name").unwrap_or_default();
        let hard = q
            .pointer("/spec/hard")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        // pods must declare every compute resource the quota constrains
        if is_pod && !pod_terminal(obj) {
            let mut missing = vec![];
            for k in hard.keys().filter(|k| COMPUTE.contains(&k.as_str())) {
                let (kind, res) = match k.split_once('.') {
                    Some((a, b)) => (a, b),
                    None => ("requests", k.as_str()),
                };
                let lacking: Vec<String> = containers(obj, "containers")
                    .iter()
                    .chain(containers(obj, "initContainers").iter())
                    .filter(|c| c.pointer(&format!("/resources/{kind}/{res}")).is_none())
                    .map(|c| c["name"].as_str().unwrap_or_default().to_string())
                    .collect();
                if !lacking.is_empty() {
                    missing.push(format!("{k} for: {}", lacking.join(",")));
                }
            }
            if !missing.is_empty() {
                return Err(ApiError::forbidden(
                    &def.group,
                    &def.plural,
                    name,
                    &format!("failed quota: {qname}: must specify {}", missing.join("; ")),
                ));
            }
        }
        let mut requested = BTreeMap::new();
        let mut used = BTreeMap::new();
        let mut limited = BTreeMap::new();
        for (k, hv) in &hard {
            let Some(d) = delta.get(k) else { continue };
            if d.nanos <= 0 {
                continue;
            }
            let h = quantity::from_json(hv).unwrap_or_else(Quantity::zero);
            let u = usage.get(k).copied().unwrap_or_else(Quantity::zero);
            if u.add(d) > h {
                requested.insert(k.clone(), fmt_q(k, d));
                used.insert(k.clone(), fmt_q(k, &u));
                limited.insert(k.clone(), fmt_q(k, &h));
            }
        }
        if !requested.is_empty() {
            return Err(ApiError::forbidden(
                &def.group,
                &def.plural,
                name,
                &format!(
                    "exceeded quota: {qname}, requested: {}, used: {}, limited: {}",
                    pretty(&requested),
                    pretty(&used),
                    pretty(&limited)
                ),
            ));
        }
    }
    Ok(())
}

/// LimitRange API defaulting: defaultRequest defaults to default, default to max.
pub fn default_limit_range(lr: &mut Value) {
    if let Some(limits) = lr.pointer_mut("/spec/limits").and_then(Value::as_array_mut) {
        for l in limits {
            if l["type"].as_str() != Some("Container") {
                continue;
            }
            // per resource: default <- max, defaultRequest <- default
            for (dst, src) in [("default", "max"), ("defaultRequest", "default")] {
                let Some(from) = l.get(src).and_then(Value::as_object).cloned() else {
                    continue;
                };
                if !l.get(dst).is_some_and(Value::is_object) {
                    l[dst] = json!({});
                }
                for (k, v) in from {
                    if l[dst].get(&k).is_none() {
                        l[dst][&k] = v;
                    }
                }
            }
        }
    }
}

/// Pod defaulting: requests default to limits, then LimitRange defaults (LimitRanger).
pub fn default_pod(state: &State, ns: &str, pod: &mut Value) {
    let lrs: Vec<Value> = state
        .in_namespace(&("".to_string(), "limitranges".to_string()), ns)
        .cloned()
        .collect();
    let mut set: Vec<String> = vec![];
    for field in ["containers", "initContainers"] {
        let Some(cs) = pod
            .pointer_mut(&format!("/spec/{field}"))
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for c in cs.iter_mut() {
            if !c.get("resources").is_some_and(Value::is_object) {
                c["resources"] = json!({});
            }
            let r = &mut c["resources"];
            // API defaulting: requests default to limits
            if let Some(limits) = r.get("limits").and_then(Value::as_object).cloned() {
                for (k, v) in limits {
                    if r.pointer(&format!("/requests/{k}")).is_none() {
                        if !r.get("requests").is_some_and(Value::is_object) {
                            r["requests"] = json!({});
                        }
                        r["requests"][&k] = v;
                    }
                }
            }
            let before = r.clone();
            for lr in &lrs {
                for l in lr
                    .pointer("/spec/limits")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
                {
                    if l["type"].as_str() != Some("Container") {
                        continue;
                    }
                    for (src, dst) in [("default", "limits"), ("defaultRequest", "requests")] {
                        if let Some(d) = l.get(src).and_then(Value::as_object) {
                            for (k, v) in d {
                                if r.pointer(&format!("/{dst}/{k}")).is_none() {
                                    if !r.get(dst).is_some_and(Value::is_object) {
                                        r[dst] = json!({});
                                    }
                                    r[dst][k] = v.clone();
                                }
                            }
                        }
                    }
                }
            }
            let cname = c["name"].as_str().unwrap_or_default().to_string();
            for dst in ["requests", "limits"] {
                let added = added_keys(&before, &c["resources"], dst);
                if !added.is_empty() {
                    let what = if dst == "requests" {
                        "request"
                    } else {
                        "limit"
                    };
                    set.push(format!(
                        "{} {what} for {} {cname}",
                        added.join(", "),
                        &field[..field.len() - 1].replace("initContainer", "init container")
                    ));
                }
            }
        }
    }
    // the LimitRanger's record of what it defaulted, as on a real server
    if !set.is_empty() {
        let md = pod["metadata"].as_object_mut();
        if let Some(md) = md {
            let ann = md.entry("annotations").or_insert_with(|| json!({}));
            ann["kubernetes.io/limit-ranger"] =
                json!(format!("LimitRanger plugin set: {}", set.join("; ")));
        }
    }
}

/// Resource names under `dst` (requests or limits) in `after` but not in `before`, sorted.
fn added_keys(before: &Value, after: &Value, dst: &str) -> Vec<String> {
    let mut keys: Vec<String> = after
        .get(dst)
        .and_then(Value::as_object)
        .map(|m| {
            m.keys()
                .filter(|k| before.pointer(&format!("/{dst}/{k}")).is_none())
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    keys.sort();
    keys
}

pub fn qos_class(pod: &Value) -> &'static str {
    let cs = containers(pod, "containers");
    let any = cs.iter().any(|c| {
        c.pointer("/resources/requests")
            .and_then(Value::as_object)
            .is_some_and(|m| !m.is_empty())
            || c.pointer("/resources/limits")
                .and_then(Value::as_object)
                .is_some_and(|m| !m.is_empty())
    });
    if !any {
        return "BestEffort";
    }
    let guaranteed = cs.iter().all(|c| {
        ["cpu", "memory"].iter().all(|r| {
            let l = c
                .pointer(&format!("/resources/limits/{r}"))
                .and_then(quantity::from_json);
            let q = c
                .pointer(&format!("/resources/requests/{r}"))
                .and_then(quantity::from_json);
            l.is_some() && l == q
        })
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

type Resources = BTreeMap<String, Quantity>;

fn limit_ranges(state: &State, ns: &str) -> Vec<Value> {
    state
        .in_namespace(&("".to_string(), "limitranges".to_string()), ns)
        .cloned()
        .collect()
}

/// LimitRanger validation (min, max, maxLimitRequestRatio) for pods and PVCs,
/// after defaulting. Returns the error messages.
pub fn limit_range_violations(state: &State, ns: &str, plural: &str, obj: &Value) -> Vec<String> {
    let mut errs = vec![];
    let q = |v: Option<&Value>| v.and_then(quantity::from_json);
    for lr in limit_ranges(state, ns) {
        for l in lr
            .pointer("/spec/limits")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            let ty = l["type"].as_str().unwrap_or_default();
            // (label, request, limit) triples to check against this item
            let mut subjects: Vec<(String, Resources, Resources)> = vec![];
            let res_map = |m: Option<&Value>| -> BTreeMap<String, Quantity> {
                m.and_then(Value::as_object)
                    .map(|o| {
                        o.iter()
                            .filter_map(|(k, v)| quantity::from_json(v).map(|x| (k.clone(), x)))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            match (ty, plural) {
                ("Container", "pods") => {
                    for c in containers(obj, "containers")
                        .iter()
                        .chain(containers(obj, "initContainers").iter())
                    {
                        subjects.push((
                            "Container".into(),
                            res_map(c.pointer("/resources/requests")),
                            res_map(c.pointer("/resources/limits")),
                        ));
                    }
                }
                ("Pod", "pods") => {
                    let mut req = BTreeMap::new();
                    let mut lim = BTreeMap::new();
                    for r in ["cpu", "memory", "ephemeral-storage"] {
                        if let Some(x) = pod_resource(obj, "requests", r) {
                            req.insert(r.to_string(), x);
                        }
                        if let Some(x) = pod_resource(obj, "limits", r) {
                            lim.insert(r.to_string(), x);
                        }
                    }
                    subjects.push(("Pod".into(), req, lim));
                }
                ("PersistentVolumeClaim", "persistentvolumeclaims") => {
                    let req = res_map(obj.pointer("/spec/resources/requests"));
                    subjects.push(("PersistentVolumeClaim".into(), req.clone(), req));
                }
                _ => continue,
            }
            let is_pvc = plural == "persistentvolumeclaims";
            for (kind, req, lim) in subjects {
                if let Some(min) = l.get("min").and_then(Value::as_object) {
                    for (r, v) in min {
                        let Some(minq) = q(Some(v)) else { continue };
                        match req.get(r) {
                            None => errs.push(format!(
                                "minimum {r} usage per {kind} is {minq}.  No request is specified"
                            )),
                            Some(x) if *x < minq => errs.push(format!(
                                "minimum {r} usage per {kind} is {minq}, but request is {x}"
                            )),
                            _ => {}
                        }
                    }
                }
                if let Some(max) = l.get("max").and_then(Value::as_object) {
                    for (r, v) in max {
                        let Some(maxq) = q(Some(v)) else { continue };
                        let (what, val) = if is_pvc {
                            ("request", req.get(r))
                        } else {
                            ("limit", lim.get(r))
                        };
                        match val {
                            None => errs.push(format!(
                                "maximum {r} usage per {kind} is {maxq}.  No {what} is specified"
                            )),
                            Some(x) if *x > maxq => errs.push(format!(
                                "maximum {r} usage per {kind} is {maxq}, but {what} is {x}"
                            )),
                            _ => {}
                        }
                    }
                }
                if let Some(ratio) = l.get("maxLimitRequestRatio").and_then(Value::as_object) {
                    for (r, v) in ratio {
                        let (Some(rq), Some(lq), Some(max)) = (req.get(r), lim.get(r), q(Some(v)))
                        else {
                            continue;
                        };
                        if rq.nanos > 0 {
                            let actual = lq.nanos as f64 / rq.nanos as f64;
                            if actual > max.nanos as f64 / 1e9 {
                                errs.push(format!("{r} max limit to request ratio per {kind} is {max}, but provided ratio is {actual:.6}"));
                            }
                        }
                    }
                }
            }
        }
    }
    errs
}
