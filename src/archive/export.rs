//! Export: every object in a tenant's namespaces that a restore should write back, read over
//! the Kubernetes API, in the form an archive keeps.
//!
//! The kinds come from the API server's discovery (each group at its preferred version, so a
//! custom resource is exported like a built-in one), and the objects from one paginated LIST
//! per kind and namespace. What the cluster makes by itself is left out ([`should_archive`]),
//! and what the server fills in is stripped ([`strip_server_fields`]), so that a restore
//! writes only what someone asked for and the server and controllers redo the rest.
//!
//! The namespaces themselves are not exported: Landlord recreates them from the Tenant's spec
//! (labels and annotations included), which the archive's manifest carries. A label or
//! annotation put on a namespace by hand, outside the spec, is therefore not restored.

use futures::{StreamExt, TryStreamExt};
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::core::gvk::GroupVersion;
use kube::discovery::{self, Scope, verbs};
use serde_json::{Map, Value};

use super::ArchiveError;
use super::bundle::normalise;
use crate::naming::{MANAGED_BY, TENANT_LABEL};

/// Objects per LIST page: large enough that a thousand ConfigMaps take two requests, small
/// enough that a page of large Secrets stays a few MB.
const PAGE: u32 = 500;
/// LISTs in flight at once.
const CONCURRENCY: usize = 4;

/// API groups never exported, and not even listed: read-only views of live state served by
/// aggregated APIs (`metrics.k8s.io` and friends answer 503 whenever metrics-server is down,
/// which would otherwise stop every archive), Events, and Leases (leader election and
/// heartbeats: runtime state that the holders recreate).
const SKIPPED_GROUPS: [&str; 5] = [
    "metrics.k8s.io",
    "custom.metrics.k8s.io",
    "external.metrics.k8s.io",
    "events.k8s.io",
    "coordination.k8s.io",
];

/// ConfigMaps the cluster puts into every namespace: the API server's CA (upstream) and the
/// service CA (OpenShift, MicroShift).
const GENERATED_CONFIG_MAPS: [&str; 2] = ["kube-root-ca.crt", "openshift-service-ca.crt"];

/// Finalizers the server or its controllers add, and add again to a restored object when they
/// need them. Restoring them would only hold up a later deletion.
const SERVER_FINALIZERS: [&str; 6] = [
    "kubernetes.io/pvc-protection",
    "kubernetes.io/pv-protection",
    "foregroundDeletion",
    "orphan",
    "service.kubernetes.io/load-balancer-cleanup",
    "batch.kubernetes.io/job-tracking",
];

/// The prefixes of the annotations the volume binder, the provisioner and the scheduler put on
/// a claim: they describe the binding to a volume that a restored claim does not have.
const CLAIM_ANNOTATION_PREFIXES: [&str; 3] = [
    "pv.kubernetes.io/",
    "volume.kubernetes.io/",
    "volume.beta.kubernetes.io/",
];
/// The one annotation under those prefixes that a user sets: the deprecated way to choose a
/// claim's storage class, still honoured.
const CLAIM_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";

/// The labels the Job controller's uid goes into (selector, Pod template).
const JOB_UID_LABELS: [&str; 2] = ["controller-uid", "batch.kubernetes.io/controller-uid"];

/// Every namespaced object in `namespaces` that [`should_archive`] keeps, with `apiVersion`
/// and `kind` set and [`strip_server_fields`] applied, sorted by apiVersion, kind, namespace
/// and name as [`Bundle::new`](super::Bundle::new) sorts them.
///
/// Kinds are those discovery lists as namespaced with both `list` and `patch` (a kind that
/// cannot be applied could not be restored), each at its group's preferred version. Any
/// failure stops the export, an unavailable aggregated API included: an archive that silently
/// lacks a kind would lose those objects when the namespaces are deleted. A kind that
/// disappears between discovery and its LIST (a CRD deleted meanwhile) counts as empty.
pub async fn export(client: &Client, namespaces: &[String]) -> Result<Vec<Value>, ArchiveError> {
    let kinds = namespaced_kinds(client).await?;
    // Owned pairs, not borrows: a borrowing closure here makes the future not `Send` for
    // every lifetime, which the controller's reconcile future must be.
    let lists: Vec<(kube::discovery::ApiResource, String)> = kinds
        .iter()
        .flat_map(|ar| namespaces.iter().map(move |ns| (ar.clone(), ns.clone())))
        .collect();
    let pages: Vec<Vec<Value>> = futures::stream::iter(lists)
        .map(|(ar, ns)| {
            let client = client.clone();
            async move {
                list_all(&client, &ar, Some(&ns))
                    .await
                    .map_err(|e| ArchiveError::Export {
                        what: format!("{} in {ns} ({})", ar.plural, ar.api_version),
                        source: Box::new(e),
                    })
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    let mut objects: Vec<Value> = pages
        .into_iter()
        .flatten()
        .filter(|o| should_archive(text(o, "/apiVersion"), text(o, "/kind"), o))
        .map(|o| strip_server_fields(&o))
        .collect();
    objects.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
    Ok(objects)
}

/// Whether an object read from a tenant namespace belongs in its archive. Left out, because the
/// cluster or a controller makes them again (or they are runtime state, not configuration):
///
/// - Events (core and `events.k8s.io`), Endpoints and EndpointSlices, Leases
///   (`coordination.k8s.io`), and the metrics APIs (`metrics.k8s.io`, `custom.metrics.k8s.io`,
///   `external.metrics.k8s.io`);
/// - objects with a controller owner (an `ownerReference` with `controller: true`): Pods of
///   ReplicaSets, StatefulSets, DaemonSets and Jobs, ReplicaSets of Deployments, Jobs of
///   CronJobs, ControllerRevisions, EndpointSlices of Services. The owner is archived and its
///   controller recreates them. A Pod or ReplicaSet with no controller is archived;
/// - Secrets of type `kubernetes.io/service-account-token` (the token controller fills them,
///   and their token is bound to the old ServiceAccount's uid);
/// - the `kube-root-ca.crt` and `openshift-service-ca.crt` ConfigMaps and the `default`
///   ServiceAccount, which the cluster creates in every namespace;
/// - Landlord's own objects (labelled [`TENANT_LABEL`] and `app.kubernetes.io/managed-by:
///   landlord`: quotas, limit ranges, network policies, role bindings), rebuilt from the plan.
///   The labels rather than [`crate::naming::is_ours`]'s field-manager test: a restore applies
///   the tenant's own objects under Landlord's field manager too;
/// - objects already being deleted (`deletionTimestamp` set): someone asked for them to go.
pub fn should_archive(api_version: &str, kind: &str, obj: &Value) -> bool {
    let group = group_of(api_version);
    let name = text(obj, "/metadata/name");
    let generated = match (group, kind) {
        ("", "Secret") => text(obj, "/type") == "kubernetes.io/service-account-token",
        ("", "ConfigMap") => GENERATED_CONFIG_MAPS.contains(&name),
        ("", "ServiceAccount") => name == "default",
        _ => false,
    };
    let controlled = obj
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter()
                .any(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        });
    let labels = obj.pointer("/metadata/labels");
    let landlords = labels.is_some_and(|l| {
        l.get(TENANT_LABEL).is_some()
            && l.get(MANAGED_BY.0).and_then(Value::as_str) == Some(MANAGED_BY.1)
    });
    let deleting = obj
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null());
    !(skipped_kind(group, kind) || generated || controlled || landlords || deleting)
}

/// Kinds never archived whatever the object: see [`should_archive`].
fn skipped_kind(group: &str, kind: &str) -> bool {
    SKIPPED_GROUPS.contains(&group)
        || matches!(
            (group, kind),
            ("", "Event" | "Endpoints") | ("discovery.k8s.io", "EndpointSlice")
        )
}

/// `obj` as a restore should write it: [`normalise`] (the metadata the server sets, and
/// `status`), then what the server or a controller fills in for particular kinds, which a
/// restored object gets anew and which would be wrong, or refused, if written back:
///
/// - every kind: the finalizers the server adds (`kubernetes.io/pvc-protection`,
///   `kubernetes.io/pv-protection`, `foregroundDeletion`, `orphan`,
///   `service.kubernetes.io/load-balancer-cleanup`, `batch.kubernetes.io/job-tracking`);
///   other finalizers are the user's and stay;
/// - Service: `spec.clusterIP` and `spec.clusterIPs`, allocated from the cluster's range (on
///   another cluster, or once reused, the old address would be refused), unless they are
///   `None`: a headless Service must stay headless. `ipFamilies` and `ipFamilyPolicy` stay (the
///   server's defaults, equally valid on a restore), and so do `nodePort`s and
///   `healthCheckNodePort`: outside load balancers and firewalls point at them, and the
///   deleted Service released them, so the same cluster gives them back;
/// - PersistentVolumeClaim: `spec.volumeName` (the old volume is gone or released; a restored
///   claim is provisioned or bound afresh) and the annotations under `pv.kubernetes.io/`,
///   `volume.kubernetes.io/` and `volume.beta.kubernetes.io/` that describe that binding,
///   except `volume.beta.kubernetes.io/storage-class`, the user's choice of class;
/// - Pod (one without a controller): `spec.nodeName` (the scheduler picks again),
///   `spec.priority` and `spec.preemptionPolicy` (Priority admission derives them from
///   `priorityClassName` and refuses a Pod whose values differ from the class's), and
///   `spec.ephemeralContainers` (debug containers cannot be set on create);
/// - Deployment: the `deployment.kubernetes.io/revision` annotation, and DaemonSet:
///   `deprecated.daemonset.template.generation`, which the controller or the server number
///   again from 1;
/// - Job: `spec.selector` (unless `spec.manualSelector` is true) and the `controller-uid` and
///   `batch.kubernetes.io/controller-uid` labels, in the template and on the Job, which name
///   the old Job's uid; the server generates them for the new one.
///
/// Maps left empty by this are removed. Applying it twice changes nothing.
pub fn strip_server_fields(obj: &Value) -> Value {
    let mut out = normalise(obj);
    let api_version = text(&out, "/apiVersion").to_string();
    let kind = text(&out, "/kind").to_string();
    let group = group_of(&api_version);
    let Some(map) = out.as_object_mut() else {
        return out;
    };
    if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
        if let Some(finalizers) = meta.get_mut("finalizers").and_then(Value::as_array_mut) {
            finalizers.retain(|f| !f.as_str().is_some_and(|f| SERVER_FINALIZERS.contains(&f)));
        }
        remove_if_empty(meta, "finalizers");
    }
    match (group, kind.as_str()) {
        ("", "Service") => {
            if let Some(spec) = object_at(map, "spec")
                && spec.get("clusterIP").and_then(Value::as_str) != Some("None")
            {
                spec.remove("clusterIP");
                spec.remove("clusterIPs");
            }
        }
        ("", "PersistentVolumeClaim") => {
            if let Some(spec) = object_at(map, "spec") {
                spec.remove("volumeName");
            }
            if let Some(annotations) = metadata_map(map, "annotations") {
                annotations.retain(|k, _| {
                    k == CLAIM_CLASS_ANNOTATION
                        || !CLAIM_ANNOTATION_PREFIXES.iter().any(|p| k.starts_with(p))
                });
            }
        }
        ("", "Pod") => {
            if let Some(spec) = object_at(map, "spec") {
                for field in [
                    "nodeName",
                    "priority",
                    "preemptionPolicy",
                    "ephemeralContainers",
                ] {
                    spec.remove(field);
                }
            }
        }
        ("apps", "Deployment") => {
            if let Some(annotations) = metadata_map(map, "annotations") {
                annotations.remove("deployment.kubernetes.io/revision");
            }
        }
        ("apps", "DaemonSet") => {
            if let Some(annotations) = metadata_map(map, "annotations") {
                annotations.remove("deprecated.daemonset.template.generation");
            }
        }
        ("batch", "Job") => {
            if let Some(labels) = metadata_map(map, "labels") {
                JOB_UID_LABELS.iter().for_each(|l| {
                    labels.remove(*l);
                });
            }
            if let Some(spec) = object_at(map, "spec") {
                if spec.get("manualSelector").and_then(Value::as_bool) != Some(true) {
                    spec.remove("selector");
                }
                let template_labels = spec
                    .get_mut("template")
                    .and_then(|t| t.get_mut("metadata"))
                    .and_then(|m| m.get_mut("labels"))
                    .and_then(Value::as_object_mut);
                if let Some(labels) = template_labels {
                    JOB_UID_LABELS.iter().for_each(|l| {
                        labels.remove(*l);
                    });
                }
            }
        }
        _ => {}
    }
    if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
        remove_if_empty(meta, "labels");
        remove_if_empty(meta, "annotations");
    }
    out
}

/// Each namespaced kind worth listing, at its group's preferred version. One request for the
/// group list, one per group: the other versions of a group are not read at all.
async fn namespaced_kinds(client: &Client) -> Result<Vec<ApiResource>, ArchiveError> {
    let failed = |what: String| {
        move |e| ArchiveError::Export {
            what,
            source: Box::new(e),
        }
    };
    let groups = client
        .list_api_groups()
        .await
        .map_err(failed("the list of API groups".into()))?;
    let mut versions = vec![GroupVersion::gv("", "v1")];
    for g in groups.groups {
        if SKIPPED_GROUPS.contains(&g.name.as_str()) {
            continue;
        }
        let preferred = g.preferred_version.or_else(|| g.versions.first().cloned());
        if let Some(v) = preferred {
            versions.push(GroupVersion::gv(&g.name, &v.version));
        }
    }
    let mut kinds = Vec::new();
    for gv in versions {
        let group = discovery::pinned_group(client, &gv)
            .await
            .map_err(failed(format!("the discovery of {}", gv.api_version())))?;
        for (ar, caps) in group.recommended_resources() {
            if caps.scope == Scope::Namespaced
                && caps.supports_operation(verbs::LIST)
                && caps.supports_operation(verbs::PATCH)
                && !skipped_kind(&ar.group, &ar.kind)
            {
                kinds.push(ar);
            }
        }
    }
    Ok(kinds)
}

/// Every object of one kind in one namespace (`None`: cluster-scoped), page by page, with
/// `apiVersion` and `kind` set (the items of a LIST lack them). A kind no longer served (404)
/// has no objects.
pub(super) async fn list_all(
    client: &Client,
    ar: &ApiResource,
    ns: Option<&str>,
) -> Result<Vec<Value>, kube::Error> {
    let api: Api<DynamicObject> = match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, ar),
        None => Api::all_with(client.clone(), ar),
    };
    let mut params = ListParams::default().limit(PAGE);
    let mut out = Vec::new();
    loop {
        let page = match api.list(&params).await {
            Ok(page) => page,
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(out),
            Err(e) => return Err(e),
        };
        for item in page.items {
            let mut value = serde_json::to_value(item).expect("objects serialise");
            value["apiVersion"] = Value::String(ar.api_version.clone());
            value["kind"] = Value::String(ar.kind.clone());
            out.push(value);
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(out),
        }
    }
}

/// apiVersion, kind, namespace, name: the order of a bundle's entries.
fn sort_key(obj: &Value) -> (&str, &str, &str, &str) {
    (
        text(obj, "/apiVersion"),
        text(obj, "/kind"),
        text(obj, "/metadata/namespace"),
        text(obj, "/metadata/name"),
    )
}

/// The group of an apiVersion: "" for the core group's `v1`.
pub(super) fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

/// The string at `pointer`, or "".
pub(super) fn text<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn object_at<'a>(map: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    map.get_mut(key).and_then(Value::as_object_mut)
}

fn metadata_map<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
) -> Option<&'a mut Map<String, Value>> {
    object_at(map, "metadata").and_then(|m| object_at(m, key))
}

fn remove_if_empty(map: &mut Map<String, Value>, key: &str) {
    let empty = match map.get(key) {
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        _ => false,
    };
    if empty {
        map.remove(key);
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

    fn archived(obj: &Value) -> bool {
        should_archive(text(obj, "/apiVersion"), text(obj, "/kind"), obj)
    }

    fn owned_by(mut obj: Value, kind: &str, controller: Option<bool>) -> Value {
        let mut owner = json!({"apiVersion": "apps/v1", "kind": kind, "name": "o", "uid": "1"});
        if let Some(c) = controller {
            owner["controller"] = json!(c);
        }
        obj["metadata"]["ownerReferences"] = json!([owner]);
        obj
    }

    #[test]
    fn what_the_cluster_generates_is_not_archived() {
        for skipped in [
            object("v1", "Event", "web.1"),
            object("events.k8s.io/v1", "Event", "web.1"),
            object("v1", "Endpoints", "web"),
            object("discovery.k8s.io/v1", "EndpointSlice", "web-abcde"),
            object("coordination.k8s.io/v1", "Lease", "leader"),
            object("metrics.k8s.io/v1beta1", "PodMetrics", "web-1"),
            object("custom.metrics.k8s.io/v1beta2", "MetricValueList", "x"),
            object("v1", "ConfigMap", "kube-root-ca.crt"),
            object("v1", "ConfigMap", "openshift-service-ca.crt"),
            object("v1", "ServiceAccount", "default"),
        ] {
            assert!(!archived(&skipped), "{skipped}");
        }
        let mut token = object("v1", "Secret", "builder-token");
        token["type"] = json!("kubernetes.io/service-account-token");
        assert!(!archived(&token));

        for kept in [
            object("v1", "ConfigMap", "settings"),
            object("v1", "ServiceAccount", "builder"),
            object("v1", "Secret", "db"),
            object("v1", "Pod", "bare"),
            object("apps/v1", "ReplicaSet", "orphan"),
            object("example.com/v1", "Widget", "w"),
            object("rbac.authorization.k8s.io/v1", "Role", "reader"),
            object("networking.k8s.io/v1", "NetworkPolicy", "allow-web"),
        ] {
            assert!(archived(&kept), "{kept}");
        }
        let mut opaque = object("v1", "Secret", "db");
        opaque["type"] = json!("Opaque");
        assert!(archived(&opaque));
    }

    #[test]
    fn objects_with_a_controller_are_left_to_it() {
        let pod = object("v1", "Pod", "web-5d8f-x2x");
        assert!(!archived(&owned_by(pod.clone(), "ReplicaSet", Some(true))));
        let rs = object("apps/v1", "ReplicaSet", "web-5d8f");
        assert!(!archived(&owned_by(rs, "Deployment", Some(true))));
        let job = object("batch/v1", "Job", "nightly-29000000");
        assert!(!archived(&owned_by(job, "CronJob", Some(true))));
        // An owner that is not a controller: the object is the user's, the reference goes.
        assert!(archived(&owned_by(pod.clone(), "ConfigMap", Some(false))));
        assert!(archived(&owned_by(pod, "ConfigMap", None)));
    }

    #[test]
    fn landlords_own_objects_and_objects_being_deleted_are_not_archived() {
        let mut ours = object(
            "networking.k8s.io/v1",
            "NetworkPolicy",
            "landlord-isolation",
        );
        ours["metadata"]["labels"] = json!({
            "landlord.dev/tenant": "acme", "app.kubernetes.io/managed-by": "landlord"});
        assert!(!archived(&ours));
        // The tenant label alone is the user's business: such an object is theirs.
        let mut labelled = object("v1", "ConfigMap", "settings");
        labelled["metadata"]["labels"] = json!({"landlord.dev/tenant": "acme"});
        assert!(archived(&labelled));

        let mut going = object("v1", "ConfigMap", "old");
        going["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        assert!(!archived(&going));
    }

    #[test]
    fn a_service_loses_its_cluster_ip_unless_headless() {
        let service = |ip: &str| {
            json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "web", "namespace": "acme-prod", "uid": "1"},
                "spec": {"type": "NodePort", "clusterIP": ip, "clusterIPs": [ip],
                    "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                    "ports": [{"port": 80, "nodePort": 30080}]},
                "status": {"loadBalancer": {}}})
        };
        assert_eq!(
            strip_server_fields(&service("10.0.0.7")),
            json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "web", "namespace": "acme-prod"},
                "spec": {"type": "NodePort", "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                    "ports": [{"port": 80, "nodePort": 30080}]}})
        );
        let headless = strip_server_fields(&service("None"));
        assert_eq!(headless["spec"]["clusterIP"], "None");
        assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
    }

    #[test]
    fn a_claim_loses_its_binding_but_keeps_its_class() {
        let claim = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": "acme-prod",
                "finalizers": ["kubernetes.io/pvc-protection"],
                "annotations": {
                    "pv.kubernetes.io/bind-completed": "yes",
                    "pv.kubernetes.io/bound-by-controller": "yes",
                    "volume.beta.kubernetes.io/storage-provisioner": "rancher.io/local-path",
                    "volume.kubernetes.io/storage-provisioner": "rancher.io/local-path",
                    "volume.kubernetes.io/selected-node": "node-1",
                    "volume.beta.kubernetes.io/storage-class": "fast",
                    "team": "data"}},
            "spec": {"accessModes": ["ReadWriteOnce"], "volumeName": "pvc-1234",
                "storageClassName": "fast", "volumeMode": "Filesystem",
                "resources": {"requests": {"storage": "1Gi"}}},
            "status": {"phase": "Bound"}});
        assert_eq!(
            strip_server_fields(&claim),
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": "data", "namespace": "acme-prod",
                    "annotations": {"volume.beta.kubernetes.io/storage-class": "fast", "team": "data"}},
                "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "fast",
                    "volumeMode": "Filesystem", "resources": {"requests": {"storage": "1Gi"}}}})
        );
    }

    #[test]
    fn a_bare_pod_is_scheduled_and_prioritised_again() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "bare", "namespace": "acme-prod",
                "finalizers": ["example.com/keep", "foregroundDeletion"]},
            "spec": {"nodeName": "node-1", "priority": 1000, "priorityClassName": "high",
                "preemptionPolicy": "PreemptLowerPriority",
                "ephemeralContainers": [{"name": "debugger", "image": "busybox"}],
                "containers": [{"name": "app", "image": "nginx"}]}});
        assert_eq!(
            strip_server_fields(&pod),
            json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "bare", "namespace": "acme-prod",
                    "finalizers": ["example.com/keep"]},
                "spec": {"priorityClassName": "high",
                    "containers": [{"name": "app", "image": "nginx"}]}})
        );
    }

    #[test]
    fn controller_numbering_annotations_are_dropped() {
        let mut deployment = object("apps/v1", "Deployment", "web");
        deployment["metadata"]["annotations"] =
            json!({"deployment.kubernetes.io/revision": "3", "team": "web"});
        assert_eq!(
            strip_server_fields(&deployment)["metadata"]["annotations"],
            json!({"team": "web"})
        );
        let mut daemons = object("apps/v1", "DaemonSet", "agent");
        daemons["metadata"]["annotations"] =
            json!({"deprecated.daemonset.template.generation": "2"});
        assert_eq!(
            strip_server_fields(&daemons)["metadata"],
            json!({"name": "agent", "namespace": "acme-prod"})
        );
    }

    #[test]
    fn a_job_loses_its_generated_selector_and_uid_labels() {
        let labels = json!({"controller-uid": "u-1", "batch.kubernetes.io/controller-uid": "u-1",
            "job-name": "once", "batch.kubernetes.io/job-name": "once", "app": "once"});
        let job = json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "once", "namespace": "acme-prod", "labels": labels},
            "spec": {"selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}},
                "suspend": true,
                "template": {"metadata": {"labels": labels},
                    "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}});
        let kept =
            json!({"job-name": "once", "batch.kubernetes.io/job-name": "once", "app": "once"});
        let stripped = strip_server_fields(&job);
        assert_eq!(stripped["metadata"]["labels"], kept);
        assert_eq!(stripped["spec"]["template"]["metadata"]["labels"], kept);
        assert_eq!(stripped["spec"].get("selector"), None);
        assert_eq!(stripped["spec"]["suspend"], true);

        // A selector the user wrote stays.
        let mut manual = job.clone();
        manual["spec"]["manualSelector"] = json!(true);
        manual["spec"]["selector"] = json!({"matchLabels": {"app": "once"}});
        assert_eq!(
            strip_server_fields(&manual)["spec"]["selector"],
            json!({"matchLabels": {"app": "once"}})
        );
    }

    #[test]
    fn stripping_twice_changes_nothing_and_other_kinds_only_lose_server_metadata() {
        let mut cm = object("v1", "ConfigMap", "settings");
        cm["metadata"]["resourceVersion"] = json!("9");
        cm["metadata"]["labels"] = json!({});
        cm["data"] = json!({"clusterIP": "kept", "nodeName": "kept"});
        let once = strip_server_fields(&cm);
        assert_eq!(
            once,
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "settings", "namespace": "acme-prod"},
                "data": {"clusterIP": "kept", "nodeName": "kept"}})
        );
        assert_eq!(strip_server_fields(&once), once);
        // A custom kind named like a built-in one keeps its fields.
        let mut custom = object("example.com/v1", "Service", "s");
        custom["spec"] = json!({"clusterIP": "10.0.0.1"});
        assert_eq!(
            strip_server_fields(&custom)["spec"]["clusterIP"],
            "10.0.0.1"
        );
    }
}
