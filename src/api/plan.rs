//! `TenantQuota`: a service plan (free, pro, enterprise) that tenants point at.
//!
//! The same [`TenantQuotaSpec`] is reused for `Tenant.spec.overrides`, so nothing in it carries
//! a schema default: a default there would silently override the plan. Defaults are applied
//! when the effective plan is computed.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

use super::schema;

/// A service plan: Kubernetes quotas, container limits, pod security, engine limits and prices.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "landlord.dev",
    version = "v1alpha1",
    kind = "TenantQuota",
    plural = "tenantquotas",
    shortname = "tq",
    category = "landlord",
    status = "TenantQuotaStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "A service plan that tenants reference through spec.quotaRef.",
    printcolumn(name = "Tenants", type_ = "integer", json_path = ".status.tenants"),
    printcolumn(name = "Max-NS", type_ = "integer", json_path = ".spec.maxNamespaces"),
    printcolumn(
        name = "Pod-Security",
        type_ = "string",
        json_path = ".spec.podSecurity",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct TenantQuotaSpec {
    /// Tenant-wide Kubernetes quota (`requests.cpu`, `limits.memory`, `pods`,
    /// `requests.storage`, `count/services`, ...) summed over all the tenant's namespaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "optional_quantity_map")]
    pub hard: Option<BTreeMap<String, Quantity>>,

    /// Default quota of each namespace, unless the namespace sets its own `hard`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "optional_quantity_map")]
    pub namespace_hard: Option<BTreeMap<String, Quantity>>,

    /// How many namespaces a tenant on this plan may have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 10000))]
    pub max_namespaces: Option<u32>,

    /// Container defaults and bounds, written as a LimitRange into every namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_range: Option<LimitRangeSpec>,

    /// Pod Security Admission level of the tenant's namespaces; `baseline` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_security: Option<PodSecurityLevel>,

    /// Rate limits enforced by the embedded quota engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "rate_list")]
    pub rates: Option<Vec<RateLimit>>,

    /// Slots held while work runs (connections, concurrent tasks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "concurrency_list")]
    pub concurrency: Option<Vec<ConcurrencyLimit>>,

    /// Absolute amounts the tenant's services report (vectors stored, storage bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "gauge_list")]
    pub gauges: Option<Vec<GaugeLimit>>,

    /// The most one check of a dimension may ask for (a task's payload, a result, a message):
    /// a larger amount is refused with `TooLarge` and nothing is charged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "size_list")]
    pub sizes: Option<Vec<SizeLimit>>,

    /// The values a check attribute may take (`queue: [default, emails]`): a check carrying
    /// the attribute `name` with another value is refused with `NotAllowed`, whatever its
    /// dimension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "allowed_list")]
    pub allowed: Option<Vec<AllowedValues>>,

    /// How usage becomes cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing: Option<Pricing>,

    /// Feature flags of the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "optional_features")]
    pub features: Option<Vec<String>>,
}

/// Container defaults and bounds; each map goes from resource name to quantity.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LimitRangeSpec {
    /// Limits given to containers that set none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "optional_quantity_map")]
    pub default: Option<BTreeMap<String, Quantity>>,
    /// Requests given to containers that set none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "optional_quantity_map")]
    pub default_request: Option<BTreeMap<String, Quantity>>,
    /// Smallest request or limit a container may set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "optional_quantity_map")]
    pub min: Option<BTreeMap<String, Quantity>>,
    /// Largest request or limit a container may set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "optional_quantity_map")]
    pub max: Option<BTreeMap<String, Quantity>>,
}

/// Pod Security Admission level (the values are the label values PSA expects).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PodSecurityLevel {
    Restricted,
    #[default]
    Baseline,
    Privileged,
}

impl PodSecurityLevel {
    /// The value of the `pod-security.kubernetes.io/enforce` label.
    pub fn as_label(self) -> &'static str {
        match self {
            Self::Restricted => "restricted",
            Self::Baseline => "baseline",
            Self::Privileged => "privileged",
        }
    }
}

/// One engine rate limit, e.g. `api-calls`: 1000 per `1m`, burst 2000.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("duration(self.per) > duration('0s')").message("per must be a positive duration such as 1s, 1m or 24h"))]
#[x_kube(validation = Rule::new("!has(self.burst) || self.algorithm == 'TokenBucket'").message("burst applies only to the TokenBucket algorithm; remove it or change the algorithm"))]
pub struct RateLimit {
    /// Dimension name, e.g. `api-calls`.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Units allowed per period; 0 denies the dimension.
    #[schemars(range(max = 9007199254740992u64))]
    pub limit: u64,
    /// The period, as a duration: `1s`, `1m`, `1h`, `24h`.
    #[schemars(
        length(min = 2, max = 32),
        regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$")
    )]
    pub per: String,
    /// Bucket capacity for `TokenBucket`: how much may be used at once after a quiet spell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 9007199254740992u64))]
    pub burst: Option<u64>,
    /// How the limit is counted.
    #[serde(default)]
    pub algorithm: Algorithm,
}

/// How a rate limit counts.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Algorithm {
    /// Refills continuously; `burst` is the bucket size.
    #[default]
    TokenBucket,
    /// A window sliding over 10 sub-buckets of the period.
    SlidingWindow,
    /// Windows aligned to the clock (whole hours, whole days) that reset at their edge.
    FixedWindow,
}

/// Slots held while work runs; a holder that dies loses its slots after the lease.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConcurrencyLimit {
    /// Dimension name, e.g. `connections`.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Slots that may be held at once.
    #[schemars(range(max = 1000000000))]
    pub limit: u64,
    /// Seconds a slot lives without renewal (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 86400))]
    pub lease_seconds: Option<u32>,
}

/// An absolute amount a tenant's services report, e.g. `storage-bytes`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("quantity(string(self.limit)).compareTo(quantity('9007199254740992')) <= 0").message("limit must be at most 2^53 (9007199254740992, 8Pi)"))]
pub struct GaugeLimit {
    /// Dimension name.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Largest value that may be reported: a whole number, or a quantity such as `1Gi`.
    #[schemars(schema_with = "schema::whole_quantity")]
    pub limit: Quantity,
}

/// The most one check of dimension `name` may ask for, e.g. `task-bytes` at most `1Mi`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("quantity(string(self.max)).compareTo(quantity('9007199254740992')) <= 0").message("max must be at most 2^53 (9007199254740992, 8Pi)"))]
pub struct SizeLimit {
    /// Dimension name, e.g. `task-bytes`.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Largest amount of one check: a whole number, or a quantity such as `1Mi`.
    #[schemars(schema_with = "schema::whole_quantity")]
    pub max: Quantity,
}

/// The values check attribute `name` may take, e.g. `queue`: `[default, emails]`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AllowedValues {
    /// Attribute name, e.g. `queue` (an Envoy descriptor entry's key).
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$")
    )]
    pub name: String,
    /// The values allowed; an empty list allows none.
    #[schemars(schema_with = "schema::allowed_values")]
    pub values: Vec<String>,
}

/// Prices of the plan in one currency.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Pricing {
    /// ISO 4217 code, e.g. `USD`.
    #[schemars(regex(pattern = "^[A-Z]{3}$"))]
    pub currency: String,
    /// One price per engine dimension or Kubernetes resource.
    #[schemars(length(max = 64))]
    pub items: Vec<PriceItem>,
}

/// `price` per `unit` of an engine dimension (units counted), or of a Kubernetes resource
/// (unit-hours of the tenant's quota `used`, e.g. CPU-hours of `requests.cpu`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.dimension) != has(self.resource)").message("a price item names exactly one of dimension or resource"))]
pub struct PriceItem {
    /// Engine dimension, e.g. `api-calls`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub dimension: Option<String>,
    /// Kubernetes resource, e.g. `requests.cpu`, priced per unit-hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub resource: Option<String>,
    /// How many units one `price` buys (default 1): `1000` calls, `1Gi` of memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "optional_quantity")]
    pub unit: Option<Quantity>,
    /// Price per unit, a decimal with at most six fractional digits.
    #[schemars(regex(pattern = r"^[0-9]{1,12}(\.[0-9]{1,6})?$"))]
    pub price: String,
}

/// What the operator observed about a plan.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TenantQuotaStatus {
    /// Generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// How many tenants use the plan.
    #[serde(default)]
    pub tenants: u32,
    /// Standard conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

fn optional_quantity_map(generator: &mut SchemaGenerator) -> Schema {
    schema::quantity_map(generator)
}

fn optional_quantity(generator: &mut SchemaGenerator) -> Schema {
    schema::quantity(generator)
}

fn optional_features(generator: &mut SchemaGenerator) -> Schema {
    schema::features(generator)
}

fn rate_list(generator: &mut SchemaGenerator) -> Schema {
    schema::named_list::<RateLimit>(generator, 32)
}

fn concurrency_list(generator: &mut SchemaGenerator) -> Schema {
    schema::named_list::<ConcurrencyLimit>(generator, 32)
}

fn gauge_list(generator: &mut SchemaGenerator) -> Schema {
    schema::named_list::<GaugeLimit>(generator, 32)
}

fn size_list(generator: &mut SchemaGenerator) -> Schema {
    schema::named_list::<SizeLimit>(generator, 32)
}

fn allowed_list(generator: &mut SchemaGenerator) -> Schema {
    schema::named_list::<AllowedValues>(generator, 32)
}
