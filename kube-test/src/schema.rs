//! CRD OpenAPI v3 schema handling: pruning, defaulting, structural validation
//! and `x-kubernetes-validations` (CEL, via kube-cel).
use crate::error::Cause;
use serde_json::Value;

pub enum SchemaError {
    Invalid(Vec<Cause>),
    UnknownFields(Vec<String>),
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn join(path: &str, f: &str) -> String {
    if path.is_empty() {
        f.to_string()
    } else {
        format!("{path}.{f}")
    }
}

/// Remove fields not declared in the schema (and nulls of non-nullable fields).
fn prune(v: &mut Value, s: &Value, path: &str, out: &mut Vec<String>, root: bool) {
    if s.get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true)
        && s.get("properties").is_none()
    {
        return;
    }
    match v {
        Value::Object(m) => {
            let props = s.get("properties").and_then(Value::as_object);
            let addl = s.get("additionalProperties");
            let preserve = s
                .get("x-kubernetes-preserve-unknown-fields")
                .and_then(Value::as_bool)
                == Some(true);
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                if root && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                let child_schema = props
                    .and_then(|p| p.get(&k))
                    .or_else(|| addl.filter(|a| a.is_object()));
                match child_schema {
                    Some(cs) => {
                        let c = m.get_mut(&k).unwrap();
                        if c.is_null() && cs.get("nullable").and_then(Value::as_bool) != Some(true)
                        {
                            m.remove(&k);
                            continue;
                        }
                        prune(c, cs, &join(path, &k), out, false);
                    }
                    None if addl == Some(&Value::Bool(true)) || preserve => {}
                    None => {
                        m.remove(&k);
                        out.push(join(path, &k));
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(is) = s.get("items") {
                for (i, it) in items.iter_mut().enumerate() {
                    prune(it, is, &format!("{path}[{i}]"), out, false);
                }
            }
        }
        _ => {}
    }
}

fn validate(v: &Value, s: &Value, path: &str, out: &mut Vec<Cause>, root: bool) {
    if v.is_null() && s.get("nullable").and_then(Value::as_bool) == Some(true) {
        return;
    }
    let int_or_string = s.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true);
    let tn = type_name(v);
    if int_or_string {
        if !matches!(tn, "integer" | "string") {
            out.push(Cause::new(path, "FieldValueTypeInvalid", format!("Invalid value: \"{tn}\": {path} in body must be of type integer,string: \"{tn}\"")));
            return;
        }
    } else if let Some(t) = s.get("type").and_then(Value::as_str) {
        let ok = match t {
            "number" => matches!(tn, "integer" | "number"),
            "integer" => tn == "integer" || v.as_f64().is_some_and(|f| f.fract() == 0.0),
            _ => t == tn,
        };
        if !ok {
            out.push(Cause::new(
                path,
                "FieldValueTypeInvalid",
                format!("Invalid value: \"{tn}\": {path} in body must be of type {t}: \"{tn}\""),
            ));
            return;
        }
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array)
        && !e.contains(v)
    {
        let allowed: Vec<String> = e.iter().map(|x| x.to_string()).collect();
        out.push(Cause::new(
            path,
            "FieldValueNotSupported",
            format!(
                "Unsupported value: {v}: supported values: {}",
                allowed.join(", ")
            ),
        ));
    }
    let num = |k: &str| s.get(k).and_then(Value::as_f64);
    match v {
        Value::String(st) => {
            let len = st.chars().count() as f64;
            if let Some(max) = num("maxLength")
                && len > max
            {
                out.push(Cause::new(
                    path,
                    "FieldValueTooLong",
                    format!("Too long: may not be more than {max} bytes"),
                ));
            }
            if let Some(min) = num("minLength")
                && len < min
            {
                out.push(Cause::new(
                    path,
                    "FieldValueInvalid",
                    format!(
                        "Invalid value: {v}: {path} in body should be at least {min} chars long"
                    ),
                ));
            }
            if let Some(p) = s.get("pattern").and_then(Value::as_str)
                && let Ok(re) = regex::Regex::new(p)
                && !re.is_match(st)
            {
                out.push(Cause::new(
                    path,
                    "FieldValueInvalid",
                    format!("Invalid value: {v}: {path} in body should match '{p}'"),
                ));
            }
        }
        Value::Number(n) => {
            let excl_max = s.get("exclusiveMaximum").and_then(Value::as_bool) == Some(true);
            let excl_min = s.get("exclusiveMinimum").and_then(Value::as_bool) == Some(true);
            if let Some(max) = s.get("maximum").and_then(Value::as_number)
                && let Some(ord) = compare_numbers(n, max)
                && (ord.is_gt() || (excl_max && ord.is_eq()))
            {
                let rel = if excl_max {
                    "less than"
                } else {
                    "less than or equal to"
                };
                let max = max.as_f64().unwrap_or_default();
                out.push(Cause::new(
                    path,
                    "FieldValueInvalid",
                    format!("Invalid value: {v}: {path} in body should be {rel} {max}"),
                ));
            }
            if let Some(min) = s.get("minimum").and_then(Value::as_number)
                && let Some(ord) = compare_numbers(n, min)
                && (ord.is_lt() || (excl_min && ord.is_eq()))
            {
                let rel = if excl_min {
                    "greater than"
                } else {
                    "greater than or equal to"
                };
                let min = min.as_f64().unwrap_or_default();
                out.push(Cause::new(
                    path,
                    "FieldValueInvalid",
                    format!("Invalid value: {v}: {path} in body should be {rel} {min}"),
                ));
            }
            let f = n.as_f64().unwrap_or_default();
            if let Some(m) = num("multipleOf")
                && m != 0.0
                && (f / m).fract() != 0.0
            {
                out.push(Cause::new(
                    path,
                    "FieldValueInvalid",
                    format!("Invalid value: {v}: {path} in body should be a multiple of {m}"),
                ));
            }
        }
        Value::Array(items) => {
            let n = items.len() as f64;
            if let Some(max) = num("maxItems")
                && n > max
            {
                out.push(Cause::new(
                    path,
                    "FieldValueTooMany",
                    format!("Too many: {n}: must have at most {max} items"),
                ));
            }
            if let Some(min) = num("minItems")
                && n < min
            {
                out.push(Cause::new(
                    path,
                    "FieldValueInvalid",
                    format!("Invalid value: {n}: {path} in body should have at least {min} items"),
                ));
            }
            let list_type = s.get("x-kubernetes-list-type").and_then(Value::as_str);
            if s.get("uniqueItems").and_then(Value::as_bool) == Some(true)
                || list_type == Some("set")
            {
                for (i, it) in items.iter().enumerate() {
                    if items[..i].contains(it) {
                        out.push(Cause::new(
                            format!("{path}[{i}]"),
                            "FieldValueDuplicate",
                            format!("Duplicate value: {it}"),
                        ));
                    }
                }
            }
            if list_type == Some("map") {
                let keys: Vec<&str> = s
                    .get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                for (i, it) in items.iter().enumerate() {
                    let k: Vec<&Value> = keys
                        .iter()
                        .map(|k| it.get(*k).unwrap_or(&Value::Null))
                        .collect();
                    if items[..i].iter().any(|o| {
                        keys.iter()
                            .map(|k| o.get(*k).unwrap_or(&Value::Null))
                            .collect::<Vec<_>>()
                            == k
                    }) {
                        let shown: serde_json::Map<String, Value> = keys
                            .iter()
                            .zip(k.iter())
                            .filter(|(_, v)| !v.is_null())
                            .map(|(a, b)| (a.to_string(), (*b).clone()))
                            .collect();
                        out.push(Cause::new(
                            format!("{path}[{i}]"),
                            "FieldValueDuplicate",
                            format!("Duplicate value: {}", Value::Object(shown)),
                        ));
                    }
                }
            }
            if let Some(is) = s.get("items") {
                for (i, it) in items.iter().enumerate() {
                    validate(it, is, &format!("{path}[{i}]"), out, false);
                }
            }
        }
        Value::Object(m) => {
            let n = m.len() as f64;
            if let Some(max) = num("maxProperties")
                && n > max
            {
                out.push(Cause::new(
                    path,
                    "FieldValueTooMany",
                    format!("Too many: {n}: must have at most {max} items"),
                ));
            }
            if let Some(min) = num("minProperties")
                && n < min
            {
                out.push(Cause::new(
                    path,
                    "FieldValueInvalid",
                    format!(
                        "Invalid value: {n}: {path} in body should have at least {min} properties"
                    ),
                ));
            }
            if let Some(req) = s.get("required").and_then(Value::as_array) {
                for r in req.iter().filter_map(Value::as_str) {
                    if root && r == "metadata" {
                        continue;
                    }
                    if !m.contains_key(r) {
                        out.push(Cause::new(
                            join(path, r),
                            "FieldValueRequired",
                            "Required value",
                        ));
                    }
                }
            }
            let props = s.get("properties").and_then(Value::as_object);
            for (k, c) in m {
                if root && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                if let Some(cs) = props.and_then(|p| p.get(k)) {
                    validate(c, cs, &join(path, k), out, false);
                } else if let Some(a) = s.get("additionalProperties").filter(|a| a.is_object()) {
                    validate(c, a, &join(path, k), out, false);
                }
            }
        }
        _ => {}
    }
    for sub in s
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        validate(v, sub, path, out, root);
    }
}

/// Order two JSON numbers exactly. Integers beyond 2^53 lose precision as
/// f64 (9007199254740993 would equal a `maximum` of 9007199254740992), so a
/// bound that is a whole number is compared to an integer value as an
/// integer, as the real server does.
fn compare_numbers(a: &serde_json::Number, b: &serde_json::Number) -> Option<std::cmp::Ordering> {
    fn exact(n: &serde_json::Number) -> Option<i128> {
        if let Some(i) = n.as_i64() {
            return Some(i128::from(i));
        }
        if let Some(u) = n.as_u64() {
            return Some(i128::from(u));
        }
        // a whole f64 of this size converts to i128 without loss
        let f = n.as_f64()?;
        (f.fract() == 0.0 && f.abs() < 1.0e38).then_some(f as i128)
    }
    let integer = a.is_i64() || a.is_u64();
    match (exact(a), exact(b)) {
        (Some(x), Some(y)) if integer => Some(x.cmp(&y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

/// A failed `x-kubernetes-validations` rule as the real server reports it:
/// the rule's message without the value (v1.36 omits it), and `<nil>` as the
/// field of a rule on the root of the schema.
fn cel_cause(e: &kube_cel::ValidationError) -> Cause {
    let field = match e.field_path.trim_start_matches('.') {
        "" => "<nil>".to_string(),
        f => f.to_string(),
    };
    let (reason, prefix) = match e.reason.as_deref() {
        Some("FieldValueForbidden") => ("FieldValueForbidden", "Forbidden"),
        Some("FieldValueRequired") => ("FieldValueRequired", "Required value"),
        Some("FieldValueDuplicate") => ("FieldValueDuplicate", "Duplicate value"),
        _ => ("FieldValueInvalid", "Invalid value"),
    };
    Cause::new(field, reason, format!("{prefix}: {}", e.message))
}

/// Prune, default and validate a custom resource. Returns the object to store.
pub fn admit(
    validator: &kube_cel::Validator,
    schema: &Value,
    obj: &Value,
    old: Option<&Value>,
    ctx: &kube_cel::RootContext,
    strict: bool,
) -> Result<Value, SchemaError> {
    let mut o = obj.clone();
    let mut unknown = vec![];
    prune(&mut o, schema, "", &mut unknown, true);
    if strict && !unknown.is_empty() {
        return Err(SchemaError::UnknownFields(unknown));
    }
    let metadata = o.get("metadata").cloned();
    let mut o = kube_cel::apply_defaults(schema, &o);
    if let Some(m) = metadata {
        o["metadata"] = m;
    }
    let mut ignored = vec![];
    prune(&mut o, schema, "", &mut ignored, true);
    let mut causes = vec![];
    validate(&o, schema, "", &mut causes, true);
    // The real server checks list-type uniqueness in a pass of its own after
    // the OpenAPI validation. Errors of the kinds that would make CEL cost
    // estimates or types wrong (type, enum, required, too long, too many)
    // keep the CEL rules from running; value errors (bounds, patterns) and
    // duplicates do not.
    let (duplicates, schema_errors): (Vec<Cause>, Vec<Cause>) = causes
        .into_iter()
        .partition(|c| c.reason == "FieldValueDuplicate");
    let blocked = schema_errors.iter().any(|c| {
        matches!(
            c.reason.as_str(),
            "FieldValueTypeInvalid"
                | "FieldValueNotSupported"
                | "FieldValueRequired"
                | "FieldValueTooLong"
                | "FieldValueTooMany"
        )
    });
    let mut causes = schema_errors;
    causes.extend(duplicates);
    if blocked {
        causes.push(Cause::new(
            "<nil>",
            "FieldValueInvalid",
            "Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation",
        ));
    } else if let Err(errs) = validator.validate_with_context(schema, &o, old, Some(ctx)) {
        causes.extend(errs.into_iter().map(|e| cel_cause(&e)));
    }
    if causes.is_empty() {
        Ok(o)
    } else {
        Err(SchemaError::Invalid(causes))
    }
}
