//! The admission table sent to the API server itself: every bad document refused with the
//! rule's words at the rule's field, every good one accepted. Server-side apply with
//! `dryRun=All` and strict field validation (what `kubectl apply --server-side` sends), so
//! nothing is stored and the test holds on a shared cluster. On the real control plane this
//! is the check that counts: its CEL cost budget and messages are the real ones.

use kube::Api;
use kube::Resource;
use kube::api::{DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::pinned_kind;
use serde_json::Value;

use crate::admission_table::{bad_documents, valid_documents};
use crate::support::*;

/// The API server's wording of what `jsonschema` (the table's first reader) says.
fn server_words(words: &str) -> &str {
    match words {
        "does not match" => "should match",
        "is not one of" => "Unsupported value",
        "less than the minimum" => "should be greater than or equal to",
        "greater than the maximum" => "should be less than or equal to",
        "shorter than 1" => "at least 1 chars long",
        "non-unique" => "Duplicate value",
        other => other,
    }
}

/// `/spec/owners/0/kind` as the API server names it: `spec.owners[0].kind`.
fn field_path(pointer: &str) -> String {
    let mut path = String::new();
    for part in pointer.split('/').filter(|p| !p.is_empty()) {
        if part.chars().all(|c| c.is_ascii_digit()) {
            path.push_str(&format!("[{part}]"));
        } else {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(part);
        }
    }
    path
}

/// How a document reaches the API server.
#[derive(Clone, Copy, Debug)]
enum Write {
    /// `kubectl create` or a client-side `kubectl apply` of a new object: POST.
    Create,
    /// `kubectl apply --server-side`.
    Apply,
}

/// Send `yaml` with `dryRun=All` and strict field validation: `Ok`, or the refusal's HTTP
/// code and message.
async fn dry_run(client: &kube::Client, yaml: &str, write: Write) -> Result<(), (u16, String)> {
    let doc: Value = serde_saphyr::from_str(yaml).unwrap();
    let object: DynamicObject = serde_json::from_value(doc.clone()).unwrap();
    let gvk = GroupVersionKind::try_from(object.types.as_ref().unwrap()).unwrap();
    let (resource, _) = pinned_kind(client, &gvk).await.unwrap();
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let answer = match write {
        Write::Create => {
            // PostParams has no field validation directive; say it in the URL.
            let url = DynamicObject::url_path(&resource, None);
            let request = http::Request::post(format!("{url}?dryRun=All&fieldValidation=Strict"))
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&doc).unwrap())
                .unwrap();
            client.request::<DynamicObject>(request).await
        }
        Write::Apply => {
            let mut params = PatchParams::apply("landlord-tests")
                .force()
                .validation_strict();
            params.dry_run = true;
            let name = object.metadata.name.clone().unwrap();
            api.patch(&name, &params, &Patch::Apply(&doc)).await
        }
    };
    match answer {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) => Err((status.code, status.message)),
        Err(other) => panic!("{other}"),
    }
}

/// What the real API server answers a server-side apply that breaks the schema's structure
/// (duplicate keys in a list map or set, an undeclared field): it cannot build the typed
/// patch and says 500. Everything else is a 422 from validation.
fn apply_code(words: &str) -> u16 {
    match words {
        "Duplicate value" | "non-unique" | "tenantId" => 500,
        _ => 422,
    }
}

#[tokio::test]
async fn the_api_server_refuses_every_bad_document_for_its_reason() {
    let c = Cluster::start("admission", "5m").await;
    let mut failures = Vec::new();
    for (case, yaml, pointer, words) in bad_documents() {
        let field = field_path(pointer);
        let words = server_words(words);
        match dry_run(&c.client, &yaml, Write::Create).await {
            Ok(()) => failures.push(format!("{case}: accepted")),
            Err((code, message)) => {
                if !matches!(code, 400 | 422)
                    || !message.contains(words)
                    || !message.contains(&field)
                {
                    failures.push(format!(
                        "{case}: expected 422 naming `{field}` with `{words}`, got {code}: {message}"
                    ));
                }
            }
        }
        match dry_run(&c.client, &yaml, Write::Apply).await {
            Ok(()) => failures.push(format!("{case}: accepted by server-side apply")),
            Err((code, message)) if code != apply_code(words) => failures.push(format!(
                "{case}: server-side apply: expected {}, got {code}: {message}",
                apply_code(words)
            )),
            Err(_) => {}
        }
    }
    for (case, yaml) in valid_documents() {
        for doc in yaml.split("\n---\n") {
            for write in [Write::Create, Write::Apply] {
                if let Err((code, message)) = dry_run(&c.client, doc, write).await {
                    failures.push(format!("{case}: {write:?} refused with {code}: {message}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    c.finish().await;
}
