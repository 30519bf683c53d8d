#![allow(dead_code)]
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use kube::core::GroupVersionKind;
use kube_test::{ApiServer, RunningServer};
use serde_json::{Value, json};
use std::future::Future;
use std::time::{Duration, Instant};

pub async fn setup() -> (RunningServer, Client) {
    let server = ApiServer::start().await.expect("server starts");
    let client = server.client().await.expect("client");
    (server, client)
}

/// Poll `f` until it returns true or the deadline (5s) passes.
pub async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if f().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn dynamic(
    client: &Client,
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    ns: Option<&str>,
) -> Api<DynamicObject> {
    let ar =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
    match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    }
}

pub fn obj(v: Value) -> DynamicObject {
    serde_json::from_value(v).expect("valid object")
}

pub async fn create_ns(client: &Client, name: &str) {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": name}})).unwrap(),
    )
    .await
    .expect("create namespace");
}

/// The Status of a failed API call.
pub fn status(e: kube::Error) -> Box<kube::core::Status> {
    match e {
        kube::Error::Api(s) => s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

pub const WIDGET_CRD: &str = r#"{
  "apiVersion": "apiextensions.k8s.io/v1",
  "kind": "CustomResourceDefinition",
  "metadata": {"name": "widgets.example.com"},
  "spec": {
    "group": "example.com",
    "scope": "Namespaced",
    "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"], "categories": ["all"]},
    "versions": [{
      "name": "v1", "served": true, "storage": true,
      "subresources": {"status": {}},
      "additionalPrinterColumns": [
        {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Color", "type": "string", "jsonPath": ".spec.color", "priority": 1}
      ],
      "schema": {"openAPIV3Schema": {
        "type": "object",
        "properties": {
          "spec": {
            "type": "object",
            "required": ["size"],
            "x-kubernetes-validations": [{"rule": "self.size != 7", "message": "seven is unlucky"}],
            "properties": {
              "size": {"type": "integer", "minimum": 1, "maximum": 10},
              "color": {"type": "string", "default": "blue", "enum": ["blue", "red", "green"]},
              "name": {"type": "string", "maxLength": 5, "pattern": "^[a-z]+$"},
              "port": {"x-kubernetes-int-or-string": true},
              "note": {"type": "string", "nullable": true},
              "tags": {"type": "array", "maxItems": 2, "items": {"type": "string"}},
              "labels": {"type": "object", "maxProperties": 2, "additionalProperties": {"type": "string"}},
              "items": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["key"],
                        "items": {"type": "object", "required": ["key"], "properties": {"key": {"type": "string"}, "value": {"type": "string"}}}},
              "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
            }
          },
          "status": {"type": "object", "properties": {"phase": {"type": "string"}, "ready": {"type": "boolean"}}}
        }
      }}
    }]
  }
}"#;

/// Create the CRD given as JSON.
pub async fn create_crd(client: &Client, crd_json: &str) {
    let crds = dynamic(
        client,
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        None,
    );
    crds.create(
        &PostParams::default(),
        &obj(serde_json::from_str(crd_json).unwrap()),
    )
    .await
    .expect("create CRD");
}

pub async fn install_widgets(client: &Client) -> Api<DynamicObject> {
    create_crd(client, WIDGET_CRD).await;
    dynamic(
        client,
        "example.com",
        "v1",
        "Widget",
        "widgets",
        Some("default"),
    )
}
