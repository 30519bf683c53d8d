//! ValidatingAdmissionPolicies: every binding whose `validationActions` include `Deny`, with
//! its policy, is matched against a write (operation, `matchConstraints` and the binding's
//! `matchResources`: resource rules and exclusions, namespace and object selectors), its
//! `matchConditions` decide whether it applies, and its `validations` are evaluated with
//! kube-cel over `object`, `oldObject`, `request` and `namespaceObject`. The first failing
//! validation refuses the request with the real server's message:
//! `ValidatingAdmissionPolicy 'P' with binding 'B' denied request: MESSAGE`, as a 403 for
//! `reason: Forbidden` and a 422 otherwise (the default reason is `Invalid`).
//!
//! Not evaluated: `paramKind`/`paramRef` (a policy with params is skipped), `variables`,
//! `auditAnnotations`, and the `Warn` and `Audit` actions.

use kube_cel::{
    AdmissionRequest, GroupVersionKind, GroupVersionResource, VapEvaluator, VapExpression,
};
use serde_json::Value;

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
        let evaluator = evaluator(state, req);
        let fail_open = pspec["failurePolicy"] == "Ignore";
        let conditions: Vec<VapExpression> = pspec["matchConditions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| expression(c["expression"].as_str(), None, None))
            .collect();
        let mut applies = true;
        for (c, result) in conditions.iter().zip(evaluator.evaluate(&conditions)) {
            if result.passed {
                continue;
            }
            let message = result.message.unwrap_or_default();
            if !errored(&message) {
                applies = false; // false: the policy does not apply to this request
            } else if fail_open {
                tracing::debug!(expression = %c.expression, error = %message, "match condition failed");
                applies = false;
            } else {
                let text = format!("failed to evaluate match condition: {message}");
                return Err(denied(&text, "Forbidden"));
            }
        }
        if !applies {
            continue;
        }
        let validations: Vec<&Value> = pspec["validations"]
            .as_array()
            .into_iter()
            .flatten()
            .collect();
        let expressions: Vec<VapExpression> = validations
            .iter()
            .map(|v| {
                expression(
                    v["expression"].as_str(),
                    v["message"].as_str(),
                    v["messageExpression"].as_str(),
                )
            })
            .collect();
        for (v, result) in validations.iter().zip(evaluator.evaluate(&expressions)) {
            if result.passed {
                continue;
            }
            let message = result.message.unwrap_or_default();
            if errored(&message) && fail_open {
                continue;
            }
            let reason = v["reason"].as_str().unwrap_or("Invalid");
            return Err(denied(&message, reason));
        }
    }
    Ok(())
}

/// kube-cel reports a false expression as "validation expression '…' evaluated to false"
/// (when it has no message) or by its message; anything else is an error.
fn errored(message: &str) -> bool {
    [
        "evaluation error",
        "expression returned",
        "failed to compile",
    ]
    .iter()
    .any(|p| message.starts_with(p))
}

fn expression(
    e: Option<&str>,
    message: Option<&str>,
    message_expression: Option<&str>,
) -> VapExpression {
    VapExpression {
        expression: e.unwrap_or_default().to_string(),
        message: message.map(String::from),
        message_expression: message_expression.map(String::from),
    }
}

fn evaluator(state: &State, req: &Request) -> VapEvaluator {
    let request = AdmissionRequest {
        operation: req.operation.to_string(),
        username: req.user.username.clone(),
        uid: req.user.uid.clone(),
        groups: req.user.groups.clone(),
        name: req.name.to_string(),
        namespace: req.namespace.to_string(),
        dry_run: req.dry_run,
        kind: GroupVersionKind {
            group: req.def.group.clone(),
            version: req.def.version.clone(),
            kind: req.def.kind.clone(),
        },
        resource: GroupVersionResource {
            group: req.def.group.clone(),
            version: req.def.version.clone(),
            resource: req.def.plural.clone(),
        },
    };
    let mut builder = VapEvaluator::builder()
        .object(req.object.cloned().unwrap_or(Value::Null))
        .request(request);
    if let Some(old) = req.old {
        builder = builder.old_object(old.clone());
    }
    if !req.namespace.is_empty()
        && let Some(ns) = state.get_obj(
            &(String::new(), "namespaces".to_string()),
            "",
            req.namespace,
        )
    {
        builder = builder.namespace_object(ns.clone());
    }
    builder.build()
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
