//! Core API semantics through kube::Client.
mod common;
use common::*;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

#[tokio::test]
async fn discovery_lists_builtins_and_version() {
    let (_s, client) = setup().await;
    let v = client.apiserver_version().await.unwrap();
    assert_eq!(v.major, "1");
    let core = client.list_core_api_resources("v1").await.unwrap();
    let ns = core
        .resources
        .iter()
        .find(|r| r.name == "namespaces")
        .unwrap();
    assert!(!ns.namespaced);
    assert_eq!(ns.short_names.as_deref(), Some(&["ns".to_string()][..]));
    assert!(
        core.resources
            .iter()
            .any(|r| r.name == "serviceaccounts/token")
    );
    let groups = client.list_api_groups().await.unwrap();
    for g in [
        "apps",
        "rbac.authorization.k8s.io",
        "networking.k8s.io",
        "coordination.k8s.io",
        "apiextensions.k8s.io",
        "events.k8s.io",
        "authentication.k8s.io",
    ] {
        assert!(
            groups.groups.iter().any(|x| x.name == g),
            "group {g} missing"
        );
    }
    let apps = client.list_api_group_resources("apps/v1").await.unwrap();
    let dep = apps
        .resources
        .iter()
        .find(|r| r.name == "deployments")
        .unwrap();
    assert!(dep.namespaced);
    assert!(dep.verbs.contains(&"watch".to_string()));
    assert!(
        apps.resources
            .iter()
            .any(|r| r.name == "deployments/status")
    );
}

#[tokio::test]
async fn create_get_update_delete_configmap() {
    let (_s, client) = setup().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "a"}, "data": {"k": "v"}})).unwrap();
    let created = cms.create(&PostParams::default(), &cm).await.unwrap();
    let md = &created.metadata;
    assert_eq!(md.namespace.as_deref(), Some("default"));
    assert!(md.uid.is_some() && md.creation_timestamp.is_some());
    let rv1: u64 = md.resource_version.as_ref().unwrap().parse().unwrap();

    let e = status(cms.create(&PostParams::default(), &cm).await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(e.message, "configmaps \"a\" already exists");

    let mut upd = created.clone();
    upd.data = Some([("k".to_string(), "w".to_string())].into());
    let updated = cms
        .replace("a", &PostParams::default(), &upd)
        .await
        .unwrap();
    let rv2: u64 = updated
        .metadata
        .resource_version
        .as_ref()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv2 > rv1);
    // stale resourceVersion -> 409 Conflict
    let e = status(
        cms.replace("a", &PostParams::default(), &upd)
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    assert!(
        e.message.contains("the object has been modified"),
        "{}",
        e.message
    );

    // an update that changes nothing is a no-op
    let same = cms
        .replace("a", &PostParams::default(), &updated)
        .await
        .unwrap();
    assert_eq!(
        same.metadata.resource_version,
        updated.metadata.resource_version
    );

    let e = status(cms.get("nope").await.unwrap_err());
    assert_eq!(
        (e.code, e.reason.as_str(), e.message.as_str()),
        (404, "NotFound", "configmaps \"nope\" not found")
    );

    let res = cms.delete("a", &DeleteParams::default()).await.unwrap();
    assert!(res.is_right(), "immediate deletion returns a Status");
    assert!(cms.get_opt("a").await.unwrap().is_none());
}

#[tokio::test]
async fn generate_name_and_namespace_checks() {
    let (_s, client) = setup().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"generateName": "gen-"}})).unwrap();
    let a = cms.create(&PostParams::default(), &cm).await.unwrap();
    let name = a.metadata.name.unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");

    let missing: Api<ConfigMap> = Api::namespaced(client.clone(), "missing");
    let e = status(
        missing
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": "x"}})).unwrap(),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (e.code, e.message.as_str()),
        (404, "namespaces \"missing\" not found")
    );

    let e = status(
        cms.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {}})).unwrap(),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    let e = status(
        cms.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "Bad_Name"}})).unwrap(),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 422);
}

#[tokio::test]
async fn list_selectors_and_pagination() {
    let (_s, client) = setup().await;
    create_ns(&client, "a").await;
    create_ns(&client, "b").await;
    for (ns, name, tier) in [
        ("a", "one", "web"),
        ("a", "two", "db"),
        ("b", "three", "web"),
        ("b", "four", "cache"),
    ] {
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        cms.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": name, "labels": {"tier": tier}}}))
                .unwrap(),
        )
        .await
        .unwrap();
    }
    let all: Api<ConfigMap> = Api::all(client.clone());
    let names = |l: kube::core::ObjectList<ConfigMap>| {
        l.items
            .into_iter()
            .map(|c| c.metadata.name.unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(
            all.list(&ListParams::default().labels("tier=web"))
                .await
                .unwrap()
        ),
        ["one", "three"]
    );
    assert_eq!(
        names(
            all.list(&ListParams::default().labels("tier,tier!=web"))
                .await
                .unwrap()
        ),
        ["two", "four"]
    );
    assert_eq!(
        names(
            all.list(&ListParams::default().labels("tier in (db,cache)"))
                .await
                .unwrap()
        ),
        ["two", "four"]
    );
    assert_eq!(
        names(
            all.list(&ListParams::default().labels("tier,tier notin (db,cache)"))
                .await
                .unwrap()
        ),
        ["one", "three"]
    );
    assert_eq!(
        names(
            all.list(&ListParams::default().labels("tier"))
                .await
                .unwrap()
        )
        .len(),
        4
    );
    assert_eq!(
        names(
            all.list(&ListParams::default().labels("!tier"))
                .await
                .unwrap()
        )
        .len(),
        6 // one kube-root-ca.crt per namespace
    );
    assert_eq!(
        names(
            all.list(&ListParams::default().fields("metadata.name=three"))
                .await
                .unwrap()
        ),
        ["three"]
    );
    assert_eq!(
        names(
            all.list(
                &ListParams::default()
                    .fields("metadata.namespace=a")
                    .labels("tier")
            )
            .await
            .unwrap()
        ),
        ["one", "two"]
    );
    let in_a: Api<ConfigMap> = Api::namespaced(client.clone(), "a");
    assert_eq!(
        names(
            in_a.list(&ListParams::default().labels("tier"))
                .await
                .unwrap()
        ),
        ["one", "two"]
    );
    let e = status(
        all.list(&ListParams::default().fields("data.x=1"))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 400);

    // pagination
    let first = all
        .list(&ListParams::default().labels("tier").limit(3))
        .await
        .unwrap();
    assert_eq!(first.items.len(), 3);
    assert!(first.metadata.resource_version.is_some());
    // a real server does not count the rest when a selector filters
    assert_eq!(first.metadata.remaining_item_count, None);
    let token = first.metadata.continue_.clone().unwrap();
    let second = all
        .list(
            &ListParams::default()
                .labels("tier")
                .limit(3)
                .continue_token(&token),
        )
        .await
        .unwrap();
    // lists are ordered by namespace, then name
    assert_eq!(names(second), ["three"]);
}

#[tokio::test]
async fn patches_merge_json_strategic() {
    let (_s, client) = setup().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "p"}, "data": {"a": "1", "b": "2"}}))
            .unwrap(),
    )
    .await
    .unwrap();
    let pp = PatchParams::default();
    let c = cms
        .patch(
            "p",
            &pp,
            &Patch::Merge(json!({"data": {"a": null, "c": "3"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        c.data.unwrap(),
        [
            ("b".to_string(), "2".to_string()),
            ("c".to_string(), "3".to_string())
        ]
        .into()
    );
    let jp: kube_json_patch::Patch =
        serde_json::from_value(json!([{"op": "replace", "path": "/data/b", "value": "x"}]))
            .unwrap();
    let c = cms.patch("p", &pp, &Patch::<()>::Json(jp)).await.unwrap();
    assert_eq!(c.data.unwrap()["b"], "x");
    let jp: kube_json_patch::Patch =
        serde_json::from_value(json!([{"op": "test", "path": "/data/b", "value": "nope"}]))
            .unwrap();
    let e = status(
        cms.patch("p", &pp, &Patch::<()>::Json(jp))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 422);

    // strategic merge: containers merged by name, env by name
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), "default");
    pods.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "pod"}, "spec": {"containers": [
        {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
        {"name": "b", "image": "b:1"}]}}))
        .unwrap(),
    )
    .await
    .unwrap();
    let p = pods.patch("pod", &pp, &Patch::Strategic(json!({"spec": {"containers": [{"name": "a", "env": [{"name": "Y", "value": "2"}]}]}}))).await.unwrap();
    assert_eq!(
        p.metadata.generation,
        Some(2),
        "pods have a generation (v1.33) bumped by spec changes"
    );
    let cs = p.spec.unwrap().containers;
    assert_eq!(cs.len(), 2);
    assert_eq!(cs[0].image.as_deref(), Some("a:1"));
    let env: Vec<String> = cs[0]
        .env
        .clone()
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(env, ["X", "Y"]);
    let p = pods
        .patch(
            "pod",
            &pp,
            &Patch::Strategic(json!({"spec": {"containers": [{"name": "b", "$patch": "delete"}]}})),
        )
        .await
        .unwrap();
    assert_eq!(p.spec.unwrap().containers.len(), 1);
    // rbac subjects are replaced, not merged
    let rbs: Api<k8s_openapi::api::rbac::v1::RoleBinding> =
        Api::namespaced(client.clone(), "default");
    rbs.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "rb"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
        "subjects": [{"kind": "User", "name": "u1", "apiGroup": "rbac.authorization.k8s.io"}]})).unwrap()).await.unwrap();
    let rb = rbs.patch("rb", &pp, &Patch::Strategic(json!({"subjects": [{"kind": "User", "name": "u2", "apiGroup": "rbac.authorization.k8s.io"}]}))).await.unwrap();
    assert_eq!(
        rb.subjects
            .unwrap()
            .iter()
            .map(|s| s.name.clone())
            .collect::<Vec<_>>(),
        ["u2"]
    );
}

#[tokio::test]
async fn server_side_apply_ownership_conflicts_and_removal() {
    let (_s, client) = setup().await;
    let cms = dynamic(
        &client,
        "",
        "v1",
        "ConfigMap",
        "configmaps",
        Some("default"),
    );
    let ssa = |m: &str| PatchParams::apply(m);
    let a = cms.patch("s", &ssa("alice"), &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "s"}, "data": {"a": "1", "shared": "x"}}))).await.unwrap();
    let mf = a.metadata.managed_fields.clone().unwrap();
    assert_eq!(mf.len(), 1);
    assert_eq!(
        (mf[0].manager.as_deref(), mf[0].operation.as_deref()),
        (Some("alice"), Some("Apply"))
    );
    let fields = serde_json::to_value(&mf[0].fields_v1).unwrap();
    assert_eq!(fields, json!({"f:data": {"f:a": {}, "f:shared": {}}}));
    let rv = a.metadata.resource_version.clone();

    // re-applying the same thing is a no-op
    let again = cms.patch("s", &ssa("alice"), &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "s"}, "data": {"a": "1", "shared": "x"}}))).await.unwrap();
    assert_eq!(again.metadata.resource_version, rv);

    // bob applying the same value shares ownership; a different value conflicts
    cms.patch("s", &ssa("bob"), &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "s"}, "data": {"shared": "x", "b": "2"}}))).await.unwrap();
    let e = status(cms.patch("s", &ssa("bob"), &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "s"}, "data": {"a": "changed"}}))).await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        e.message,
        // "using v1" only when alice had written another apiVersion
        "Apply failed with 1 conflict: conflict with \"alice\": .data.a"
    );
    let causes = e.details.unwrap().causes;
    assert_eq!(causes[0].field, ".data.a");
    assert_eq!(causes[0].reason, "FieldManagerConflict");

    // force takes ownership
    let forced = cms.patch("s", &ssa("bob").force(), &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "s"}, "data": {"a": "changed", "shared": "x", "b": "2"}}))).await.unwrap();
    assert_eq!(forced.data["data"]["a"], "changed");

    // alice stops applying "shared" (bob still owns it: kept) — and "a" is now bob's
    let r = cms.patch("s", &ssa("alice"), &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "s"}, "data": {}}))).await.unwrap();
    assert_eq!(
        r.data["data"],
        json!({"a": "changed", "shared": "x", "b": "2"})
    );
    // bob stops applying "b": removed
    let r = cms.patch("s", &ssa("bob"), &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "s"}, "data": {"a": "changed", "shared": "x"}}))).await.unwrap();
    assert_eq!(r.data["data"], json!({"a": "changed", "shared": "x"}));

    // apply without fieldManager is rejected
    let e = status(
        cms.patch(
            "s",
            &PatchParams::default(),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap"})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 400);

    // an Update by another manager shows up as an Update entry
    let u = cms
        .patch(
            "s",
            &PatchParams {
                field_manager: Some("carol".into()),
                ..Default::default()
            },
            &Patch::Merge(json!({"data": {"c": "3"}})),
        )
        .await
        .unwrap();
    let mf = u.metadata.managed_fields.unwrap();
    let carol = mf
        .iter()
        .find(|m| m.manager.as_deref() == Some("carol"))
        .unwrap();
    assert_eq!(carol.operation.as_deref(), Some("Update"));
}

#[tokio::test]
async fn ssa_list_map_merge_for_containers() {
    let (_s, client) = setup().await;
    let deps = dynamic(
        &client,
        "apps",
        "v1",
        "Deployment",
        "deployments",
        Some("default"),
    );
    let base = |containers: serde_json::Value| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"app": "d"}}, "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": containers}}}})
    };
    let d = deps
        .patch(
            "d",
            &PatchParams::apply("one"),
            &Patch::Apply(base(json!([{"name": "a", "image": "a:1"}]))),
        )
        .await
        .unwrap();
    assert_eq!(d.metadata.generation, Some(1));
    deps.patch(
        "d",
        &PatchParams::apply("two"),
        &Patch::Apply(base(json!([{"name": "b", "image": "b:1"}]))),
    )
    .await
    .unwrap();
    let d = deps.get("d").await.unwrap();
    let names: Vec<&str> = d.data["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(d.metadata.generation, Some(2));
    let fields = serde_json::to_value(&d.metadata.managed_fields.unwrap()[1].fields_v1).unwrap();
    assert!(
        fields
            .pointer("/f:spec/f:template/f:spec/f:containers/k:{\"name\":\"b\"}/f:image")
            .is_some(),
        "{fields}"
    );
}

#[tokio::test]
async fn finalizers_block_deletion_until_removed() {
    let (_s, client) = setup().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(
            json!({"metadata": {"name": "f", "finalizers": ["example.com/x"]}}),
        )
        .unwrap(),
    )
    .await
    .unwrap();
    let r = cms.delete("f", &DeleteParams::default()).await.unwrap();
    let pending = r.left().expect("object still exists");
    assert!(pending.metadata.deletion_timestamp.is_some());
    // adding a finalizer while deleting is forbidden
    let e = status(
        cms.patch(
            "f",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/x", "example.com/y"]}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 422);
    cms.patch(
        "f",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert!(cms.get_opt("f").await.unwrap().is_none());
}

#[tokio::test]
async fn namespace_deletion_terminates_and_removes_contents() {
    let (_s, client) = setup().await;
    create_ns(&client, "doomed").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "doomed");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "plain"}})).unwrap(),
    )
    .await
    .unwrap();
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "held", "finalizers": ["x/y"]}}))
            .unwrap(),
    )
    .await
    .unwrap();
    let nss: Api<Namespace> = Api::all(client.clone());
    let r = nss
        .delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    let ns = r.left().unwrap();
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Terminating"));
    assert!(cms.get_opt("plain").await.unwrap().is_none());
    assert!(
        cms.get("held")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    );
    let e = status(
        cms.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "new"}})).unwrap(),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 403);
    assert!(
        e.message.contains("because it is being terminated"),
        "{}",
        e.message
    );
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": []}})),
    )
    .await
    .unwrap();
    eventually("namespace gone", || async {
        nss.get_opt("doomed").await.unwrap().is_none()
    })
    .await;
}

#[tokio::test]
async fn owner_reference_garbage_collection() {
    let (_s, client) = setup().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let owner = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "owner"}})).unwrap(),
        )
        .await
        .unwrap();
    let oref = json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid.clone().unwrap()}]);
    for n in ["dep1", "dep2"] {
        cms.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": n, "ownerReferences": oref}}))
                .unwrap(),
        )
        .await
        .unwrap();
    }
    cms.delete("owner", &DeleteParams::background())
        .await
        .unwrap();
    eventually("dependents collected", || async {
        cms.get_opt("dep1").await.unwrap().is_none() && cms.get_opt("dep2").await.unwrap().is_none()
    })
    .await;

    // orphan keeps dependents and strips the owner reference
    let owner = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "owner2"}})).unwrap(),
        )
        .await
        .unwrap();
    let oref = json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner2", "uid": owner.metadata.uid.clone().unwrap()}]);
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "kept", "ownerReferences": oref}}))
            .unwrap(),
    )
    .await
    .unwrap();
    cms.delete("owner2", &DeleteParams::orphan()).await.unwrap();
    let kept = cms.get("kept").await.unwrap();
    assert!(kept.metadata.owner_references.is_none_or(|r| r.is_empty()));

    // foreground: owner waits for a dependent with a finalizer
    let owner = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "owner3"}})).unwrap(),
        )
        .await
        .unwrap();
    let oref = json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner3", "uid": owner.metadata.uid.clone().unwrap()}]);
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(
            json!({"metadata": {"name": "slow", "finalizers": ["x/y"], "ownerReferences": oref}}),
        )
        .unwrap(),
    )
    .await
    .unwrap();
    let r = cms
        .delete("owner3", &DeleteParams::foreground())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert!(
        r.metadata
            .finalizers
            .unwrap()
            .contains(&"foregroundDeletion".to_string())
    );
    assert!(
        cms.get("slow")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    );
    cms.patch(
        "slow",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    eventually("owner3 gone", || async {
        cms.get_opt("owner3").await.unwrap().is_none()
    })
    .await;
}

#[tokio::test]
async fn delete_collection_and_preconditions() {
    let (_s, client) = setup().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for (n, l) in [("x1", "a"), ("x2", "a"), ("x3", "b")] {
        cms.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": n, "labels": {"g": l}}})).unwrap(),
        )
        .await
        .unwrap();
    }
    cms.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("g=a"),
    )
    .await
    .unwrap();
    let left: Vec<String> = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|c| c.metadata.name.unwrap())
        .collect();
    assert_eq!(left, ["kube-root-ca.crt", "x3"]);
    let dp = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: Some("wrong".into()),
            resource_version: None,
        }),
        ..Default::default()
    };
    let e = status(cms.delete("x3", &dp).await.unwrap_err());
    assert_eq!(e.code, 409);
}

#[tokio::test]
async fn unknown_bearer_token_is_unauthorized() {
    let (server, _client) = setup().await;
    let yaml = server
        .kubeconfig_yaml()
        .replace(&server.admin_token(), "not-a-token");
    let kc = kube::config::Kubeconfig::from_yaml(&yaml).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    let bad = kube::Client::try_from(cfg).unwrap();
    let e = status(
        Api::<ConfigMap>::namespaced(bad, "default")
            .list(&ListParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (401, "Unauthorized"));
}

#[tokio::test]
async fn new_namespaces_get_default_service_account_and_root_ca() {
    let (_s, client) = setup().await;
    create_ns(&client, "fresh").await;
    let sas: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(client.clone(), "fresh");
    assert!(sas.get_opt("default").await.unwrap().is_some());
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "fresh");
    assert!(
        cms.get("kube-root-ca.crt")
            .await
            .unwrap()
            .data
            .unwrap()
            .contains_key("ca.crt")
    );
    let ns = Api::<Namespace>::all(client.clone())
        .get("fresh")
        .await
        .unwrap();
    assert_eq!(
        ns.metadata.labels.unwrap()["kubernetes.io/metadata.name"],
        "fresh"
    );
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Active"));
}

#[tokio::test]
async fn apply_requires_kind_and_matching_api_version() {
    let (_s, client) = setup().await;
    let cms = dynamic(
        &client,
        "",
        "v1",
        "ConfigMap",
        "configmaps",
        Some("default"),
    );
    let e = status(
        cms.patch(
            "k",
            &PatchParams::apply("m"),
            &Patch::Apply(json!({"apiVersion": "v1", "metadata": {"name": "k"}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 400);
    let e = status(
        cms.patch(
            "k",
            &PatchParams::apply("m"),
            &Patch::Apply(
                json!({"apiVersion": "v2", "kind": "ConfigMap", "metadata": {"name": "k"}}),
            ),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 400);
}

#[tokio::test]
async fn fifty_tenants_with_quotas_are_fast() {
    let (_s, client) = setup().await;
    let start = std::time::Instant::now();
    for i in 0..60 {
        let ns = format!("tenant-{i}");
        let nsapi = dynamic(&client, "", "v1", "Namespace", "namespaces", None);
        nsapi.patch(&ns, &PatchParams::apply("landlord"), &Patch::Apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"tenant": format!("t{i}")}}}))).await.unwrap();
        let q = dynamic(
            &client,
            "",
            "v1",
            "ResourceQuota",
            "resourcequotas",
            Some(&ns),
        );
        q.patch("quota", &PatchParams::apply("landlord"), &Patch::Apply(json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "quota"}, "spec": {"hard": {"pods": "10", "requests.cpu": "4", "configmaps": "20"}}}))).await.unwrap();
        let rb = dynamic(
            &client,
            "rbac.authorization.k8s.io",
            "v1",
            "RoleBinding",
            "rolebindings",
            Some(&ns),
        );
        rb.patch("admin", &PatchParams::apply("landlord"), &Patch::Apply(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "admin"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"}, "subjects": [{"kind": "User", "name": format!("u{i}"), "apiGroup": "rbac.authorization.k8s.io"}]}))).await.unwrap();
        let np = dynamic(
            &client,
            "networking.k8s.io",
            "v1",
            "NetworkPolicy",
            "networkpolicies",
            Some(&ns),
        );
        np.patch("isolate", &PatchParams::apply("landlord"), &Patch::Apply(json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "isolate"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}))).await.unwrap();
        for j in 0..3 {
            let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
            cms.create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": format!("cm{j}")}})).unwrap(),
            )
            .await
            .unwrap();
        }
    }
    let all: Api<ConfigMap> = Api::all(client.clone());
    assert!(all.list(&ListParams::default()).await.unwrap().items.len() >= 240);
    let quotas = dynamic(&client, "", "v1", "ResourceQuota", "resourcequotas", None);
    let list = quotas.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 60);
    assert!(
        list.items
            .iter()
            .all(|q| q.data["status"]["used"]["configmaps"] == "4")
    );
    let nss = dynamic(&client, "", "v1", "Namespace", "namespaces", None);
    for i in 0..60 {
        nss.delete(&format!("tenant-{i}"), &DeleteParams::default())
            .await
            .unwrap();
    }
    assert_eq!(
        nss.list(&ListParams::default().labels("tenant"))
            .await
            .unwrap()
            .items
            .len(),
        0
    );
    assert!(
        start.elapsed() < std::time::Duration::from_secs(20),
        "took {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn ssa_removes_list_items_and_conflicts_with_update_managers() {
    let (_s, client) = setup().await;
    let pods = dynamic(&client, "", "v1", "Pod", "pods", Some("default"));
    let pod = |cs: serde_json::Value| json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": cs}});
    pods.patch(
        "p",
        &PatchParams::apply("a"),
        &Patch::Apply(pod(
            json!([{"name": "x", "image": "x:1"}, {"name": "y", "image": "y:1"}]),
        )),
    )
    .await
    .unwrap();
    let p = pods
        .patch(
            "p",
            &PatchParams::apply("a"),
            &Patch::Apply(pod(json!([{"name": "x", "image": "x:1"}]))),
        )
        .await
        .unwrap();
    let names: Vec<&str> = p.data["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["x"],
        "container y no longer applied by its only owner"
    );

    // a merge patch by another manager takes the field; re-applying the old value conflicts
    let cms = dynamic(
        &client,
        "",
        "v1",
        "ConfigMap",
        "configmaps",
        Some("default"),
    );
    let cm = |v: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"l": v}}});
    cms.patch("c", &PatchParams::apply("a"), &Patch::Apply(cm("1")))
        .await
        .unwrap();
    cms.patch(
        "c",
        &PatchParams {
            field_manager: Some("editor".into()),
            ..Default::default()
        },
        &Patch::Merge(json!({"metadata": {"labels": {"l": "2"}}})),
    )
    .await
    .unwrap();
    let e = status(
        cms.patch("c", &PatchParams::apply("a"), &Patch::Apply(cm("1")))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 409);
    assert!(
        e.message.contains("conflict with \"editor\""),
        "{}",
        e.message
    );
    assert_eq!(e.details.unwrap().causes[0].field, ".metadata.labels.l");
}

#[tokio::test]
async fn metadata_validation_and_immutable_configmaps() {
    let (_s, client) = setup().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let bad = serde_json::from_value::<ConfigMap>(
        json!({"metadata": {"name": "l", "labels": {"ok": "not valid!"}}}),
    )
    .unwrap();
    let e = status(cms.create(&PostParams::default(), &bad).await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert_eq!(e.details.unwrap().causes[0].field, "metadata.labels");
    let bad = serde_json::from_value::<ConfigMap>(
        json!({"metadata": {"name": "f", "finalizers": ["unqualified"]}}),
    )
    .unwrap();
    assert_eq!(
        status(cms.create(&PostParams::default(), &bad).await.unwrap_err()).code,
        422
    );

    let frozen = serde_json::from_value::<ConfigMap>(
        json!({"metadata": {"name": "frozen"}, "data": {"a": "1"}, "immutable": true}),
    )
    .unwrap();
    cms.create(&PostParams::default(), &frozen).await.unwrap();
    let e = status(
        cms.patch(
            "frozen",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"a": "2"}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 422);
    assert!(
        e.message
            .contains("field is immutable when `immutable` is set"),
        "{}",
        e.message
    );
    cms.patch(
        "frozen",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn services_get_a_cluster_ip_that_survives_updates() {
    let (_s, client) = setup().await;
    let svcs: Api<k8s_openapi::api::core::v1::Service> = Api::namespaced(client.clone(), "default");
    let svc = serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})).unwrap();
    let created = svcs.create(&PostParams::default(), &svc).await.unwrap();
    let spec = created.spec.unwrap();
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    let ip = spec.cluster_ip.unwrap();
    assert!(ip.starts_with("10.96."), "{ip}");
    let applied = svcs
        .patch("web", &PatchParams::apply("m").force(), &Patch::Apply(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": {"selector": {"app": "web2"}, "ports": [{"port": 80}]}})))
        .await
        .unwrap();
    assert_eq!(applied.spec.unwrap().cluster_ip, Some(ip));
}

#[tokio::test]
async fn builtin_validation_catches_common_mistakes() {
    let (_s, client) = setup().await;
    let pods = dynamic(&client, "", "v1", "Pod", "pods", Some("default"));
    let e = status(pods.create(&PostParams::default(), &obj(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}}))).await.unwrap_err());
    assert_eq!(e.code, 422);
    assert_eq!(
        e.details.unwrap().causes[0].field,
        "spec.containers[0].image"
    );

    let deps = dynamic(
        &client,
        "apps",
        "v1",
        "Deployment",
        "deployments",
        Some("default"),
    );
    let dep = |sel: &str| {
        obj(
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"app": sel}},
        "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
        )
    };
    let e = status(
        deps.create(&PostParams::default(), &dep("other"))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        e.details.unwrap().causes[0].field,
        "spec.template.metadata.labels"
    );
    let d = deps
        .create(&PostParams::default(), &dep("d"))
        .await
        .unwrap();
    assert_eq!(d.data["spec"]["replicas"], 1);

    let rbs = dynamic(
        &client,
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        Some("default"),
    );
    rbs.create(&PostParams::default(), &obj(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "rb"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"}, "subjects": []}))).await.unwrap();
    let e = status(
        rbs.patch(
            "rb",
            &PatchParams::default(),
            &Patch::Merge(json!({"roleRef": {"name": "edit"}})),
        )
        .await
        .unwrap_err(),
    );
    assert!(e.message.contains("cannot change roleRef"), "{}", e.message);
}

#[tokio::test]
async fn leases_support_create_on_update_and_optimistic_renewal() {
    use k8s_openapi::api::coordination::v1::Lease;
    let (_s, client) = setup().await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    let l: Lease = serde_json::from_value(json!({"metadata": {"name": "leader"}, "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}})).unwrap();
    let created = leases
        .replace("leader", &PostParams::default(), &l)
        .await
        .unwrap();
    assert_eq!(
        created.spec.as_ref().unwrap().holder_identity.as_deref(),
        Some("a")
    );
    let mut renew = created.clone();
    renew.spec.as_mut().unwrap().holder_identity = Some("b".into());
    leases
        .replace("leader", &PostParams::default(), &renew)
        .await
        .unwrap();
    // a competing renewal with the old resourceVersion loses
    let e = status(
        leases
            .replace("leader", &PostParams::default(), &renew)
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 409);
}
