//! Resource definitions: the built-in kinds and those generated from CRDs.
use serde_json::Value;
use std::sync::Arc;

/// CRD-specific data for a served custom resource version.
#[derive(Debug, Clone)]
pub struct CrdVersion {
    pub schema: Option<Value>,
    pub printer_columns: Vec<Value>,
}

#[derive(Debug, Clone)]
pub struct ResourceDef {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub verbs: Vec<String>,
    pub status_subresource: bool,
    pub has_generation: bool,
    pub crd: Option<Arc<CrdVersion>>,
    /// Storage version's apiVersion is irrelevant: objects are stored once per (group, plural)
    /// and served with the requested version's apiVersion.
    pub preferred: bool,
    /// Scale subresource: (specReplicasPath, statusReplicasPath, labelSelectorPath).
    pub scale: Option<(String, String, Option<String>)>,
}

impl ResourceDef {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
    /// Storage key. events.k8s.io Events share storage with core Events,
    /// as on a real server.
    pub fn key(&self) -> (String, String) {
        if self.is_events_v1() {
            return (String::new(), "events".into());
        }
        (self.group.clone(), self.plural.clone())
    }
    pub fn is_events_v1(&self) -> bool {
        self.group == "events.k8s.io" && self.plural == "events"
    }
}

/// Every verb of an ordinary resource.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// The built-in kinds (see `catalog`).
pub fn builtins() -> Vec<ResourceDef> {
    crate::catalog::defs()
}

/// Resource definitions for every served version of a CRD object.
pub fn from_crd(crd: &Value) -> Vec<ResourceDef> {
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    let names = &spec["names"];
    let kind = names["kind"].as_str().unwrap_or_default();
    let plural = names["plural"].as_str().unwrap_or_default();
    let singular = names["singular"]
        .as_str()
        .map(String::from)
        .unwrap_or_else(|| kind.to_lowercase());
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let namespaced = spec["scope"].as_str() != Some("Cluster");
    let mut out = vec![];
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    let mut first = true;
    for v in versions.iter() {
        if v["served"].as_bool() == Some(false) {
            continue;
        }
        let status = v.pointer("/subresources/status").is_some();
        out.push(ResourceDef {
            group: group.into(),
            version: v["name"].as_str().unwrap_or_default().into(),
            kind: kind.into(),
            plural: plural.into(),
            singular: singular.clone(),
            namespaced,
            short_names: strs(&names["shortNames"]),
            categories: strs(&names["categories"]),
            verbs: ALL_VERBS.iter().map(|s| s.to_string()).collect(),
            status_subresource: status,
            has_generation: true,
            crd: Some(Arc::new(CrdVersion {
                schema: v.pointer("/schema/openAPIV3Schema").cloned(),
                printer_columns: v["additionalPrinterColumns"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            })),
            preferred: first,
            scale: v.pointer("/subresources/scale").map(|sc| {
                (
                    sc["specReplicasPath"]
                        .as_str()
                        .unwrap_or(".spec.replicas")
                        .to_string(),
                    sc["statusReplicasPath"]
                        .as_str()
                        .unwrap_or(".status.replicas")
                        .to_string(),
                    sc["labelSelectorPath"].as_str().map(String::from),
                )
            }),
        });
        first = false;
    }
    out
}
