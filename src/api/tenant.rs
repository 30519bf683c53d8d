//! `Tenant`: one customer, team or environment, and everything Landlord knows about it.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube::{CustomResource, KubeSchema};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use super::plan::TenantQuotaSpec;
use super::schema;

/// Longest tenant name: `<tenant>-<namespace>` must fit the 63-character namespace limit.
pub const MAX_TENANT_NAME: usize = 40;

/// A tenant: its plan, namespaces, owners, isolation and desired life state.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "landlord.dev",
    version = "v1alpha1",
    kind = "Tenant",
    plural = "tenants",
    shortname = "tn",
    category = "landlord",
    status = "TenantStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "A tenant of the cluster: its namespaces, quotas, isolation, owners and life state.",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Plan", type_ = "string", json_path = ".spec.quotaRef"),
    printcolumn(name = "Namespaces", type_ = "integer", json_path = ".status.namespaceCount"),
    printcolumn(name = "CPU%", type_ = "integer", json_path = ".status.cpuUtilization"),
    printcolumn(name = "Memory%", type_ = "integer", json_path = ".status.memoryUtilization"),
    printcolumn(name = "Migrated%", type_ = "integer", json_path = ".status.migration.percentage"),
    printcolumn(name = "State", type_ = "string", json_path = ".spec.state", priority = 1),
    printcolumn(name = "Display-Name", type_ = "string", json_path = ".spec.displayName", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("size(self.metadata.name) <= 40").message("tenant name must be at most 40 characters so that <tenant>-<namespace> fits the 63-character namespace limit"),
    validation = Rule::new("self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')").message("tenant name must be a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit"),
    validation = Rule::new("!has(self.spec.namespaces) || self.spec.namespaces.all(n, size(self.metadata.name) + size(n.name) <= 62)").message("every namespace name <tenant>-<name> must fit in 63 characters; shorten the tenant or namespace name"),
)]
#[serde(rename_all = "camelCase")]
pub struct TenantSpec {
    /// Human name, e.g. "ACME Corporation".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub display_name: Option<String>,

    /// Name of the TenantQuota (plan) this tenant is on; absent means no plan limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub quota_ref: Option<String>,

    /// Per-tenant changes on top of the plan, field by field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrides: Option<TenantQuotaSpec>,

    /// Users, groups and service accounts bound to `admin` in every tenant namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub owners: Vec<Owner>,

    /// Namespaces of the tenant; each becomes `<tenant>-<name>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "namespace_list")]
    pub namespaces: Vec<TenantNamespace>,

    /// Network isolation from other tenants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<Isolation>,

    /// Desired life state.
    #[serde(default)]
    pub state: TenantState,

    /// What deleting the Tenant does to its namespaces.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// Days an archive is kept after archival or deletion before it is purged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 36500))]
    pub retention_days: Option<u32>,

    /// Move or copy the tenant to another cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration: Option<Migration>,

    /// Feature flags in addition to the plan's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "schema::features")]
    pub features: Vec<String>,
}

/// A subject bound to the `admin` ClusterRole in each of the tenant's namespaces.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.kind != 'ServiceAccount' || has(self.__namespace__)").message("a ServiceAccount owner needs a namespace"))]
#[x_kube(validation = Rule::new("self.kind == 'ServiceAccount' || !has(self.__namespace__)").message("namespace applies only to ServiceAccount owners; remove it"))]
pub struct Owner {
    /// `User`, `Group` or `ServiceAccount`.
    pub kind: OwnerKind,
    /// User, group or service account name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of a ServiceAccount owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub namespace: Option<String>,
}

/// Kinds of RBAC subject an owner can be.
#[derive(
    Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord,
)]
pub enum OwnerKind {
    User,
    Group,
    ServiceAccount,
}

/// One namespace of the tenant.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TenantNamespace {
    /// Short name; the namespace is `<tenant>-<name>`.
    #[schemars(
        length(min = 1, max = 62),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Quota of this namespace, replacing the plan's `namespaceHard` resource by resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::quantity_map")]
    pub hard: Option<BTreeMap<String, Quantity>>,
    /// Extra labels on the namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::user_labels")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Extra annotations on the namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::user_labels")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// Network isolation settings.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Isolation {
    /// `Strict` (default) or `Open`.
    #[serde(default)]
    pub network: NetworkIsolation,
    /// Namespaces (by label selector) allowed to reach the tenant: ingress controllers, monitoring.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub allow_from: Vec<LabelSelector>,
}

/// How the tenant's namespaces are fenced off.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NetworkIsolation {
    /// Ingress only from the tenant's own namespaces and `allowFrom`; egress open except to
    /// other tenants; DNS always allowed.
    #[default]
    Strict,
    /// No network policies.
    Open,
}

/// Desired life state.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TenantState {
    #[default]
    Active,
    /// Nothing new may start; owners can only view; the engine denies everything.
    Suspended,
    /// Workloads scaled to zero, replica counts remembered.
    Hibernated,
    /// Objects exported to the archive store, namespaces removed.
    Archived,
}

/// What deleting the Tenant does to its namespaces.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeletionPolicy {
    /// Delete the namespaces and all they hold.
    Delete,
    /// Archive the namespaces' objects, then delete the namespaces.
    #[default]
    Archive,
    /// Leave the namespaces, without Landlord's labels, quotas, policies and bindings.
    Retain,
}

/// Migration to another cluster.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Migration {
    /// The Secret holding the target cluster's kubeconfig.
    pub target_ref: SecretKeyRef,
    /// `Copy` keeps the source; `Move` archives it once the target is verified.
    #[serde(default)]
    pub mode: MigrationMode,
}

/// A key of a Secret in a namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Secret name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Secret namespace.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub namespace: String,
    /// Key holding the kubeconfig (default `kubeconfig`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub key: Option<String>,
}

/// Whether migration keeps the source.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MigrationMode {
    #[default]
    Copy,
    Move,
}

/// Lifecycle phase reported in status.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Phase {
    #[default]
    Pending,
    Provisioning,
    Active,
    Suspended,
    Hibernated,
    Archiving,
    Archived,
    Restoring,
    Migrating,
    Terminating,
    Failed,
}

/// What the operator observed and did.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TenantStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Provisioned`, `QuotaHealthy`, `NetworkIsolated`, `Migrated`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions")]
    pub conditions: Vec<Condition>,
    /// Namespaces the tenant owns now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// `namespaces` counted, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_count: Option<u32>,
    /// Tenant-wide `requests.cpu` utilization in percent, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_utilization: Option<u32>,
    /// Tenant-wide `requests.memory` utilization in percent, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_utilization: Option<u32>,
    /// Per Kubernetes resource or engine dimension.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub usage: BTreeMap<String, ResourceUsage>,
    /// Per engine rate dimension.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rates: BTreeMap<String, RateStatus>,
    /// Cost of the current billing period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<CostStatus>,
    /// The plan after inheritance and overrides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective: Option<EffectivePlan>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<ArchiveStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration: Option<MigrationStatus>,
}

/// Used against hard for one resource or dimension.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResourceUsage {
    pub used: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hard: Option<String>,
    /// `used / hard` in whole percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utilization: Option<u32>,
}

/// Engine counters of one rate dimension in the current period.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RateStatus {
    /// Recent rate, units per second, as a decimal string.
    pub rate: String,
    /// The configured limit, e.g. `1000/1m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    pub allowed: u64,
    pub denied: u64,
}

/// Cost of a billing period.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CostStatus {
    /// `YYYY-MM`.
    pub period: String,
    /// Decimal amount.
    pub amount: String,
    pub currency: String,
}

/// The effective plan: the TenantQuota merged with the tenant's overrides.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EffectivePlan {
    /// Name of the plan it started from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// Plan features and the tenant's, deduplicated and sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
    /// The merged plan.
    #[serde(default)]
    #[schemars(schema_with = "preserved_object")]
    pub spec: TenantQuotaSpec,
}

/// Where and what was archived.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ArchiveStatus {
    pub location: String,
    pub object_count: u64,
    pub bytes: u64,
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purge_after: Option<Time>,
    /// When the tenant was restored from this archive (the archive stays until purged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_at: Option<Time>,
}

/// Progress of a migration.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MigrationStatus {
    /// `Planning`, `Copying`, `Verifying`, `Cutover`, `Done`, `Failed` or `Cancelled`.
    pub phase: String,
    /// The target this run copies to: a run goes on, after `spec.migration` is removed during
    /// cutover, and a changed `spec.migration` starts a new run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<SecretKeyRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<MigrationMode>,
    /// Objects in the plan (the tenant's namespaced objects, as an archive selects them).
    pub total_items: u64,
    /// Objects copied so far: checkpointed after every batch.
    pub completed_items: u64,
    pub percentage: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
    /// sha256 over the plan's objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// The last failure, with what to do; cleared when the run moves on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Conditions keyed by `type`, as `metav1.Condition` lists are upstream.
fn conditions(generator: &mut SchemaGenerator) -> Schema {
    let items = generator.subschema_for::<Condition>();
    json_schema!({
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
        "items": items,
    })
}

/// The effective plan is written by the operator only, already validated as plan and overrides;
/// repeating the plan's CEL rules here would spend the CRD's cost budget for nothing.
fn preserved_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

fn namespace_list(generator: &mut SchemaGenerator) -> Schema {
    schema::named_list::<TenantNamespace>(generator, 64)
}
