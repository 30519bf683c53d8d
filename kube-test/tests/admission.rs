//! ResourceQuota, LimitRange, TokenRequest/TokenReview, test hooks.
mod common;
use common::*;
use k8s_openapi::api::authentication::v1::TokenReview;
use k8s_openapi::api::core::v1::{ConfigMap, LimitRange, Pod, ResourceQuota, ServiceAccount};
use kube::api::{Api, DeleteParams, PostParams};
use kube_test::Injection;
use serde_json::json;
use std::time::Duration;

fn pod(name: &str, cpu: Option<&str>, mem: Option<&str>) -> Pod {
    let mut res = json!({});
    if let Some(c) = cpu {
        res["requests"]["cpu"] = json!(c);
        res["limits"]["cpu"] = json!(c);
    }
    if let Some(m) = mem {
        res["requests"]["memory"] = json!(m);
        res["limits"]["memory"] = json!(m);
    }
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "busybox", "resources": res}]}})).unwrap()
}

async fn quota_status(api: &Api<ResourceQuota>, name: &str) -> serde_json::Value {
    serde_json::to_value(api.get(name).await.unwrap().status.unwrap()).unwrap()
}

#[tokio::test]
async fn resource_quota_counts_and_refuses() {
    let (_s, client) = setup().await;
    create_ns(&client, "q").await;
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), "q");
    quotas.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "rq"},
        "spec": {"hard": {"pods": "2", "requests.cpu": "1", "limits.memory": "1Gi", "configmaps": "2", "count/secrets": "5"}}})).unwrap()).await.unwrap();
    eventually("status populated", || async {
        // like a real cluster, every namespace holds the kube-root-ca.crt ConfigMap
        quota_status(&quotas, "rq").await["used"] == json!({"pods": "0", "requests.cpu": "0", "limits.memory": "0", "configmaps": "1", "count/secrets": "0"})
    }).await;
    assert_eq!(
        quota_status(&quotas, "rq").await["hard"]["limits.memory"],
        "1Gi"
    );

    let pods: Api<Pod> = Api::namespaced(client.clone(), "q");
    pods.create(
        &PostParams::default(),
        &pod("p1", Some("500m"), Some("512Mi")),
    )
    .await
    .unwrap();
    pods.create(
        &PostParams::default(),
        &pod("p2", Some("250m"), Some("256Mi")),
    )
    .await
    .unwrap();
    let st = quota_status(&quotas, "rq").await;
    assert_eq!(st["used"]["pods"], "2");
    assert_eq!(st["used"]["requests.cpu"], "750m");
    assert_eq!(st["used"]["limits.memory"], "768Mi");

    let e = status(
        pods.create(
            &PostParams::default(),
            &pod("p3", Some("100m"), Some("1Mi")),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        e.message,
        "pods \"p3\" is forbidden: exceeded quota: rq, requested: pods=1, used: pods=2, limited: pods=2"
    );

    pods.delete("p2", &DeleteParams::default()).await.unwrap();
    let e = status(
        pods.create(
            &PostParams::default(),
            &pod("p3", Some("600m"), Some("1Mi")),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        e.message,
        "pods \"p3\" is forbidden: exceeded quota: rq, requested: requests.cpu=600m, used: requests.cpu=500m, limited: requests.cpu=1"
    );
    let e = status(
        pods.create(&PostParams::default(), &pod("p4", None, None))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 403);
    assert_eq!(
        e.message,
        "pods \"p4\" is forbidden: failed quota: rq: must specify limits.memory for: c; requests.cpu for: c"
    );

    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "q");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "c1"}})).unwrap(),
    )
    .await
    .unwrap();
    let e = status(
        cms.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "c2"}})).unwrap(),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        e.message,
        "configmaps \"c2\" is forbidden: exceeded quota: rq, requested: configmaps=1, used: configmaps=2, limited: configmaps=2"
    );
    let st = quota_status(&quotas, "rq").await;
    assert_eq!(st["used"]["configmaps"], "2");
    assert_eq!(st["used"]["pods"], "1");
}

#[tokio::test]
async fn quota_admission_is_atomic_under_concurrency() {
    let (_s, client) = setup().await;
    create_ns(&client, "race").await;
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), "race");
    quotas
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "rq"}, "spec": {"hard": {"count/configmaps": "5"}}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "race");
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let cms = cms.clone();
            tokio::spawn(async move {
                cms.create(
                    &PostParams::default(),
                    &serde_json::from_value(json!({"metadata": {"name": format!("c{i}")}}))
                        .unwrap(),
                )
                .await
                .is_ok()
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap() {
            ok += 1;
        }
    }
    // kube-root-ca.crt already uses one of the five
    assert_eq!(ok, 4);
    assert_eq!(
        quota_status(&quotas, "rq").await["used"]["count/configmaps"],
        "5"
    );
}

#[tokio::test]
async fn pvc_storage_quota_and_limit_range_defaults() {
    let (_s, client) = setup().await;
    create_ns(&client, "lr").await;
    let lrs: Api<LimitRange> = Api::namespaced(client.clone(), "lr");
    lrs.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "defaults"},
        "spec": {"limits": [{"type": "Container", "default": {"cpu": "200m", "memory": "128Mi"}, "defaultRequest": {"cpu": "100m"}}]}})).unwrap()).await.unwrap();
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), "lr");
    quotas.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "rq"},
        "spec": {"hard": {"requests.cpu": "1", "memory": "1Gi", "requests.storage": "10Gi", "persistentvolumeclaims": "2"}}})).unwrap()).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "lr");
    let p = pods
        .create(&PostParams::default(), &pod("p", None, None))
        .await
        .unwrap();
    let res = serde_json::to_value(&p.spec.unwrap().containers[0].resources).unwrap();
    assert_eq!(
        res,
        json!({"limits": {"cpu": "200m", "memory": "128Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}})
    );
    let st = quota_status(&quotas, "rq").await;
    assert_eq!(st["used"]["requests.cpu"], "100m");
    assert_eq!(st["used"]["memory"], "128Mi");

    let pvcs: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
        Api::namespaced(client.clone(), "lr");
    let pvc = |n: &str, size: &str| {
        serde_json::from_value(json!({"metadata": {"name": n}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}})).unwrap()
    };
    pvcs.create(&PostParams::default(), &pvc("a", "8Gi"))
        .await
        .unwrap();
    let e = status(
        pvcs.create(&PostParams::default(), &pvc("b", "4Gi"))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        e.message,
        "persistentvolumeclaims \"b\" is forbidden: exceeded quota: rq, requested: requests.storage=4Gi, used: requests.storage=8Gi, limited: requests.storage=10Gi"
    );
    pvcs.create(&PostParams::default(), &pvc("b", "2Gi"))
        .await
        .unwrap();
    assert_eq!(
        quota_status(&quotas, "rq").await["used"]["requests.storage"],
        "10Gi"
    );
    // growing a claim is an update that quota admission checks too
    let e = status(
        pvcs.patch(
            "a",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(
                json!({"spec": {"resources": {"requests": {"storage": "9Gi"}}}}),
            ),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 403);
    assert!(e.message.contains("exceeded quota: rq, requested: requests.storage=1Gi, used: requests.storage=10Gi, limited: requests.storage=10Gi"), "{}", e.message);
}

#[tokio::test]
async fn token_request_and_review() {
    let (server, client) = setup().await;
    create_ns(&client, "t").await;
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "t");
    sas.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "bot"}})).unwrap(),
    )
    .await
    .unwrap();
    let tr: k8s_openapi::api::authentication::v1::TokenRequest =
        serde_json::from_value(json!({"spec": {}})).unwrap();
    let tr = sas
        .create_token_request("bot", &PostParams::default(), &tr)
        .await
        .unwrap();
    let token = tr.status.unwrap().token;
    assert!(!token.is_empty());

    let reviews: Api<TokenReview> = Api::all(client.clone());
    let review =
        |t: String| serde_json::from_value::<TokenReview>(json!({"spec": {"token": t}})).unwrap();
    let r = reviews
        .create(&PostParams::default(), &review(token.clone()))
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(r.authenticated, Some(true));
    let user = r.user.unwrap();
    assert_eq!(
        user.username.as_deref(),
        Some("system:serviceaccount:t:bot")
    );
    assert_eq!(
        user.groups.unwrap(),
        [
            "system:serviceaccounts",
            "system:serviceaccounts:t",
            "system:authenticated"
        ]
    );

    let r = reviews
        .create(&PostParams::default(), &review(server.admin_token()))
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(r.authenticated, Some(true));
    assert!(
        r.user
            .unwrap()
            .groups
            .unwrap()
            .contains(&"system:masters".to_string())
    );

    let r = reviews
        .create(&PostParams::default(), &review("garbage".into()))
        .await
        .unwrap()
        .status
        .unwrap();
    assert_ne!(r.authenticated, Some(true));
    // the token dies with its service account
    sas.delete("bot", &DeleteParams::default()).await.unwrap();
    let r = reviews
        .create(&PostParams::default(), &review(token))
        .await
        .unwrap()
        .status
        .unwrap();
    assert_ne!(r.authenticated, Some(true));
    let e = status(
        sas.create_token_request(
            "bot",
            &PostParams::default(),
            &serde_json::from_value(json!({"spec": {}})).unwrap(),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 404);
}

#[tokio::test]
async fn hooks_count_and_inject() {
    let (server, client) = setup().await;
    let hooks = server.hooks();
    hooks.reset_counts();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "h"}})).unwrap(),
    )
    .await
    .unwrap();
    cms.get("h").await.unwrap();
    cms.list(&Default::default()).await.unwrap();
    assert_eq!(hooks.request_count("create", "configmaps"), 1);
    assert_eq!(hooks.request_count("get", "configmaps"), 1);
    assert_eq!(hooks.request_count("list", "*"), 1);
    assert_eq!(hooks.request_count("*", "configmaps"), 3);
    assert_eq!(hooks.write_count(), 1);

    let id = hooks.inject(
        Injection::error(500)
            .verb("get")
            .resource("configmaps")
            .name("h")
            .times(1),
    );
    let e = status(cms.get("h").await.unwrap_err());
    assert_eq!(e.code, 500);
    cms.get("h").await.unwrap();
    hooks.clear_injection(id);

    let id = hooks.inject(Injection::error(409).verb("create").resource("configmaps"));
    for _ in 0..2 {
        let e = status(
            cms.create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": "z"}})).unwrap(),
            )
            .await
            .unwrap_err(),
        );
        assert_eq!(e.code, 409);
    }
    hooks.clear_injection(id);
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "z"}})).unwrap(),
    )
    .await
    .unwrap();

    let id = hooks.inject(Injection::delay(Duration::from_millis(200)).verb("get"));
    let t = std::time::Instant::now();
    cms.get("z").await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(200));
    hooks.clear_injection(id);

    hooks.reset_counts();
    assert_eq!(hooks.write_count(), 0);
}

#[tokio::test]
async fn hooks_over_http() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (server, client) = setup().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.list(&Default::default()).await.unwrap();
    let addr = server.url().trim_start_matches("http://").to_string();
    let call = |method: &'static str, path: &'static str, body: &'static str| {
        let addr = addr.clone();
        async move {
            let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
            let req = format!(
                "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            s.write_all(req.as_bytes()).await.unwrap();
            let mut buf = String::new();
            s.read_to_string(&mut buf).await.unwrap();
            serde_json::from_str::<serde_json::Value>(buf.split_once("\r\n\r\n").unwrap().1)
                .unwrap()
        }
    };
    let counts = call("GET", "/kube-test/counts", "").await;
    assert!(
        counts["counts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["verb"] == "list" && c["resource"] == "configmaps" && c["count"] == 1)
    );
    let inj = call(
        "POST",
        "/kube-test/inject",
        r#"{"verb":"list","resource":"configmaps","status":500}"#,
    )
    .await;
    assert!(inj["id"].as_u64().is_some());
    let e = status(cms.list(&Default::default()).await.unwrap_err());
    assert_eq!(e.code, 500);
    call("DELETE", "/kube-test/inject", "").await;
    cms.list(&Default::default()).await.unwrap();
    call("POST", "/kube-test/reset", "").await;
    assert_eq!(server.hooks().request_count("*", "*"), 0);
    call("POST", "/kube-test/drop-watches", "").await;
}

#[tokio::test]
async fn shutdown_is_prompt_even_with_open_watches() {
    let (server, client) = setup().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let _w = cms.watch(&Default::default(), "0").await.unwrap();
    let url = server.url();
    let t = std::time::Instant::now();
    server.shutdown().await;
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "shutdown took {:?}",
        t.elapsed()
    );
    let addr = url.trim_start_matches("http://").to_string();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener closed"
    );
}

async fn client_with(
    server: &kube_test::RunningServer,
    token: Option<&str>,
    impersonate: Option<(&str, Vec<String>)>,
) -> kube::Client {
    let yaml = match token {
        Some(t) => server.kubeconfig_yaml().replace(&server.admin_token(), t),
        None => server.kubeconfig_yaml(),
    };
    let kc = kube::config::Kubeconfig::from_yaml(&yaml).unwrap();
    let mut cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    if let Some((user, groups)) = impersonate {
        cfg.auth_info.impersonate = Some(user.into());
        cfg.auth_info.impersonate_groups = Some(groups);
    }
    kube::Client::try_from(cfg).unwrap()
}

#[tokio::test]
async fn rbac_is_enforced_for_service_accounts_and_impersonated_users() {
    use k8s_openapi::api::authorization::v1::{SelfSubjectAccessReview, SubjectAccessReview};
    use k8s_openapi::api::rbac::v1::{ClusterRole, RoleBinding};
    let (server, admin) = setup().await;
    create_ns(&admin, "t1").await;
    create_ns(&admin, "t2").await;
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), "t1");
    sas.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "dev"}})).unwrap(),
    )
    .await
    .unwrap();
    let rbs: Api<RoleBinding> = Api::namespaced(admin.clone(), "t1");
    rbs.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "dev-edit"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
        "subjects": [{"kind": "ServiceAccount", "name": "dev", "namespace": "t1"}]}))
        .unwrap(),
    )
    .await
    .unwrap();
    let token = sas
        .create_token_request(
            "dev",
            &PostParams::default(),
            &serde_json::from_value(json!({"spec": {}})).unwrap(),
        )
        .await
        .unwrap()
        .status
        .unwrap()
        .token;
    let dev = client_with(&server, Some(&token), None).await;

    let cm =
        |n: &str| serde_json::from_value::<ConfigMap>(json!({"metadata": {"name": n}})).unwrap();
    Api::<ConfigMap>::namespaced(dev.clone(), "t1")
        .create(&PostParams::default(), &cm("mine"))
        .await
        .unwrap();
    Api::<k8s_openapi::api::core::v1::Secret>::namespaced(dev.clone(), "t1")
        .list(&Default::default())
        .await
        .unwrap();
    let e = status(
        Api::<ConfigMap>::namespaced(dev.clone(), "t2")
            .list(&Default::default())
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        e.message,
        "configmaps is forbidden: User \"system:serviceaccount:t1:dev\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"t2\""
    );
    let e = status(
        Api::<k8s_openapi::api::core::v1::Namespace>::all(dev.clone())
            .get("t1")
            .await
            .unwrap_err(),
    );
    assert_eq!(
        e.message,
        "namespaces \"t1\" is forbidden: User \"system:serviceaccount:t1:dev\" cannot get resource \"namespaces\" in API group \"\" at the cluster scope"
    );
    let e = status(
        Api::<RoleBinding>::namespaced(dev.clone(), "t1")
            .list(&Default::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(
        e.message,
        "rolebindings.rbac.authorization.k8s.io is forbidden: User \"system:serviceaccount:t1:dev\" cannot list resource \"rolebindings\" in API group \"rbac.authorization.k8s.io\" in the namespace \"t1\""
    );

    // a ClusterRole labelled aggregate-to-edit extends "edit"
    let lrs = Api::<LimitRange>::namespaced(dev.clone(), "t1");
    let lr = || {
        serde_json::from_value::<LimitRange>(
            json!({"metadata": {"name": "lr"}, "spec": {"limits": []}}),
        )
        .unwrap()
    };
    assert_eq!(
        status(lrs.create(&PostParams::default(), &lr()).await.unwrap_err()).code,
        403
    );
    Api::<ClusterRole>::all(admin.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "limits-edit",
        "labels": {"rbac.authorization.k8s.io/aggregate-to-edit": "true"}},
        "rules": [{"apiGroups": [""], "resources": ["limitranges"], "verbs": ["create"]}]}))
            .unwrap(),
        )
        .await
        .unwrap();
    lrs.create(&PostParams::default(), &lr()).await.unwrap();

    // self subject access review
    let ssar = |ns: &str| {
        serde_json::from_value::<SelfSubjectAccessReview>(json!({"spec": {"resourceAttributes": {"namespace": ns, "verb": "create", "resource": "configmaps"}}})).unwrap()
    };
    let reviews = Api::<SelfSubjectAccessReview>::all(dev.clone());
    assert!(
        reviews
            .create(&PostParams::default(), &ssar("t1"))
            .await
            .unwrap()
            .status
            .unwrap()
            .allowed
    );
    assert!(
        !reviews
            .create(&PostParams::default(), &ssar("t2"))
            .await
            .unwrap()
            .status
            .unwrap()
            .allowed
    );

    // impersonation (by the admin) of a user in a group bound to "view" in t2
    Api::<RoleBinding>::namespaced(admin.clone(), "t2").create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "viewers"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "Group", "name": "tenant-b", "apiGroup": "rbac.authorization.k8s.io"}]})).unwrap()).await.unwrap();
    let jane = client_with(&server, None, Some(("jane", vec!["tenant-b".into()]))).await;
    Api::<ConfigMap>::namespaced(jane.clone(), "t2")
        .list(&Default::default())
        .await
        .unwrap();
    let e = status(
        Api::<ConfigMap>::namespaced(jane.clone(), "t2")
            .create(&PostParams::default(), &cm("x"))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        e.message,
        "configmaps is forbidden: User \"jane\" cannot create resource \"configmaps\" in API group \"\" in the namespace \"t2\""
    );
    // the service account may not impersonate
    let e = status(
        Api::<ConfigMap>::namespaced(
            client_with(&server, Some(&token), Some(("jane", vec![]))).await,
            "t2",
        )
        .list(&Default::default())
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 403);

    let sar: SubjectAccessReview = serde_json::from_value(json!({"spec": {"user": "jane", "groups": ["tenant-b"], "resourceAttributes": {"namespace": "t2", "verb": "watch", "resource": "pods"}}})).unwrap();
    let r = Api::<SubjectAccessReview>::all(admin.clone())
        .create(&PostParams::default(), &sar)
        .await
        .unwrap();
    assert!(r.status.unwrap().allowed);

    // a deleted service account's token stops working
    sas.delete("dev", &DeleteParams::default()).await.unwrap();
    let e = status(
        Api::<ConfigMap>::namespaced(dev.clone(), "t1")
            .list(&Default::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 401);
}

#[tokio::test]
async fn limit_range_min_max_are_enforced() {
    let (_s, client) = setup().await;
    create_ns(&client, "lim").await;
    let lrs: Api<LimitRange> = Api::namespaced(client.clone(), "lim");
    lrs.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "bounds"}, "spec": {"limits": [
        {"type": "Container", "max": {"cpu": "1"}, "min": {"memory": "16Mi"}, "default": {"cpu": "500m", "memory": "64Mi"}},
        {"type": "PersistentVolumeClaim", "max": {"storage": "5Gi"}}]}})).unwrap()).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "lim");
    let p = pods
        .create(&PostParams::default(), &pod("ok", None, None))
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(&p.spec.unwrap().containers[0].resources).unwrap()["limits"]["cpu"],
        "500m"
    );
    let e = status(
        pods.create(&PostParams::default(), &pod("big", Some("2"), Some("64Mi")))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 403);
    assert_eq!(
        e.message,
        "pods \"big\" is forbidden: maximum cpu usage per Container is 1, but limit is 2"
    );
    let e = status(
        pods.create(
            &PostParams::default(),
            &pod("tiny", Some("100m"), Some("1Mi")),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        e.message,
        "pods \"tiny\" is forbidden: minimum memory usage per Container is 16Mi, but request is 1Mi"
    );
    let pvcs: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
        Api::namespaced(client.clone(), "lim");
    let e = status(pvcs.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "huge"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}}})).unwrap()).await.unwrap_err());
    assert_eq!(
        e.message,
        "persistentvolumeclaims \"huge\" is forbidden: maximum storage usage per PersistentVolumeClaim is 5Gi, but request is 10Gi"
    );
}

#[tokio::test]
async fn scoped_quotas_only_track_matching_pods() {
    let (_s, client) = setup().await;
    create_ns(&client, "sc").await;
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), "sc");
    quotas.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "besteffort"}, "spec": {"hard": {"pods": "1"}, "scopes": ["BestEffort"]}})).unwrap()).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "sc");
    pods.create(&PostParams::default(), &pod("be1", None, None))
        .await
        .unwrap();
    let e = status(
        pods.create(&PostParams::default(), &pod("be2", None, None))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        e.message,
        "pods \"be2\" is forbidden: exceeded quota: besteffort, requested: pods=1, used: pods=1, limited: pods=1"
    );
    pods.create(
        &PostParams::default(),
        &pod("burstable", Some("100m"), Some("64Mi")),
    )
    .await
    .unwrap();
    assert_eq!(
        quota_status(&quotas, "besteffort").await["used"]["pods"],
        "1"
    );
}

#[tokio::test]
async fn bound_tokens_respect_audiences_and_lifetime() {
    use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
    let (server, client) = setup().await;
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
    sas.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "svc"}})).unwrap(),
    )
    .await
    .unwrap();
    let req = |spec: serde_json::Value| {
        serde_json::from_value::<k8s_openapi::api::authentication::v1::TokenRequest>(
            json!({"spec": spec}),
        )
        .unwrap()
    };
    let e = status(
        sas.create_token_request(
            "svc",
            &PostParams::default(),
            &req(json!({"expirationSeconds": 60})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 422);
    let tr = sas
        .create_token_request(
            "svc",
            &PostParams::default(),
            &req(json!({"audiences": ["landlord"]})),
        )
        .await
        .unwrap();
    assert_eq!(tr.spec.audiences, ["landlord"]);
    let token = tr.status.unwrap().token;

    let reviews: Api<TokenReview> = Api::all(client.clone());
    let review = |aud: Option<&str>| {
        let mut spec = json!({"token": token.clone()});
        if let Some(a) = aud {
            spec["audiences"] = json!([a]);
        }
        serde_json::from_value::<TokenReview>(json!({"spec": spec})).unwrap()
    };
    let r = reviews
        .create(&PostParams::default(), &review(Some("landlord")))
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(r.authenticated, Some(true));
    assert_eq!(r.audiences.unwrap(), ["landlord"]);
    let r = reviews
        .create(&PostParams::default(), &review(None))
        .await
        .unwrap()
        .status
        .unwrap();
    assert_ne!(
        r.authenticated,
        Some(true),
        "not valid for the API server's audience"
    );
    // ... and so it cannot be used to call the API
    let yaml = server
        .kubeconfig_yaml()
        .replace(&server.admin_token(), &token);
    let cfg = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::from_yaml(&yaml).unwrap(),
        &Default::default(),
    )
    .await
    .unwrap();
    let e = status(
        Api::<ConfigMap>::namespaced(kube::Client::try_from(cfg).unwrap(), "default")
            .list(&Default::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 401);

    // a service account bound to system:auth-delegator may review tokens
    Api::<ClusterRoleBinding>::all(client.clone()).create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "svc-delegator"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:auth-delegator"},
        "subjects": [{"kind": "ServiceAccount", "name": "svc", "namespace": "default"}]})).unwrap()).await.unwrap();
    let api_token = sas
        .create_token_request("svc", &PostParams::default(), &req(json!({})))
        .await
        .unwrap()
        .status
        .unwrap()
        .token;
    let yaml = server
        .kubeconfig_yaml()
        .replace(&server.admin_token(), &api_token);
    let cfg = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::from_yaml(&yaml).unwrap(),
        &Default::default(),
    )
    .await
    .unwrap();
    let svc_client = kube::Client::try_from(cfg).unwrap();
    let r = Api::<TokenReview>::all(svc_client)
        .create(&PostParams::default(), &review(Some("landlord")))
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(
        r.user.unwrap().username.as_deref(),
        Some("system:serviceaccount:default:svc")
    );
}
