//! Custom resources: dynamic serving, schema + CEL validation, defaults,
//! status subresource, generation, printer columns.
mod common;
use common::*;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

fn widget(name: &str, spec: serde_json::Value) -> kube::api::DynamicObject {
    obj(
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec}),
    )
}

#[tokio::test]
async fn crd_is_served_immediately_and_removed_with_objects() {
    let (_s, client) = setup().await;
    let widgets = dynamic(
        &client,
        "example.com",
        "v1",
        "Widget",
        "widgets",
        Some("default"),
    );
    let e = status(widgets.list(&ListParams::default()).await.unwrap_err());
    assert_eq!(e.code, 404);
    let widgets = install_widgets(&client).await;
    let crd = dynamic(
        &client,
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        None,
    )
    .get("widgets.example.com")
    .await
    .unwrap();
    let conds = crd.data["status"]["conditions"].as_array().unwrap();
    assert!(
        conds
            .iter()
            .any(|c| c["type"] == "Established" && c["status"] == "True")
    );
    let res = client
        .list_api_group_resources("example.com/v1")
        .await
        .unwrap();
    let r = res.resources.iter().find(|r| r.name == "widgets").unwrap();
    assert!(r.namespaced);
    assert_eq!(r.short_names.as_deref(), Some(&["wd".to_string()][..]));
    assert!(res.resources.iter().any(|r| r.name == "widgets/status"));

    widgets
        .create(&PostParams::default(), &widget("w", json!({"size": 1})))
        .await
        .unwrap();
    let crds = dynamic(
        &client,
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        None,
    );
    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
    eventually("crd removed", || async {
        crds.get_opt("widgets.example.com").await.unwrap().is_none()
    })
    .await;
    let e = status(widgets.get("w").await.unwrap_err());
    assert_eq!(e.code, 404);
    // re-creating the CRD does not resurrect objects
    install_widgets(&client).await;
    assert!(
        widgets
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn cluster_scoped_crd() {
    let (_s, client) = setup().await;
    let crds = dynamic(
        &client,
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        None,
    );
    crds.create(&PostParams::default(), &obj(json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "tenants.landlord.dev"},
        "spec": {"group": "landlord.dev", "scope": "Cluster", "names": {"plural": "tenants", "singular": "tenant", "kind": "Tenant"},
            "versions": [{"name": "v1alpha1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}})))
        .await
        .unwrap();
    let tenants = dynamic(
        &client,
        "landlord.dev",
        "v1alpha1",
        "Tenant",
        "tenants",
        None,
    );
    let t = tenants.create(&PostParams::default(), &obj(json!({"apiVersion": "landlord.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": "acme"}, "spec": {"anything": [1, 2]}}))).await.unwrap();
    assert!(t.metadata.namespace.is_none());
    assert_eq!(t.data["spec"]["anything"], json!([1, 2]));
    assert_eq!(t.metadata.generation, Some(1));
}

#[tokio::test]
async fn schema_validation_defaults_and_pruning() {
    let (_s, client) = setup().await;
    let widgets = install_widgets(&client).await;
    let w = widgets.create(&PostParams::default(), &widget("ok", json!({"size": 2, "port": "http", "note": null, "unknown": 1, "free": {"x": {"y": 1}}}))).await.unwrap();
    assert_eq!(w.data["spec"]["color"], "blue", "default applied");
    assert!(
        w.data["spec"].get("unknown").is_none(),
        "unknown field pruned"
    );
    assert_eq!(
        w.data["spec"]["free"],
        json!({"x": {"y": 1}}),
        "preserve-unknown-fields kept"
    );
    assert_eq!(w.data["spec"]["note"], json!(null), "nullable null kept");

    let cases = [
        (
            json!({"size": "big"}),
            "spec.size",
            "FieldValueTypeInvalid",
            "Invalid value: \"string\": spec.size in body must be of type integer: \"string\"",
        ),
        (
            json!({"size": 11}),
            "spec.size",
            "FieldValueInvalid",
            "Invalid value: 11: spec.size in body should be less than or equal to 10",
        ),
        (
            json!({"size": 0}),
            "spec.size",
            "FieldValueInvalid",
            "Invalid value: 0: spec.size in body should be greater than or equal to 1",
        ),
        (
            json!({}),
            "spec.size",
            "FieldValueRequired",
            "Required value",
        ),
        (
            json!({"size": 1, "color": "pink"}),
            "spec.color",
            "FieldValueNotSupported",
            "Unsupported value: \"pink\": supported values: \"blue\", \"red\", \"green\"",
        ),
        (
            json!({"size": 1, "name": "toolong"}),
            "spec.name",
            "FieldValueTooLong",
            "Too long: may not be more than 5 bytes",
        ),
        (
            json!({"size": 1, "name": "AB"}),
            "spec.name",
            "FieldValueInvalid",
            "Invalid value: \"AB\": spec.name in body should match '^[a-z]+$'",
        ),
        (
            json!({"size": 1, "tags": ["a", "b", "c"]}),
            "spec.tags",
            "FieldValueTooMany",
            "Too many: 3: must have at most 2 items",
        ),
        (
            json!({"size": 1, "labels": {"a": "1", "b": "2", "c": "3"}}),
            "spec.labels",
            "FieldValueTooMany",
            "Too many: 3: must have at most 2 items",
        ),
        (
            json!({"size": 1, "port": true}),
            "spec.port",
            "FieldValueTypeInvalid",
            "Invalid value: \"boolean\": spec.port in body must be of type integer,string: \"boolean\"",
        ),
        (
            json!({"size": 7}),
            "spec",
            "FieldValueInvalid",
            "Invalid value: seven is unlucky",
        ),
    ];
    for (i, (spec, field, reason, msg)) in cases.into_iter().enumerate() {
        let e = status(
            widgets
                .create(
                    &PostParams::default(),
                    &widget(&format!("bad{i}"), spec.clone()),
                )
                .await
                .unwrap_err(),
        );
        assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"), "case {spec}");
        let causes: Vec<(&str, &str, &str)> = e
            .details
            .as_ref()
            .unwrap()
            .causes
            .iter()
            .map(|c| (c.field.as_str(), c.reason.as_str(), c.message.as_str()))
            .collect();
        // as on a real server, a type, enum, required, too-long or too-many
        // error keeps the CEL rules from running, and says so
        let mut expected = vec![(field, reason, msg)];
        if !matches!(reason, "FieldValueInvalid") {
            expected.push((
                "<nil>",
                "FieldValueInvalid",
                "Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation",
            ));
        }
        assert_eq!(causes, expected, "case {spec}");
        let listed: Vec<String> = expected
            .iter()
            .map(|(f, _, m)| format!("{f}: {m}"))
            .collect();
        let listed = if listed.len() == 1 {
            listed[0].clone()
        } else {
            format!("[{}]", listed.join(", "))
        };
        assert_eq!(
            e.message,
            format!("Widget.example.com \"bad{i}\" is invalid: {listed}")
        );
    }
    // several problems are all reported
    let e = status(
        widgets
            .create(
                &PostParams::default(),
                &widget("multi", json!({"size": 50, "color": "pink"})),
            )
            .await
            .unwrap_err(),
    );
    // (the two schema errors and, because of the enum, the note that the CEL
    // rules were not checked)
    assert_eq!(e.details.unwrap().causes.len(), 3);
    // updates are validated too
    let e = status(
        widgets
            .patch(
                "ok",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"size": 100}})),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 422);
}

#[tokio::test]
async fn status_subresource_and_generation() {
    let (_s, client) = setup().await;
    let widgets = install_widgets(&client).await;
    let mut w = widget("s", json!({"size": 1}));
    w.data["status"] = json!({"phase": "Ignored"});
    let w = widgets.create(&PostParams::default(), &w).await.unwrap();
    assert!(
        w.data.get("status").is_none(),
        "status is dropped on create"
    );
    assert_eq!(w.metadata.generation, Some(1));

    // main endpoint ignores status changes
    let w = widgets
        .patch(
            "s",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "X"}})),
        )
        .await
        .unwrap();
    assert!(w.data.get("status").is_none());
    // status endpoint ignores everything else
    let w = widgets
        .patch_status(
            "s",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 9}, "status": {"phase": "Ready"}})),
        )
        .await
        .unwrap();
    assert_eq!(w.data["status"]["phase"], "Ready");
    assert_eq!(w.data["spec"]["size"], 1);
    assert_eq!(
        w.metadata.generation,
        Some(1),
        "status writes do not bump generation"
    );
    // metadata-only changes do not bump generation; spec changes do
    let w = widgets
        .patch(
            "s",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .unwrap();
    assert_eq!(w.metadata.generation, Some(1));
    let w = widgets
        .patch(
            "s",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(w.metadata.generation, Some(2));
    // SSA on the status subresource
    let w = widgets
        .patch_status("s", &PatchParams::apply("ctrl"), &Patch::Apply(json!({"apiVersion": "example.com/v1", "kind": "Widget", "status": {"ready": true}})))
        .await
        .unwrap();
    assert_eq!(w.data["status"], json!({"phase": "Ready", "ready": true}));
    let mf = w.metadata.managed_fields.unwrap();
    let ctrl = mf
        .iter()
        .find(|m| m.manager.as_deref() == Some("ctrl"))
        .unwrap();
    assert_eq!(ctrl.subresource.as_deref(), Some("status"));
    // strategic merge is not supported for custom resources
    let e = status(
        widgets
            .patch(
                "s",
                &PatchParams::default(),
                &Patch::Strategic(json!({"spec": {"size": 2}})),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 415);
}

#[tokio::test]
async fn table_output_uses_printer_columns() {
    let (server, client) = setup().await;
    let widgets = install_widgets(&client).await;
    widgets
        .create(
            &PostParams::default(),
            &widget("t", json!({"size": 4, "color": "red"})),
        )
        .await
        .unwrap();
    let http = reqwest_like(
        &server.url(),
        "/apis/example.com/v1/namespaces/default/widgets",
        &server.admin_token(),
    )
    .await;
    assert_eq!(http["kind"], "Table");
    let cols: Vec<&str> = http["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(cols, ["Name", "Size", "Phase", "Color"]);
    assert_eq!(http["columnDefinitions"][3]["priority"], 1);
    assert_eq!(http["rows"][0]["cells"], json!(["t", 4, null, "red"]));
    let ns = reqwest_like(&server.url(), "/api/v1/namespaces", &server.admin_token()).await;
    let cols: Vec<&str> = ns["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(cols, ["Name", "Status", "Age"]);
}

/// GET with the Table Accept header kubectl sends, over a raw TCP connection.
async fn reqwest_like(url: &str, path: &str, token: &str) -> serde_json::Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nAccept: application/json;as=Table;v=v1;g=meta.k8s.io,application/json\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![];
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8(buf).unwrap();
    let body = text.split_once("\r\n\r\n").unwrap().1;
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[tokio::test]
async fn custom_resource_update_requires_resource_version_and_strict_validation() {
    let (_s, client) = setup().await;
    let widgets = install_widgets(&client).await;
    let w = widgets
        .create(&PostParams::default(), &widget("u", json!({"size": 1})))
        .await
        .unwrap();
    let mut stale = w.clone();
    stale.metadata.resource_version = None;
    let e = status(
        widgets
            .replace("u", &PostParams::default(), &stale)
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 422);
    let mut ok = w.clone();
    ok.data["spec"]["size"] = json!(2);
    let w2 = widgets
        .replace("u", &PostParams::default(), &ok)
        .await
        .unwrap();
    assert_eq!(w2.metadata.generation, Some(2));

    // an undeclared field in an apply body fails when the server builds the
    // typed patch: 500, whatever fieldValidation says (as on a v1.36 server)
    for directive in [
        Some(kube::api::ValidationDirective::Strict),
        Some(kube::api::ValidationDirective::Ignore),
        None,
    ] {
        let params = PatchParams {
            field_validation: directive.clone(),
            ..PatchParams::apply("m")
        };
        let e = status(widgets.patch("u", &params, &Patch::Apply(json!({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"size": 2, "bogus": 1}}))).await.unwrap_err());
        assert_eq!(
            (e.code, e.reason.as_str(), e.message.as_str()),
            (
                500,
                "",
                "failed to create typed patch object (/u; example.com/v1, Kind=Widget): .spec.bogus: field not declared in schema"
            ),
            "{directive:?}"
        );
    }
    // a merge patch with fieldValidation=Strict is refused while decoding: 400
    let strict = PatchParams {
        field_validation: Some(kube::api::ValidationDirective::Strict),
        ..PatchParams::default()
    };
    let e = status(
        widgets
            .patch("u", &strict, &Patch::Merge(json!({"spec": {"bogus": 1}})))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 400);
    assert!(
        e.message.contains("unknown field \"spec.bogus\""),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn kube_discovery_finds_custom_resources() {
    let (_s, client) = setup().await;
    install_widgets(&client).await;
    let d = kube::Discovery::new(client.clone()).run().await.unwrap();
    let (ar, caps) = d
        .resolve_gvk(&kube::core::GroupVersionKind::gvk(
            "example.com",
            "v1",
            "Widget",
        ))
        .unwrap();
    assert_eq!(ar.plural, "widgets");
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
    assert!(
        d.resolve_gvk(&kube::core::GroupVersionKind::gvk(
            "apps",
            "v1",
            "Deployment"
        ))
        .is_some()
    );
}

#[tokio::test]
async fn deleting_a_cluster_scoped_owner_terminates_owned_namespaces() {
    let (_s, client) = setup().await;
    let crds = dynamic(
        &client,
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        None,
    );
    crds.create(&PostParams::default(), &obj(json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "tenants.landlord.dev"},
        "spec": {"group": "landlord.dev", "scope": "Cluster", "names": {"plural": "tenants", "singular": "tenant", "kind": "Tenant"},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}})))
        .await
        .unwrap();
    let tenants = dynamic(&client, "landlord.dev", "v1", "Tenant", "tenants", None);
    let t = tenants
        .create(
            &PostParams::default(),
            &obj(json!({"apiVersion": "landlord.dev/v1", "kind": "Tenant",
        "metadata": {"name": "acme", "finalizers": ["landlord.dev/cleanup"]}, "spec": {}})),
        )
        .await
        .unwrap();
    let nss = dynamic(&client, "", "v1", "Namespace", "namespaces", None);
    let owner = json!([{"apiVersion": "landlord.dev/v1", "kind": "Tenant", "name": "acme", "uid": t.metadata.uid.clone().unwrap(), "controller": true, "blockOwnerDeletion": true}]);
    nss.create(&PostParams::default(), &obj(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "acme-dev", "ownerReferences": owner}}))).await.unwrap();
    let cms = dynamic(
        &client,
        "",
        "v1",
        "ConfigMap",
        "configmaps",
        Some("acme-dev"),
    );
    cms.create(
        &PostParams::default(),
        &obj(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})),
    )
    .await
    .unwrap();

    tenants
        .delete("acme", &DeleteParams::default())
        .await
        .unwrap();
    let pending = tenants.get("acme").await.unwrap();
    assert!(pending.metadata.deletion_timestamp.is_some());
    assert_eq!(
        pending.metadata.generation,
        Some(2),
        "deletion bumps generation"
    );
    assert!(
        nss.get_opt("acme-dev").await.unwrap().is_some(),
        "owner still exists"
    );
    tenants
        .patch(
            "acme",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    eventually("tenant, namespace and contents gone", || async {
        tenants.get_opt("acme").await.unwrap().is_none()
            && nss.get_opt("acme-dev").await.unwrap().is_none()
            && cms.get_opt("c").await.unwrap().is_none()
    })
    .await;
}

#[tokio::test]
async fn ssa_merges_crd_list_map_items_per_manager() {
    let (_s, client) = setup().await;
    let widgets = install_widgets(&client).await;
    let apply = |items: serde_json::Value| {
        Patch::Apply(
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "m"}, "spec": {"size": 1, "items": items}}),
        )
    };
    widgets
        .patch(
            "m",
            &PatchParams::apply("a"),
            &apply(json!([{"key": "x", "value": "1"}])),
        )
        .await
        .unwrap();
    let w = widgets
        .patch(
            "m",
            &PatchParams::apply("b"),
            &apply(json!([{"key": "y", "value": "2"}])),
        )
        .await
        .unwrap();
    assert_eq!(
        w.data["spec"]["items"],
        json!([{"key": "x", "value": "1"}, {"key": "y", "value": "2"}])
    );
    let w = widgets
        .patch("m", &PatchParams::apply("a"), &apply(json!([])))
        .await
        .unwrap();
    assert_eq!(w.data["spec"]["items"], json!([{"key": "y", "value": "2"}]));
    // duplicate keys fail when the server builds the typed patch: 500
    let e = status(
        widgets
            .patch(
                "m",
                &PatchParams::apply("b"),
                &apply(json!([{"key": "y"}, {"key": "y", "value": "3"}])),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            500,
            "failed to create typed patch object (/m; example.com/v1, Kind=Widget): .spec.items: duplicate entries for key [key=\"y\"]"
        )
    );
}

#[tokio::test]
async fn object_count_quota_applies_to_custom_resources() {
    let (_s, client) = setup().await;
    let widgets = install_widgets(&client).await;
    let quotas = dynamic(
        &client,
        "",
        "v1",
        "ResourceQuota",
        "resourcequotas",
        Some("default"),
    );
    quotas.create(&PostParams::default(), &obj(json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "crs"}, "spec": {"hard": {"count/widgets.example.com": "1"}}}))).await.unwrap();
    widgets
        .create(&PostParams::default(), &widget("one", json!({"size": 1})))
        .await
        .unwrap();
    let e = status(
        widgets
            .create(&PostParams::default(), &widget("two", json!({"size": 1})))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 403);
    assert_eq!(
        e.message,
        "widgets.example.com \"two\" is forbidden: exceeded quota: crs, requested: count/widgets.example.com=1, used: count/widgets.example.com=1, limited: count/widgets.example.com=1"
    );
    assert_eq!(
        quotas.get("crs").await.unwrap().data["status"]["used"]["count/widgets.example.com"],
        "1"
    );
}

#[tokio::test]
async fn scale_subresource_for_deployments_and_custom_resources() {
    let (_s, client) = setup().await;
    let deps: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::namespaced(client.clone(), "default");
    deps.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})).unwrap()).await.unwrap();
    let sc = deps.get_scale("web").await.unwrap();
    assert_eq!(sc.spec.unwrap().replicas, Some(1));
    assert_eq!(sc.status.unwrap().selector.as_deref(), Some("app=web"));
    deps.patch_scale(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 4}})),
    )
    .await
    .unwrap();
    assert_eq!(
        deps.get("web").await.unwrap().spec.unwrap().replicas,
        Some(4)
    );

    let crds = dynamic(
        &client,
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        None,
    );
    crds.create(&PostParams::default(), &obj(json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "pools.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced", "names": {"plural": "pools", "kind": "Pool"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.size", "statusReplicasPath": ".status.size"}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
                    "status": {"type": "object", "properties": {"size": {"type": "integer"}}}}}}}]}})))
        .await
        .unwrap();
    let pools = dynamic(
        &client,
        "example.com",
        "v1",
        "Pool",
        "pools",
        Some("default"),
    );
    pools.create(&PostParams::default(), &obj(json!({"apiVersion": "example.com/v1", "kind": "Pool", "metadata": {"name": "p"}, "spec": {"size": 2}}))).await.unwrap();
    let sc = pools.get_scale("p").await.unwrap();
    assert_eq!(sc.spec.clone().unwrap().replicas, Some(2));
    let mut sc2 = sc.clone();
    sc2.spec = Some(kube::api::ScaleSpec { replicas: Some(5) });
    pools
        .replace_scale("p", &PostParams::default(), &sc2)
        .await
        .unwrap();
    assert_eq!(pools.get("p").await.unwrap().data["spec"]["size"], 5);
}
