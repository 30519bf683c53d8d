//! The built-in kinds, taken from the type information k8s-openapi (for
//! names, scope and schema) and k8s-pb (for protobuf bodies) carry, so that
//! every GA kind of the targeted Kubernetes version is served the same way.
use crate::resources::{ALL_VERBS, ResourceDef};
use k8s_openapi::{NamespaceResourceScope, Resource};
use schemars::JsonSchema;
use serde_json::Value;
use std::any::TypeId;
use std::fmt::Debug;

/// Decodes a protobuf message of one kind into its `Debug` rendering, which
/// `proto_json` turns into JSON.
pub type Decoder = fn(&[u8]) -> Result<String, prost::DecodeError>;

/// One built-in type: its identity, whether it is stored, and how to read it.
pub struct Builtin {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
    pub served: Served,
    pub decode: Decoder,
    /// The JSON schema (for field names and whether there is a `status`).
    pub schema: fn() -> Value,
}

#[derive(Clone, Copy, PartialEq)]
pub enum Served {
    /// An ordinary stored resource with every verb.
    Stored,
    /// A review-style resource that only answers `create`.
    CreateOnly,
    /// Not a resource of its own (a subresource body such as TokenRequest or
    /// Scale), known only so that its protobuf bodies can be read.
    BodyOnly,
}

fn decode_as<P: prost::Message + Default + Debug>(
    raw: &[u8],
) -> Result<String, prost::DecodeError> {
    P::decode(raw).map(|m| format!("{m:?}"))
}

fn schema_of<O: JsonSchema>() -> Value {
    serde_json::to_value(schemars::SchemaGenerator::default().into_root_schema_for::<O>())
        .unwrap_or_default()
}

impl Builtin {
    fn of<O, P>(served: Served) -> Builtin
    where
        O: Resource + JsonSchema + 'static,
        P: prost::Message + Default + Debug,
    {
        Builtin {
            group: O::GROUP,
            version: O::VERSION,
            kind: O::KIND,
            plural: O::URL_PATH_SEGMENT,
            namespaced: TypeId::of::<O::Scope>() == TypeId::of::<NamespaceResourceScope>(),
            served,
            decode: decode_as::<P>,
            schema: schema_of::<O>,
        }
    }
}

/// Lists types by their path below both `k8s_openapi` and `k8s_pb`, which
/// name every type alike.
macro_rules! builtins {
    ($served:expr => $($($seg:ident)::+),* $(,)?) => {
        [$(Builtin::of::<k8s_openapi::$($seg)::+, k8s_pb::$($seg)::+>($served)),*]
    };
}

/// Every type kube-test knows: the GA kinds a default API server of the
/// targeted version serves (ComponentStatus and autoscaling/v1
/// HorizontalPodAutoscaler excepted), the reviews, and subresource bodies.
pub fn all() -> Vec<Builtin> {
    let mut v = vec![];
    v.extend(builtins!(Served::Stored =>
        api::core::v1::Namespace,
        api::core::v1::ResourceQuota,
        api::core::v1::LimitRange,
        api::core::v1::ServiceAccount,
        api::core::v1::ConfigMap,
        api::core::v1::Secret,
        api::core::v1::Service,
        api::core::v1::Pod,
        api::core::v1::PersistentVolumeClaim,
        api::core::v1::Event,
        api::core::v1::Endpoints,
        api::core::v1::Node,
        api::core::v1::PersistentVolume,
        api::core::v1::PodTemplate,
        api::core::v1::ReplicationController,
        api::admissionregistration::v1::MutatingWebhookConfiguration,
        api::admissionregistration::v1::ValidatingAdmissionPolicy,
        api::admissionregistration::v1::ValidatingAdmissionPolicyBinding,
        api::admissionregistration::v1::ValidatingWebhookConfiguration,
        apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
        kube_aggregator::pkg::apis::apiregistration::v1::APIService,
        api::apps::v1::ControllerRevision,
        api::apps::v1::DaemonSet,
        api::apps::v1::Deployment,
        api::apps::v1::ReplicaSet,
        api::apps::v1::StatefulSet,
        api::autoscaling::v2::HorizontalPodAutoscaler,
        api::batch::v1::CronJob,
        api::batch::v1::Job,
        api::certificates::v1::CertificateSigningRequest,
        api::coordination::v1::Lease,
        api::discovery::v1::EndpointSlice,
        api::events::v1::Event,
        api::flowcontrol::v1::FlowSchema,
        api::flowcontrol::v1::PriorityLevelConfiguration,
        api::networking::v1::IngressClass,
        api::networking::v1::Ingress,
        api::networking::v1::IPAddress,
        api::networking::v1::NetworkPolicy,
        api::networking::v1::ServiceCIDR,
        api::node::v1::RuntimeClass,
        api::policy::v1::PodDisruptionBudget,
        api::rbac::v1::ClusterRoleBinding,
        api::rbac::v1::ClusterRole,
        api::rbac::v1::RoleBinding,
        api::rbac::v1::Role,
        api::scheduling::v1::PriorityClass,
        api::storage::v1::CSIDriver,
        api::storage::v1::CSINode,
        api::storage::v1::CSIStorageCapacity,
        api::storage::v1::StorageClass,
        api::storage::v1::VolumeAttachment,
    ));
    v.extend(builtins!(Served::CreateOnly =>
        api::authentication::v1::SelfSubjectReview,
        api::authentication::v1::TokenReview,
        api::authorization::v1::LocalSubjectAccessReview,
        api::authorization::v1::SelfSubjectAccessReview,
        api::authorization::v1::SubjectAccessReview,
    ));
    v.extend(builtins!(Served::BodyOnly =>
        api::authentication::v1::TokenRequest,
        api::autoscaling::v1::Scale,
    ));
    v
}

/// Short names as a real API server lists them in discovery.
fn short_names(group: &str, plural: &str) -> &'static [&'static str] {
    match (group, plural) {
        ("", "configmaps") => &["cm"],
        ("", "endpoints") => &["ep"],
        ("", "events") | ("events.k8s.io", "events") => &["ev"],
        ("", "limitranges") => &["limits"],
        ("", "namespaces") => &["ns"],
        ("", "nodes") => &["no"],
        ("", "persistentvolumeclaims") => &["pvc"],
        ("", "persistentvolumes") => &["pv"],
        ("", "pods") => &["po"],
        ("", "replicationcontrollers") => &["rc"],
        ("", "resourcequotas") => &["quota"],
        ("", "serviceaccounts") => &["sa"],
        ("", "services") => &["svc"],
        ("apiextensions.k8s.io", "customresourcedefinitions") => &["crd", "crds"],
        ("apps", "daemonsets") => &["ds"],
        ("apps", "deployments") => &["deploy"],
        ("apps", "replicasets") => &["rs"],
        ("apps", "statefulsets") => &["sts"],
        ("autoscaling", "horizontalpodautoscalers") => &["hpa"],
        ("batch", "cronjobs") => &["cj"],
        ("certificates.k8s.io", "certificatesigningrequests") => &["csr"],
        ("networking.k8s.io", "ingresses") => &["ing"],
        ("networking.k8s.io", "ipaddresses") => &["ip"],
        ("networking.k8s.io", "networkpolicies") => &["netpol"],
        ("policy", "poddisruptionbudgets") => &["pdb"],
        ("scheduling.k8s.io", "priorityclasses") => &["pc"],
        ("storage.k8s.io", "storageclasses") => &["sc"],
        _ => &[],
    }
}

/// Discovery categories as a real API server lists them.
fn categories(group: &str, plural: &str) -> &'static [&'static str] {
    match (group, plural) {
        ("", "pods" | "replicationcontrollers" | "services")
        | ("apps", "daemonsets" | "deployments" | "replicasets" | "statefulsets")
        | ("autoscaling", "horizontalpodautoscalers")
        | ("batch", "cronjobs" | "jobs") => &["all"],
        ("admissionregistration.k8s.io", _)
        | ("apiextensions.k8s.io", _)
        | ("apiregistration.k8s.io", _) => &["api-extensions"],
        _ => &[],
    }
}

/// Kinds whose registry strategy sets `metadata.generation` (what a v1.36
/// server answers to a dry-run create of each kind; others have none, even
/// with a spec, such as HorizontalPodAutoscaler or Service).
fn has_generation(group: &str, kind: &str) -> bool {
    matches!(
        (group, kind),
        ("", "Pod" | "PodTemplate" | "ReplicationController")
            | ("admissionregistration.k8s.io", _)
            | ("apiextensions.k8s.io", "CustomResourceDefinition")
            | (
                "apps",
                "DaemonSet" | "Deployment" | "ReplicaSet" | "StatefulSet"
            )
            | ("batch", "CronJob" | "Job")
            | ("discovery.k8s.io", "EndpointSlice")
            | ("flowcontrol.apiserver.k8s.io", _)
            | (
                "networking.k8s.io",
                "Ingress" | "IngressClass" | "NetworkPolicy"
            )
            | ("policy", "PodDisruptionBudget")
            | ("scheduling.k8s.io", "PriorityClass")
    )
}

/// Workloads with the `scale` subresource: (spec, status, selector) paths.
fn scale(group: &str, plural: &str) -> Option<(String, String, Option<String>)> {
    matches!(
        (group, plural),
        ("apps", "deployments" | "replicasets" | "statefulsets") | ("", "replicationcontrollers")
    )
    .then(|| {
        (
            ".spec.replicas".into(),
            ".status.replicas".into(),
            Some(".status.selector".into()),
        )
    })
}

fn has_status(schema: &Value) -> bool {
    schema.pointer("/properties/status").is_some()
}

impl Builtin {
    fn def(&self) -> ResourceDef {
        let strs = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let verbs: &[&str] = match (self.served, self.plural) {
            (Served::CreateOnly, _) => &["create"],
            // a namespace is deleted with its content, never as a collection
            (_, "namespaces") if self.group.is_empty() => &[
                "create", "delete", "get", "list", "patch", "update", "watch",
            ],
            _ => ALL_VERBS,
        };
        ResourceDef {
            group: self.group.into(),
            version: self.version.into(),
            kind: self.kind.into(),
            plural: self.plural.into(),
            singular: self.kind.to_lowercase(),
            namespaced: self.namespaced,
            short_names: strs(short_names(self.group, self.plural)),
            categories: strs(categories(self.group, self.plural)),
            verbs: strs(verbs),
            status_subresource: self.served == Served::Stored && has_status(&(self.schema)()),
            has_generation: has_generation(self.group, self.kind),
            crd: None,
            preferred: true,
            scale: scale(self.group, self.plural),
        }
    }
}

/// The served built-in resource definitions.
pub fn defs() -> Vec<ResourceDef> {
    all()
        .iter()
        .filter(|b| b.served != Served::BodyOnly)
        .map(Builtin::def)
        .collect()
}

/// The protobuf decoder for an `apiVersion`/`kind`.
pub fn decoder(api_version: &str, kind: &str) -> Option<Decoder> {
    all().into_iter().find_map(|b| {
        let av = if b.group.is_empty() {
            b.version.to_string()
        } else {
            format!("{}/{}", b.group, b.version)
        };
        (av == api_version && b.kind == kind).then_some(b.decode)
    })
}
