//! RBAC authorization (Roles, ClusterRoles with aggregation, bindings) and
//! the bootstrap roles every cluster has.
use crate::selectors::LabelSelector;
use crate::state::{State, UserInfo, meta};
use serde_json::{Value, json};

/// What a request wants to do.
pub struct Attrs<'a> {
    pub verb: &'a str,
    pub group: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn subject_matches(s: &Value, user: &UserInfo) -> bool {
    let name = s["name"].as_str().unwrap_or_default();
    match s["kind"].as_str().unwrap_or_default() {
        "User" => name == user.username,
        "Group" => user.groups.iter().any(|g| g == name),
        "ServiceAccount" => {
            let ns = s["namespace"].as_str().unwrap_or_default();
            user.username == format!("system:serviceaccount:{ns}:{name}")
        }
        _ => false,
    }
}

fn cluster_role_rules(state: &State, name: &str, seen: &mut Vec<String>) -> Vec<Value> {
    if seen.iter().any(|s| s == name) {
        return vec![];
    }
    seen.push(name.to_string());
    let gr = (
        "rbac.authorization.k8s.io".to_string(),
        "clusterroles".to_string(),
    );
    let Some(role) = state.get_obj(&gr, "", name) else {
        return vec![];
    };
    let mut rules: Vec<Value> = role["rules"].as_array().cloned().unwrap_or_default();
    if let Some(sels) = role
        .pointer("/aggregationRule/clusterRoleSelectors")
        .and_then(Value::as_array)
    {
        let sels: Vec<LabelSelector> = sels.iter().map(label_selector_from_json).collect();
        let names: Vec<String> = state
            .objects
            .get(&gr)
            .map(|m| {
                m.values()
                    .filter(|r| sels.iter().any(|s| s.matches(r)))
                    .filter_map(|r| meta(r, "name").map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        for n in names {
            rules.extend(cluster_role_rules(state, &n, seen));
        }
    }
    rules
}

pub fn label_selector_from_json(sel: &Value) -> LabelSelector {
    let mut parts = vec![];
    if let Some(m) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in m {
            parts.push(format!("{k}={}", v.as_str().unwrap_or_default()));
        }
    }
    if let Some(exprs) = sel.get("matchExpressions").and_then(Value::as_array) {
        for e in exprs {
            let k = e["key"].as_str().unwrap_or_default();
            let vals = strs(&e["values"]).join(",");
            match e["operator"].as_str().unwrap_or_default() {
                "In" => parts.push(format!("{k} in ({vals})")),
                "NotIn" => parts.push(format!("{k} notin ({vals})")),
                "Exists" => parts.push(k.to_string()),
                "DoesNotExist" => parts.push(format!("!{k}")),
                _ => {}
            }
        }
    }
    LabelSelector::parse(&parts.join(",")).unwrap_or_default()
}

fn rule_allows(rule: &Value, a: &Attrs) -> bool {
    let verbs = strs(&rule["verbs"]);
    if !verbs.iter().any(|v| *v == "*" || *v == a.verb) {
        return false;
    }
    let groups = strs(&rule["apiGroups"]);
    if !groups.iter().any(|g| *g == "*" || *g == a.group) {
        return false;
    }
    let combined = if a.subresource.is_empty() {
        a.resource.to_string()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    let resources = strs(&rule["resources"]);
    let res_ok = resources.iter().any(|r| {
        *r == "*"
            || *r == combined
            || (!a.subresource.is_empty() && r.strip_prefix("*/") == Some(a.subresource))
    });
    if !res_ok {
        return false;
    }
    let names = strs(&rule["resourceNames"]);
    names.is_empty() || (!a.name.is_empty() && names.contains(&a.name))
}

/// Is `user` allowed to do `a`?
pub fn authorize(state: &State, user: &UserInfo, a: &Attrs) -> bool {
    if user.groups.iter().any(|g| g == "system:masters") {
        return true;
    }
    let rbac = "rbac.authorization.k8s.io".to_string();
    if let Some(crbs) = state
        .objects
        .get(&(rbac.clone(), "clusterrolebindings".to_string()))
    {
        for b in crbs.values() {
            if !b["subjects"]
                .as_array()
                .is_some_and(|ss| ss.iter().any(|s| subject_matches(s, user)))
            {
                continue;
            }
            let role = b
                .pointer("/roleRef/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if cluster_role_rules(state, role, &mut vec![])
                .iter()
                .any(|r| rule_allows(r, a))
            {
                return true;
            }
        }
    }
    if a.namespace.is_empty() {
        return false;
    }
    if let Some(rbs) = state
        .objects
        .get(&(rbac.clone(), "rolebindings".to_string()))
    {
        for ((ns, _), b) in rbs.range((a.namespace.to_string(), String::new())..) {
            if ns != a.namespace {
                break;
            }
            if !b["subjects"]
                .as_array()
                .is_some_and(|ss| ss.iter().any(|s| subject_matches(s, user)))
            {
                continue;
            }
            let kind = b
                .pointer("/roleRef/kind")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let role = b
                .pointer("/roleRef/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let rules = if kind == "ClusterRole" {
                cluster_role_rules(state, role, &mut vec![])
            } else {
                state
                    .get_obj(&(rbac.clone(), "roles".to_string()), ns, role)
                    .and_then(|r| r["rules"].as_array().cloned())
                    .unwrap_or_default()
            };
            if rules.iter().any(|r| rule_allows(r, a)) {
                return true;
            }
        }
    }
    false
}

/// The rules `user` holds in `namespace` (cluster-wide ones only when it is empty).
fn rules_of(state: &State, user: &UserInfo, namespace: &str) -> Vec<Value> {
    if user.groups.iter().any(|g| g == "system:masters") {
        return vec![
            json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}),
            json!({"nonResourceURLs": ["*"], "verbs": ["*"]}),
        ];
    }
    let rbac = "rbac.authorization.k8s.io".to_string();
    let bound = |b: &Value| {
        b["subjects"]
            .as_array()
            .is_some_and(|ss| ss.iter().any(|s| subject_matches(s, user)))
    };
    let mut rules = Vec::new();
    if let Some(crbs) = state
        .objects
        .get(&(rbac.clone(), "clusterrolebindings".to_string()))
    {
        for b in crbs.values().filter(|b| bound(b)) {
            let role = b.pointer("/roleRef/name").and_then(Value::as_str);
            rules.extend(cluster_role_rules(
                state,
                role.unwrap_or_default(),
                &mut vec![],
            ));
        }
    }
    if namespace.is_empty() {
        return rules;
    }
    if let Some(rbs) = state
        .objects
        .get(&(rbac.clone(), "rolebindings".to_string()))
    {
        for ((ns, _), b) in rbs.range((namespace.to_string(), String::new())..) {
            if ns != namespace {
                break;
            }
            if bound(b) {
                rules.extend(role_ref_rules(state, namespace, &b["roleRef"]));
            }
        }
    }
    rules
}

/// The rules a binding's `roleRef` grants in `namespace`.
fn role_ref_rules(state: &State, namespace: &str, role_ref: &Value) -> Vec<Value> {
    let name = role_ref["name"].as_str().unwrap_or_default();
    if role_ref["kind"] == "ClusterRole" {
        return cluster_role_rules(state, name, &mut vec![]);
    }
    let roles = ("rbac.authorization.k8s.io".to_string(), "roles".to_string());
    state
        .get_obj(&roles, namespace, name)
        .and_then(|r| r["rules"].as_array().cloned())
        .unwrap_or_default()
}

/// A rule broken into one rule per verb, group, resource and name (or URL), as the real
/// server's escalation check does before it looks for what is not covered.
fn atoms(rule: &Value) -> Vec<Value> {
    let verbs = strs(&rule["verbs"]);
    let urls = strs(&rule["nonResourceURLs"]);
    if !urls.is_empty() {
        return urls
            .iter()
            .flat_map(|u| {
                verbs
                    .iter()
                    .map(move |v| json!({"nonResourceURLs": [u], "verbs": [v]}))
            })
            .collect();
    }
    let names = strs(&rule["resourceNames"]);
    let mut out = Vec::new();
    for g in strs(&rule["apiGroups"]) {
        for r in strs(&rule["resources"]) {
            for v in &verbs {
                let atom = json!({"apiGroups": [g], "resources": [r], "verbs": [v]});
                if names.is_empty() {
                    out.push(atom.clone());
                }
                for n in &names {
                    let mut a = atom.clone();
                    a["resourceNames"] = json!([n]);
                    out.push(a);
                }
            }
        }
    }
    out
}

fn covers(owner: &Value, atom: &Value) -> bool {
    let has = |list: &Value, x: &str| strs(list).iter().any(|o| *o == "*" || *o == x);
    let one = |k: &str| strs(&atom[k]).first().copied().unwrap_or_default();
    if !has(&owner["verbs"], one("verbs")) {
        return false;
    }
    if atom.get("nonResourceURLs").is_some() {
        let url = one("nonResourceURLs");
        return strs(&owner["nonResourceURLs"])
            .iter()
            .any(|o| *o == url || o.strip_suffix('*').is_some_and(|p| url.starts_with(p)));
    }
    if !has(&owner["apiGroups"], one("apiGroups")) {
        return false;
    }
    let resource = one("resources");
    let resource_ok = strs(&owner["resources"]).iter().any(|o| {
        *o == "*"
            || *o == resource
            || match (o.split_once('/'), resource.split_once('/')) {
                (Some(("*", os)), Some((_, rs))) => os == rs,
                (Some((or, "*")), Some((rr, _))) => or == rr,
                _ => false,
            }
    });
    let names = strs(&owner["resourceNames"]);
    resource_ok
        && (names.is_empty()
            || strs(&atom["resourceNames"])
                .iter()
                .any(|n| names.contains(n)))
}

/// `{APIGroups:["*"], Resources:["*"], Verbs:["*"]}`, as the real server lists rules.
fn compact(atom: &Value) -> String {
    let list = |k: &str| {
        strs(&atom[k])
            .iter()
            .map(|x| format!("{x:?}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    if atom.get("nonResourceURLs").is_some() {
        return format!(
            "{{NonResourceURLs:[{}], Verbs:[{}]}}",
            list("nonResourceURLs"),
            list("verbs")
        );
    }
    let names = if atom.get("resourceNames").is_some() {
        format!(", ResourceNames:[{}]", list("resourceNames"))
    } else {
        String::new()
    };
    format!(
        "{{APIGroups:[{}], Resources:[{}]{names}, Verbs:[{}]}}",
        list("apiGroups"),
        list("resources"),
        list("verbs")
    )
}

/// RBAC's escalation check for a Role, ClusterRole, RoleBinding or ClusterRoleBinding that
/// `user` writes: a binding needs `bind` on its role or every permission the role grants; a
/// role needs `escalate` or every permission it lists. The refusal's message, if refused.
pub fn escalation(
    state: &State,
    user: &UserInfo,
    kind: &str,
    namespace: &str,
    object: &Value,
) -> Option<String> {
    if user.groups.iter().any(|g| g == "system:masters") {
        return None;
    }
    let group = "rbac.authorization.k8s.io";
    let (verb, resource, name, granted) = match kind {
        "RoleBinding" | "ClusterRoleBinding" => {
            let role_ref = &object["roleRef"];
            let resource = if role_ref["kind"] == "ClusterRole" {
                "clusterroles"
            } else {
                "roles"
            };
            let name = role_ref["name"].as_str().unwrap_or_default();
            (
                "bind",
                resource,
                name,
                role_ref_rules(state, namespace, role_ref),
            )
        }
        "Role" | "ClusterRole" => {
            let plural = if kind == "Role" {
                "roles"
            } else {
                "clusterroles"
            };
            let name = meta(object, "name").unwrap_or_default();
            let rules = object["rules"].as_array().cloned().unwrap_or_default();
            ("escalate", plural, name, rules)
        }
        _ => return None,
    };
    let attrs = Attrs {
        verb,
        group,
        resource,
        subresource: "",
        namespace,
        name,
    };
    if authorize(state, user, &attrs) {
        return None;
    }
    let held = rules_of(state, user, namespace);
    let missing: Vec<String> = granted
        .iter()
        .flat_map(atoms)
        .filter(|a| !held.iter().any(|h| covers(h, a)))
        .map(|a| compact(&a))
        .collect();
    if missing.is_empty() {
        return None;
    }
    let groups: Vec<String> = user.groups.iter().map(|g| format!("{g:?}")).collect();
    Some(format!(
        "user {:?} (groups=[{}]) is attempting to grant RBAC permissions not currently held:\n{}",
        user.username,
        groups.join(" "),
        missing.join("\n")
    ))
}

/// The real server's message for a denied request.
pub fn forbidden_message(user: &UserInfo, a: &Attrs) -> String {
    let combined = if a.subresource.is_empty() {
        a.resource.to_string()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    let mut subject = if a.group.is_empty() {
        a.resource.to_string()
    } else {
        format!("{}.{}", a.resource, a.group)
    };
    if !a.name.is_empty() {
        subject = format!("{subject} \"{}\"", a.name);
    }
    let scope = if a.namespace.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace \"{}\"", a.namespace)
    };
    format!(
        "{subject} is forbidden: User \"{}\" cannot {} resource \"{combined}\" in API group \"{}\" {scope}",
        user.username, a.verb, a.group
    )
}

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> Value {
    json!({"apiGroups": groups, "resources": resources, "verbs": verbs})
}

/// ClusterRoles and bindings a fresh cluster has (cluster-admin, admin, edit,
/// view with aggregation, system:basic-user).
pub fn bootstrap_objects() -> Vec<(&'static str, Value)> {
    let read = ["get", "list", "watch"];
    let write = ["create", "delete", "deletecollection", "patch", "update"];
    let all_rw = [
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    ];
    let agg = |name: &str, label: &str, rules: Vec<Value>| json!({"metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults", format!("rbac.authorization.k8s.io/aggregate-to-{label}"): "true"}}, "rules": rules});
    let aggregated = |name: &str, to: &str, extra_label: Option<&str>| {
        let mut labels = json!({"kubernetes.io/bootstrapping": "rbac-defaults"});
        if let Some(l) = extra_label {
            labels[format!("rbac.authorization.k8s.io/aggregate-to-{l}")] = json!("true");
        }
        json!({"metadata": {"name": name, "labels": labels},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {format!("rbac.authorization.k8s.io/aggregate-to-{to}"): "true"}}]}, "rules": []})
    };
    let core_view = [
        "configmaps",
        "endpoints",
        "persistentvolumeclaims",
        "persistentvolumeclaims/status",
        "pods",
        "replicationcontrollers",
        "replicationcontrollers/scale",
        "serviceaccounts",
        "services",
        "services/status",
        "bindings",
        "events",
        "limitranges",
        "namespaces/status",
        "pods/log",
        "pods/status",
        "replicationcontrollers/status",
        "resourcequotas",
        "resourcequotas/status",
    ];
    let apps = [
        "daemonsets",
        "deployments",
        "deployments/scale",
        "replicasets",
        "replicasets/scale",
        "statefulsets",
        "statefulsets/scale",
    ];
    let apps_view = [
        "controllerrevisions",
        "daemonsets",
        "daemonsets/status",
        "deployments",
        "deployments/scale",
        "deployments/status",
        "replicasets",
        "replicasets/scale",
        "replicasets/status",
        "statefulsets",
        "statefulsets/scale",
        "statefulsets/status",
    ];
    let core_edit = [
        "pods",
        "pods/attach",
        "pods/exec",
        "pods/portforward",
        "pods/proxy",
        "configmaps",
        "persistentvolumeclaims",
        "replicationcontrollers",
        "replicationcontrollers/scale",
        "secrets",
        "serviceaccounts",
        "services",
        "services/proxy",
    ];
    vec![
        (
            "clusterroles",
            json!({"metadata": {"name": "cluster-admin", "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
            "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, {"nonResourceURLs": ["*"], "verbs": ["*"]}]}),
        ),
        ("clusterroles", aggregated("admin", "admin", None)),
        ("clusterroles", aggregated("edit", "edit", Some("admin"))),
        ("clusterroles", aggregated("view", "view", Some("edit"))),
        (
            "clusterroles",
            agg(
                "system:aggregate-to-view",
                "view",
                vec![
                    rule(&[""], &core_view, &read),
                    rule(&[""], &["namespaces"], &read),
                    rule(&["", "events.k8s.io"], &["events"], &read),
                    rule(&["apps"], &apps_view, &read),
                    rule(
                        &["autoscaling"],
                        &[
                            "horizontalpodautoscalers",
                            "horizontalpodautoscalers/status",
                        ],
                        &read,
                    ),
                    rule(
                        &["batch"],
                        &["cronjobs", "cronjobs/status", "jobs", "jobs/status"],
                        &read,
                    ),
                    rule(
                        &["networking.k8s.io"],
                        &["ingresses", "ingresses/status", "networkpolicies"],
                        &read,
                    ),
                    rule(
                        &["policy"],
                        &["poddisruptionbudgets", "poddisruptionbudgets/status"],
                        &read,
                    ),
                    rule(&["discovery.k8s.io"], &["endpointslices"], &read),
                ],
            ),
        ),
        (
            "clusterroles",
            agg(
                "system:aggregate-to-edit",
                "edit",
                vec![
                    rule(&[""], &core_edit, &write),
                    rule(&[""], &["secrets"], &read),
                    rule(&[""], &["serviceaccounts"], &["impersonate"]),
                    rule(&[""], &["serviceaccounts/token"], &["create"]),
                    rule(&["", "events.k8s.io"], &["events"], &write),
                    rule(&["apps"], &apps, &write),
                    rule(&["autoscaling"], &["horizontalpodautoscalers"], &write),
                    rule(&["batch"], &["cronjobs", "jobs"], &write),
                    rule(
                        &["networking.k8s.io"],
                        &["ingresses", "networkpolicies"],
                        &write,
                    ),
                    rule(&["policy"], &["poddisruptionbudgets"], &write),
                    rule(&["coordination.k8s.io"], &["leases"], &all_rw),
                ],
            ),
        ),
        (
            "clusterroles",
            agg(
                "system:aggregate-to-admin",
                "admin",
                vec![
                    rule(
                        &["authorization.k8s.io"],
                        &["localsubjectaccessreviews"],
                        &["create"],
                    ),
                    rule(
                        &["rbac.authorization.k8s.io"],
                        &["rolebindings", "roles"],
                        &all_rw,
                    ),
                ],
            ),
        ),
        (
            "clusterroles",
            json!({"metadata": {"name": "system:basic-user", "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
            "rules": [rule(&["authorization.k8s.io"], &["selfsubjectaccessreviews", "selfsubjectrulesreviews"], &["create"]),
                      rule(&["authentication.k8s.io"], &["selfsubjectreviews"], &["create"])]}),
        ),
        (
            "clusterroles",
            json!({"metadata": {"name": "system:auth-delegator", "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
            "rules": [rule(&["authentication.k8s.io"], &["tokenreviews"], &["create"]),
                      rule(&["authorization.k8s.io"], &["subjectaccessreviews"], &["create"])]}),
        ),
        (
            "clusterrolebindings",
            json!({"metadata": {"name": "cluster-admin", "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:masters"}]}),
        ),
        (
            "clusterrolebindings",
            json!({"metadata": {"name": "system:basic-user", "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:basic-user"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:authenticated"}]}),
        ),
    ]
}
