//! Admission that depends on who asks or on the namespace: ValidatingAdmissionPolicies with
//! their bindings, Pod Security admission, and RBAC's escalation check.
mod common;
use common::*;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, Config};
use serde_json::{Value, json};

fn code<T>(r: Result<T, kube::Error>) -> (u16, String) {
    match r {
        Ok(_) => (200, String::new()),
        Err(kube::Error::Api(s)) => (s.code, s.message),
        Err(e) => panic!("{e}"),
    }
}

async fn as_user(server: &kube_test::RunningServer, user: &str, groups: &[&str]) -> Client {
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&server.kubeconfig_yaml()).unwrap();
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    config.auth_info.impersonate = Some(user.to_string());
    config.auth_info.impersonate_groups = Some(groups.iter().map(|g| g.to_string()).collect());
    Client::try_from(config).unwrap()
}

/// A policy that keeps ConfigMaps labelled `locked` from losing their `data.key` and from
/// deletion, except for user `boss`; bound with an object selector.
fn policy() -> (Value, Value) {
    let policy = json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "keep"},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                "operations": ["UPDATE", "DELETE"], "resources": ["configmaps"]}]},
            "matchConditions": [{"name": "not-boss", "expression": "request.userInfo.username != 'boss'"}],
            "validations": [
                {"expression": "request.operation != 'DELETE'", "message": "locked ConfigMaps stay", "reason": "Forbidden"},
                {"expression": "oldObject == null || object == null || (has(object.data) && 'key' in object.data && object.data.key == oldObject.data.key)",
                 "messageExpression": "'data.key of ' + oldObject.metadata.name + ' is fixed'"},
            ],
        },
    });
    let binding = json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": "keep-locked"},
        "spec": {"policyName": "keep", "validationActions": ["Deny"],
                 "matchResources": {"objectSelector": {"matchLabels": {"locked": "yes"}}}},
    });
    (policy, binding)
}

#[tokio::test]
async fn validating_admission_policies_deny_through_their_bindings() {
    let (server, client) = setup().await;
    create_ns(&client, "p").await;
    let (policy, binding) = policy();
    dynamic(
        &client,
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingAdmissionPolicy",
        "validatingadmissionpolicies",
        None,
    )
    .create(
        &PostParams::default(),
        &serde_json::from_value(policy).unwrap(),
    )
    .await
    .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "p");
    let cm = |name: &str, locked: bool| -> ConfigMap {
        let labels = if locked {
            json!({"locked": "yes"})
        } else {
            json!({})
        };
        serde_json::from_value(
            json!({"metadata": {"name": name, "labels": labels}, "data": {"key": "a"}}),
        )
        .unwrap()
    };
    for (name, locked) in [("l1", true), ("l2", true), ("free", false)] {
        cms.create(&PostParams::default(), &cm(name, locked))
            .await
            .unwrap();
    }
    let change = Patch::Merge(json!({"data": {"key": "b"}}));
    let pp = PatchParams::default();
    // A policy without a binding does nothing.
    assert_eq!(code(cms.patch("l1", &pp, &change).await).0, 200);
    dynamic(
        &client,
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingAdmissionPolicyBinding",
        "validatingadmissionpolicybindings",
        None,
    )
    .create(
        &PostParams::default(),
        &serde_json::from_value(binding).unwrap(),
    )
    .await
    .unwrap();
    let prefix = "ValidatingAdmissionPolicy 'keep' with binding 'keep-locked' denied request: ";
    // messageExpression, default reason Invalid (422)
    let (status, message) = code(
        cms.patch("l1", &pp, &Patch::Merge(json!({"data": {"key": "c"}})))
            .await,
    );
    assert_eq!(status, 422, "{message}");
    assert!(
        message.contains(&format!("{prefix}data.key of l1 is fixed")),
        "{message}"
    );
    // reason Forbidden, on DELETE, where `object` is null
    let (status, message) = code(cms.delete("l2", &DeleteParams::default()).await);
    assert_eq!(
        (status, message),
        (
            403,
            format!("configmaps \"l2\" is forbidden: {prefix}locked ConfigMaps stay")
        )
    );
    // dry runs are admitted the same way
    let dry = DeleteParams {
        dry_run: true,
        ..Default::default()
    };
    assert_eq!(code(cms.delete("l2", &dry).await).0, 403);
    // other objects (object selector) and other users (match condition) pass
    assert_eq!(code(cms.patch("free", &pp, &change).await).0, 200);
    assert_eq!(
        code(cms.delete("free", &DeleteParams::default()).await).0,
        200
    );
    let boss: Api<ConfigMap> =
        Api::namespaced(as_user(&server, "boss", &["system:masters"]).await, "p");
    assert_eq!(
        code(boss.delete("l2", &DeleteParams::default()).await).0,
        200
    );
    // CREATE is not among the policy's operations
    assert_eq!(
        code(cms.create(&PostParams::default(), &cm("l3", true)).await).0,
        200
    );
}

/// The messages are those a v1.36 API server gave for the same pod.
#[tokio::test]
async fn pod_security_enforces_the_namespace_level() {
    let (_server, client) = setup().await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for (name, level) in [
        ("strict", "restricted"),
        ("base", "baseline"),
        ("open", "privileged"),
    ] {
        let ns = json!({"metadata": {"name": name,
            "labels": {"pod-security.kubernetes.io/enforce": level}}});
        namespaces
            .create(&PostParams::default(), &serde_json::from_value(ns).unwrap())
            .await
            .unwrap();
    }
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {
        "hostNetwork": true,
        "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
        "containers": [{"name": "c", "image": "x", "securityContext": {"privileged": true},
                        "ports": [{"containerPort": 80, "hostPort": 80}]}]}}))
    .unwrap();
    let create = |ns: &str| {
        let api: Api<Pod> = Api::namespaced(client.clone(), ns);
        let pod = pod.clone();
        async move { code(api.create(&PostParams::default(), &pod).await) }
    };
    let refused = |rest: &str| {
        (
            403,
            format!("pods \"p\" is forbidden: violates PodSecurity {rest}"),
        )
    };
    assert_eq!(
        create("base").await,
        refused(
            "\"baseline:latest\": host namespaces (hostNetwork=true), hostPath volumes (volume \"root\"), hostPort (container \"c\" uses hostPort 80), privileged (container \"c\" must not set securityContext.privileged=true)"
        )
    );
    assert_eq!(
        create("strict").await,
        refused(
            "\"restricted:latest\": host namespaces (hostNetwork=true), hostPort (container \"c\" uses hostPort 80), privileged (container \"c\" must not set securityContext.privileged=true), allowPrivilegeEscalation != false (container \"c\" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container \"c\" must set securityContext.capabilities.drop=[\"ALL\"]), restricted volume types (volume \"root\" uses restricted volume type \"hostPath\"), runAsNonRoot != true (pod or container \"c\" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container \"c\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
        )
    );
    assert_eq!(create("open").await.0, 200);
}

#[tokio::test]
async fn binding_a_role_needs_bind_or_its_permissions() {
    let (server, client) = setup().await;
    create_ns(&client, "team").await;
    let admins: Api<RoleBinding> = Api::namespaced(client.clone(), "team");
    let binding = |name: &str, role: &str, user: &str| -> RoleBinding {
        serde_json::from_value(json!({"metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]})).unwrap()
    };
    admins
        .create(
            &PostParams::default(),
            &binding("alice-admin", "admin", "alice"),
        )
        .await
        .unwrap();
    let alice: Api<RoleBinding> = Api::namespaced(as_user(&server, "alice", &[]).await, "team");
    assert_eq!(
        code(alice.create(&PostParams::default(), &binding("mine", "cluster-admin", "alice")).await),
        (403, "rolebindings.rbac.authorization.k8s.io \"mine\" is forbidden: user \"alice\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"*\"], Resources:[\"*\"], Verbs:[\"*\"]}\n{NonResourceURLs:[\"*\"], Verbs:[\"*\"]}".into())
    );
    // what she holds she may grant, here or to others
    assert_eq!(
        code(
            alice
                .create(&PostParams::default(), &binding("bob", "view", "bob"))
                .await
        )
        .0,
        200
    );
}
