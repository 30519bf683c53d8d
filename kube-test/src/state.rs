//! The in-memory object store and all write semantics.
use crate::error::{ApiError, ApiResult, Cause};
use crate::fields::Ctx;
use crate::resources::{self, ResourceDef};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::ssa::{self, Scope};
use crate::{policy, quota, schema};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;

pub type GroupResource = (String, String);
pub type ObjKey = (String, String);

#[derive(Debug)]
pub struct Event {
    pub rv: u64,
    pub gr: GroupResource,
    pub ns: String,
    pub etype: &'static str,
    pub object: Arc<Value>,
    pub old: Option<Arc<Value>>,
}

pub struct WatchFilter {
    pub gr: GroupResource,
    pub ns: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl WatchFilter {
    fn obj_matches(&self, o: &Value) -> bool {
        self.labels.matches(o) && self.fields.matches(o)
    }
    /// Translate a store event into what this watcher sees (type, object), if anything.
    pub fn view(&self, e: &Event) -> Option<(&'static str, Arc<Value>)> {
        if e.gr != self.gr || self.ns.as_ref().is_some_and(|n| *n != e.ns) {
            return None;
        }
        let now = self.obj_matches(&e.object);
        match (e.etype, &e.old) {
            ("MODIFIED", Some(old)) => {
                let before = self.obj_matches(old);
                match (before, now) {
                    (true, true) => Some(("MODIFIED", e.object.clone())),
                    (true, false) => Some(("DELETED", e.object.clone())),
                    (false, true) => Some(("ADDED", e.object.clone())),
                    (false, false) => None,
                }
            }
            (t, _) => now.then(|| (t, e.object.clone())),
        }
    }
}

pub struct Watcher {
    pub filter: WatchFilter,
    pub tx: UnboundedSender<Arc<Event>>,
}

#[derive(Debug, Clone)]
pub struct UserInfo {
    pub username: String,
    pub uid: String,
    pub groups: Vec<String>,
    /// For service account tokens: (namespace, name, uid) that must still exist.
    pub sa: Option<(String, String, String)>,
    /// Audiences a bound token is valid for (empty: any, as for static tokens).
    pub audiences: Vec<String>,
    /// Unix time after which the token is invalid.
    pub expires: Option<i64>,
}

/// The API server's own audience.
pub const API_AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";

impl UserInfo {
    /// Valid now, and for one of `audiences`? Returns the matching audiences.
    pub fn valid_for(&self, audiences: &[String]) -> Option<Vec<String>> {
        if self
            .expires
            .is_some_and(|e| jiff::Timestamp::now().as_second() >= e)
        {
            return None;
        }
        if self.audiences.is_empty() {
            return Some(audiences.to_vec());
        }
        let both: Vec<String> = audiences
            .iter()
            .filter(|a| self.audiences.contains(a))
            .cloned()
            .collect();
        (!both.is_empty()).then_some(both)
    }
}

/// Options of a write request.
#[derive(Debug, Clone, Default)]
pub struct WriteOpts {
    pub manager: String,
    pub dry_run: bool,
    pub strict: bool,
    pub subresource: Option<String>,
    /// Keep the managedFields of the object (server-side apply computed them).
    pub keep_managed: bool,
    /// Who asks, for the admission checks that depend on it (RBAC escalation, Pod Security
    /// does not, ValidatingAdmissionPolicies); `None` for the server's own writes.
    pub user: Option<UserInfo>,
}

#[derive(Debug, Clone, Default)]
pub struct DeleteOpts {
    pub propagation: Option<String>,
    pub uid: Option<String>,
    pub rv: Option<String>,
    pub dry_run: bool,
    /// Who asks (ValidatingAdmissionPolicies); `None` for the server's own deletions
    /// (garbage collection, namespace termination), which admission does not see.
    pub user: Option<UserInfo>,
}

pub struct State {
    pub rv: u64,
    pub defs: Vec<ResourceDef>,
    /// Read freely; write only through `store` and `unstore`, which keep the indexes below.
    pub objects: BTreeMap<GroupResource, BTreeMap<ObjKey, Value>>,
    /// Objects with a `deletionTimestamp`: `sweep` visits only these, so a write does not
    /// cost a scan of the whole store.
    terminating: BTreeSet<(GroupResource, ObjKey)>,
    /// ownerReference uid → the objects that name it, for garbage collection.
    dependents: HashMap<String, BTreeSet<(GroupResource, ObjKey)>>,
    /// The uids of every stored object.
    uids: HashSet<String>,
    pub history: VecDeque<Arc<Event>>,
    pub history_limit: usize,
    pub compacted_rv: u64,
    pub watchers: Vec<Watcher>,
    pub tokens: HashMap<String, UserInfo>,
    pub validator: kube_cel::Validator,
}

pub fn now_ts() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

pub fn random_uid() -> String {
    let b: [u8; 16] = rand::random();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

fn random_suffix(n: usize) -> String {
    const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..n)
        .map(|_| ALPHA[rand::random_range(0..ALPHA.len())] as char)
        .collect()
}

pub fn meta<'a>(o: &'a Value, f: &str) -> Option<&'a str> {
    o.get("metadata")
        .and_then(|m| m.get(f))
        .and_then(Value::as_str)
}

fn meta_mut(o: &mut Value) -> &mut serde_json::Map<String, Value> {
    if !o.get("metadata").is_some_and(Value::is_object) {
        o["metadata"] = json!({});
    }
    o["metadata"].as_object_mut().unwrap()
}

/// The uids an object's ownerReferences name.
fn owner_uids(o: &Value) -> Vec<String> {
    o.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r["uid"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn finalizers(o: &Value) -> Vec<String> {
    o.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
                && !p.starts_with('-')
                && !p.ends_with('-')
        })
}

/// The real server's error for an invalid `metadata.name`: Namespaces and
/// Services need a DNS-1123 label, other kinds a DNS-1123 subdomain.
fn invalid_name_cause(name: &str, label: bool) -> Cause {
    let rule = if label {
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
    } else {
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    };
    Cause::new(
        "metadata.name",
        "FieldValueInvalid",
        format!("Invalid value: {name:?}: {rule}"),
    )
}

fn is_dns1123_label(s: &str) -> bool {
    s.len() <= 63 && !s.contains('.') && is_dns1123_subdomain(s)
}

const EVENT_FIELDS: [(&str, &str); 8] = [
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reportingComponent", "reportingController"),
    ("reportingInstance", "reportingInstance"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

/// core/v1 Event -> events.k8s.io/v1 Event.
pub fn core_event_to_v1(o: &Value) -> Value {
    let mut v = o.clone();
    if let Some(m) = v.as_object_mut() {
        for (core, v1) in EVENT_FIELDS {
            if let Some(x) = m.remove(core) {
                m.insert(v1.into(), x);
            }
        }
    }
    v
}

/// events.k8s.io/v1 Event -> core/v1 Event.
pub fn v1_event_to_core(o: &Value) -> Value {
    let mut v = o.clone();
    if let Some(m) = v.as_object_mut() {
        for (core, v1) in EVENT_FIELDS {
            if let Some(x) = m.remove(v1) {
                m.insert(core.into(), x);
            }
        }
        m.insert("apiVersion".into(), json!("v1"));
    }
    v
}

/// The parts of PodSpec validation that catch common mistakes.
fn validate_pod_spec(spec: &Value, path: &str) -> Vec<Cause> {
    let mut causes = vec![];
    let containers = spec
        .get("containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if containers.is_empty() {
        causes.push(Cause::new(
            format!("{path}.containers"),
            "FieldValueRequired",
            "Required value",
        ));
    }
    let mut names = vec![];
    for (field, list) in [
        ("containers", containers),
        (
            "initContainers",
            spec.get("initContainers")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        ),
    ] {
        for (i, c) in list.iter().enumerate() {
            let p = format!("{path}.{field}[{i}]");
            match c["name"].as_str() {
                Some(n) if is_dns1123_label(n) => {
                    if names.contains(&n.to_string()) {
                        causes.push(Cause::new(format!("{p}.name"), "FieldValueDuplicate", format!("Duplicate value: {n:?}")));
                    }
                    names.push(n.to_string());
                }
                Some(n) => causes.push(Cause::new(format!("{p}.name"), "FieldValueInvalid", format!("Invalid value: {n:?}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"))),
                None => causes.push(Cause::new(format!("{p}.name"), "FieldValueRequired", "Required value")),
            }
            if c["image"].as_str().is_none_or(|i| i.trim().is_empty()) {
                causes.push(Cause::new(
                    format!("{p}.image"),
                    "FieldValueRequired",
                    "Required value",
                ));
            }
        }
    }
    causes
}

fn is_qualified_name(k: &str) -> bool {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    prefix.is_none_or(is_dns1123_subdomain)
        && !name.is_empty()
        && name.len() <= 63
        && is_label_value(name)
}

fn is_label_value(v: &str) -> bool {
    v.len() <= 63
        && (v.is_empty()
            || (v
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
                && v.as_bytes()[0].is_ascii_alphanumeric()
                && v.as_bytes()[v.len() - 1].is_ascii_alphanumeric()))
}

/// ObjectMeta validation every kind gets: labels, annotations, finalizers,
/// owner references, immutable ConfigMaps/Secrets.
fn validate_metadata(obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = vec![];
    if let Some(labels) = obj.pointer("/metadata/labels").and_then(Value::as_object) {
        for (k, v) in labels {
            if !is_qualified_name(k) {
                causes.push(Cause::new("metadata.labels", "FieldValueInvalid", format!(
                    "Invalid value: {k:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")));
            }
            match v.as_str() {
                Some(s) if is_label_value(s) => {}
                _ => causes.push(Cause::new("metadata.labels", "FieldValueInvalid", format!(
                    "Invalid value: {v}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"))),
            }
        }
    }
    if let Some(ann) = obj
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
    {
        let mut total = 0;
        for (k, v) in ann {
            total += k.len() + v.as_str().map_or(0, str::len);
            if !is_qualified_name(&k.to_lowercase()) {
                causes.push(Cause::new("metadata.annotations", "FieldValueInvalid", format!("Invalid value: {k:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character")));
            }
            if !v.is_string() {
                causes.push(Cause::new(
                    format!("metadata.annotations.{k}"),
                    "FieldValueTypeInvalid",
                    "Invalid value: annotation values must be strings",
                ));
            }
        }
        if total > 256 * 1024 {
            causes.push(Cause::new(
                "metadata.annotations",
                "FieldValueTooLong",
                "Too long: must have at most 262144 bytes",
            ));
        }
    }
    if let Some(refs) = obj
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
    {
        for (i, r) in refs.iter().enumerate() {
            for f in ["apiVersion", "kind", "name", "uid"] {
                if r.get(f).and_then(Value::as_str).is_none_or(str::is_empty) {
                    causes.push(Cause::new(
                        format!("metadata.ownerReferences[{i}].{f}"),
                        "FieldValueRequired",
                        "Required value",
                    ));
                }
            }
        }
        if refs
            .iter()
            .filter(|r| r["controller"].as_bool() == Some(true))
            .count()
            > 1
        {
            causes.push(Cause::new(
                "metadata.ownerReferences",
                "FieldValueInvalid",
                "Invalid value: only one reference can have Controller set to true",
            ));
        }
    }
    if let Some(fins) = obj
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
    {
        for (i, f) in fins.iter().enumerate() {
            let ok = f.as_str().is_some_and(|s| {
                is_qualified_name(s)
                    && (s.contains('/')
                        || matches!(s, "kubernetes" | "orphan" | "foregroundDeletion"))
            });
            if !ok {
                causes.push(Cause::new(format!("metadata.finalizers[{i}]"), "FieldValueInvalid", format!("Invalid value: {f}: name is neither a standard finalizer name nor is it fully qualified")));
            }
        }
    }
    if let Some(old) = old
        && old["immutable"].as_bool() == Some(true)
    {
        for f in ["data", "binaryData", "stringData"] {
            if obj.get(f) != old.get(f) {
                causes.push(Cause::new(
                    f,
                    "FieldValueForbidden",
                    "Forbidden: field is immutable when `immutable` is set",
                ));
            }
        }
        if obj["immutable"].as_bool() != Some(true) {
            causes.push(Cause::new(
                "immutable",
                "FieldValueForbidden",
                "Forbidden: field is immutable when `immutable` is set",
            ));
        }
    }
    causes
}

/// Everything outside metadata (and status, when `skip_status`).
fn spec_part(o: &Value, skip_status: bool) -> Value {
    let mut v = o.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("apiVersion");
        m.remove("kind");
        if skip_status {
            m.remove("status");
        }
    }
    v
}

fn without_volatile(o: &Value) -> Value {
    let mut v = o.clone();
    if let Some(md) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        md.remove("resourceVersion");
        md.remove("managedFields");
    }
    v
}

impl State {
    pub fn new(history_limit: usize) -> Self {
        let mut s = State {
            rv: 1,
            defs: resources::builtins(),
            objects: BTreeMap::new(),
            terminating: BTreeSet::new(),
            dependents: HashMap::new(),
            uids: HashSet::new(),
            history: VecDeque::new(),
            history_limit,
            compacted_rv: 0,
            watchers: vec![],
            tokens: HashMap::new(),
            validator: kube_cel::Validator::new(),
        };
        let boot = WriteOpts {
            manager: "kube-apiserver".into(),
            ..Default::default()
        };
        for (plural, obj) in crate::rbac::bootstrap_objects() {
            let def = s
                .find_def("rbac.authorization.k8s.io", "v1", plural)
                .unwrap();
            s.create(&def, "", obj, &boot).expect("bootstrap RBAC");
        }
        let def = s.find_def("", "v1", "namespaces").unwrap();
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let opts = WriteOpts {
                manager: "kube-apiserver".into(),
                ..Default::default()
            };
            s.create(&def, "", json!({"metadata": {"name": ns}}), &opts)
                .expect("bootstrap namespace");
        }
        s
    }

    pub fn find_def(&self, group: &str, version: &str, plural: &str) -> Option<ResourceDef> {
        self.defs
            .iter()
            .find(|d| d.group == group && d.version == version && d.plural == plural)
            .cloned()
    }

    /// The preferred definition of a stored group/resource.
    pub fn def_for(&self, gr: &GroupResource) -> Option<ResourceDef> {
        self.defs
            .iter()
            .find(|d| d.group == gr.0 && d.plural == gr.1 && d.preferred)
            .cloned()
    }

    fn ctx<'a>(def: &'a ResourceDef) -> Ctx<'a> {
        Ctx {
            kind: &def.kind,
            schema: def.crd.as_ref().and_then(|c| c.schema.as_ref()),
        }
    }

    pub fn get_obj(&self, gr: &GroupResource, ns: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(gr)
            .and_then(|m| m.get(&(ns.to_string(), name.to_string())))
    }

    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn emit(
        &mut self,
        gr: GroupResource,
        ns: &str,
        etype: &'static str,
        object: Value,
        old: Option<Value>,
    ) {
        let rv = object
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .unwrap_or(self.rv);
        let ev = Arc::new(Event {
            rv,
            gr,
            ns: ns.to_string(),
            etype,
            object: Arc::new(object),
            old: old.map(Arc::new),
        });
        self.history.push_back(ev.clone());
        while self.history.len() > self.history_limit {
            if let Some(e) = self.history.pop_front() {
                self.compacted_rv = e.rv;
            }
        }
        self.watchers.retain(|w| {
            if w.tx.is_closed() {
                return false;
            }
            if w.filter.gr == ev.gr && w.filter.ns.as_ref().is_none_or(|n| *n == ev.ns) {
                return w.tx.send(ev.clone()).is_ok();
            }
            true
        });
    }

    /// Set apiVersion/kind of a stored object for serving under `def`.
    pub fn present(def: &ResourceDef, o: &Value) -> Value {
        let mut v = if def.is_events_v1() {
            core_event_to_v1(o)
        } else {
            o.clone()
        };
        v["apiVersion"] = json!(def.api_version());
        v["kind"] = json!(def.kind);
        v
    }

    pub fn get(&self, def: &ResourceDef, ns: &str, name: &str) -> ApiResult<Value> {
        self.get_obj(&def.key(), ns, name)
            .map(|o| Self::present(def, o))
            .ok_or_else(|| ApiError::not_found(&def.group, &def.plural, name))
    }

    pub fn list(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> Vec<Value> {
        let Some(m) = self.objects.get(&def.key()) else {
            return vec![];
        };
        let iter: Box<dyn Iterator<Item = (&ObjKey, &Value)>> = match ns {
            Some(ns) => Box::new(
                m.range((ns.to_string(), String::new())..)
                    .take_while(move |(k, _)| k.0 == ns),
            ),
            None => Box::new(m.iter()),
        };
        iter.filter(|(_, o)| labels.matches(o) && fields.matches(o))
            .map(|(_, o)| Self::present(def, o))
            .collect()
    }

    fn check_namespace(&self, def: &ResourceDef, ns: &str, name: &str) -> ApiResult<()> {
        if !def.namespaced {
            return Ok(());
        }
        match self.get_obj(&("".into(), "namespaces".into()), "", ns) {
            None => Err(ApiError::not_found("", "namespaces", ns)),
            Some(n) if meta(n, "deletionTimestamp").is_some() => Err(ApiError::new(
                403,
                "Forbidden",
                format!(
                    "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                    crate::error::qualified(&def.group, &def.plural)
                ),
            )
            .with_details(json!({"name": name, "group": def.group, "kind": def.plural,
                "causes": [{"reason": "NamespaceTerminating", "message": format!("namespace {ns} is being terminated"), "field": "metadata.namespace"}]}))),
            _ => Ok(()),
        }
    }

    // ---------------------------------------------------------------- create

    pub fn create(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        obj: Value,
        opts: &WriteOpts,
    ) -> ApiResult<Value> {
        match self.storage_form(def, obj) {
            (Some(core), obj) => self.create_inner(&core, ns, obj, opts),
            (None, obj) => self.create_inner(def, ns, obj, opts),
        }
    }

    /// For events.k8s.io Events: the core Event definition and the object in core form.
    fn storage_form(&self, def: &ResourceDef, obj: Value) -> (Option<ResourceDef>, Value) {
        if def.is_events_v1() {
            let core = self.find_def("", "v1", "events").expect("core events");
            (Some(core), v1_event_to_core(&obj))
        } else {
            (None, obj)
        }
    }

    fn create_inner(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        mut obj: Value,
        opts: &WriteOpts,
    ) -> ApiResult<Value> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request was in an unknown format",
            ));
        }
        let body_ns = meta(&obj, "namespace").unwrap_or_default().to_string();
        if def.namespaced && !body_ns.is_empty() && body_ns != ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let mut name = meta(&obj, "name").unwrap_or_default().to_string();
        if name.is_empty() {
            match meta(&obj, "generateName") {
                Some(g) if !g.is_empty() => {
                    let base: String = g.chars().take(58).collect();
                    name = format!("{base}{}", random_suffix(5));
                }
                _ => {
                    return Err(ApiError::invalid(
                        &def.kind,
                        &def.group,
                        "",
                        vec![Cause::new(
                            "metadata.name",
                            "FieldValueRequired",
                            "Required value: name or generateName is required",
                        )],
                    ));
                }
            }
        }
        let label_name = matches!(def.kind.as_str(), "Namespace" | "Service");
        let name_ok = if label_name {
            is_dns1123_label(&name)
        } else if def.group == "rbac.authorization.k8s.io" {
            !name.is_empty() && !name.contains('/') && !name.contains('%')
        } else {
            is_dns1123_subdomain(&name)
        };
        let name_causes = if name_ok {
            vec![]
        } else {
            vec![invalid_name_cause(&name, label_name)]
        };
        // A custom resource with a schema goes on to schema and CEL validation,
        // which report their errors together with this one.
        if !name_causes.is_empty() && def.crd.as_ref().is_none_or(|c| c.schema.is_none()) {
            return Err(ApiError::invalid(&def.kind, &def.group, &name, name_causes));
        }
        let ns = if def.namespaced {
            ns.to_string()
        } else {
            String::new()
        };
        self.check_namespace(def, &ns, &name)?;
        if self.get_obj(&def.key(), &ns, &name).is_some() {
            return Err(ApiError::already_exists(&def.group, &def.plural, &name));
        }
        {
            let md = meta_mut(&mut obj);
            md.insert("name".into(), json!(name));
            if def.namespaced {
                md.insert("namespace".into(), json!(ns));
            } else {
                md.remove("namespace");
            }
            md.insert("uid".into(), json!(random_uid()));
            md.insert("creationTimestamp".into(), json!(now_ts()));
            md.remove("deletionTimestamp");
            md.remove("deletionGracePeriodSeconds");
            md.remove("resourceVersion");
            if !opts.keep_managed {
                md.remove("managedFields");
            }
            md.remove("selfLink");
            if def.has_generation {
                md.insert("generation".into(), json!(1));
            } else {
                md.remove("generation");
            }
        }
        obj["apiVersion"] = json!(def.api_version());
        obj["kind"] = json!(def.kind);
        if def.status_subresource
            && def.crd.is_some()
            && let Some(m) = obj.as_object_mut()
        {
            m.remove("status");
        }
        self.admit_kind(def, &ns, &mut obj, None, opts, name_causes)?;
        if let Some(user) = &opts.user {
            policy::admit(
                self,
                &policy::Request {
                    operation: "CREATE",
                    user,
                    def,
                    subresource: opts.subresource.as_deref(),
                    namespace: &ns,
                    name: &name,
                    object: Some(&obj),
                    old: None,
                    dry_run: opts.dry_run,
                },
            )?;
        }
        if def.namespaced
            && def.group.is_empty()
            && matches!(def.plural.as_str(), "pods" | "persistentvolumeclaims")
        {
            let errs = quota::limit_range_violations(self, &ns, &def.plural, &obj);
            if !errs.is_empty() {
                let msg = if errs.len() == 1 {
                    errs[0].clone()
                } else {
                    format!("[{}]", errs.join(", "))
                };
                return Err(ApiError::forbidden(&def.group, &def.plural, &name, &msg));
            }
        }
        if def.namespaced {
            quota::admit_create(self, def, &ns, &name, &obj)?;
        }
        let av = def.api_version();
        let now = now_ts();
        if !opts.manager.is_empty() && meta(&obj, "managedFields").is_none() {
            ssa::record_update(
                None,
                &mut obj,
                &opts.manager,
                None,
                Scope::All,
                &Self::ctx(def),
                &av,
                &now,
            );
        }
        if opts.dry_run {
            return Ok(obj);
        }
        let rv = self.next_rv();
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
        self.store(&def.key(), &ns, &name, obj.clone());
        self.emit(def.key(), &ns, "ADDED", obj.clone(), None);
        self.after_write(def, &ns, &obj);
        if def.group.is_empty() && def.kind == "Namespace" {
            self.populate_namespace(&name);
        }
        Ok(obj)
    }

    /// Kind-specific defaulting and validation (create and update).
    fn admit_kind(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        obj: &mut Value,
        old: Option<&Value>,
        opts: &WriteOpts,
        name_causes: Vec<Cause>,
    ) -> ApiResult<()> {
        let name = meta(obj, "name").unwrap_or_default().to_string();
        let mut causes = name_causes;
        causes.extend(validate_metadata(obj, old));
        // A custom resource's schema and CEL rules are checked even when its
        // metadata is invalid, and the real server lists every error.
        if !causes.is_empty() && def.crd.as_ref().is_none_or(|c| c.schema.is_none()) {
            return Err(ApiError::invalid(&def.kind, &def.group, &name, causes));
        }
        if let Some(crd) = &def.crd {
            if let Some(schema) = &crd.schema {
                let ctx = kube_cel::RootContext {
                    api_version: def.api_version(),
                    api_group: def.group.clone(),
                    kind: def.kind.clone(),
                };
                let out = schema::admit(&self.validator, schema, obj, old, &ctx, opts.strict)
                    .map_err(|e| match e {
                        schema::SchemaError::Invalid(more) => ApiError::invalid(
                            &def.kind,
                            &def.group,
                            &name,
                            causes.iter().cloned().chain(more).collect(),
                        ),
                        schema::SchemaError::UnknownFields(f) => ApiError::bad_request(format!(
                            "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
                            def.kind,
                            def.version,
                            def.kind,
                            f.iter()
                                .map(|x| format!("unknown field \"{x}\""))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )),
                    })?;
                if !causes.is_empty() {
                    return Err(ApiError::invalid(&def.kind, &def.group, &name, causes));
                }
                *obj = out;
            }
            return Ok(());
        }
        match (def.group.as_str(), def.kind.as_str()) {
            ("", "Namespace") => {
                if old.is_none() {
                    obj["spec"] = json!({"finalizers": ["kubernetes"]});
                    obj["status"] = json!({"phase": "Active"});
                }
                let md = meta_mut(obj);
                let labels = md.entry("labels").or_insert_with(|| json!({}));
                if labels.is_object() {
                    labels["kubernetes.io/metadata.name"] = json!(name);
                }
            }
            ("", "Pod") if old.is_none() => {
                let causes = validate_pod_spec(obj.get("spec").unwrap_or(&Value::Null), "spec");
                if !causes.is_empty() {
                    return Err(ApiError::invalid(&def.kind, "", &name, causes));
                }
                quota::default_pod(self, ns, obj);
                let level = self
                    .get_obj(&("".into(), "namespaces".into()), "", ns)
                    .and_then(crate::pod_security::enforced_level);
                if let Some(refusal) = level.and_then(|l| crate::pod_security::check(l, obj)) {
                    return Err(ApiError::forbidden("", "pods", &name, &refusal));
                }
                if obj.get("status").is_none_or(|s| s.get("phase").is_none()) {
                    obj["status"] = json!({"phase": "Pending", "qosClass": quota::qos_class(obj)});
                }
            }
            ("apps", "Deployment" | "StatefulSet" | "ReplicaSet" | "DaemonSet") => {
                let mut causes = validate_pod_spec(
                    obj.pointer("/spec/template/spec").unwrap_or(&Value::Null),
                    "spec.template.spec",
                );
                match obj.pointer("/spec/selector") {
                    Some(sel) if sel.is_object() => {
                        let labels = obj
                            .pointer("/spec/template/metadata/labels")
                            .cloned()
                            .unwrap_or(json!({}));
                        let ok = sel["matchLabels"]
                            .as_object()
                            .is_none_or(|m| m.iter().all(|(k, v)| labels.get(k) == Some(v)));
                        if !ok {
                            causes.push(Cause::new("spec.template.metadata.labels", "FieldValueInvalid", format!("Invalid value: {labels}: `selector` does not match template `labels`")));
                        }
                        if let Some(old) = old
                            && old.pointer("/spec/selector") != Some(sel)
                        {
                            causes.push(Cause::new(
                                "spec.selector",
                                "FieldValueInvalid",
                                format!("Invalid value: {sel}: field is immutable"),
                            ));
                        }
                    }
                    _ => causes.push(Cause::new(
                        "spec.selector",
                        "FieldValueRequired",
                        "Required value",
                    )),
                }
                if !causes.is_empty() {
                    return Err(ApiError::invalid(&def.kind, &def.group, &name, causes));
                }
                if def.kind != "DaemonSet" && obj.pointer("/spec/replicas").is_none() {
                    obj["spec"]["replicas"] = json!(1);
                }
            }
            ("rbac.authorization.k8s.io", kind @ ("Role" | "ClusterRole"))
                if opts.user.is_some() =>
            {
                let user = opts.user.as_ref().expect("checked");
                if let Some(refusal) = crate::rbac::escalation(self, user, kind, ns, obj) {
                    return Err(ApiError::forbidden(
                        &def.group,
                        &def.plural,
                        &name,
                        &refusal,
                    ));
                }
            }
            ("rbac.authorization.k8s.io", "RoleBinding")
            | ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
                let rr = obj.get("roleRef").cloned().unwrap_or(Value::Null);
                if rr["name"].as_str().is_none_or(str::is_empty)
                    || rr["kind"].as_str().is_none_or(str::is_empty)
                {
                    return Err(ApiError::invalid(
                        &def.kind,
                        &def.group,
                        &name,
                        vec![Cause::new(
                            "roleRef.name",
                            "FieldValueRequired",
                            "Required value",
                        )],
                    ));
                }
                if let Some(user) = &opts.user
                    && let Some(refusal) = crate::rbac::escalation(self, user, &def.kind, ns, obj)
                {
                    return Err(ApiError::forbidden(
                        &def.group,
                        &def.plural,
                        &name,
                        &refusal,
                    ));
                }
                if let Some(old) = old
                    && old.get("roleRef") != Some(&rr)
                {
                    return Err(ApiError::invalid(
                        &def.kind,
                        &def.group,
                        &name,
                        vec![Cause::new(
                            "roleRef",
                            "FieldValueInvalid",
                            format!("Invalid value: {rr}: cannot change roleRef"),
                        )],
                    ));
                }
            }
            ("", "LimitRange") => quota::default_limit_range(obj),
            ("", "PersistentVolumeClaim") if old.is_none() => {
                obj["status"] = json!({"phase": "Pending"});
            }
            ("", "ResourceQuota") => {
                let hard = obj.pointer("/spec/hard").cloned().unwrap_or(json!({}));
                if let Some(h) = hard.as_object() {
                    for (k, v) in h {
                        if crate::quantity::from_json(v).is_none() {
                            return Err(ApiError::invalid(
                                &def.kind,
                                "",
                                &name,
                                vec![Cause::new(
                                    format!("spec.hard[{k}]"),
                                    "FieldValueInvalid",
                                    format!(
                                        "Invalid value: {v}: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
                                    ),
                                )],
                            ));
                        }
                    }
                }
                let used = quota::usage_for(self, ns, obj);
                obj["status"] = json!({"hard": quota::canonical(&hard), "used": used});
            }
            ("", "Service") => {
                if !obj.get("spec").is_some_and(Value::is_object) {
                    obj["spec"] = json!({});
                }
                if obj.pointer("/spec/type").is_none() {
                    obj["spec"]["type"] = json!("ClusterIP");
                }
                let ty = obj
                    .pointer("/spec/type")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                match old {
                    None if ty != "ExternalName" && obj.pointer("/spec/clusterIP").is_none() => {
                        let ip = format!(
                            "10.96.{}.{}",
                            rand::random_range(0..=255u8),
                            rand::random_range(1..=254u8)
                        );
                        obj["spec"]["clusterIP"] = json!(ip);
                        obj["spec"]["clusterIPs"] = json!([ip]);
                    }
                    Some(old) => {
                        // the allocated IP survives updates that omit it
                        for k in ["clusterIP", "clusterIPs"] {
                            if obj["spec"].get(k).is_none()
                                && let Some(v) = old.pointer(&format!("/spec/{k}"))
                            {
                                obj["spec"][k] = v.clone();
                            }
                        }
                    }
                    None => {}
                }
            }
            ("apiextensions.k8s.io", "CustomResourceDefinition") => self.admit_crd(obj, old)?,
            _ => {}
        }
        Ok(())
    }

    fn admit_crd(&mut self, obj: &mut Value, old: Option<&Value>) -> ApiResult<()> {
        let name = meta(obj, "name").unwrap_or_default().to_string();
        let spec = obj.get("spec").cloned().unwrap_or(json!({}));
        let group = spec["group"].as_str().unwrap_or_default();
        let plural = spec["names"]["plural"].as_str().unwrap_or_default();
        let mut causes = vec![];
        if name != format!("{plural}.{group}") {
            causes.push(Cause::new(
                "metadata.name",
                "FieldValueInvalid",
                format!("Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group"),
            ));
        }
        if spec["names"]["kind"]
            .as_str()
            .unwrap_or_default()
            .is_empty()
        {
            causes.push(Cause::new(
                "spec.names.kind",
                "FieldValueRequired",
                "Required value",
            ));
        }
        if !matches!(spec["scope"].as_str(), Some("Namespaced") | Some("Cluster")) {
            causes.push(Cause::new(
                "spec.scope",
                "FieldValueNotSupported",
                "Unsupported value: \"\": supported values: \"Cluster\", \"Namespaced\"",
            ));
        }
        if spec["versions"].as_array().is_none_or(|v| v.is_empty()) {
            causes.push(Cause::new(
                "spec.versions",
                "FieldValueInvalid",
                "Invalid value: null: must have exactly one version marked as storage version",
            ));
        }
        if !causes.is_empty() {
            return Err(ApiError::invalid(
                "CustomResourceDefinition",
                "apiextensions.k8s.io",
                &name,
                causes,
            ));
        }
        if let Some(old) = old
            && (old.pointer("/spec/group") != obj.pointer("/spec/group")
                || old.pointer("/spec/names/plural") != obj.pointer("/spec/names/plural"))
        {
            return Err(ApiError::invalid(
                "CustomResourceDefinition",
                "apiextensions.k8s.io",
                &name,
                vec![Cause::new(
                    "spec.group",
                    "FieldValueInvalid",
                    "field is immutable",
                )],
            ));
        }
        let names = spec["names"].clone();
        let now = now_ts();
        let cond = |t: &str, reason: &str, msg: &str| json!({"type": t, "status": "True", "lastTransitionTime": now, "reason": reason, "message": msg});
        let mut accepted = names.clone();
        if accepted.get("singular").is_none() {
            accepted["singular"] = json!(names["kind"].as_str().unwrap_or_default().to_lowercase());
        }
        if accepted.get("listKind").is_none() {
            accepted["listKind"] = json!(format!(
                "{}List",
                names["kind"].as_str().unwrap_or_default()
            ));
        }
        let stored: Vec<Value> = spec["versions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["storage"].as_bool() == Some(true))
            .map(|v| v["name"].clone())
            .collect();
        obj["status"] = json!({
            "acceptedNames": accepted,
            "conditions": [cond("NamesAccepted", "NoConflicts", "no conflicts found"), cond("Established", "InitialNamesAccepted", "the initial names have been accepted")],
            "storedVersions": stored,
        });
        if let Some(old_status) = old.and_then(|o| o.get("status"))
            && old_status.get("acceptedNames") == obj["status"].get("acceptedNames")
        {
            obj["status"] = old_status.clone();
        }
        Ok(())
    }

    /// What the service-account and root-CA controllers create in a new namespace.
    fn populate_namespace(&mut self, ns: &str) {
        let opts = WriteOpts {
            manager: "kube-controller-manager".into(),
            ..Default::default()
        };
        if let Some(sa) = self.find_def("", "v1", "serviceaccounts") {
            let _ = self.create(&sa, ns, json!({"metadata": {"name": "default"}}), &opts);
        }
        if let Some(cm) = self.find_def("", "v1", "configmaps") {
            let _ = self.create(
                &cm,
                ns,
                json!({"metadata": {"name": "kube-root-ca.crt", "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
                    "data": {"ca.crt": "-----BEGIN CERTIFICATE-----\nkube-test has no CA; it serves plain HTTP\n-----END CERTIFICATE-----\n"}}),
                &opts,
            );
        }
    }

    /// Bookkeeping after any stored change in `ns` (quota usage, CRD registration).
    fn after_write(&mut self, def: &ResourceDef, ns: &str, obj: &Value) {
        if def.group == "apiextensions.k8s.io" && def.kind == "CustomResourceDefinition" {
            self.register_crd(obj);
        }
        if !ns.is_empty() && def.kind != "ResourceQuota" {
            quota::refresh(self, ns);
        }
    }

    fn register_crd(&mut self, crd: &Value) {
        let group = crd
            .pointer("/spec/group")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let plural = crd
            .pointer("/spec/names/plural")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        self.defs
            .retain(|d| !(d.group == group && d.plural == plural && d.crd.is_some()));
        if meta(crd, "deletionTimestamp").is_none()
            || self
                .objects
                .get(&(group.clone(), plural.clone()))
                .is_some_and(|m| !m.is_empty())
        {
            self.defs.extend(resources::from_crd(crd));
        }
    }

    // ---------------------------------------------------------------- update

    /// Store `cand` as the new state of an existing object. `cand` is the full
    /// intended object (after PUT body / patch / apply merge).
    fn commit_update(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        mut cand: Value,
        opts: &WriteOpts,
        apply_managed: bool,
    ) -> ApiResult<Value> {
        let gr = def.key();
        let old = self
            .get_obj(&gr, ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&def.group, &def.plural, name))?;
        if !cand.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request was in an unknown format",
            ));
        }
        if let Some(rv) = meta(&cand, "resourceVersion")
            && !rv.is_empty()
            && Some(rv) != meta(&old, "resourceVersion")
        {
            return Err(ApiError::stale(&def.group, &def.plural, name));
        }
        if let Some(n) = meta(&cand, "name")
            && n != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        if def.namespaced
            && let Some(n) = meta(&cand, "namespace")
            && !n.is_empty()
            && n != ns
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let status_req = opts.subresource.as_deref() == Some("status");
        let scope = if !def.status_subresource {
            Scope::All
        } else if status_req {
            Scope::Status
        } else {
            Scope::Main
        };
        if status_req {
            let mut c = old.clone();
            match cand.get("status") {
                Some(s) => c["status"] = s.clone(),
                None => {
                    c.as_object_mut().unwrap().remove("status");
                }
            }
            if apply_managed && let Some(mf) = cand.pointer("/metadata/managedFields") {
                meta_mut(&mut c).insert("managedFields".into(), mf.clone());
            }
            cand = c;
        } else if def.status_subresource {
            match old.get("status") {
                Some(s) => cand["status"] = s.clone(),
                None => {
                    cand.as_object_mut().unwrap().remove("status");
                }
            }
        }
        {
            let md = meta_mut(&mut cand);
            for k in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "namespace",
                "name",
            ] {
                match old.pointer(&format!("/metadata/{k}")) {
                    Some(v) => md.insert(k.into(), v.clone()),
                    None => md.remove(k),
                };
            }
            if !apply_managed {
                match old.pointer("/metadata/managedFields") {
                    Some(v) => md.insert("managedFields".into(), v.clone()),
                    None => md.remove("managedFields"),
                };
            }
        }
        cand["apiVersion"] = json!(def.api_version());
        cand["kind"] = json!(def.kind);
        if meta(&old, "deletionTimestamp").is_some() {
            let of = finalizers(&old);
            let new: Vec<String> = finalizers(&cand)
                .into_iter()
                .filter(|f| !of.contains(f))
                .collect();
            if !new.is_empty() {
                let quoted: Vec<String> = new.iter().map(|f| format!("{f:?}")).collect();
                let cause = Cause::new(
                    "metadata.finalizers",
                    "FieldValueForbidden",
                    format!(
                        "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                        quoted.join(", ")
                    ),
                );
                // a real server reports this twice for built-in kinds (its
                // ObjectMeta update validation runs twice)
                let causes = if def.crd.is_none() {
                    vec![cause.clone(), cause]
                } else {
                    vec![cause]
                };
                return Err(ApiError::invalid(&def.kind, &def.group, name, causes));
            }
        }
        if def.kind == "Namespace" && def.group.is_empty() {
            cand["status"] = old["status"].clone();
            if opts.subresource.as_deref() != Some("finalize") {
                cand["spec"] = old["spec"].clone();
            }
        }
        self.admit_kind(def, ns, &mut cand, Some(&old), opts, vec![])?;
        if let Some(user) = &opts.user {
            policy::admit(
                self,
                &policy::Request {
                    operation: "UPDATE",
                    user,
                    def,
                    subresource: opts.subresource.as_deref(),
                    namespace: ns,
                    name,
                    object: Some(&cand),
                    old: Some(&old),
                    dry_run: opts.dry_run,
                },
            )?;
        }
        if def.namespaced && meta(&cand, "deletionTimestamp").is_none() {
            quota::admit_update(self, def, ns, name, &old, &cand)?;
        }
        if !apply_managed && !opts.manager.is_empty() {
            let now = now_ts();
            ssa::record_update(
                Some(&old),
                &mut cand,
                &opts.manager,
                opts.subresource.as_deref(),
                scope,
                &Self::ctx(def),
                &def.api_version(),
                &now,
            );
        }
        // no-op writes change nothing
        if without_volatile(&cand) == without_volatile(&old) && ssa::same_ownership(&cand, &old) {
            return Ok(Self::present(def, &old));
        }
        if def.has_generation
            && spec_part(&cand, def.status_subresource) != spec_part(&old, def.status_subresource)
        {
            let g = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            meta_mut(&mut cand).insert("generation".into(), json!(g + 1));
        }
        if opts.dry_run {
            return Ok(cand);
        }
        let rv = self.next_rv();
        meta_mut(&mut cand).insert("resourceVersion".into(), json!(rv.to_string()));
        if meta(&cand, "deletionTimestamp").is_some() && finalizers(&cand).is_empty() {
            self.remove_object(&gr, ns, name, Some(cand.clone()));
            self.sweep();
            return Ok(Self::present(def, &cand));
        }
        self.store(&gr, ns, name, cand.clone());
        self.emit(gr, ns, "MODIFIED", cand.clone(), Some(old));
        self.after_write(def, ns, &cand);
        self.sweep();
        Ok(Self::present(def, &cand))
    }

    pub fn replace(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        obj: Value,
        opts: &WriteOpts,
    ) -> ApiResult<Value> {
        let (core, mut obj) = self.storage_form(def, obj);
        let def = core.as_ref().unwrap_or(def);
        if self.get_obj(&def.key(), ns, name).is_none() {
            // Leases allow create-on-update, as on the real server
            if def.group == "coordination.k8s.io" && def.kind == "Lease" {
                if meta(&obj, "name").is_some_and(|n| n != name) {
                    return Err(ApiError::bad_request(format!(
                        "the name of the object does not match the name on the URL ({name})"
                    )));
                }
                meta_mut(&mut obj).insert("name".into(), json!(name));
                meta_mut(&mut obj).remove("resourceVersion");
                return self.create(def, ns, obj, opts);
            }
            return Err(ApiError::not_found(&def.group, &def.plural, name));
        }
        // custom resources do not allow unconditional updates
        if def.crd.is_some() && meta(&obj, "resourceVersion").is_none_or(str::is_empty) {
            return Err(ApiError::invalid(
                &def.kind,
                &def.group,
                name,
                vec![Cause::new(
                    "metadata.resourceVersion",
                    "FieldValueInvalid",
                    "Invalid value: 0x0: must be specified for an update",
                )],
            ));
        }
        self.commit_update(def, ns, name, obj, opts, false)
    }

    /// Patch; returns (object, created).
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        content_type: &str,
        body: &[u8],
        force: bool,
        opts: &WriteOpts,
    ) -> ApiResult<(Value, bool)> {
        // patches apply to the object as served under `def`
        let existing = self
            .get_obj(&def.key(), ns, name)
            .map(|o| Self::present(def, o));
        let ct = content_type.split(';').next().unwrap_or_default().trim();
        let parse_json = |b: &[u8]| -> ApiResult<Value> {
            serde_json::from_slice(b)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))
        };
        if ct == "application/apply-patch+yaml" || ct == "application/apply-patch+cbor" {
            if opts.manager.is_empty() {
                return Err(ApiError::bad_request(
                    "PATCH, application/apply-patch+yaml requires fieldManager parameter",
                ));
            }
            let applied: Value = serde_saphyr::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
            if !applied.is_object() {
                return Err(ApiError::bad_request(
                    "error decoding YAML: expected an object",
                ));
            }
            if applied
                .get("kind")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return Err(ApiError::bad_request(
                    "Object 'Kind' is missing in applied configuration",
                ));
            }
            if applied.get("apiVersion").and_then(Value::as_str) != Some(def.api_version().as_str())
            {
                return Err(ApiError::bad_request(format!(
                    "apiVersion of the applied configuration ({}) does not match the request ({})",
                    applied
                        .get("apiVersion")
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                    def.api_version()
                )));
            }
            if let Some(n) = meta(&applied, "name")
                && n != name
            {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )));
            }
            if let Some(schema) = def.crd.as_ref().and_then(|c| c.schema.as_ref()) {
                // the real server names the object by the body's namespace
                crate::typed_patch::check(
                    &applied,
                    schema,
                    meta(&applied, "namespace").unwrap_or_default(),
                    name,
                    &def.api_version(),
                    &def.kind,
                )?;
            }
            let dups = crate::fields::duplicate_keys(&applied, &Self::ctx(def));
            if !dups.is_empty() {
                return Err(ApiError::invalid(
                    &def.kind,
                    &def.group,
                    name,
                    dups.into_iter()
                        .map(|p| {
                            Cause::new(
                                p,
                                "FieldValueDuplicate",
                                "Duplicate value: duplicate entries for a list-map key",
                            )
                        })
                        .collect(),
                ));
            }
            let status_req = opts.subresource.as_deref() == Some("status");
            let scope = if !def.status_subresource {
                Scope::All
            } else if status_req {
                Scope::Status
            } else {
                Scope::Main
            };
            let now = now_ts();
            let merged = ssa::apply(existing.as_ref(), &applied, &opts.manager, force, opts.subresource.as_deref(), scope, &Self::ctx(def), &def.api_version(), &now)
                .map_err(|conflicts| {
                    let n = conflicts.len();
                    // "using <apiVersion>" only when the manager wrote another version
                    let av = def.api_version();
                    let who = |c: &ssa::Conflict| if c.api_version == av { format!("conflict with \"{}\"", c.manager) } else { format!("conflict with \"{}\" using {}", c.manager, c.api_version) };
                    let list: Vec<String> = conflicts.iter().map(|c| format!("{}: {}", who(c), c.field)).collect();
                    let msg = if n == 1 { format!("Apply failed with 1 conflict: {}", list[0]) } else { format!("Apply failed with {n} conflicts: {}", list.join("\n")) };
                    ApiError::new(409, "Conflict", msg).with_details(json!({
                        "causes": conflicts.iter().map(|c| json!({"reason": "FieldManagerConflict", "message": who(c), "field": c.field})).collect::<Vec<_>>(),
                    }))
                })?;
            return match existing {
                None => {
                    if status_req {
                        return Err(ApiError::not_found(&def.group, &def.plural, name));
                    }
                    let mut o = merged;
                    meta_mut(&mut o).insert("name".into(), json!(name));
                    let created = self.create(
                        def,
                        ns,
                        o,
                        &WriteOpts {
                            manager: String::new(),
                            keep_managed: true,
                            ..opts.clone()
                        },
                    )?;
                    Ok((created, true))
                }
                Some(_) => {
                    let mut m = merged;
                    // a resourceVersion in the applied configuration is a precondition
                    match meta(&applied, "resourceVersion").filter(|r| !r.is_empty()) {
                        Some(rv) => {
                            meta_mut(&mut m).insert("resourceVersion".into(), json!(rv));
                        }
                        None => {
                            meta_mut(&mut m).remove("resourceVersion");
                        }
                    }
                    let (core, m) = self.storage_form(def, m);
                    Ok((
                        self.commit_update(core.as_ref().unwrap_or(def), ns, name, m, opts, true)?,
                        false,
                    ))
                }
            };
        }
        let Some(old) = existing else {
            return Err(ApiError::not_found(&def.group, &def.plural, name));
        };
        let mut base = old.clone();
        if let Some(md) = base.get_mut("metadata").and_then(Value::as_object_mut) {
            md.remove("resourceVersion");
        }
        let patched = match ct {
            "application/merge-patch+json" => {
                let p = parse_json(body)?;
                let mut t = base;
                json_patch::merge(&mut t, &p);
                t
            }
            "application/json-patch+json" => {
                let p: json_patch::Patch = serde_json::from_slice(body)
                    .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
                let mut t = old.clone();
                // The API server (evanphx/json-patch) treats `test` of a missing path against
                // `null` as a match; kube-runtime's finalizer helper relies on it.
                let p = json_patch::Patch(
                    p.0.into_iter()
                        .filter(|op| match op {
                            json_patch::PatchOperation::Test(test) => {
                                !(test.value.is_null() && t.pointer(test.path.as_str()).is_none())
                            }
                            _ => true,
                        })
                        .collect(),
                );
                json_patch::patch(&mut t, &p).map_err(|e| {
                    ApiError::new(
                        422,
                        "Invalid",
                        format!(
                            "the server rejected our request due to an error in our request: {e}"
                        ),
                    )
                })?;
                if meta(&t, "resourceVersion") == meta(&old, "resourceVersion")
                    && let Some(md) = t.get_mut("metadata").and_then(Value::as_object_mut)
                {
                    md.remove("resourceVersion");
                }
                t
            }
            "application/strategic-merge-patch+json" => {
                if def.crd.is_some() {
                    return Err(ApiError::new(
                        415,
                        "UnsupportedMediaType",
                        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml".to_string(),
                    ));
                }
                let p = parse_json(body)?;
                crate::fields::strategic_merge(&base, &p, &Self::ctx(def), &mut vec![])
            }
            other => {
                return Err(ApiError::new(
                    415,
                    "UnsupportedMediaType",
                    format!(
                        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {other})"
                    ),
                ));
            }
        };
        Ok((
            {
                let (core, patched) = self.storage_form(def, patched);
                self.commit_update(core.as_ref().unwrap_or(def), ns, name, patched, opts, false)?
            },
            false,
        ))
    }

    // ---------------------------------------------------------------- delete

    fn remove_object(&mut self, gr: &GroupResource, ns: &str, name: &str, last: Option<Value>) {
        let Some(mut obj) = self.unstore(gr, ns, name) else {
            return;
        };
        if let Some(l) = last {
            obj = l;
        }
        let rv = self.next_rv();
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
        self.emit(gr.clone(), ns, "DELETED", obj.clone(), None);
        if gr.0 == "apiextensions.k8s.io" && gr.1 == "customresourcedefinitions" {
            let g = obj
                .pointer("/spec/group")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let p = obj
                .pointer("/spec/names/plural")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            self.defs
                .retain(|d| !(d.group == g && d.plural == p && d.crd.is_some()));
            let keys: Vec<ObjKey> = self
                .objects
                .get(&(g.clone(), p.clone()))
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            for (ons, oname) in keys {
                let Some(mut o) = self.unstore(&(g.clone(), p.clone()), &ons, &oname) else {
                    continue;
                };
                let rv = self.next_rv();
                meta_mut(&mut o).insert("resourceVersion".into(), json!(rv.to_string()));
                self.emit((g.clone(), p.clone()), &ons, "DELETED", o, None);
            }
            self.objects.remove(&(g.clone(), p.clone()));
        }
        if !ns.is_empty() && gr.1 != "resourcequotas" {
            quota::refresh(self, ns);
        }
        // garbage-collect dependents
        if let Some(uid) = meta(&obj, "uid").map(String::from) {
            self.collect_dependents(&uid);
        }
    }

    fn dependents_of(&self, uid: &str) -> Vec<(GroupResource, String, String)> {
        self.dependents
            .get(uid)
            .map(|d| {
                d.iter()
                    .map(|(gr, (ns, name))| (gr.clone(), ns.clone(), name.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Put `obj` in the store and keep the indexes true.
    fn store(&mut self, gr: &GroupResource, ns: &str, name: &str, obj: Value) {
        self.unstore(gr, ns, name);
        let key = (gr.clone(), (ns.to_string(), name.to_string()));
        if meta(&obj, "deletionTimestamp").is_some() {
            self.terminating.insert(key.clone());
        }
        for uid in owner_uids(&obj) {
            self.dependents.entry(uid).or_default().insert(key.clone());
        }
        if let Some(uid) = meta(&obj, "uid") {
            self.uids.insert(uid.to_string());
        }
        self.objects
            .entry(gr.clone())
            .or_default()
            .insert(key.1, obj);
    }

    /// Take an object out of the store and out of the indexes.
    fn unstore(&mut self, gr: &GroupResource, ns: &str, name: &str) -> Option<Value> {
        let okey = (ns.to_string(), name.to_string());
        let obj = self.objects.get_mut(gr)?.remove(&okey)?;
        let key = (gr.clone(), okey);
        self.terminating.remove(&key);
        for uid in owner_uids(&obj) {
            if let Some(d) = self.dependents.get_mut(&uid) {
                d.remove(&key);
                if d.is_empty() {
                    self.dependents.remove(&uid);
                }
            }
        }
        if let Some(uid) = meta(&obj, "uid") {
            self.uids.remove(uid);
        }
        Some(obj)
    }

    /// The objects of one kind in namespace `ns`, without scanning the others.
    pub fn in_namespace<'a>(
        &'a self,
        gr: &GroupResource,
        ns: &'a str,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects.get(gr).into_iter().flat_map(move |m| {
            m.range((ns.to_string(), String::new())..)
                .take_while(move |((ons, _), _)| ons == ns)
                .map(|(_, v)| v)
        })
    }

    /// Is anything stored in namespace `ns`?
    fn namespace_is_empty(&self, ns: &str) -> bool {
        self.objects.values().all(|m| {
            m.range((ns.to_string(), String::new())..)
                .next()
                .is_none_or(|((ons, _), _)| ons != ns)
        })
    }

    /// Every object in namespace `ns`, by kind.
    fn keys_in_namespace(&self, ns: &str) -> Vec<(GroupResource, String)> {
        self.objects
            .iter()
            .flat_map(|(gr, m)| {
                m.range((ns.to_string(), String::new())..)
                    .take_while(move |((ons, _), _)| ons == ns)
                    .map(move |((_, n), _)| (gr.clone(), n.clone()))
            })
            .collect()
    }

    fn collect_dependents(&mut self, uid: &str) {
        let deps = self.dependents_of(uid);
        if deps.is_empty() {
            return;
        }
        for (gr, ns, name) in deps {
            let Some(o) = self.get_obj(&gr, &ns, &name).cloned() else {
                continue;
            };
            let refs = o
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let others_alive = refs.iter().any(|r| {
                r["uid"].as_str() != Some(uid)
                    && r["uid"].as_str().is_some_and(|u| self.uids.contains(u))
            });
            if others_alive {
                let mut n = o.clone();
                let kept: Vec<Value> = refs
                    .into_iter()
                    .filter(|r| r["uid"].as_str() != Some(uid))
                    .collect();
                meta_mut(&mut n).insert("ownerReferences".into(), json!(kept));
                self.internal_update(&gr, &ns, &name, n);
            } else if let Some(def) = self.def_for(&gr) {
                let _ = self.delete_inner(
                    &def,
                    &ns,
                    &name,
                    &DeleteOpts {
                        propagation: Some("Background".into()),
                        ..Default::default()
                    },
                );
            }
        }
    }

    /// Controller-style write (no admission, no managedFields).
    fn internal_update(&mut self, gr: &GroupResource, ns: &str, name: &str, mut n: Value) {
        let Some(old) = self.get_obj(gr, ns, name).cloned() else {
            return;
        };
        if n == old {
            return;
        }
        let rv = self.next_rv();
        meta_mut(&mut n).insert("resourceVersion".into(), json!(rv.to_string()));
        if meta(&n, "deletionTimestamp").is_some() && finalizers(&n).is_empty() {
            self.remove_object(gr, ns, name, Some(n));
            return;
        }
        self.store(gr, ns, name, n.clone());
        self.emit(gr.clone(), ns, "MODIFIED", n, Some(old));
    }

    pub fn internal_set_status(&mut self, gr: &GroupResource, ns: &str, name: &str, status: Value) {
        if let Some(o) = self.get_obj(gr, ns, name).cloned() {
            let mut n = o;
            n["status"] = status;
            self.internal_update(gr, ns, name, n);
        }
    }

    pub fn delete(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        opts: &DeleteOpts,
    ) -> ApiResult<Value> {
        let r = self.delete_inner(def, ns, name, opts)?;
        self.sweep();
        Ok(r)
    }

    fn delete_inner(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        opts: &DeleteOpts,
    ) -> ApiResult<Value> {
        let gr = def.key();
        let obj = self
            .get_obj(&gr, ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&def.group, &def.plural, name))?;
        if let Some(uid) = &opts.uid
            && Some(uid.as_str()) != meta(&obj, "uid")
        {
            return Err(ApiError::conflict(
                &def.group,
                &def.plural,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta(&obj, "uid").unwrap_or_default()
                ),
            ));
        }
        if let Some(rv) = &opts.rv
            && Some(rv.as_str()) != meta(&obj, "resourceVersion")
        {
            return Err(ApiError::conflict(
                &def.group,
                &def.plural,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    meta(&obj, "resourceVersion").unwrap_or_default()
                ),
            ));
        }
        if let Some(user) = &opts.user {
            policy::admit(
                self,
                &policy::Request {
                    operation: "DELETE",
                    user,
                    def,
                    subresource: None,
                    namespace: ns,
                    name,
                    object: None,
                    old: Some(&obj),
                    dry_run: opts.dry_run,
                },
            )?;
        }
        if opts.dry_run {
            return Ok(Self::present(def, &obj));
        }
        if meta(&obj, "deletionTimestamp").is_some() {
            return Ok(Self::present(def, &obj));
        }
        let uid = meta(&obj, "uid").unwrap_or_default().to_string();
        let mut n = obj.clone();
        let is_ns = def.group.is_empty() && def.kind == "Namespace";
        if is_ns {
            n["status"]["phase"] = json!("Terminating");
        }
        let policy = opts
            .propagation
            .clone()
            .unwrap_or_else(|| "Background".into());
        let deps = self.dependents_of(&uid);
        if policy == "Orphan" {
            for (dgr, dns, dname) in deps.clone() {
                if let Some(mut d) = self.get_obj(&dgr, &dns, &dname).cloned() {
                    let refs: Vec<Value> = d
                        .pointer("/metadata/ownerReferences")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|r| r["uid"].as_str() != Some(uid.as_str()))
                        .collect();
                    if refs.is_empty() {
                        meta_mut(&mut d).remove("ownerReferences");
                    } else {
                        meta_mut(&mut d).insert("ownerReferences".into(), json!(refs));
                    }
                    self.internal_update(&dgr, &dns, &dname, d);
                }
            }
        }
        if def.group == "apiextensions.k8s.io" && def.kind == "CustomResourceDefinition" {
            // like the real CRD REST storage: cleanup of the custom resources is a finalizer
            let md = meta_mut(&mut n);
            let f = md.entry("finalizers").or_insert_with(|| json!([]));
            if let Some(a) = f.as_array_mut() {
                a.push(json!("customresourcecleanup.apiextensions.k8s.io"));
            }
        }
        let foreground = policy == "Foreground" && !deps.is_empty();
        if foreground {
            let md = meta_mut(&mut n);
            let f = md.entry("finalizers").or_insert_with(|| json!([]));
            if let Some(a) = f.as_array_mut() {
                a.push(json!("foregroundDeletion"));
            }
        }
        if !finalizers(&n).is_empty() || is_ns {
            {
                let md = meta_mut(&mut n);
                md.insert("deletionTimestamp".into(), json!(now_ts()));
                md.insert("deletionGracePeriodSeconds".into(), json!(0));
            }
            if def.has_generation {
                let g = obj
                    .pointer("/metadata/generation")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                meta_mut(&mut n).insert("generation".into(), json!(g + 1));
            }
            let rv = self.next_rv();
            meta_mut(&mut n).insert("resourceVersion".into(), json!(rv.to_string()));
            self.store(&gr, ns, name, n.clone());
            self.emit(gr.clone(), ns, "MODIFIED", n.clone(), Some(obj));
            if foreground {
                for (dgr, dns, dname) in deps {
                    if let Some(dd) = self.def_for(&dgr) {
                        let _ = self.delete_inner(
                            &dd,
                            &dns,
                            &dname,
                            &DeleteOpts {
                                propagation: Some("Foreground".into()),
                                ..Default::default()
                            },
                        );
                    }
                }
            }
            if is_ns {
                let keys = self.keys_in_namespace(name);
                for (ogr, oname) in keys {
                    if let Some(od) = self.def_for(&ogr) {
                        let _ = self.delete_inner(&od, name, &oname, &DeleteOpts::default());
                    }
                }
            }
            if def.group == "apiextensions.k8s.io" {
                let g = n
                    .pointer("/spec/group")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let p = n
                    .pointer("/spec/names/plural")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let keys: Vec<ObjKey> = self
                    .objects
                    .get(&(g.clone(), p.clone()))
                    .map(|m| m.keys().cloned().collect())
                    .unwrap_or_default();
                if let Some(cd) = self.def_for(&(g.clone(), p.clone())) {
                    for (cns, cname) in keys {
                        let _ = self.delete_inner(&cd, &cns, &cname, &DeleteOpts::default());
                    }
                }
            }
            let cur = self.get_obj(&gr, ns, name).cloned().unwrap_or(n);
            return Ok(Self::present(def, &cur));
        }
        self.remove_object(&gr, ns, name, None);
        Ok(json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": {"name": name, "group": def.group, "kind": def.plural, "uid": uid},
        }))
    }

    /// Finish deletions whose preconditions became true: foreground owners whose
    /// dependents are gone, empty terminating namespaces, CRDs without objects.
    pub fn sweep(&mut self) {
        loop {
            // (group/resource, ns, name, new state, remove?)
            let mut todo: Vec<(GroupResource, String, String, Value, bool)> = vec![];
            for (gr, (ns, name)) in &self.terminating {
                let Some(o) = self.get_obj(gr, ns, name) else {
                    continue;
                };
                let fins = finalizers(o);
                let mut n = o.clone();
                if fins.iter().any(|f| f == "foregroundDeletion") {
                    let uid = meta(o, "uid").unwrap_or_default();
                    if self.dependents_of(uid).is_empty() {
                        let kept: Vec<String> = fins
                            .iter()
                            .filter(|f| *f != "foregroundDeletion")
                            .cloned()
                            .collect();
                        meta_mut(&mut n).insert("finalizers".into(), json!(kept));
                    }
                }
                if gr.0.is_empty() && gr.1 == "namespaces" && self.namespace_is_empty(name) {
                    n["spec"]["finalizers"] = json!([]);
                    if finalizers(&n).is_empty() {
                        todo.push((gr.clone(), ns.clone(), name.clone(), n, true));
                        continue;
                    }
                }
                if gr.0 == "apiextensions.k8s.io"
                    && gr.1 == "customresourcedefinitions"
                    && fins
                        .iter()
                        .any(|f| f == "customresourcecleanup.apiextensions.k8s.io")
                {
                    let g = o
                        .pointer("/spec/group")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    let p = o
                        .pointer("/spec/names/plural")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    if self.objects.get(&(g, p)).is_none_or(|m| m.is_empty()) {
                        let kept: Vec<String> = finalizers(&n)
                            .into_iter()
                            .filter(|f| f != "customresourcecleanup.apiextensions.k8s.io")
                            .collect();
                        meta_mut(&mut n).insert("finalizers".into(), json!(kept));
                    }
                }
                if n != *o {
                    todo.push((gr.clone(), ns.clone(), name.clone(), n, false));
                }
            }
            if todo.is_empty() {
                return;
            }
            for (gr, ns, name, n, remove) in todo {
                if remove {
                    self.remove_object(&gr, &ns, &name, Some(n));
                } else {
                    self.internal_update(&gr, &ns, &name, n);
                }
            }
        }
    }

    pub fn delete_collection(
        &mut self,
        def: &ResourceDef,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
        opts: &DeleteOpts,
    ) -> ApiResult<Vec<Value>> {
        let items = self.list(def, ns, labels, fields);
        let mut out = vec![];
        for it in items {
            let n = meta(&it, "name").unwrap_or_default().to_string();
            let ons = meta(&it, "namespace").unwrap_or_default().to_string();
            if self.delete_inner(def, &ons, &n, opts).is_ok() {
                out.push(it);
            }
        }
        self.sweep();
        Ok(out)
    }
}
