//! HTTP routing and request handling.
use crate::error::ApiError;
use crate::resources::ResourceDef;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::state::{
    API_AUDIENCE, DeleteOpts, Event, State, UserInfo, WatchFilter, Watcher, WriteOpts, meta, now_ts,
};
use crate::{Shared, rbac};
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::response::Response;
use http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

fn json_response(code: u16, v: &Value) -> Response {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(v).unwrap()))
        .unwrap()
}

fn err_response(e: &ApiError) -> Response {
    json_response(e.code, &e.to_status())
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
                {
                    Ok(x) => {
                        out.push(x);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    q.unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (pct_decode(k), pct_decode(v)),
            None => (pct_decode(p), String::new()),
        })
        .collect()
}

fn truthy(v: Option<&String>) -> bool {
    matches!(v.map(String::as_str), Some("true") | Some("1"))
}

fn version_info() -> Value {
    json!({
        "major": "1", "minor": "33", "gitVersion": "v1.33.0-kube-test", "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.24.0", "compiler": "gc",
        "platform": "linux/amd64",
    })
}

fn groups(state: &State) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = vec![];
    for d in &state.defs {
        if d.group.is_empty() {
            continue;
        }
        match out.iter_mut().find(|(g, _)| *g == d.group) {
            Some((_, vs)) => {
                if !vs.contains(&d.version) {
                    if d.preferred {
                        vs.insert(0, d.version.clone())
                    } else {
                        vs.push(d.version.clone())
                    }
                }
            }
            None => out.push((d.group.clone(), vec![d.version.clone()])),
        }
    }
    out
}

fn api_group_json(g: &str, vs: &[String]) -> Value {
    let versions: Vec<Value> = vs
        .iter()
        .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
        .collect();
    json!({"name": g, "versions": versions, "preferredVersion": versions[0]})
}

fn resource_list(state: &State, group: &str, version: &str) -> Option<Value> {
    let defs: Vec<&ResourceDef> = state
        .defs
        .iter()
        .filter(|d| d.group == group && d.version == version)
        .collect();
    if defs.is_empty() {
        return None;
    }
    let mut resources = vec![];
    for d in defs {
        let mut r = json!({
            "name": d.plural, "singularName": d.singular, "namespaced": d.namespaced, "kind": d.kind, "verbs": d.verbs,
        });
        if !d.short_names.is_empty() {
            r["shortNames"] = json!(d.short_names);
        }
        if !d.categories.is_empty() {
            r["categories"] = json!(d.categories);
        }
        if d.crd.is_some() {
            r["storageVersionHash"] = json!(format!("{:x}", d.kind.len() * 7919 + d.plural.len()));
        }
        resources.push(r);
        if d.status_subresource {
            resources.push(json!({"name": format!("{}/status", d.plural), "singularName": "", "namespaced": d.namespaced, "kind": d.kind, "verbs": ["get", "patch", "update"]}));
        }
        if d.scale.is_some() {
            resources.push(json!({"name": format!("{}/scale", d.plural), "singularName": "", "namespaced": d.namespaced, "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}));
        }
        if d.plural == "serviceaccounts" && d.group.is_empty() {
            resources.push(json!({"name": "serviceaccounts/token", "singularName": "", "namespaced": true, "group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest", "verbs": ["create"]}));
        }
        if d.plural == "namespaces" && d.group.is_empty() {
            resources.push(json!({"name": "namespaces/finalize", "singularName": "", "namespaced": false, "kind": "Namespace", "verbs": ["update"]}));
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

fn gv_defs<'a>(state: &'a State, group: &str, version: &str) -> Vec<&'a ResourceDef> {
    state
        .defs
        .iter()
        .filter(|d| d.group == group && d.version == version)
        .collect()
}

fn gv_hash(defs: &[&ResourceDef]) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for d in defs {
        (&d.kind, &d.plural, d.namespaced, d.status_subresource).hash(&mut h);
        if let Some(c) = &d.crd {
            c.schema.as_ref().map(|s| s.to_string()).hash(&mut h);
        }
    }
    format!("{:016X}", h.finish())
}

/// OpenAPI v3 discovery root: kubectl uses it to learn that the server does
/// field validation (the `fieldValidation` parameter of PATCH operations).
fn openapi_root(state: &State) -> Value {
    let mut paths = serde_json::Map::new();
    let mut gvs: Vec<(String, String)> = vec![];
    for d in &state.defs {
        let gv = (d.group.clone(), d.version.clone());
        if !gvs.contains(&gv) {
            gvs.push(gv);
        }
    }
    for (g, v) in gvs {
        let key = if g.is_empty() {
            format!("api/{v}")
        } else {
            format!("apis/{g}/{v}")
        };
        let hash = gv_hash(&gv_defs(state, &g, &v));
        paths.insert(
            key.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={hash}")}),
        );
    }
    json!({"paths": paths})
}

fn openapi_gv(state: &State, group: &str, version: &str) -> Option<Value> {
    let defs = gv_defs(state, group, version);
    if defs.is_empty() {
        return None;
    }
    let prefix = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    let param = |n: &str| json!({"name": n, "in": "query", "schema": {"type": "string", "uniqueItems": true}});
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    for d in defs {
        let gvk = json!({"group": d.group, "version": d.version, "kind": d.kind});
        let item = if d.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", d.plural)
        } else {
            format!("{prefix}/{}/{{name}}", d.plural)
        };
        let op = |action: &str| {
            json!({
                "x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": action,
                "parameters": [param("dryRun"), param("fieldManager"), param("fieldValidation"), param("force")],
                "responses": {"200": {"description": "OK"}},
            })
        };
        paths.insert(item, json!({"get": op("get"), "put": op("put"), "patch": op("patch"), "delete": op("delete")}));
        let mut schema = d
            .crd
            .as_ref()
            .and_then(|c| c.schema.clone())
            .unwrap_or(json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
        schema["x-kubernetes-group-version-kind"] = json!([gvk]);
        let sname = format!(
            "{}.{}.{}",
            if d.group.is_empty() {
                "io.k8s.api.core"
            } else {
                d.group.as_str()
            },
            d.version,
            d.kind
        );
        schemas.insert(sname, schema);
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

/// Parsed resource URL.
struct Target {
    group: String,
    version: String,
    ns: Option<String>,
    plural: String,
    name: Option<String>,
    sub: Option<String>,
}

fn parse_target(path: &str) -> Result<Option<Target>, ()> {
    let segs: Vec<String> = path.trim_matches('/').split('/').map(pct_decode).collect();
    let (group, version, rest) = match segs.first().map(String::as_str) {
        Some("api") if segs.len() >= 2 => (String::new(), segs[1].clone(), &segs[2..]),
        Some("apis") if segs.len() >= 3 => (segs[1].clone(), segs[2].clone(), &segs[3..]),
        _ => return Err(()),
    };
    if rest.is_empty() {
        return Ok(None);
    }
    let t = |ns: Option<String>, r: &[String]| Target {
        group: group.clone(),
        version: version.clone(),
        ns,
        plural: r[0].clone(),
        name: r.get(1).cloned(),
        sub: r.get(2).cloned(),
    };
    if rest[0] == "namespaces"
        && rest.len() >= 3
        && !(rest.len() == 3 && matches!(rest[2].as_str(), "status" | "finalize"))
    {
        if rest.len() > 5 {
            return Err(());
        }
        return Ok(Some(t(Some(rest[1].clone()), &rest[2..])));
    }
    if rest.len() > 3 {
        return Err(());
    }
    Ok(Some(t(None, rest)))
}

fn not_found_path() -> ApiError {
    ApiError::new(
        404,
        "NotFound",
        "the server could not find the requested resource",
    )
    .with_details(json!({}))
}

pub async fn handle(shared: Arc<Shared>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = parse_query(req.uri().query());
    let headers = req.headers().clone();
    let body = match axum::body::to_bytes(req.into_body(), 256 << 20).await {
        Ok(b) => b,
        Err(e) => return err_response(&ApiError::bad_request(format!("reading body: {e}"))),
    };
    match path.as_str() {
        "/version" | "/version/" => return json_response(200, &version_info()),
        "/healthz" | "/livez" | "/readyz" => {
            return Response::builder()
                .status(200)
                .header("content-type", "text/plain")
                .body(Body::from("ok"))
                .unwrap();
        }
        "/api" | "/api/" => {
            return json_response(
                200,
                &json!({"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": shared.addr.to_string()}]}),
            );
        }
        "/apis" | "/apis/" => {
            let s = shared.state.lock().unwrap();
            let gs: Vec<Value> = groups(&s)
                .iter()
                .map(|(g, vs)| api_group_json(g, vs))
                .collect();
            return json_response(
                200,
                &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": gs}),
            );
        }
        _ => {}
    }
    if path == "/openapi/v3" || path == "/openapi/v3/" {
        let s = shared.state.lock().unwrap();
        return json_response(200, &openapi_root(&s));
    }
    if let Some(gv) = path.strip_prefix("/openapi/v3/") {
        let (g, v) = match gv.trim_matches('/').split('/').collect::<Vec<_>>()[..] {
            ["api", v] => (String::new(), v.to_string()),
            ["apis", g, v] => (g.to_string(), v.to_string()),
            _ => return err_response(&not_found_path()),
        };
        let s = shared.state.lock().unwrap();
        return match openapi_gv(&s, &g, &v) {
            Some(doc) => json_response(200, &doc),
            None => err_response(&not_found_path()),
        };
    }
    if let Some(rest) = path.strip_prefix("/kube-test/") {
        return crate::admin_http(&shared, &method, rest, &body);
    }
    if path.starts_with("/apis/") && path.trim_matches('/').split('/').count() == 2 {
        let g = path
            .trim_matches('/')
            .split('/')
            .nth(1)
            .unwrap_or_default()
            .to_string();
        let s = shared.state.lock().unwrap();
        return match groups(&s).into_iter().find(|(x, _)| *x == g) {
            Some((g, vs)) => {
                let mut v = api_group_json(&g, &vs);
                v["kind"] = json!("APIGroup");
                v["apiVersion"] = json!("v1");
                json_response(200, &v)
            }
            None => err_response(&not_found_path()),
        };
    }
    let target = match parse_target(&path) {
        Ok(Some(t)) => t,
        Ok(None) => {
            let (g, v) = if let Some(v) = path.strip_prefix("/api/") {
                (String::new(), v.trim_matches('/').to_string())
            } else {
                let p: Vec<&str> = path.trim_matches('/').split('/').collect();
                (p[1].to_string(), p[2].to_string())
            };
            let s = shared.state.lock().unwrap();
            return match resource_list(&s, &g, &v) {
                Some(l) => json_response(200, &l),
                None => err_response(&not_found_path()),
            };
        }
        Err(()) => return err_response(&not_found_path()),
    };
    resource_request(shared, method, target, query, headers, body).await
}

fn sa_groups(ns: &str) -> Vec<String> {
    vec![
        "system:serviceaccounts".into(),
        format!("system:serviceaccounts:{ns}"),
        "system:authenticated".into(),
    ]
}

/// Who is asking: bearer token (401 if unknown), else anonymous; then impersonation.
fn authenticate(shared: &Shared, headers: &HeaderMap) -> Result<UserInfo, ApiError> {
    let unauthorized = || ApiError::new(401, "Unauthorized", "Unauthorized");
    let s = shared.state.lock().unwrap();
    let base = match headers.get("authorization").and_then(|v| v.to_str().ok()) {
        Some(auth) => {
            let tok = auth
                .strip_prefix("Bearer ")
                .ok_or_else(unauthorized)?
                .trim();
            let u = s.tokens.get(tok).cloned().ok_or_else(unauthorized)?;
            if let Some((ns, name, uid)) = &u.sa {
                let alive = s
                    .get_obj(&("".into(), "serviceaccounts".into()), ns, name)
                    .is_some_and(|sa| meta(sa, "uid") == Some(uid.as_str()));
                if !alive {
                    return Err(unauthorized());
                }
            }
            // a bound token must be meant for the API server and unexpired
            if u.valid_for(&[API_AUDIENCE.to_string()]).is_none() {
                return Err(unauthorized());
            }
            u
        }
        // kubectl does not send bearer tokens over plain HTTP, so requests
        // without credentials act as the admin user (a documented gap).
        None => s
            .tokens
            .get(&shared.admin_token)
            .cloned()
            .ok_or_else(unauthorized)?,
    };
    let Some(imp) = headers
        .get("impersonate-user")
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(base);
    };
    let groups: Vec<String> = headers
        .get_all("impersonate-group")
        .iter()
        .filter_map(|v| v.to_str().ok().map(String::from))
        .collect();
    let forbid = |what: &str, name: &str| {
        ApiError::new(
            403,
            "Forbidden",
            format!(
                "{what} \"{name}\" is forbidden: User \"{}\" cannot impersonate resource \"{what}\" in API group \"\" at the cluster scope",
                base.username
            ),
        )
    };
    let (user_attrs_res, user_ns, user_name, mut all_groups) = match imp
        .strip_prefix("system:serviceaccount:")
        .and_then(|r| r.split_once(':'))
    {
        Some((ns, n)) => (
            "serviceaccounts",
            ns.to_string(),
            n.to_string(),
            sa_groups(ns),
        ),
        None => ("users", String::new(), imp.to_string(), vec![]),
    };
    let ok = rbac::authorize(
        &s,
        &base,
        &rbac::Attrs {
            verb: "impersonate",
            group: "",
            resource: user_attrs_res,
            subresource: "",
            namespace: &user_ns,
            name: &user_name,
        },
    );
    if !ok {
        return Err(forbid(user_attrs_res, &user_name));
    }
    for g in &groups {
        if !rbac::authorize(
            &s,
            &base,
            &rbac::Attrs {
                verb: "impersonate",
                group: "",
                resource: "groups",
                subresource: "",
                namespace: "",
                name: g,
            },
        ) {
            return Err(forbid("groups", g));
        }
        if !all_groups.contains(g) {
            all_groups.push(g.clone());
        }
    }
    if !all_groups.iter().any(|g| g == "system:authenticated") && imp != "system:anonymous" {
        all_groups.push("system:authenticated".into());
    }
    Ok(UserInfo {
        username: imp.to_string(),
        uid: String::new(),
        groups: all_groups,
        sa: None,
        audiences: vec![],
        expires: None,
    })
}

/// SubjectAccessReview, SelfSubjectAccessReview, LocalSubjectAccessReview.
fn access_review(
    shared: &Shared,
    def: &ResourceDef,
    ns: &str,
    requester: &UserInfo,
    body: &[u8],
) -> Response {
    let req: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return err_response(&ApiError::bad_request(format!(
                "the body of the request could not be decoded: {e}"
            )));
        }
    };
    let spec = &req["spec"];
    let subject = if def.plural == "selfsubjectaccessreviews" {
        requester.clone()
    } else {
        let username = spec["user"].as_str().unwrap_or_default().to_string();
        let mut groups: Vec<String> = spec["groups"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        if let Some((sns, _)) = username
            .strip_prefix("system:serviceaccount:")
            .and_then(|r| r.split_once(':'))
        {
            for g in sa_groups(sns) {
                if !groups.contains(&g) {
                    groups.push(g);
                }
            }
        }
        UserInfo {
            username,
            uid: spec["uid"].as_str().unwrap_or_default().into(),
            groups,
            sa: None,
            audiences: vec![],
            expires: None,
        }
    };
    let s = shared.state.lock().unwrap();
    let allowed = if let Some(ra) = spec.get("resourceAttributes").filter(|v| v.is_object()) {
        let get = |k: &str| ra[k].as_str().unwrap_or_default().to_string();
        let target_ns = if def.plural == "localsubjectaccessreviews" {
            ns.to_string()
        } else {
            get("namespace")
        };
        let (verb, group, resource, sub, name) = (
            get("verb"),
            get("group"),
            get("resource"),
            get("subresource"),
            get("name"),
        );
        rbac::authorize(
            &s,
            &subject,
            &rbac::Attrs {
                verb: &verb,
                group: &group,
                resource: &resource,
                subresource: &sub,
                namespace: &target_ns,
                name: &name,
            },
        )
    } else {
        // non-resource URLs are open to everyone here
        true
    };
    let mut out = req.clone();
    out["apiVersion"] = json!("authorization.k8s.io/v1");
    out["kind"] = json!(def.kind);
    if !out.get("metadata").is_some_and(Value::is_object) {
        out["metadata"] = json!({});
    }
    out["metadata"]["creationTimestamp"] = Value::Null;
    out["status"] = if allowed {
        json!({"allowed": true, "reason": "RBAC: allowed"})
    } else {
        json!({"allowed": false})
    };
    json_response(201, &out)
}

fn default_manager(headers: &HeaderMap) -> String {
    let ua = headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown");
    ua.split('/')
        .next()
        .unwrap_or("unknown")
        .chars()
        .take(128)
        .collect()
}

async fn resource_request(
    shared: Arc<Shared>,
    method: Method,
    t: Target,
    q: HashMap<String, String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let user = match authenticate(&shared, &headers) {
        Ok(u) => u,
        Err(e) => return err_response(&e),
    };
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = if ct.contains("protobuf") && !body.is_empty() {
        match crate::proto::decode(&body) {
            Ok(v) => Bytes::from(serde_json::to_vec(&v).unwrap()),
            Err(e) => {
                return err_response(&ApiError::new(
                    415,
                    "UnsupportedMediaType",
                    format!(
                        "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml ({e})"
                    ),
                ));
            }
        }
    } else if ct.contains("cbor") {
        return err_response(&ApiError::new(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml",
        ));
    } else {
        body
    };
    let def = {
        let s = shared.state.lock().unwrap();
        s.find_def(&t.group, &t.version, &t.plural)
    };
    let Some(def) = def else {
        return err_response(&not_found_path());
    };
    if def.namespaced != t.ns.is_some() && !(def.namespaced && t.ns.is_none() && t.name.is_none()) {
        return err_response(&not_found_path());
    }
    let is_watch = truthy(q.get("watch"));
    let verb = match (&method, t.name.is_some(), is_watch) {
        (&Method::GET, _, true) => "watch",
        (&Method::GET, true, _) => "get",
        (&Method::GET, false, _) => "list",
        (&Method::POST, _, _) => "create",
        (&Method::PUT, _, _) => "update",
        (&Method::PATCH, _, _) => "patch",
        (&Method::DELETE, true, _) => "delete",
        (&Method::DELETE, false, _) => "deletecollection",
        _ => return err_response(&ApiError::method_not_allowed()),
    };
    let res_name = match &t.sub {
        Some(s) => format!("{}/{s}", def.plural),
        None => def.plural.clone(),
    };
    let ns = t.ns.clone().unwrap_or_default();
    let name = t.name.clone().unwrap_or_default();
    shared.hooks.record(verb, &res_name);
    if let Some((status, msg, latency)) = shared.hooks.fault(verb, &res_name, &ns, &name) {
        if let Some(l) = latency {
            tokio::time::sleep(l).await;
        }
        if let Some(code) = status {
            let reason = match code {
                400 => "BadRequest",
                401 => "Unauthorized",
                403 => "Forbidden",
                404 => "NotFound",
                409 => "Conflict",
                410 => "Gone",
                422 => "Invalid",
                429 => "TooManyRequests",
                503 => "ServiceUnavailable",
                504 => "Timeout",
                _ => "InternalError",
            };
            let m = msg.unwrap_or_else(|| format!("injected error ({code})"));
            let mut response = err_response(&ApiError::new(code, reason, m));
            if code == 429 {
                // As the API server's priority and fairness does: come back in a second.
                response
                    .headers_mut()
                    .insert("retry-after", http::HeaderValue::from_static("1"));
            }
            return response;
        }
    }
    {
        let attrs = rbac::Attrs {
            verb,
            group: &def.group,
            resource: &def.plural,
            subresource: t.sub.as_deref().unwrap_or_default(),
            namespace: &ns,
            name: &name,
        };
        let s = shared.state.lock().unwrap();
        if !rbac::authorize(&s, &user, &attrs) {
            let msg = rbac::forbidden_message(&user, &attrs);
            return err_response(
                &ApiError::new(403, "Forbidden", msg)
                    .with_details(json!({"name": name, "group": def.group, "kind": def.plural})),
            );
        }
    }
    if !def.verbs.iter().any(|v| v == verb) && t.sub.is_none() {
        return err_response(&ApiError::method_not_allowed());
    }
    match t.sub.as_deref() {
        None | Some("status") => {}
        Some("token") if def.plural == "serviceaccounts" && verb == "create" => {
            return token_request(&shared, &ns, &name, &body);
        }
        Some("finalize") if def.plural == "namespaces" && verb == "update" => {}
        Some("scale") if def.scale.is_some() && matches!(verb, "get" | "update" | "patch") => {
            return scale(&shared, &def, &ns, &name, verb, &headers, &body, &q);
        }
        Some(_) => return err_response(&not_found_path()),
    }
    if t.sub.as_deref() == Some("status") && !def.status_subresource {
        return err_response(&not_found_path());
    }
    if def.plural == "tokenreviews" && def.group == "authentication.k8s.io" {
        return token_review(&shared, &body);
    }
    if def.group == "authentication.k8s.io" && def.plural == "selfsubjectreviews" {
        return json_response(
            201,
            &json!({
                "kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"creationTimestamp": now_ts()},
                "status": {"userInfo": {"username": user.username, "uid": user.uid, "groups": user.groups}},
            }),
        );
    }
    if def.group == "authorization.k8s.io" {
        return access_review(&shared, &def, &ns, &user, &body);
    }
    let label = match q
        .get("labelSelector")
        .map(|s| LabelSelector::parse(s))
        .transpose()
    {
        Ok(l) => l.unwrap_or_default(),
        Err(e) => return err_response(&e),
    };
    let mut field = match q
        .get("fieldSelector")
        .map(|s| FieldSelector::parse(s, &def.kind))
        .transpose()
    {
        Ok(f) => f.unwrap_or_default(),
        Err(e) => return err_response(&e),
    };
    let as_meta = headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("as=PartialObjectMetadata"));
    let as_table = headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("as=Table"));
    let ns_opt = t.ns.as_deref();
    let opts = WriteOpts {
        manager: q.get("fieldManager").cloned().unwrap_or_else(|| {
            if method == Method::PATCH && is_apply(&headers) {
                String::new()
            } else {
                default_manager(&headers)
            }
        }),
        dry_run: q.get("dryRun").is_some_and(|v| v == "All"),
        strict: q.get("fieldValidation").is_some_and(|v| v == "Strict"),
        subresource: t.sub.clone(),
        keep_managed: false,
        user: Some(user.clone()),
    };
    let parse_body = || -> Result<Value, ApiError> {
        if body.is_empty() {
            return Err(ApiError::bad_request("the body of the request was empty"));
        }
        serde_json::from_slice(&body)
            .or_else(|_| serde_saphyr::from_slice::<Value>(&body).map_err(|e| e.to_string()))
            .map_err(|e| {
                ApiError::bad_request(format!("the body of the request could not be decoded: {e}"))
            })
    };
    match verb {
        "get" => {
            let s = shared.state.lock().unwrap();
            match s.get(&def, &ns, &name) {
                Ok(o) if as_table => {
                    let md = json!({"resourceVersion": meta(&o, "resourceVersion")});
                    json_response(
                        200,
                        &crate::table::to_table(
                            &def,
                            &[o],
                            md,
                            q.get("includeObject")
                                .map(String::as_str)
                                .unwrap_or("Metadata"),
                        ),
                    )
                }
                Ok(o) if as_meta => json_response(200, &partial(&o)),
                Ok(o) => json_response(200, &o),
                Err(e) => err_response(&e),
            }
        }
        "list" => {
            let s = shared.state.lock().unwrap();
            let mut items = s.list(&def, ns_opt, &label, &field);
            let rv = s.rv.to_string();
            drop(s);
            let mut md = json!({"resourceVersion": rv});
            if let Some(c) = q.get("continue").filter(|c| !c.is_empty()) {
                let Some(after) = decode_continue(c) else {
                    return err_response(&ApiError::bad_request("continue key is not valid"));
                };
                items.retain(|o| {
                    (
                        meta(o, "namespace").unwrap_or_default().to_string(),
                        meta(o, "name").unwrap_or_default().to_string(),
                    ) > after
                });
            }
            if let Some(limit) = q
                .get("limit")
                .and_then(|l| l.parse::<usize>().ok())
                .filter(|l| *l > 0)
                && items.len() > limit
            {
                let remaining = items.len() - limit;
                items.truncate(limit);
                let last = items.last().unwrap();
                md["continue"] = json!(encode_continue(
                    meta(last, "namespace").unwrap_or_default(),
                    meta(last, "name").unwrap_or_default()
                ));
                // a real server cannot count what a selector would filter
                if label.is_empty() && field.is_empty() {
                    md["remainingItemCount"] = json!(remaining);
                }
            }
            if as_table {
                return json_response(
                    200,
                    &crate::table::to_table(
                        &def,
                        &items,
                        md,
                        q.get("includeObject")
                            .map(String::as_str)
                            .unwrap_or("Metadata"),
                    ),
                );
            }
            json_response(
                200,
                &json!({"kind": format!("{}List", def.kind), "apiVersion": def.api_version(), "metadata": md, "items": items}),
            )
        }
        "watch" => {
            if let Some(n) = t.name.clone() {
                let extra = FieldSelector::parse(&format!("metadata.name={n}"), &def.kind)
                    .unwrap_or_default();
                field = merge_fields(field, extra);
            }
            watch(
                shared,
                def,
                ns_opt.map(String::from),
                label,
                field,
                q,
                if as_table {
                    View::Table
                } else if as_meta {
                    View::Meta
                } else {
                    View::Full
                },
            )
        }
        "create" => {
            let obj = match parse_body() {
                Ok(o) => o,
                Err(e) => return err_response(&e),
            };
            let mut s = shared.state.lock().unwrap();
            match s.create(&def, &ns, obj, &opts) {
                Ok(o) => json_response(201, &State::present(&def, &o)),
                Err(e) => err_response(&e),
            }
        }
        "update" => {
            let obj = match parse_body() {
                Ok(o) => o,
                Err(e) => return err_response(&e),
            };
            let mut s = shared.state.lock().unwrap();
            match s.replace(&def, &ns, &name, obj, &opts) {
                Ok(o) => json_response(200, &State::present(&def, &o)),
                Err(e) => err_response(&e),
            }
        }
        "patch" => {
            let ct = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let force = truthy(q.get("force"));
            if force && !ct.starts_with("application/apply-patch") {
                return err_response(&ApiError::bad_request(
                    "force is only allowed for apply patches",
                ));
            }
            let mut s = shared.state.lock().unwrap();
            match s.patch(&def, &ns, &name, &ct, &body, force, &opts) {
                Ok((o, created)) => {
                    json_response(if created { 201 } else { 200 }, &State::present(&def, &o))
                }
                Err(e) => err_response(&e),
            }
        }
        "delete" | "deletecollection" => {
            let b: Value = if body.is_empty() {
                json!({})
            } else {
                serde_json::from_slice(&body).unwrap_or(json!({}))
            };
            let mut dopts = DeleteOpts {
                propagation: b["propagationPolicy"]
                    .as_str()
                    .map(String::from)
                    .or_else(|| q.get("propagationPolicy").cloned()),
                uid: b
                    .pointer("/preconditions/uid")
                    .and_then(Value::as_str)
                    .map(String::from),
                rv: b
                    .pointer("/preconditions/resourceVersion")
                    .and_then(Value::as_str)
                    .map(String::from),
                dry_run: opts.dry_run
                    || b["dryRun"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|x| x == "All")),
                user: Some(user.clone()),
            };
            if dopts.propagation.is_none()
                && let Some(orphan) = b["orphanDependents"]
                    .as_bool()
                    .or_else(|| q.get("orphanDependents").map(|v| v == "true"))
            {
                dopts.propagation = Some(if orphan { "Orphan" } else { "Background" }.into());
            }
            let mut s = shared.state.lock().unwrap();
            if verb == "delete" {
                match s.delete(&def, &ns, &name, &dopts) {
                    Ok(o) => json_response(200, &o),
                    Err(e) => err_response(&e),
                }
            } else {
                match s.delete_collection(&def, ns_opt, &label, &field, &dopts) {
                    Ok(items) => json_response(
                        200,
                        &json!({"kind": format!("{}List", def.kind), "apiVersion": def.api_version(), "metadata": {"resourceVersion": s.rv.to_string()}, "items": items}),
                    ),
                    Err(e) => err_response(&e),
                }
            }
        }
        _ => err_response(&ApiError::method_not_allowed()),
    }
}

fn is_apply(headers: &HeaderMap) -> bool {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/apply-patch"))
}

fn merge_fields(a: FieldSelector, b: FieldSelector) -> FieldSelector {
    a.and(b)
}

fn encode_continue(ns: &str, name: &str) -> String {
    format!("{ns}\u{1}{name}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_continue(c: &str) -> Option<(String, String)> {
    if !c.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..c.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(c.get(i..i + 2)?, 16).ok())
        .collect();
    let s = String::from_utf8(bytes?).ok()?;
    let (a, b) = s.split_once('\u{1}')?;
    Some((a.to_string(), b.to_string()))
}

fn token_request(shared: &Shared, ns: &str, name: &str, body: &[u8]) -> Response {
    let req: Value = serde_json::from_slice(body).unwrap_or(json!({}));
    let mut s = shared.state.lock().unwrap();
    let Some(sa) = s
        .get_obj(&("".into(), "serviceaccounts".into()), ns, name)
        .cloned()
    else {
        return err_response(&ApiError::not_found("", "serviceaccounts", name));
    };
    let uid = meta(&sa, "uid").unwrap_or_default().to_string();
    let secs = req
        .pointer("/spec/expirationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(3600);
    if secs < 600 {
        return err_response(&ApiError::invalid(
            "TokenRequest",
            "authentication.k8s.io",
            name,
            vec![crate::error::Cause::new(
                "spec.expirationSeconds",
                "FieldValueInvalid",
                format!("Invalid value: {secs}: may not specify a duration less than 10 minutes"),
            )],
        ));
    }
    let audiences: Vec<String> = req
        .pointer("/spec/audiences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect::<Vec<_>>()
        })
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| vec![API_AUDIENCE.to_string()]);
    let bytes: [u8; 24] = rand::random();
    let token = format!(
        "kube-test.sa.{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    s.tokens.insert(
        token.clone(),
        UserInfo {
            username: format!("system:serviceaccount:{ns}:{name}"),
            uid: uid.clone(),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{ns}"),
                "system:authenticated".into(),
            ],
            sa: Some((ns.into(), name.into(), uid)),
            audiences: audiences.clone(),
            expires: Some(jiff::Timestamp::now().as_second() + secs),
        },
    );
    let exp = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(secs))
        .unwrap_or(jiff::Timestamp::now());
    let mut out = req.clone();
    out["apiVersion"] = json!("authentication.k8s.io/v1");
    out["kind"] = json!("TokenRequest");
    if !out.get("metadata").is_some_and(Value::is_object) {
        out["metadata"] = json!({});
    }
    out["metadata"]["name"] = json!(name);
    out["metadata"]["namespace"] = json!(ns);
    out["metadata"]["creationTimestamp"] = json!(now_ts());
    if out.get("spec").is_none() {
        out["spec"] = json!({});
    }
    out["spec"]["expirationSeconds"] = json!(secs);
    out["spec"]["audiences"] = json!(audiences);
    out["status"] = json!({"token": token, "expirationTimestamp": exp.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()});
    json_response(201, &out)
}

fn token_review(shared: &Shared, body: &[u8]) -> Response {
    let req: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return err_response(&ApiError::bad_request(format!(
                "the body of the request could not be decoded: {e}"
            )));
        }
    };
    let token = req
        .pointer("/spec/token")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let s = shared.state.lock().unwrap();
    let requested: Vec<String> = req
        .pointer("/spec/audiences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect::<Vec<_>>()
        })
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| vec![API_AUDIENCE.to_string()]);
    let user = s.tokens.get(&token).cloned().filter(|u| match &u.sa {
        Some((ns, name, uid)) => s
            .get_obj(&("".into(), "serviceaccounts".into()), ns, name)
            .is_some_and(|sa| meta(sa, "uid") == Some(uid.as_str())),
        None => true,
    });
    let mut out = req.clone();
    out["apiVersion"] = json!("authentication.k8s.io/v1");
    out["kind"] = json!("TokenReview");
    if !out.get("metadata").is_some_and(Value::is_object) {
        out["metadata"] = json!({});
    }
    out["metadata"]["creationTimestamp"] = Value::Null;
    out["status"] = match user.as_ref().map(|u| (u, u.valid_for(&requested))) {
        Some((u, Some(aud))) => {
            json!({"authenticated": true, "user": {"username": u.username, "uid": u.uid, "groups": u.groups}, "audiences": aud})
        }
        Some((_, None)) => {
            json!({"user": {}, "error": "[invalid bearer token, token audiences is invalid for the target audiences or the token has expired]"})
        }
        None if token.is_empty() => {
            json!({"authenticated": false, "user": {}, "error": "token is empty"})
        }
        None => json!({"user": {}, "error": "[invalid bearer token, token lookup failed]"}),
    };
    json_response(201, &out)
}

fn path_get<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.trim_start_matches('.')
        .split('.')
        .filter(|p| !p.is_empty())
        .try_fold(v, |cur, k| cur.get(k))
}

fn scale_object(def: &ResourceDef, o: &Value) -> Value {
    let (spec_path, status_path, sel_path) = def.scale.clone().unwrap_or_default();
    let selector = if def.crd.is_none() {
        // apps workloads have a label selector, ReplicationControllers a plain map
        o.pointer("/spec/selector/matchLabels")
            .or_else(|| o.pointer("/spec/selector").filter(|_| def.group.is_empty()))
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default()
    } else {
        sel_path
            .and_then(|p| path_get(o, &p).and_then(Value::as_str).map(String::from))
            .unwrap_or_default()
    };
    let mut status =
        json!({"replicas": path_get(o, &status_path).and_then(Value::as_i64).unwrap_or(0)});
    if !selector.is_empty() {
        status["selector"] = json!(selector);
    }
    json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": o["metadata"]["name"], "namespace": o["metadata"]["namespace"], "uid": o["metadata"]["uid"],
            "resourceVersion": o["metadata"]["resourceVersion"], "creationTimestamp": o["metadata"]["creationTimestamp"]},
        "spec": {"replicas": path_get(o, &spec_path).and_then(Value::as_i64).unwrap_or(0)},
        "status": status,
    })
}

/// The `scale` subresource (autoscaling/v1 Scale) of workloads and custom resources.
#[allow(clippy::too_many_arguments)]
fn scale(
    shared: &Shared,
    def: &ResourceDef,
    ns: &str,
    name: &str,
    verb: &str,
    headers: &HeaderMap,
    body: &[u8],
    q: &HashMap<String, String>,
) -> Response {
    let mut s = shared.state.lock().unwrap();
    let cur = match s.get(def, ns, name) {
        Ok(o) => o,
        Err(e) => return err_response(&e),
    };
    let current = scale_object(def, &cur);
    if verb == "get" {
        return json_response(200, &current);
    }
    let new_scale: Value = if verb == "update" {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                return err_response(&ApiError::bad_request(format!(
                    "the body of the request could not be decoded: {e}"
                )));
            }
        }
    } else {
        let ct = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let mut t = current.clone();
        if ct.starts_with("application/json-patch") {
            let p: json_patch::Patch = match serde_json::from_slice(body) {
                Ok(p) => p,
                Err(e) => {
                    return err_response(&ApiError::bad_request(format!(
                        "error decoding patch: {e}"
                    )));
                }
            };
            if let Err(e) = json_patch::patch(&mut t, &p) {
                return err_response(&ApiError::new(422, "Invalid", e.to_string()));
            }
        } else {
            let p: Value = match serde_json::from_slice::<Value>(body)
                .or_else(|_| serde_saphyr::from_slice::<Value>(body).map_err(|e| e.to_string()))
            {
                Ok(p) => p,
                Err(e) => {
                    return err_response(&ApiError::bad_request(format!(
                        "error decoding patch: {e}"
                    )));
                }
            };
            json_patch::merge(&mut t, &p);
        }
        t
    };
    let Some(replicas) = new_scale.pointer("/spec/replicas").and_then(Value::as_i64) else {
        return err_response(&ApiError::invalid(
            "Scale",
            "autoscaling",
            name,
            vec![crate::error::Cause::new(
                "spec.replicas",
                "FieldValueRequired",
                "Required value",
            )],
        ));
    };
    if replicas < 0 {
        return err_response(&ApiError::invalid(
            "Scale",
            "autoscaling",
            name,
            vec![crate::error::Cause::new(
                "spec.replicas",
                "FieldValueInvalid",
                format!("Invalid value: {replicas}: must be greater than or equal to 0"),
            )],
        ));
    }
    let (spec_path, _, _) = def.scale.clone().unwrap_or_default();
    let mut patch = json!(replicas);
    for k in spec_path
        .trim_start_matches('.')
        .split('.')
        .rev()
        .filter(|p| !p.is_empty())
    {
        patch = json!({k: patch});
    }
    if let Some(rv) = new_scale
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
    {
        patch["metadata"] = json!({"resourceVersion": rv});
    }
    let opts = WriteOpts {
        manager: q
            .get("fieldManager")
            .cloned()
            .unwrap_or_else(|| default_manager(headers)),
        subresource: None,
        ..Default::default()
    };
    match s.patch(
        def,
        ns,
        name,
        "application/merge-patch+json",
        &serde_json::to_vec(&patch).unwrap(),
        false,
        &opts,
    ) {
        Ok((o, _)) => json_response(200, &scale_object(def, &State::present(def, &o))),
        Err(e) => err_response(&e),
    }
}

/// How objects are rendered in responses.
#[derive(Clone, Copy, PartialEq)]
enum View {
    Full,
    Meta,
    Table,
}

fn partial(o: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]})
}

/// Serialise a watch event line for the given def.
fn event_line(def: &ResourceDef, etype: &str, obj: &Value, view: View) -> Bytes {
    let o = State::present(def, obj);
    let o = match view {
        View::Full => o,
        View::Meta => partial(&o),
        View::Table => {
            let md = json!({"resourceVersion": meta(&o, "resourceVersion")});
            crate::table::to_table(def, &[o], md, "Metadata")
        }
    };
    let mut v = serde_json::to_vec(&json!({"type": etype, "object": o})).unwrap();
    v.push(b'\n');
    Bytes::from(v)
}

fn bookmark_line(def: &ResourceDef, rv: u64, initial_end: bool) -> Bytes {
    let mut md = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        md["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    let mut v = serde_json::to_vec(&json!({"type": "BOOKMARK", "object": {"kind": def.kind, "apiVersion": def.api_version(), "metadata": md}})).unwrap();
    v.push(b'\n');
    Bytes::from(v)
}

struct WatchStream {
    initial: VecDeque<Bytes>,
    rx: Option<tokio::sync::mpsc::UnboundedReceiver<Arc<Event>>>,
    filter: WatchFilter,
    def: ResourceDef,
    deadline: tokio::time::Instant,
    bookmarks: bool,
    bookmark_interval: Duration,
    next_bookmark: tokio::time::Instant,
    last_rv: u64,
    view: View,
}

fn watch(
    shared: Arc<Shared>,
    def: ResourceDef,
    ns: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    q: HashMap<String, String>,
    view: View,
) -> Response {
    let filter = WatchFilter {
        gr: def.key(),
        ns: ns.clone(),
        labels,
        fields,
    };
    let send_initial = truthy(q.get("sendInitialEvents"));
    let bookmarks = truthy(q.get("allowWatchBookmarks"));
    let rv_param = q.get("resourceVersion").cloned().unwrap_or_default();
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(1800);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut initial = VecDeque::new();
    let mut s = shared.state.lock().unwrap();
    let current = s.rv;
    let add_all = |s: &State, initial: &mut VecDeque<Bytes>| {
        for o in s.list(&def, ns.as_deref(), &filter.labels, &filter.fields) {
            initial.push_back(event_line(&def, "ADDED", &o, view));
        }
    };
    if send_initial {
        if !bookmarks {
            return err_response(&ApiError::new(
                422,
                "Invalid",
                "allowWatchBookmarks: Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true",
            ));
        }
        if q.get("resourceVersionMatch").map(String::as_str) != Some("NotOlderThan") {
            return err_response(&ApiError::new(
                422,
                "Invalid",
                "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            ));
        }
        add_all(&s, &mut initial);
        if bookmarks {
            initial.push_back(bookmark_line(&def, current, true));
        }
    } else if rv_param.is_empty() || rv_param == "0" {
        add_all(&s, &mut initial);
    } else {
        let Ok(from) = rv_param.parse::<u64>() else {
            return err_response(&ApiError::bad_request(format!(
                "invalid resource version: {rv_param}"
            )));
        };
        if from < s.compacted_rv {
            let status = ApiError::gone(format!(
                "too old resource version: {from} ({})",
                s.compacted_rv + 1
            ))
            .to_status();
            let mut line = serde_json::to_vec(&json!({"type": "ERROR", "object": status})).unwrap();
            line.push(b'\n');
            return Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(Body::from(line))
                .unwrap();
        }
        for e in s.history.iter().filter(|e| e.rv > from) {
            if let Some((t, o)) = filter.view(e) {
                initial.push_back(event_line(&def, t, &o, view));
            }
        }
    }
    s.watchers.push(Watcher {
        filter: WatchFilter {
            gr: filter.gr.clone(),
            ns: filter.ns.clone(),
            labels: filter.labels.clone(),
            fields: filter.fields.clone(),
        },
        tx,
    });
    let interval = shared.bookmark_interval;
    drop(s);
    let now = tokio::time::Instant::now();
    let st = WatchStream {
        initial,
        rx: Some(rx),
        filter,
        def,
        deadline: now + Duration::from_secs(timeout),
        bookmarks,
        bookmark_interval: interval,
        next_bookmark: now + interval,
        last_rv: current,
        view,
    };
    let stream = futures::stream::unfold(st, |mut st| async move {
        if let Some(b) = st.initial.pop_front() {
            return Some((Ok::<Bytes, std::io::Error>(b), st));
        }
        loop {
            let rx = st.rx.as_mut()?;
            tokio::select! {
                ev = rx.recv() => {
                    let ev = ev?;
                    st.last_rv = st.last_rv.max(ev.rv);
                    if let Some((t, o)) = st.filter.view(&ev) {
                        let line = event_line(&st.def, t, &o, st.view);
                        return Some((Ok(line), st));
                    }
                }
                _ = tokio::time::sleep_until(st.deadline) => return None,
                _ = tokio::time::sleep_until(st.next_bookmark), if st.bookmarks => {
                    st.next_bookmark = tokio::time::Instant::now() + st.bookmark_interval;
                    let line = bookmark_line(&st.def, st.last_rv, false);
                    return Some((Ok(line), st));
                }
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header("transfer-encoding", "chunked")
        .body(Body::from_stream(stream))
        .unwrap()
}
