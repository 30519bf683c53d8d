//! A tenant owner trying to widen its permissions. Landlord binds owners to `admin` in each
//! tenant namespace; the tests act as an owner through impersonation and show who refuses
//! what: RBAC (namespace labels, quotas and limit ranges, other tenants, cluster-scoped
//! objects, binding `cluster-admin`), Pod Security at the plan's level (privileged pods, host
//! namespaces, hostPath, host ports, capabilities, root), the chart's ValidatingAdmissionPolicies
//! (protected Tenants, tenant namespaces' labels), and Landlord itself, which restores what
//! `admin` may delete or edit (its NetworkPolicy and the owners' RoleBinding) with an Event.

use k8s_openapi::api::core::v1::{
    ConfigMap, LimitRange, Namespace, Node, Pod, ResourceQuota, Secret, ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, ResourceExt};
use landlord::api::Tenant;
use serde_json::{Value, json};

use crate::support::*;

/// A client that acts as `user` in `groups`, impersonated by the test's admin credentials.
async fn as_user(c: &Cluster, user: &str, groups: &[&str]) -> Client {
    let kubeconfig = Kubeconfig::read_from(&c.kubeconfig).unwrap();
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    config.auth_info.impersonate = Some(user.to_string());
    if !groups.is_empty() {
        config.auth_info.impersonate_groups = Some(groups.iter().map(|g| g.to_string()).collect());
    }
    Client::try_from(config).unwrap()
}

/// The chart's ServiceAccount in `manifests/install.yaml`, which its policies exempt.
const LANDLORD_SA: &str = "system:serviceaccount:landlord-system:landlord";

/// Run this test's operator as the chart's ServiceAccount (keeping the test's cluster-admin
/// rights through the `system:masters` group), so the admission policies see it as Landlord.
fn operator_as_landlord(c: &mut Cluster) {
    let text = std::fs::read_to_string(&c.kubeconfig).unwrap();
    let mut config: Value = serde_saphyr::from_str(&text).unwrap();
    for user in config["users"].as_array_mut().unwrap() {
        user["user"]["as"] = json!(LANDLORD_SA);
        user["user"]["as-groups"] = json!(["system:masters"]);
    }
    std::fs::write(&c.kubeconfig, serde_saphyr::to_string(&config).unwrap()).unwrap();
    c.restart_operator();
}

/// The HTTP status and message of an answer: 200 for any success.
fn outcome<T>(r: Result<T, kube::Error>) -> (u16, String) {
    match r {
        Ok(_) => (200, String::new()),
        Err(kube::Error::Api(s)) => (s.code, s.message),
        Err(e) => panic!("not an API answer: {e}"),
    }
}

/// Assert a 403 whose message contains `words`.
fn forbidden<T>(what: &str, r: Result<T, kube::Error>, words: &str) {
    let (code, message) = outcome(r);
    assert_eq!(code, 403, "{what}: {message}");
    assert!(
        message.contains(words),
        "{what}: {message:?} lacks {words:?}"
    );
}

fn allowed<T>(what: &str, r: Result<T, kube::Error>) {
    let (code, message) = outcome(r);
    assert_eq!(code, 200, "{what}: {message}");
}

fn merge(v: Value) -> Patch<Value> {
    Patch::Merge(v)
}

fn labels(label: &str, value: Option<&str>) -> Patch<Value> {
    merge(json!({"metadata": {"labels": {label: value}}}))
}

const PLAN_AND_TENANTS: &str = "\
apiVersion: landlord.dev/v1alpha1
kind: TenantQuota
metadata: {name: locked-$ID}
spec:
  podSecurity: restricted
  hard: {pods: 20}
  limitRange:
    default: {cpu: 200m, memory: 128Mi}
---
apiVersion: landlord.dev/v1alpha1
kind: Tenant
metadata: {name: mine-$ID}
spec:
  quotaRef: locked-$ID
  owners: [{kind: User, name: owner-$ID}]
  namespaces: [{name: app}]
---
apiVersion: landlord.dev/v1alpha1
kind: Tenant
metadata: {name: theirs-$ID}
spec:
  quotaRef: locked-$ID
  owners: [{kind: User, name: neighbour-$ID}]
  namespaces: [{name: app}]
";

/// RBAC refuses every widening an `admin` of its namespaces might try.
#[tokio::test]
async fn an_owner_cannot_widen_its_permissions() {
    let c = Cluster::start("privileges-rbac", "5m").await;
    c.apply(PLAN_AND_TENANTS).await;
    let (mine, theirs) = (c.name("mine"), c.name("theirs"));
    wait_condition(&c.client, &mine, "Ready", "True", "Ready").await;
    wait_condition(&c.client, &theirs, "Ready", "True", "Ready").await;
    let (app, other) = (format!("{mine}-app"), format!("{theirs}-app"));
    let user = c.name("owner");
    let owner = as_user(&c, &user, &[]).await;

    // What admin gives: the namespace's workloads and its own Tenant.
    let pods: Api<Pod> = Api::namespaced(owner.clone(), &app);
    allowed("list own pods", pods.list(&ListParams::default()).await);
    let tenants: Api<Tenant> = Api::all(owner.clone());
    allowed("read own Tenant", tenants.get(&mine).await);

    // Its namespaces' labels: Pod Security level and tenant label.
    let namespaces: Api<Namespace> = Api::all(owner.clone());
    let patch = PatchParams::default();
    let cannot = |verb: &str, resource: &str| {
        format!("User \"{user}\" cannot {verb} resource \"{resource}\"")
    };
    forbidden(
        "lower its Pod Security level",
        namespaces
            .patch(
                &app,
                &patch,
                &labels("pod-security.kubernetes.io/enforce", Some("privileged")),
            )
            .await,
        &cannot("patch", "namespaces"),
    );
    forbidden(
        "take the other tenant's label",
        namespaces
            .patch(&app, &patch, &labels("landlord.dev/tenant", Some(&theirs)))
            .await,
        &cannot("patch", "namespaces"),
    );

    // Landlord's quota and limit range.
    let quotas: Api<ResourceQuota> = Api::namespaced(owner.clone(), &app);
    let raise = merge(json!({"spec": {"hard": {"pods": "1000"}}}));
    forbidden(
        "raise its quota",
        quotas.patch("landlord-quota", &patch, &raise).await,
        &cannot("patch", "resourcequotas"),
    );
    forbidden(
        "delete its quota",
        quotas
            .delete("landlord-quota", &DeleteParams::default())
            .await,
        &cannot("delete", "resourcequotas"),
    );
    let limits: Api<LimitRange> = Api::namespaced(owner.clone(), &app);
    let widen = merge(json!({"spec": {"limits": [{"type": "Container"}]}}));
    forbidden(
        "widen its limit range",
        limits.patch("landlord-limits", &patch, &widen).await,
        &cannot("patch", "limitranges"),
    );
    forbidden(
        "delete its limit range",
        limits
            .delete("landlord-limits", &DeleteParams::default())
            .await,
        &cannot("delete", "limitranges"),
    );

    // Another tenant's objects.
    let in_other = format!("in the namespace \"{other}\"");
    forbidden(
        "list the other tenant's pods",
        Api::<Pod>::namespaced(owner.clone(), &other)
            .list(&ListParams::default())
            .await,
        &in_other,
    );
    forbidden(
        "read the other tenant's ConfigMap",
        Api::<ConfigMap>::namespaced(owner.clone(), &other)
            .get("kube-root-ca.crt")
            .await,
        &in_other,
    );
    forbidden(
        "list the other tenant's Secrets",
        Api::<Secret>::namespaced(owner.clone(), &other)
            .list(&ListParams::default())
            .await,
        &in_other,
    );
    forbidden(
        "read the other Tenant",
        tenants.get(&theirs).await,
        &cannot("get", "tenants"),
    );

    // Cluster-scoped objects.
    let list = ListParams::default();
    for (resource, r) in [
        ("namespaces", outcome(namespaces.list(&list).await)),
        (
            "nodes",
            outcome(Api::<Node>::all(owner.clone()).list(&list).await),
        ),
        (
            "clusterroles",
            outcome(Api::<ClusterRole>::all(owner.clone()).list(&list).await),
        ),
        ("tenants", outcome(tenants.list(&list).await)),
    ] {
        assert_eq!(r.0, 403, "list {resource}: {}", r.1);
        assert!(
            r.1.contains(&cannot("list", resource)) && r.1.ends_with("at the cluster scope"),
            "list {resource}: {}",
            r.1
        );
    }

    // Binding itself a cluster role: refused by RBAC's escalation check, since it holds
    // neither `bind` on cluster-admin nor its permissions; binding `admin`, which it holds
    // in its namespace, is allowed.
    let binding = |name: &str, role: &str| -> RoleBinding {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        }))
        .unwrap()
    };
    let bindings: Api<RoleBinding> = Api::namespaced(owner.clone(), &app);
    let post = PostParams::default();
    forbidden(
        "bind itself cluster-admin in its namespace",
        bindings
            .create(&post, &binding("mine", "cluster-admin"))
            .await,
        "is attempting to grant RBAC permissions not currently held",
    );
    let mut cluster_binding =
        serde_json::to_value(binding(&c.name("mine"), "cluster-admin")).unwrap();
    cluster_binding["kind"] = json!("ClusterRoleBinding");
    let cluster_binding: ClusterRoleBinding = serde_json::from_value(cluster_binding).unwrap();
    forbidden(
        "bind itself cluster-admin cluster-wide",
        Api::<ClusterRoleBinding>::all(owner.clone())
            .create(&post, &cluster_binding)
            .await,
        &cannot("create", "clusterrolebindings"),
    );
    allowed(
        "bind itself admin, which it holds",
        bindings.create(&post, &binding("again", "admin")).await,
    );
    c.finish().await;
}

/// The Warning Events with reason Restored about `tenant`, as their notes.
async fn restored_notes(client: &Client, tenant: &str) -> Vec<String> {
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::all(client.clone());
    events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(tenant))
        .filter(|e| e.reason.as_deref() == Some("Restored"))
        .filter_map(|e| e.note)
        .collect()
}

/// What `admin` may do to Landlord's objects, Landlord undoes at once, and says so.
#[tokio::test]
async fn landlord_restores_what_an_owner_may_delete_or_edit() {
    let c = Cluster::start("privileges-restore", "5m").await;
    c.apply(PLAN_AND_TENANTS).await;
    let mine = c.name("mine");
    wait_condition(&c.client, &mine, "Ready", "True", "Ready").await;
    let app = format!("{mine}-app");
    let owner = as_user(&c, &c.name("owner"), &[]).await;
    let policies: Api<NetworkPolicy> = Api::namespaced(owner.clone(), &app);
    let landlords: Api<NetworkPolicy> = Api::namespaced(c.client.clone(), &app);
    let wanted = landlords.get("landlord-isolation").await.unwrap().spec;
    let policy_note = |what: &str| {
        format!(
            "NetworkPolicy {app}/landlord-isolation was {what} by someone other than Landlord; {}",
            if what == "deleted" {
                "Landlord re-created it"
            } else {
                "Landlord put its fields back"
            }
        )
    };

    // Open the namespace to everyone: admin may edit NetworkPolicies.
    let open = merge(json!({"spec": {"ingress": [{}], "egress": [{}]}}));
    allowed(
        "open the isolation policy",
        policies
            .patch("landlord-isolation", &PatchParams::default(), &open)
            .await,
    );
    poll("isolation policy put back", || async {
        landlords.get("landlord-isolation").await.unwrap().spec == wanted
    })
    .await;
    poll("Event for the edit", || async {
        restored_notes(&c.client, &mine)
            .await
            .contains(&policy_note("changed"))
    })
    .await;

    // Delete it: admin may delete NetworkPolicies.
    let before = landlords.get("landlord-isolation").await.unwrap().uid();
    allowed(
        "delete the isolation policy",
        policies
            .delete("landlord-isolation", &DeleteParams::default())
            .await,
    );
    poll("isolation policy re-created", || async {
        landlords
            .get_opt("landlord-isolation")
            .await
            .unwrap()
            .is_some_and(|p| p.uid() != before && p.spec == wanted)
    })
    .await;
    poll("Event for the deletion", || async {
        restored_notes(&c.client, &mine)
            .await
            .contains(&policy_note("deleted"))
    })
    .await;

    // Delete its own admin binding: admin may delete RoleBindings. It loses access, and gets
    // it back.
    allowed(
        "delete the owners' binding",
        Api::<RoleBinding>::namespaced(owner.clone(), &app)
            .delete("landlord-owners-admin", &DeleteParams::default())
            .await,
    );
    let pods: Api<Pod> = Api::namespaced(owner.clone(), &app);
    poll("owner is admin again", || async {
        pods.list(&ListParams::default()).await.is_ok()
    })
    .await;
    let binding_note = format!(
        "RoleBinding {app}/landlord-owners-admin was deleted by someone other than Landlord; Landlord re-created it"
    );
    poll("Event for the binding", || async {
        restored_notes(&c.client, &mine)
            .await
            .contains(&binding_note)
    })
    .await;
    c.finish().await;
}

/// A pod that passes `restricted`: non-root, no privilege escalation, no capabilities, the
/// runtime's seccomp profile.
fn compliant(name: &str) -> Value {
    json!({
        "metadata": {"name": name},
        "spec": {
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "app", "image": "registry.k8s.io/pause:3.10",
                "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
            }],
        },
    })
}

/// Pod Security at the plan's level refuses the owner's privileged, host-reaching and root
/// pods: `restricted` all of them, `baseline` all but root.
#[tokio::test]
async fn pod_security_refuses_privileged_host_and_root_pods() {
    let c = Cluster::start("privileges-pods", "5m").await;
    c.apply(PLAN_AND_TENANTS).await;
    c.apply("apiVersion: landlord.dev/v1alpha1\nkind: TenantQuota\nmetadata: {name: base-$ID}\nspec: {podSecurity: baseline}\n---\napiVersion: landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {name: based-$ID}\nspec:\n  quotaRef: base-$ID\n  owners: [{kind: User, name: owner-$ID}]\n  namespaces: [{name: app}]\n").await;
    let (mine, based) = (c.name("mine"), c.name("based"));
    wait_condition(&c.client, &mine, "Ready", "True", "Ready").await;
    wait_condition(&c.client, &based, "Ready", "True", "Ready").await;
    let owner = as_user(&c, &c.name("owner"), &[]).await;

    let with = |name: &str, change: &dyn Fn(&mut Value)| -> Pod {
        let mut pod = compliant(name);
        change(&mut pod);
        serde_json::from_value(pod).unwrap()
    };
    // (pod, the check's name in the refusal, refused at baseline too)
    let cases: Vec<(Pod, &str, bool)> = vec![
        (
            with("privileged", &|p| {
                p["spec"]["containers"][0]["securityContext"]["privileged"] = json!(true);
                p["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] =
                    json!(true);
            }),
            "privileged (container \"app\" must not set securityContext.privileged=true)",
            true,
        ),
        (
            with("host-network", &|p| p["spec"]["hostNetwork"] = json!(true)),
            "host namespaces (hostNetwork=true)",
            true,
        ),
        (
            with("host-pid-ipc", &|p| {
                p["spec"]["hostPID"] = json!(true);
                p["spec"]["hostIPC"] = json!(true);
            }),
            "host namespaces (hostPID=true, hostIPC=true)",
            true,
        ),
        (
            with("host-path", &|p| {
                p["spec"]["volumes"] = json!([{"name": "root", "hostPath": {"path": "/"}}]);
            }),
            "hostPath",
            true,
        ),
        (
            with("host-port", &|p| {
                p["spec"]["containers"][0]["ports"] =
                    json!([{"containerPort": 8080, "hostPort": 8080}]);
            }),
            "hostPort (container \"app\" uses hostPort 8080)",
            true,
        ),
        (
            with("net-admin", &|p| {
                p["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] =
                    json!(["NET_ADMIN"]);
            }),
            "must not include \"NET_ADMIN\" in securityContext.capabilities.add",
            true,
        ),
        (
            with("root", &|p| {
                p["spec"]["securityContext"]["runAsUser"] = json!(0)
            }),
            "runAsUser=0 (pod must not set runAsUser=0)",
            false,
        ),
        (
            with("root-allowed", &|p| {
                p["spec"]["securityContext"]["runAsNonRoot"] = json!(false)
            }),
            "runAsNonRoot != true (pod must not set securityContext.runAsNonRoot=false)",
            false,
        ),
    ];
    for (level, tenant) in [("restricted", &mine), ("baseline", &based)] {
        let ns = format!("{tenant}-app");
        let pods: Api<Pod> = Api::namespaced(owner.clone(), &ns);
        let post = PostParams::default();
        for (pod, check, at_baseline) in &cases {
            let name = pod.name_any();
            let result = pods.create(&post, pod).await;
            if level == "restricted" || *at_baseline {
                let (code, message) = outcome(result);
                assert_eq!(code, 403, "{level} {name}: {message}");
                assert!(
                    message.contains(&format!("violates PodSecurity \"{level}:latest\": "))
                        && message.contains(check),
                    "{level} {name}: {message:?} does not name {check:?}"
                );
            } else {
                allowed(&format!("{level} {name}"), result);
            }
        }
        // The refusals are about the checks: the compliant pod goes in (once the namespace's
        // ServiceAccount exists, which a real server's admission needs).
        let accounts: Api<ServiceAccount> = Api::namespaced(c.client.clone(), &ns);
        poll("default ServiceAccount", || async {
            accounts.get_opt("default").await.unwrap().is_some()
        })
        .await;
        let fine: Pod = serde_json::from_value(compliant("fine")).unwrap();
        allowed(
            &format!("{level} compliant pod"),
            pods.create(&post, &fine).await,
        );
    }
    c.finish().await;
}

/// The chart's ValidatingAdmissionPolicies from `manifests/install.yaml`, renamed for this
/// run and bound to its objects only (the run label), so that other tests on a shared
/// cluster never meet them.
fn chart_policies(c: &Cluster) -> Vec<(ApiResource, DynamicObject)> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/manifests/install.yaml"
    ))
    .unwrap();
    let mut out = Vec::new();
    for mut doc in serde_saphyr::from_multiple::<Value>(&text).unwrap() {
        let kind = doc["kind"].as_str().unwrap_or_default().to_string();
        if !kind.starts_with("ValidatingAdmissionPolicy") {
            continue;
        }
        let name = format!("{}-{}", doc["metadata"]["name"].as_str().unwrap(), c.id);
        doc["metadata"]["name"] = json!(name);
        if kind == "ValidatingAdmissionPolicyBinding" {
            doc["spec"]["policyName"] = json!(name);
            doc["spec"]["matchResources"] =
                json!({"objectSelector": {"matchLabels": {RUN_LABEL: c.id}}});
        }
        let resource = ApiResource {
            group: "admissionregistration.k8s.io".into(),
            version: "v1".into(),
            api_version: "admissionregistration.k8s.io/v1".into(),
            plural: if kind == "ValidatingAdmissionPolicy" {
                "validatingadmissionpolicies".into()
            } else {
                "validatingadmissionpolicybindings".into()
            },
            kind,
        };
        out.push((resource, serde_json::from_value(doc).unwrap()));
    }
    assert_eq!(
        out.len(),
        4,
        "two policies and their bindings in install.yaml"
    );
    out
}

/// The chart's policies: a protected Tenant is not deleted, an unprotected one is; nobody
/// but Landlord's ServiceAccount sets, changes or removes a tenant namespace's Landlord and
/// Pod Security labels (cluster admins included), while other labels stay free and Landlord,
/// running as that ServiceAccount, still provisions and changes them.
#[tokio::test]
async fn the_chart_policies_protect_tenants_and_namespace_labels() {
    let mut c = Cluster::start("privileges-policy", "5m").await;
    operator_as_landlord(&mut c);
    let policies = chart_policies(&c);
    for (resource, object) in &policies {
        Api::<DynamicObject>::all_with(c.client.clone(), resource)
            .patch(
                &object.name_any(),
                &PatchParams::apply("landlord-tests").force(),
                &Patch::Apply(object),
            )
            .await
            .unwrap();
    }
    let run = format!("{{{RUN_LABEL}: $ID}}");
    c.apply(&format!("apiVersion: landlord.dev/v1alpha1\nkind: TenantQuota\nmetadata: {{name: guarded-$ID}}\nspec: {{podSecurity: baseline}}\n---\napiVersion: landlord.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: kept-$ID\n  annotations: {{landlord.dev/protected: \"true\"}}\nspec:\n  quotaRef: guarded-$ID\n  namespaces: [{{name: app, labels: {run}}}]\n---\napiVersion: landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: loose-$ID}}\nspec:\n  quotaRef: guarded-$ID\n  namespaces: [{{name: app, labels: {run}}}]\n")).await;
    let (kept, loose) = (c.name("kept"), c.name("loose"));
    wait_condition(&c.client, &kept, "Ready", "True", "Ready").await;
    wait_condition(&c.client, &loose, "Ready", "True", "Ready").await;
    let app = format!("{kept}-app");

    // A policy takes effect once the API server has loaded it: wait for both with dry runs.
    let tenants: Api<Tenant> = Api::all(c.client.clone());
    let namespaces: Api<Namespace> = Api::all(c.client.clone());
    let dry_delete = DeleteParams {
        dry_run: true,
        ..DeleteParams::default()
    };
    let dry_patch = PatchParams {
        dry_run: true,
        ..PatchParams::default()
    };
    let lower = labels("pod-security.kubernetes.io/enforce", Some("privileged"));
    poll("both policies in force", || async {
        outcome(tenants.delete(&kept, &dry_delete).await).0 == 403
            && outcome(namespaces.patch(&app, &dry_patch, &lower).await).0 == 403
    })
    .await;

    let denied = |policy: &str| {
        format!(
            "ValidatingAdmissionPolicy '{policy}-{id}' with binding '{policy}-{id}' denied request: ",
            id = c.id
        )
    };
    forbidden(
        "delete a protected Tenant",
        tenants.delete(&kept, &DeleteParams::default()).await,
        &format!(
            "{}this Tenant is protected (annotation landlord.dev/protected: \"true\"): remove the annotation to delete it",
            denied("landlord-protected-tenants")
        ),
    );
    allowed(
        "delete an unprotected Tenant",
        tenants.delete(&loose, &DeleteParams::default()).await,
    );
    poll("unprotected Tenant gone", || async {
        tenants.get_opt(&loose).await.unwrap().is_none()
    })
    .await;

    // Cluster admin and owner alike: no label of Landlord's or of Pod Security changes.
    let only_landlord = format!(
        "{}only Landlord ({LANDLORD_SA}) may set, change or remove the landlord.dev/ and pod-security.kubernetes.io/ labels of a tenant namespace",
        denied("landlord-tenant-namespaces")
    );
    let patch = PatchParams::default();
    for (what, change) in [
        ("lower the Pod Security level", lower.clone()),
        (
            "remove the Pod Security level",
            labels("pod-security.kubernetes.io/enforce", None),
        ),
        (
            "remove the tenant label",
            labels("landlord.dev/tenant", None),
        ),
        (
            "add a Landlord label",
            labels("landlord.dev/extra", Some("x")),
        ),
    ] {
        forbidden(
            what,
            namespaces.patch(&app, &patch, &change).await,
            &only_landlord,
        );
    }
    let fake: Namespace = serde_json::from_value(json!({"metadata": {
        "name": c.name("fake"),
        "labels": {"landlord.dev/tenant": kept, RUN_LABEL: c.id},
    }}))
    .unwrap();
    forbidden(
        "create a namespace with a tenant label",
        namespaces.create(&PostParams::default(), &fake).await,
        &only_landlord,
    );
    allowed(
        "change another label",
        namespaces
            .patch(&app, &patch, &labels("team", Some("blue")))
            .await,
    );

    // Landlord's ServiceAccount may: a change it makes is taken (and then put right by the
    // operator, which owns the label), and a plan change reaches the namespace.
    let landlord = as_user(&c, LANDLORD_SA, &["system:masters"]).await;
    allowed(
        "Landlord's ServiceAccount changes the level",
        Api::<Namespace>::all(landlord)
            .patch(&app, &patch, &lower)
            .await,
    );
    let level = || async {
        namespaces.get(&app).await.unwrap().labels()["pod-security.kubernetes.io/enforce"].clone()
    };
    poll("operator puts baseline back", || async {
        level().await == "baseline"
    })
    .await;
    c.apply("apiVersion: landlord.dev/v1alpha1\nkind: TenantQuota\nmetadata: {name: guarded-$ID}\nspec: {podSecurity: restricted}\n").await;
    poll("operator raises the level to restricted", || async {
        level().await == "restricted"
    })
    .await;

    // Unbind before cleaning up, so the protected Tenant can go.
    for (resource, object) in policies.iter().rev() {
        Api::<DynamicObject>::all_with(c.client.clone(), resource)
            .delete(&object.name_any(), &DeleteParams::default())
            .await
            .unwrap();
    }
    poll("protection lifted", || async {
        outcome(tenants.delete(&kept, &dry_delete).await).0 == 200
    })
    .await;
    c.finish().await;
}
