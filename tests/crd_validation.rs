//! Admission-time validation of the generated CRDs, evaluated without an API server.
//!
//! The OpenAPI schema is checked with the `jsonschema` crate (after translating the Kubernetes
//! extensions it does not know: `nullable`, `x-kubernetes-int-or-string`, list types, and
//! strict field validation, which kubectl asks for by default), and the `x-kubernetes-validations`
//! CEL rules with `kube-cel`, which implements the API server's CEL library. Each bad document
//! names the field and the words of the rule that must refuse it.

use kube::CustomResourceExt;
use landlord::api::{Tenant, TenantQuota, TenantUsage};
use serde_json::{Map, Value, json};

mod admission_table;
use admission_table::{bad_documents, valid_documents};

/// The `openAPIV3Schema` of a CRD's only version.
fn schema_of(
    crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) -> Value {
    let version = &crd.spec.versions[0];
    let schema = version
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .expect("schema");
    serde_json::to_value(schema).expect("schema serialises")
}

fn schema_for_kind(kind: &str) -> Value {
    match kind {
        "Tenant" => schema_of(&Tenant::crd()),
        "TenantQuota" => schema_of(&TenantQuota::crd()),
        "TenantUsage" => schema_of(&TenantUsage::crd()),
        other => panic!("unknown kind {other}"),
    }
}

/// Translate a structural schema into plain JSON Schema with the same meaning.
fn to_json_schema(schema: &Value) -> Value {
    let Value::Object(map) = schema else {
        return schema.clone();
    };
    let mut out = Map::new();
    for (key, value) in map {
        match key.as_str() {
            "properties" => {
                let props = value.as_object().expect("properties").iter();
                out.insert(
                    key.clone(),
                    props.map(|(k, v)| (k.clone(), to_json_schema(v))).collect(),
                );
            }
            "items" | "additionalProperties" if value.is_object() => {
                out.insert(key.clone(), to_json_schema(value));
            }
            "anyOf" | "allOf" | "oneOf" => {
                let branches = value
                    .as_array()
                    .expect("junctor")
                    .iter()
                    .map(to_json_schema)
                    .collect();
                out.insert(key.clone(), Value::Array(branches));
            }
            "nullable"
            | "format"
            | "description"
            | "default"
            | "x-kubernetes-validations"
            | "x-kubernetes-list-type"
            | "x-kubernetes-list-map-keys"
            | "x-kubernetes-preserve-unknown-fields"
            | "x-kubernetes-int-or-string"
            | "x-kubernetes-embedded-resource" => {}
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    let flag = |name: &str| map.get(name).and_then(Value::as_bool).unwrap_or(false);
    if flag("x-kubernetes-int-or-string") {
        out.insert("type".into(), json!(["integer", "string"]));
    }
    if flag("nullable")
        && let Some(Value::String(t)) = out.get("type").cloned()
    {
        out.insert("type".into(), json!([t, "null"]));
    }
    if map.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("set") {
        out.insert("uniqueItems".into(), json!(true));
    }
    let preserve = flag("x-kubernetes-preserve-unknown-fields");
    if map.contains_key("properties") && !preserve && !map.contains_key("additionalProperties") {
        out.insert("additionalProperties".into(), json!(false));
    }
    Value::Object(out)
}

/// Duplicate keys in `x-kubernetes-list-type: map` lists, reported like the API server does.
fn list_map_duplicates(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    match value {
        Value::Object(obj) => {
            for (k, v) in obj {
                let child = schema
                    .get("properties")
                    .and_then(|p| p.get(k))
                    .or_else(|| schema.get("additionalProperties").filter(|a| a.is_object()));
                if let Some(child) = child {
                    list_map_duplicates(child, v, &format!("{path}/{k}"), errors);
                }
            }
        }
        Value::Array(items) => {
            let Some(item_schema) = schema.get("items") else {
                return;
            };
            if let Some(keys) = schema
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
            {
                let mut seen = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let key: Vec<&Value> = keys
                        .iter()
                        .map(|k| item.get(k.as_str().unwrap()).unwrap_or(&Value::Null))
                        .collect();
                    if seen.contains(&key) {
                        errors.push(format!("{path}/{i}: Duplicate value: {}", json!(key)));
                    }
                    seen.push(key);
                }
            }
            for (i, item) in items.iter().enumerate() {
                list_map_duplicates(item_schema, item, &format!("{path}/{i}"), errors);
            }
        }
        _ => {}
    }
}

/// Every reason the API server would refuse `doc` at admission, as `path: message` lines.
fn admission_errors(doc: &Value) -> Vec<String> {
    let kind = doc["kind"].as_str().expect("kind");
    let schema = schema_for_kind(kind);
    // The API server validates these three itself; the CRD schema need not list them.
    let mut json_schema = to_json_schema(&schema);
    for field in ["apiVersion", "kind", "metadata"] {
        json_schema["properties"][field] = json!({});
    }
    let mut errors = Vec::new();

    let validator = jsonschema::validator_for(&json_schema).expect("schema compiles");
    for error in validator.iter_errors(doc) {
        errors.push(format!("{}: {}", error.instance_path(), error));
    }
    list_map_duplicates(&schema, doc, "", &mut errors);
    if let Err(cel_errors) = kube_cel::Validator::new().validate(&schema, doc, None) {
        for error in cel_errors.iter() {
            errors.push(format!(
                "{}: {}",
                json_pointer(&error.field_path),
                error.message
            ));
        }
    }
    errors
}

/// `spec.owners[0]` (kube-cel's field path) as the JSON pointer `/spec/owners/0`.
fn json_pointer(field_path: &str) -> String {
    field_path
        .replace(['[', '.'], "/")
        .replace(']', "")
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| format!("/{s}"))
        .collect()
}

fn parse(yaml: &str) -> Value {
    serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("fixture is not YAML: {e}\n{yaml}"))
}

#[test]
fn every_bad_document_is_refused_for_its_reason() {
    let cases = bad_documents();
    assert!(
        cases.len() >= 25,
        "the table must cover at least 25 documents"
    );
    let mut failures = Vec::new();
    for (case, yaml, path, words) in &cases {
        let errors = admission_errors(&parse(yaml));
        let hit = errors.iter().any(|e| {
            let (at, message) = e.split_once(": ").unwrap_or(("", e));
            at == *path && message.contains(words)
        });
        if !hit {
            failures.push(format!(
                "{case}: expected `{path}: …{words}…`, got {errors:#?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn valid_documents_are_accepted() {
    for (case, yaml) in valid_documents() {
        for doc in serde_saphyr::from_multiple::<Value>(&yaml).expect("YAML") {
            let errors = admission_errors(&doc);
            assert!(errors.is_empty(), "{case} was refused: {errors:#?}");
        }
    }
}

/// kube-cel's scope check lists the variables of macros (`all(k, …)`) as free variables;
/// those are bound by the rule itself and are fine.
fn is_comprehension_variable(rule: &str, warning: &kube_cel::AnalysisWarning) -> bool {
    let Some(var) = warning.message.split('\'').nth(1) else {
        return false;
    };
    warning.kind == kube_cel::WarningKind::WrongScope
        && ["all", "exists", "exists_one", "map", "filter"]
            .iter()
            .any(|m| rule.contains(&format!(".{m}({var},")))
}

/// Every CEL rule compiles, uses only variables CRD rules may use, and fits the cost budget.
#[test]
fn cel_rules_compile_and_fit_the_cost_budget() {
    fn walk(
        schema: &Value,
        path: &str,
        found: &mut Vec<(String, String)>,
        problems: &mut Vec<String>,
    ) {
        let Value::Object(map) = schema else { return };
        if let Some(rules) = map
            .get("x-kubernetes-validations")
            .and_then(Value::as_array)
        {
            let compiled = kube_cel::compile_schema(schema);
            for error in compiled.compilation_errors() {
                problems.push(format!("{path}: {error}"));
            }
            for rule in rules {
                let rule = rule["rule"].as_str().unwrap().to_string();
                assert!(
                    rule.contains("self"),
                    "{path}: rule `{rule}` does not read self"
                );
                for warning in
                    kube_cel::analyze_rule(&rule, &compiled, kube_cel::ScopeContext::CrdValidation)
                {
                    if !is_comprehension_variable(&rule, &warning) {
                        problems.push(format!("{path}: `{rule}`: {}", warning.message));
                    }
                }
                found.push((path.to_string(), rule));
            }
        }
        for (key, child) in map {
            match key.as_str() {
                "properties" => {
                    for (name, prop) in child.as_object().unwrap() {
                        walk(prop, &format!("{path}.{name}"), found, problems);
                    }
                }
                "items" | "additionalProperties" => {
                    walk(child, &format!("{path}[]"), found, problems)
                }
                _ => {}
            }
        }
    }
    let mut found = Vec::new();
    let mut problems = Vec::new();
    for kind in ["Tenant", "TenantQuota", "TenantUsage"] {
        walk(&schema_for_kind(kind), kind, &mut found, &mut problems);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Tenant: 3 root rules, 2 owner rules, 2 label-key rules, and the plan's 5 under overrides
    // (2 rate rules, a gauge's and a size's 2^53 bound, a price item's target);
    // TenantQuota: the plan's 5; TenantUsage: 2.
    assert_eq!(found.len(), 3 + 2 + 2 + 5 + 5 + 2, "{found:#?}");
}

/// Rules that read a field called `namespace` must escape it, or the API server refuses the CRD.
#[test]
fn cel_rules_escape_reserved_names() {
    let yaml = landlord::api::crds_yaml().unwrap();
    for line in yaml.lines().filter(|l| l.contains("rule:")) {
        assert!(
            !line.contains("self.namespace"),
            "unescaped `namespace` in {line}"
        );
    }
}
