//! Custom-resource answers that once differed from a real v1.36 API server.
//! Each expectation here was read from a real server (the differential test
//! checks the same documents against one when `LANDLORD_E2E=1`).
mod common;
use common::*;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// A cluster-scoped CRD with a root CEL rule on the name, a map list, a set
/// list and an integer bounded at 2^53.
pub const GADGET_CRD: &str = r#"{
  "apiVersion": "apiextensions.k8s.io/v1",
  "kind": "CustomResourceDefinition",
  "metadata": {"name": "gadgets.parity.example.com"},
  "spec": {
    "group": "parity.example.com",
    "scope": "Cluster",
    "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
    "versions": [{
      "name": "v1", "served": true, "storage": true,
      "schema": {"openAPIV3Schema": {
        "type": "object",
        "x-kubernetes-validations": [{"rule": "self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')", "message": "gadget name must be a DNS-1123 label"}],
        "properties": {
          "spec": {
            "type": "object",
            "properties": {
              "limit": {"type": "integer", "format": "uint64", "minimum": 0.0, "maximum": 9007199254740992.0},
              "features": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
              "namespaces": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}}
            }
          }
        }
      }}
    }]
  }
}"#;

async fn install_gadgets(client: &kube::Client) -> Api<DynamicObject> {
    create_crd(client, GADGET_CRD).await;
    dynamic(
        client,
        "parity.example.com",
        "v1",
        "Gadget",
        "gadgets",
        None,
    )
}

fn gadget(name: &str, spec: Value) -> DynamicObject {
    obj(
        json!({"apiVersion": "parity.example.com/v1", "kind": "Gadget", "metadata": {"name": name}, "spec": spec}),
    )
}

fn causes(s: &kube::core::Status) -> Vec<(String, String, String)> {
    s.details
        .as_ref()
        .map(|d| {
            d.causes
                .iter()
                .map(|c| (c.field.clone(), c.reason.clone(), c.message.clone()))
                .collect()
        })
        .unwrap_or_default()
}

const NAME_RULE: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

#[tokio::test]
async fn invalid_name_and_root_cel_rule_are_both_reported() {
    let (_s, client) = setup().await;
    let gadgets = install_gadgets(&client).await;
    let e = status(
        gadgets
            .create(&PostParams::default(), &gadget("Acme", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    let name_msg = format!("Invalid value: \"Acme\": {NAME_RULE}");
    let cel_msg = "Invalid value: gadget name must be a DNS-1123 label";
    assert_eq!(
        causes(&e),
        vec![
            (
                "metadata.name".to_string(),
                "FieldValueInvalid".to_string(),
                name_msg.clone()
            ),
            (
                "<nil>".to_string(),
                "FieldValueInvalid".to_string(),
                cel_msg.to_string()
            ),
        ]
    );
    assert_eq!(
        e.message,
        format!(
            "Gadget.parity.example.com \"Acme\" is invalid: [metadata.name: {name_msg}, <nil>: {cel_msg}]"
        )
    );
}

#[tokio::test]
async fn server_side_apply_of_an_untypable_body_is_an_internal_error() {
    let (_s, client) = setup().await;
    let gadgets = install_gadgets(&client).await;
    let prefix = "failed to create typed patch object (/g; parity.example.com/v1, Kind=Gadget): ";
    let cases = [
        (
            json!({"namespaces": [{"name": "dev"}, {"name": "dev"}]}),
            ".spec.namespaces: duplicate entries for key [name=\"dev\"]",
        ),
        (
            json!({"features": ["sso", "sso"]}),
            ".spec.features: duplicate entries for key [=\"sso\"]",
        ),
        (
            json!({"tenantId": "x"}),
            ".spec.tenantId: field not declared in schema",
        ),
        (
            json!({"limit": "x"}),
            ".spec.limit: expected numeric (int or float), got string",
        ),
        (
            json!({"features": "sso"}),
            ".spec.features: expected list, got &{sso}",
        ),
    ];
    for (spec, detail) in cases {
        for validation in [Some(kube::api::ValidationDirective::Strict), None] {
            let params = PatchParams {
                field_validation: validation.clone(),
                ..PatchParams::apply("test")
            };
            let e = status(
                gadgets
                    .patch("g", &params, &Patch::Apply(gadget("g", spec.clone())))
                    .await
                    .unwrap_err(),
            );
            assert_eq!(
                (e.code, e.reason.as_str(), e.message.as_str()),
                (500, "", format!("{prefix}{detail}").as_str()),
                "{spec} {validation:?}"
            );
        }
    }
    // a POST of the same duplicates is a 422 that names the repeated item
    let e = status(
        gadgets
            .create(
                &PostParams::default(),
                &gadget(
                    "g",
                    json!({"namespaces": [{"name": "dev"}, {"name": "dev"}]}),
                ),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            422,
            "Gadget.parity.example.com \"g\" is invalid: spec.namespaces[1]: Duplicate value: {\"name\":\"dev\"}"
        )
    );
    let e = status(
        gadgets
            .create(
                &PostParams::default(),
                &gadget("g", json!({"features": ["sso", "sso"]})),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            422,
            "Gadget.parity.example.com \"g\" is invalid: spec.features[1]: Duplicate value: \"sso\""
        )
    );
}

#[tokio::test]
async fn integers_beyond_two_to_the_53_are_compared_exactly() {
    let (_s, client) = setup().await;
    let gadgets = install_gadgets(&client).await;
    let e = status(
        gadgets
            .create(
                &PostParams::default(),
                &gadget("big", json!({"limit": 9007199254740993u64})),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            422,
            "Gadget.parity.example.com \"big\" is invalid: spec.limit: Invalid value: 9007199254740993: spec.limit in body should be less than or equal to 9007199254740992"
        )
    );
    let g = gadgets
        .create(
            &PostParams::default(),
            &gadget("max", json!({"limit": 9007199254740992u64})),
        )
        .await
        .unwrap();
    assert_eq!(g.data["spec"]["limit"], json!(9007199254740992u64));
}
