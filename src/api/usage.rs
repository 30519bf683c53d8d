//! `TenantUsage`: the durable usage ledger, one object per tenant and billing month.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Usage of one tenant in one billing period, named `<tenant>-<YYYY-MM>`.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "landlord.dev",
    version = "v1alpha1",
    kind = "TenantUsage",
    plural = "tenantusages",
    category = "landlord",
    status = "TenantUsageStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "Metered usage of one tenant in one billing period (a month), written by the quota engine.",
    printcolumn(name = "Tenant", type_ = "string", json_path = ".spec.tenant"),
    printcolumn(name = "Period", type_ = "string", json_path = ".spec.period"),
    printcolumn(name = "Cost", type_ = "string", json_path = ".status.cost.amount"),
    printcolumn(name = "Currency", type_ = "string", json_path = ".status.cost.currency"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("self.metadata.name == self.spec.tenant + '-' + self.spec.period").message("a TenantUsage is named <tenant>-<period>"),
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self == oldSelf").message("tenant and period of a TenantUsage cannot change"))]
pub struct TenantUsageSpec {
    /// The tenant whose usage this is.
    #[schemars(
        length(min = 1, max = 40),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub tenant: String,
    /// Billing period, `YYYY-MM` (UTC).
    #[schemars(regex(pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])$"))]
    pub period: String,
}

/// Totals of the period so far.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TenantUsageStatus {
    /// Engine dimensions: units allowed and denied this period, and per UTC day.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dimensions: BTreeMap<String, DimensionUsage>,
    /// Kubernetes resources: unit-hours of quota `used` this period (e.g. CPU-hours).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resources: BTreeMap<String, String>,
    /// Cost of the period so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<super::tenant::CostStatus>,
    /// The moment the numbers were taken from the engine for the last write, to the
    /// microsecond: usage counted after it is not in this object yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_flush: Option<MicroTime>,
}

/// Counters of one engine dimension.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DimensionUsage {
    pub allowed: u64,
    pub denied: u64,
    /// Allowed units per UTC day, keyed `DD`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub daily: BTreeMap<String, u64>,
}
