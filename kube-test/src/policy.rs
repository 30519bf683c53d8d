//! ValidatingAdmissionPolicies: every binding whose `validationActions` include `Deny`, with
//! its policy, is matched against a write (operation, `matchConstraints` and the binding's
//! `matchResources`: resource rules and exclusions, namespace and object selectors), its
//! `matchConditions` decide whether it applies, and its `validations` are evaluated with
//! the Kubernetes CEL libraries of kube-cel over `object`, `oldObject`, `request` and
//! `namespaceObject`. The first failing
//! validation refuses the request with the real server's message:
//! `ValidatingAdmissionPolicy 'P' with binding 'B' denied request: MESSAGE`, as a 403 for
//! `reason: Forbidden` and a 422 otherwise (the default reason is `Invalid`).
//!
//! Not evaluated: `paramKind`/`paramRef` (a policy with params is skipped), `variables`,
//! `auditAnnotations`, and the `Warn` and `Audit` actions.

use std::collections::HashMap;
use std::sync::Arc;

use kube_cel::{KubeCelExt, cel};
use serde_json::{Value, json};

use crate::error::{ApiError, Cause};
use crate::rbac::label_selector_from_json;
use crate::resources::ResourceDef;
use crate::state::{State, UserInfo, meta};

/// One write as admission sees it.
pub struct Request<'a> {
    /// CREATE, UPDATE or DELETE.
    pub operation: &'a str,
    pub user: &'a UserInfo,
    pub def: &'a ResourceDef,
    pub subresource: Option<&'a str>,
    pub namespace: &'a str,
    pub name: &'a str,
    /// The object after the write (`None` for DELETE).
    pub object: Option<&'a Value>,
    /// The object before it (`None` for CREATE).
    pub old: Option<&'a Value>,
    pub dry_run: bool,
}

const GROUP: &str = "admissionregistration.k8s.io";

/// Refuse `req` if a bound policy denies it.
pub fn admit(state: &State, req: &Request) -> Result<(), ApiError> {
    let Some(bindings) = state.objects.get(&(
        GROUP.to_string(),
        "validatingadmissionpolicybindings".to_string(),
    )) else {
        return Ok(());
    };
    for binding in bindings.values() {
        let spec = &binding["spec"];
        if !strs(&spec["validationActions"]).contains(&"Deny") {
            continue;
        }
        let policy_name = spec["policyName"].as_str().unwrap_or_default();
        let Some(policy) = state.get_obj(
            &(GROUP.to_string(), "validatingadmissionpolicies".to_string()),
            "",
            policy_name,
        ) else {
            continue;
        };
        let pspec = &policy["spec"];
        if pspec.get("paramKind").is_some_and(|p| !p.is_null()) {
            continue;
        }
        if !resources_match(state, &pspec["matchConstraints"], false, req) {
            continue;
        }
        if spec.get("matchResources").is_some_and(Value::is_object)
            && !resources_match(state, &spec["matchResources"], true, req)
        {
            continue;
        }
        let binding_name = meta(binding, "name").unwrap_or_default();
        let denied = |message: &str, reason: &str| {
            let text = format!(
                "ValidatingAdmissionPolicy '{policy_name}' with binding '{binding_name}' denied request: {message}"
            );
            refusal(req, &text, reason)
        };
        let ctx = context(state, req);
        let fail_open = pspec["failurePolicy"] == "Ignore";
        let mut applies = true;
        for c in pspec["matchConditions"].as_array().into_iter().flatten() {
            match evaluate(&ctx, c["expression"].as_str().unwrap_or_default()) {
                Outcome::True => {}
                // false: the policy does not apply to this request
                Outcome::False => applies = false,
                Outcome::Error(_) if fail_open => applies = false,
                Outcome::Error(e) => {
                    let text = format!("failed to evaluate match condition: {e}");
                    return Err(denied(&text, "Forbidden"));
                }
            }
        }
        if !applies {
            continue;
        }
        for v in pspec["validations"].as_array().into_iter().flatten() {
            let expression = v["expression"].as_str().unwrap_or_default();
            let message = match evaluate(&ctx, expression) {
                Outcome::True => continue,
                Outcome::Error(_) if fail_open => continue,
                Outcome::Error(e) => format!("expression '{expression}' resulted in error: {e}"),
                Outcome::False => v["messageExpression"]
                    .as_str()
                    .and_then(|m| match cel::Program::compile(m).ok()?.execute(&ctx) {
                        Ok(cel::Value::String(s)) => Some(s.to_string()),
                        _ => None,
                    })
                    .or_else(|| v["message"].as_str().map(String::from))
                    .unwrap_or_else(|| format!("failed expression: {expression}")),
            };
            let reason = v["reason"].as_str().unwrap_or("Invalid");
            return Err(denied(&message, reason));
        }
    }
    Ok(())
}

enum Outcome {
    True,
    False,
    Error(String),
}

fn evaluate(ctx: &cel::Context, expression: &str) -> Outcome {
    let program = match cel::Program::compile(expression) {
        Ok(p) => p,
        Err(e) => return Outcome::Error(e.to_string()),
    };
    match program.execute(ctx) {
        Ok(cel::Value::Bool(true)) => Outcome::True,
        Ok(cel::Value::Bool(false)) => Outcome::False,
        Ok(other) => Outcome::Error(format!("expected a bool, got {other:?}")),
        Err(e) => Outcome::Error(e.to_string()),
    }
}

/// JSON as CEL sees an object: map keys as they are (labels and annotations are read as
/// `object.metadata.labels['app.kubernetes.io/name']`). kube-cel's own evaluator escapes
/// every key (`__dot__`, `__slash__`), which a real server does only for schema property
/// names, so the variables are bound here.
fn to_cel(v: &Value) -> cel::Value {
    match v {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => cel::Value::Int(i),
            (None, Some(u)) => cel::Value::UInt(u),
            _ => cel::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => cel::Value::String(Arc::new(s.clone())),
        Value::Array(a) => cel::Value::List(Arc::new(a.iter().map(to_cel).collect())),
        Value::Object(o) => {
            let map: HashMap<cel::objects::Key, cel::Value> = o
                .iter()
                .map(|(k, v)| (cel::objects::Key::String(Arc::new(k.clone())), to_cel(v)))
                .collect();
            cel::Value::Map(cel::objects::Map { map: Arc::new(map) })
        }
    }
}

/// `object`, `oldObject` (null on CREATE), `request` and, for namespaced objects,
/// `namespaceObject`, with the Kubernetes CEL libraries.
fn context(state: &State, req: &Request) -> cel::Context<'static> {
    let def = req.def;
    let request = json!({
        "operation": req.operation,
        "name": req.name,
        "namespace": req.namespace,
        "dryRun": req.dry_run,
        "kind": {"group": def.group, "version": def.version, "kind": def.kind},
        "resource": {"group": def.group, "version": def.version, "resource": def.plural},
        "subResource": req.subresource.unwrap_or_default(),
        "userInfo": {"username": req.user.username, "uid": req.user.uid, "groups": req.user.groups},
    });
    let mut ctx = cel::Context::default().with_all();
    let null = Value::Null;
    let mut bind = |name: &str, v: &Value| {
        ctx.add_variable_from_value(name, to_cel(v));
    };
    bind("object", req.object.unwrap_or(&null));
    bind("oldObject", req.old.unwrap_or(&null));
    bind("request", &request);
    if !req.namespace.is_empty()
        && let Some(ns) = state.get_obj(
            &(String::new(), "namespaces".to_string()),
            "",
            req.namespace,
        )
    {
        bind("namespaceObject", ns);
    }
    ctx
}

/// The refusal as the real server sends it for the validation's `reason`.
fn refusal(req: &Request, message: &str, reason: &str) -> ApiError {
    let (group, plural, name) = (&req.def.group, &req.def.plural, req.name);
    match reason {
        "Forbidden" => ApiError::forbidden(group, plural, name, message),
        "Unauthorized" => ApiError::new(401, "Unauthorized", message),
        "RequestEntityTooLarge" => ApiError::new(413, "RequestEntityTooLarge", message),
        _ => ApiError::invalid(
            &req.def.kind,
            group,
            name,
            vec![Cause::new("", "FieldValueInvalid", message)],
        ),
    }
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Whether `m` (a policy's `matchConstraints` or a binding's `matchResources`) selects `req`.
fn resources_match(state: &State, m: &Value, binding: bool, req: &Request) -> bool {
    let rules_match = |rules: &Value| {
        rules
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| rule_matches(r, req))
    };
    // A policy must list its rules; a binding without any narrows nothing by resource.
    let unconstrained = binding && m["resourceRules"].as_array().is_none_or(Vec::is_empty);
    if !(unconstrained || rules_match(&m["resourceRules"]))
        || rules_match(&m["excludeResourceRules"])
    {
        return false;
    }
    if let Some(sel) = m.get("namespaceSelector").filter(|s| s.is_object()) {
        let sel = label_selector_from_json(sel);
        let is_namespace = req.def.group.is_empty() && req.def.kind == "Namespace";
        let ok = if is_namespace {
            req.object.or(req.old).is_some_and(|o| sel.matches(o))
        } else if req.def.namespaced {
            state
                .get_obj(
                    &(String::new(), "namespaces".to_string()),
                    "",
                    req.namespace,
                )
                .is_some_and(|ns| sel.matches(ns))
        } else {
            true
        };
        if !ok {
            return false;
        }
    }
    if let Some(sel) = m.get("objectSelector").filter(|s| s.is_object()) {
        let sel = label_selector_from_json(sel);
        if ![req.object, req.old]
            .into_iter()
            .flatten()
            .any(|o| sel.matches(o))
        {
            return false;
        }
    }
    true
}

fn rule_matches(rule: &Value, req: &Request) -> bool {
    let any = |k: &str, x: &str| strs(&rule[k]).iter().any(|v| *v == "*" || *v == x);
    if !any("operations", req.operation)
        || !any("apiGroups", &req.def.group)
        || !any("apiVersions", &req.def.version)
    {
        return false;
    }
    let scope = rule["scope"].as_str().unwrap_or("*");
    let scope_ok = match scope {
        "Cluster" => !req.def.namespaced,
        "Namespaced" => req.def.namespaced,
        _ => true,
    };
    let plural = req.def.plural.as_str();
    let resource_ok =
        strs(&rule["resources"])
            .iter()
            .any(|r| match (req.subresource, r.split_once('/')) {
                (None, None) => *r == "*" || *r == plural,
                (Some(sub), Some((res, s))) => {
                    (res == "*" || res == plural) && (s == "*" || s == sub)
                }
                _ => false,
            });
    scope_ok && resource_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Label and annotation keys are read as they are, as on a real server.
    #[test]
    fn map_keys_are_not_escaped() {
        let mut ctx = cel::Context::default().with_all();
        let object = json!({"metadata": {"labels": {"landlord.dev/tenant": "acme"}}});
        ctx.add_variable_from_value("object", to_cel(&object));
        ctx.add_variable_from_value("oldObject", to_cel(&Value::Null));
        for (expression, want) in [
            ("'landlord.dev/tenant' in object.metadata.labels", true),
            (
                "object.metadata.labels['landlord.dev/tenant'] == 'acme'",
                true,
            ),
            (
                "object.metadata.labels.all(k, k.startsWith('landlord.dev/'))",
                true,
            ),
            ("oldObject == null", true),
            ("has(object.metadata.annotations)", false),
        ] {
            let got = matches!(evaluate(&ctx, expression), Outcome::True);
            assert_eq!(got, want, "{expression}");
        }
        assert!(matches!(evaluate(&ctx, "object.nope.x"), Outcome::Error(_)));
    }
}
