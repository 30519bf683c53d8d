//! Import: archived objects written back over the Kubernetes API, in dependency order, and
//! read back to check that the cluster holds what the archive says.
//!
//! Every object is server-side applied by name with `force`, so an import that was
//! interrupted and runs again converges on the same objects: nothing is ever created twice, and
//! what the first run wrote is written over with the same values. The kinds are resolved by
//! discovery, one request per apiVersion in the archive, so custom resources are restored
//! like built-in ones once their CRD is installed.

use std::collections::{BTreeMap, HashMap};

use futures::{StreamExt, TryStreamExt};
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::core::gvk::GroupVersion;
use kube::discovery::{self, Scope};
use serde_json::Value;

use super::ArchiveError;
use super::export::{group_of, list_all, strip_server_fields, text};

/// Objects applied at once within one rank of [`order`].
const CONCURRENCY: usize = 8;
/// Differences named per object in a verification failure; the rest are counted.
const DIFFERENCES_SHOWN: usize = 3;
/// Longest value shown in a difference, in characters.
const VALUE_SHOWN: usize = 40;

/// What an import wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Objects applied (each once, created or already there).
    pub applied: usize,
    /// Objects applied per `apiVersion/Kind`, as in the manifest's `counts`.
    pub counts: BTreeMap<String, u64>,
}

/// The order a restore writes objects in, so that what an object refers to exists before it:
/// ServiceAccounts, ConfigMaps, Secrets, PersistentVolumeClaims, Services, Roles,
/// RoleBindings, NetworkPolicies, then the workloads (Deployments, StatefulSets, DaemonSets,
/// ReplicaSets, ReplicationControllers, Jobs, CronJobs, Pods), then everything else
/// (Ingresses, HorizontalPodAutoscalers, PodDisruptionBudgets, custom resources, and the
/// tenant's own ResourceQuotas and LimitRanges: a quota written first could refuse the
/// objects it counts until the quota controller has computed its usage). Objects of one rank
/// keep their order.
pub fn order(objects: &[Value]) -> Vec<&Value> {
    let mut ordered: Vec<&Value> = objects.iter().collect();
    ordered.sort_by_key(|o| rank(o));
    ordered
}

/// Where an object goes in [`order`]: the position of its kind in this list, or after all.
const RANKS: [(&str, &str); 16] = [
    ("", "ServiceAccount"),
    ("", "ConfigMap"),
    ("", "Secret"),
    ("", "PersistentVolumeClaim"),
    ("", "Service"),
    ("rbac.authorization.k8s.io", "Role"),
    ("rbac.authorization.k8s.io", "RoleBinding"),
    ("networking.k8s.io", "NetworkPolicy"),
    ("apps", "Deployment"),
    ("apps", "StatefulSet"),
    ("apps", "DaemonSet"),
    ("apps", "ReplicaSet"),
    ("", "ReplicationController"),
    ("batch", "Job"),
    ("batch", "CronJob"),
    ("", "Pod"),
];

fn rank(obj: &Value) -> usize {
    let key = (group_of(text(obj, "/apiVersion")), text(obj, "/kind"));
    RANKS.iter().position(|r| *r == key).unwrap_or(RANKS.len())
}

/// Server-side apply every object, in [`order`], as `field_manager` with `force` (an archived
/// value wins over whatever another manager wrote since). Each object is first put through
/// [`strip_server_fields`], so objects read straight from another cluster import as well as
/// archived ones. Objects of one rank are applied a few at a time.
///
/// The first failure stops the import and names the object; objects of earlier ranks stay
/// written, and running the import again finishes the job. A kind the cluster does not serve
/// (a CRD not installed) fails before anything is written.
pub async fn import(
    client: &Client,
    objects: &[Value],
    field_manager: &str,
) -> Result<ImportReport, ArchiveError> {
    import_with(client, objects, field_manager, CONCURRENCY).await
}

/// [`import`] with `concurrency` objects of one rank applied at once (a migration's
/// `--migration-parallelism`).
pub async fn import_with(
    client: &Client,
    objects: &[Value],
    field_manager: &str,
    concurrency: usize,
) -> Result<ImportReport, ArchiveError> {
    let objects: Vec<Value> = objects.iter().map(strip_server_fields).collect();
    let ordered = order(&objects);
    let kinds = resolve(client, &ordered).await?;
    let mut targets = Vec::with_capacity(ordered.len());
    for obj in &ordered {
        targets.push((*obj, target(&kinds, obj)?));
    }
    let params = PatchParams::apply(field_manager).force();
    let mut report = ImportReport::default();
    for batch in targets.chunk_by(|a, b| rank(a.0) == rank(b.0)) {
        // Owned copies in the stream: borrowing closures make the future not `Send` for every
        // lifetime, which the controller's reconcile future must be.
        let owned: Vec<(Value, _)> = batch
            .iter()
            .map(|(o, r)| ((*o).clone(), r.clone()))
            .collect();
        futures::stream::iter(owned)
            .map(|(obj, resource)| {
                let (client, params) = (client.clone(), params.clone());
                async move { apply(&client, &resource, &obj, &params).await }
            })
            .buffer_unordered(concurrency.max(1))
            .try_collect::<Vec<()>>()
            .await?;
        for (obj, _) in batch {
            report.applied += 1;
            *report.counts.entry(type_key(obj)).or_insert(0) += 1;
        }
    }
    Ok(report)
}

/// Read every object back and check that the cluster holds each field the archived object
/// has, with the same value: a containment test, since the server adds defaults and
/// controllers add status. Tolerated, because the server rewrites them without changing
/// their meaning:
///
/// - quantities written differently (`1000m` and `1`, `1Gi` and `1073741824`), in the kinds
///   of Kubernetes' own API groups outside `metadata` and a ConfigMap's or Secret's data;
///   custom resources and user data are compared exactly;
/// - an empty map or list, or null, where the cluster has nothing (a real API server drops
///   them);
/// - numbers equal as numbers (`1` and `1.0`);
/// - finalizers added to `metadata.finalizers` (a set: each archived one must be there).
///
/// Other lists must match item by item and in length. Each object is passed through
/// [`strip_server_fields`] first, as [`import`] does. Objects are read by one LIST per kind
/// and namespace. A failure lists every object that differs or is missing, with its first
/// differences (values of a Secret's data are never shown).
pub async fn verify(client: &Client, objects: &[Value]) -> Result<(), ArchiveError> {
    let wanted: Vec<Value> = objects.iter().map(strip_server_fields).collect();
    let refs: Vec<&Value> = wanted.iter().collect();
    let kinds = resolve(client, &refs).await?;
    let mut by_list: BTreeMap<(&str, &str, &str), Vec<&Value>> = BTreeMap::new();
    for obj in &wanted {
        let key = (
            text(obj, "/apiVersion"),
            text(obj, "/kind"),
            text(obj, "/metadata/namespace"),
        );
        by_list.entry(key).or_default().push(obj);
    }
    let mut problems = Vec::new();
    for ((api_version, kind, ns), objs) in by_list {
        let live = match kinds.get(&(api_version.to_string(), kind.to_string())) {
            Some(Ok((ar, scope))) => {
                let ns = (*scope == Scope::Namespaced).then_some(ns);
                read_back(client, ar, ns).await?
            }
            Some(Err(reason)) => {
                problems.extend(objs.iter().map(|o| format!("{}: {reason}", describe(o))));
                continue;
            }
            None => HashMap::new(),
        };
        for want in objs {
            let Some(found) = live.get(text(want, "/metadata/name")) else {
                problems.push(format!("{}: missing", describe(want)));
                continue;
            };
            let diffs = differences(found, want);
            if !diffs.is_empty() {
                let mut shown = diffs[..diffs.len().min(DIFFERENCES_SHOWN)].join("; ");
                if diffs.len() > DIFFERENCES_SHOWN {
                    shown.push_str(&format!(" (and {} more)", diffs.len() - DIFFERENCES_SHOWN));
                }
                problems.push(format!("{}: {shown}", describe(want)));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ArchiveError::VerifyFailed { objects: problems })
    }
}

/// Where `live` lacks or changes a field of `want`, one line per difference, such as
/// `data.color: want "blue", found "red"` or `spec.ports: want 2 items, found 1`. Paths
/// name map keys with dots (`["…"]` for keys holding a dot or slash) and list items by index.
/// The rules are [`verify`]'s.
pub fn differences(live: &Value, want: &Value) -> Vec<String> {
    let group = group_of(text(want, "/apiVersion"));
    let builtin = !group.contains('.') || group.ends_with(".k8s.io");
    let secret = group.is_empty() && text(want, "/kind") == "Secret";
    let mut out = Vec::new();
    let (Some(live), Some(want)) = (live.as_object(), want.as_object()) else {
        compare(String::new(), Some(live), want, Rules::default(), &mut out);
        return out;
    };
    for (key, w) in want {
        let data = matches!(key.as_str(), "data" | "stringData" | "binaryData");
        let rules = Rules {
            quantities: builtin && !data && key != "metadata",
            redact: secret && data,
        };
        compare(path(String::new(), key), live.get(key), w, rules, &mut out);
    }
    out
}

#[derive(Clone, Copy, Default)]
struct Rules {
    /// Strings that are the same quantity are equal.
    quantities: bool,
    /// Values are not shown.
    redact: bool,
}

fn compare(at: String, live: Option<&Value>, want: &Value, rules: Rules, out: &mut Vec<String>) {
    let live = live.filter(|l| !l.is_null());
    let empty = match want {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    };
    let Some(live) = live else {
        if !empty {
            out.push(format!("{at}: want {}, found nothing", show(want, rules)));
        }
        return;
    };
    match (live, want) {
        (_, Value::Null) => {}
        (Value::Object(l), Value::Object(w)) => {
            for (key, wv) in w {
                compare(path(at.clone(), key), l.get(key), wv, rules, out);
            }
        }
        (Value::Array(l), Value::Array(w)) if at == "metadata.finalizers" => {
            for f in w.iter().filter(|f| !l.contains(f)) {
                out.push(format!("{at}: want {}, found none", show(f, rules)));
            }
        }
        (Value::Array(l), Value::Array(w)) if l.len() != w.len() => {
            out.push(format!("{at}: want {} items, found {}", w.len(), l.len()));
        }
        (Value::Array(l), Value::Array(w)) => {
            for (i, (lv, wv)) in l.iter().zip(w).enumerate() {
                compare(format!("{at}[{i}]"), Some(lv), wv, rules, out);
            }
        }
        (l, w) if same_scalar(l, w, rules.quantities) => {}
        (l, w) => out.push(format!(
            "{at}: want {}, found {}",
            show(w, rules),
            show(l, rules)
        )),
    }
}

fn same_scalar(live: &Value, want: &Value, quantities: bool) -> bool {
    let same_quantity = |a: &str, b: &str| {
        quantities
            && matches!(
                (crate::quantity::parse_milli(a), crate::quantity::parse_milli(b)),
                (Some(a), Some(b)) if a == b
            )
    };
    match (live, want) {
        (Value::Number(l), Value::Number(w)) => l == w || l.as_f64() == w.as_f64(),
        (Value::String(l), Value::String(w)) => l == w || same_quantity(l, w),
        (Value::Number(n), Value::String(s)) | (Value::String(s), Value::Number(n)) => {
            same_quantity(&n.to_string(), s)
        }
        (l, w) => l == w,
    }
}

fn path(at: String, key: &str) -> String {
    let key = if key.contains(['.', '/']) {
        format!("[{}]", Value::String(key.to_string()))
    } else {
        key.to_string()
    };
    match (at.is_empty(), key.starts_with('[')) {
        (true, _) => key,
        (false, true) => format!("{at}{key}"),
        (false, false) => format!("{at}.{key}"),
    }
}

fn show(v: &Value, rules: Rules) -> String {
    if rules.redact {
        return "(a hidden value)".to_string();
    }
    let text = v.to_string();
    if text.chars().count() <= VALUE_SHOWN {
        text
    } else {
        let cut: String = text.chars().take(VALUE_SHOWN).collect();
        format!("{cut}…")
    }
}

/// `Kind namespace/name (apiVersion)`: how errors name an object, as the manifest's entries do.
pub fn describe(obj: &Value) -> String {
    let (kind, name) = (text(obj, "/kind"), text(obj, "/metadata/name"));
    let api_version = text(obj, "/apiVersion");
    match text(obj, "/metadata/namespace") {
        "" => format!("{kind} {name} ({api_version})"),
        ns => format!("{kind} {ns}/{name} ({api_version})"),
    }
}

fn type_key(obj: &Value) -> String {
    format!("{}/{}", text(obj, "/apiVersion"), text(obj, "/kind"))
}

/// A kind as the cluster serves it, or why it does not.
type Resolved = Result<(ApiResource, Scope), String>;

/// Each (apiVersion, kind) of `objects` as the cluster serves it: one discovery request per
/// apiVersion. A version or kind that is not served is an `Err` with the reason (import
/// refuses it, verify reports its objects); a discovery request that fails otherwise stops.
async fn resolve(
    client: &Client,
    objects: &[&Value],
) -> Result<HashMap<(String, String), Resolved>, ArchiveError> {
    let mut groups = HashMap::new();
    let mut kinds = HashMap::new();
    for obj in objects {
        let (api_version, kind) = (text(obj, "/apiVersion"), text(obj, "/kind"));
        let key = (api_version.to_string(), kind.to_string());
        if kinds.contains_key(&key) || api_version.is_empty() || kind.is_empty() {
            continue;
        }
        if !groups.contains_key(api_version) {
            let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
            let found =
                match discovery::pinned_group(client, &GroupVersion::gv(group, version)).await {
                    Ok(g) => Some(g),
                    Err(kube::Error::Api(s)) if s.code == 404 => None,
                    Err(e) => {
                        return Err(ArchiveError::Import {
                            object: describe(obj),
                            message: format!("the discovery of {api_version} failed: {e}"),
                        });
                    }
                };
            groups.insert(api_version.to_string(), found);
        }
        let resolved = match &groups[api_version] {
            None => Err(format!(
                "the cluster does not serve {api_version}: install the API or CRD first"
            )),
            Some(g) => g
                .recommended_kind(kind)
                .map(|(ar, caps)| (ar, caps.scope))
                .ok_or_else(|| {
                    format!(
                        "the cluster serves no kind {kind} in {api_version}: install its CRD first"
                    )
                }),
        };
        kinds.insert(key, resolved);
    }
    Ok(kinds)
}

/// The API to apply `obj` through, or why it cannot be.
fn target(
    kinds: &HashMap<(String, String), Resolved>,
    obj: &Value,
) -> Result<(ApiResource, Option<String>), ArchiveError> {
    let refuse = |message: String| ArchiveError::Import {
        object: describe(obj),
        message,
    };
    for (field, pointer) in [
        ("apiVersion", "/apiVersion"),
        ("kind", "/kind"),
        ("metadata.name", "/metadata/name"),
    ] {
        if text(obj, pointer).is_empty() {
            return Err(refuse(format!("it has no {field}")));
        }
    }
    let key = (
        text(obj, "/apiVersion").to_string(),
        text(obj, "/kind").to_string(),
    );
    let (ar, scope) = kinds[&key].clone().map_err(refuse)?;
    let namespace = match (scope, text(obj, "/metadata/namespace")) {
        (Scope::Namespaced, "") => {
            return Err(refuse(
                "a namespaced object without metadata.namespace".into(),
            ));
        }
        (Scope::Namespaced, ns) => Some(ns.to_string()),
        (Scope::Cluster, _) => None,
    };
    Ok((ar, namespace))
}

async fn apply(
    client: &Client,
    (ar, namespace): &(ApiResource, Option<String>),
    obj: &Value,
    params: &PatchParams,
) -> Result<(), ArchiveError> {
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, ar),
        None => Api::all_with(client.clone(), ar),
    };
    api.patch(text(obj, "/metadata/name"), params, &Patch::Apply(obj))
        .await
        .map_err(|e| ArchiveError::Import {
            object: describe(obj),
            message: short(&e),
        })?;
    Ok(())
}

/// The live objects of one kind in one namespace, by name.
async fn read_back(
    client: &Client,
    ar: &ApiResource,
    ns: Option<&str>,
) -> Result<HashMap<String, Value>, ArchiveError> {
    let items = list_all(client, ar, ns)
        .await
        .map_err(|e| ArchiveError::Import {
            object: match ns {
                Some(ns) => format!("{} in {ns} ({})", ar.plural, ar.api_version),
                None => format!("{} ({})", ar.plural, ar.api_version),
            },
            message: format!("they cannot be read back: {}", short(&e)),
        })?;
    Ok(items
        .into_iter()
        .map(|o| (text(&o, "/metadata/name").to_string(), o))
        .collect())
}

/// An API error as its message and reason, without kube's debug rendering.
fn short(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if !s.message.is_empty() => format!("{} ({})", s.message, s.code),
        e => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(api_version: &str, kind: &str, name: &str) -> Value {
        json!({"apiVersion": api_version, "kind": kind,
            "metadata": {"name": name, "namespace": "acme-prod"}})
    }

    #[test]
    fn objects_are_written_after_what_they_refer_to() {
        let objects = vec![
            object("example.com/v1", "Widget", "w"),
            object("v1", "Pod", "bare"),
            object("batch/v1", "CronJob", "nightly"),
            object("apps/v1", "Deployment", "web"),
            object("networking.k8s.io/v1", "Ingress", "web"),
            object("apps/v1", "Deployment", "api"),
            object("networking.k8s.io/v1", "NetworkPolicy", "allow-web"),
            object("rbac.authorization.k8s.io/v1", "RoleBinding", "reader"),
            object("rbac.authorization.k8s.io/v1", "Role", "reader"),
            object("v1", "Service", "web"),
            object("v1", "ResourceQuota", "mine"),
            object("v1", "PersistentVolumeClaim", "data"),
            object("v1", "Secret", "db"),
            object("v1", "ConfigMap", "b"),
            object("apps/v1", "StatefulSet", "db"),
            object("v1", "ConfigMap", "a"),
            object("v1", "ServiceAccount", "builder"),
            object("batch/v1", "Job", "once"),
            object("example.com/v1", "Service", "not-core"),
        ];
        let ordered: Vec<String> = order(&objects)
            .iter()
            .map(|o| format!("{} {}", text(o, "/kind"), text(o, "/metadata/name")))
            .collect();
        assert_eq!(
            ordered,
            [
                "ServiceAccount builder",
                "ConfigMap b",
                "ConfigMap a",
                "Secret db",
                "PersistentVolumeClaim data",
                "Service web",
                "Role reader",
                "RoleBinding reader",
                "NetworkPolicy allow-web",
                "Deployment web",
                "Deployment api",
                "StatefulSet db",
                "Job once",
                "CronJob nightly",
                "Pod bare",
                "Widget w",
                "Ingress web",
                "ResourceQuota mine",
                "Service not-core",
            ]
        );
    }

    #[test]
    fn server_defaults_and_status_are_no_difference() {
        let want = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "acme-prod", "labels": {"app": "web"}},
            "spec": {"replicas": 2, "template": {"metadata": {"creationTimestamp": null},
                "spec": {"containers": [{"name": "app", "image": "nginx",
                    "resources": {"limits": {"cpu": "1000m", "memory": "1Gi"}}}]}}}});
        let live = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "acme-prod", "uid": "9", "generation": 1,
                "labels": {"app": "web"}, "annotations": {"deployment.kubernetes.io/revision": "1"}},
            "spec": {"replicas": 2, "revisionHistoryLimit": 10,
                "template": {"metadata": {},
                "spec": {"containers": [{"name": "app", "image": "nginx", "imagePullPolicy": "Always",
                    "resources": {"limits": {"cpu": "1", "memory": "1073741824"}}}],
                    "restartPolicy": "Always"}}},
            "status": {"replicas": 2}});
        assert_eq!(differences(&live, &want), Vec::<String>::new());
    }

    #[test]
    fn changed_and_missing_fields_are_named_with_their_path() {
        let want = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": "acme-prod",
                "labels": {"app.kubernetes.io/name": "web"}},
            "data": {"color": "blue", "size": "1k", "mode": "x"}});
        let live = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": "acme-prod",
                "labels": {"app.kubernetes.io/name": "api"}},
            "data": {"color": "red", "size": "1000"}});
        assert_eq!(
            differences(&live, &want),
            [
                r#"data.color: want "blue", found "red""#,
                // User data is compared exactly, never as quantities.
                r#"data.mode: want "x", found nothing"#,
                r#"data.size: want "1k", found "1000""#,
                r#"metadata.labels["app.kubernetes.io/name"]: want "web", found "api""#,
            ]
        );
    }

    #[test]
    fn lists_must_match_but_finalizers_are_a_set() {
        let want = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "finalizers": ["example.com/keep"]},
            "spec": {"ports": [{"port": 80}, {"port": 443}]}});
        let live = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "finalizers": ["kubernetes.io/x", "example.com/keep"]},
            "spec": {"ports": [{"port": 80, "protocol": "TCP"}, {"port": 443, "protocol": "TCP"}]}});
        assert_eq!(differences(&live, &want), Vec::<String>::new());

        let live = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {"ports": [{"port": 8080}]}});
        assert_eq!(
            differences(&live, &want),
            [
                r#"metadata.finalizers: want ["example.com/keep"], found nothing"#,
                "spec.ports: want 2 items, found 1",
            ]
        );
        let live = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "finalizers": ["other"]},
            "spec": {"ports": [{"port": 80}, {"port": 8443}]}});
        assert_eq!(
            differences(&live, &want),
            [
                r#"metadata.finalizers: want "example.com/keep", found none"#,
                "spec.ports[1].port: want 443, found 8443",
            ]
        );
    }

    #[test]
    fn empty_values_match_nothing_and_numbers_match_as_numbers() {
        let want = json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w", "annotations": {}},
            "spec": {"items": [], "extra": null, "ratio": 1, "size": "1k"}});
        let live = json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w"}, "spec": {"ratio": 1.0, "size": "1000"}});
        // A custom resource's strings are compared exactly: no API server rewrites them.
        assert_eq!(
            differences(&live, &want),
            [r#"spec.size: want "1k", found "1000""#]
        );
    }

    #[test]
    fn secret_values_are_never_shown() {
        let want = json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "db"}, "data": {"password": "aHVudGVyMg=="}});
        let live = json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": "db"}, "data": {"password": "c2VjcmV0"}});
        let diffs = differences(&live, &want);
        assert_eq!(
            diffs,
            [
                "data.password: want (a hidden value), found (a hidden value)",
                r#"type: want "Opaque", found "kubernetes.io/tls""#,
            ]
        );
    }

    #[test]
    fn long_values_are_cut() {
        let long = "x".repeat(100);
        let want = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": long}});
        let live = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "y"}});
        assert_eq!(
            differences(&live, &want),
            [format!(r#"data.a: want "{}…, found "y""#, "x".repeat(39))]
        );
    }

    #[test]
    fn a_verification_failure_names_a_few_objects_and_counts_the_rest() {
        let objects: Vec<String> = (0..7)
            .map(|i| format!("ConfigMap n/c{i} (v1): missing"))
            .collect();
        let err = ArchiveError::VerifyFailed { objects };
        assert_eq!(
            err.to_string(),
            "7 restored object(s) differ from the archive: ConfigMap n/c0 (v1): missing, \
             ConfigMap n/c1 (v1): missing, ConfigMap n/c2 (v1): missing, ConfigMap n/c3 (v1): missing, \
             ConfigMap n/c4 (v1): missing and 2 more; find what changed them (a controller, an \
             admission webhook) and restore again"
        );
        assert_eq!(err.reason(), "RestoreVerificationFailed");
        let err = ArchiveError::Import {
            object: "ConfigMap n/c (v1)".into(),
            message: "namespaces \"n\" not found (404)".into(),
        };
        assert_eq!(
            err.to_string(),
            "ConfigMap n/c (v1) could not be restored: namespaces \"n\" not found (404)"
        );
        assert_eq!(err.reason(), "RestoreFailed");
    }

    /// Compiles only if export, import and verify can run in a spawned task, as the
    /// controller's reconcile does (a borrowing closure over a stream makes a future that is
    /// not `Send` for every lifetime).
    #[allow(dead_code)]
    fn the_futures_can_be_spawned(client: Client, namespaces: Vec<String>, objects: Vec<Value>) {
        fn spawnable<F: std::future::Future + Send + 'static>(_: F) {}
        spawnable(async move {
            let _ = super::super::export(&client, &namespaces).await;
            let _ = import(&client, &objects, "m").await;
            let _ = verify(&client, &objects).await;
        });
    }

    #[test]
    fn objects_are_described_as_the_manifest_names_them() {
        assert_eq!(
            describe(&object("apps/v1", "Deployment", "web")),
            "Deployment acme-prod/web (apps/v1)"
        );
        assert_eq!(
            describe(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}})),
            "Namespace n (v1)"
        );
    }
}
