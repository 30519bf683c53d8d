//! The custom resources Landlord serves (group `landlord.dev`, version `v1alpha1`).
//!
//! CRD YAML under `crds/` is generated from these types by `landlord crdgen`; a test fails when
//! the two drift apart.

// kube-derive's repeated `printcolumn(type_ = ...)` arguments trip clippy's
// duplicated-attribute lint; they are distinct columns, not duplicates.
#[allow(clippy::duplicated_attributes)]
mod plan;
pub mod schema;
#[allow(clippy::duplicated_attributes)]
mod tenant;
#[allow(clippy::duplicated_attributes)]
mod usage;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

pub use plan::*;
pub use tenant::*;
pub use usage::*;

/// API group of every Landlord kind.
pub const GROUP: &str = "landlord.dev";

/// The label every object Landlord owns carries, with the tenant's name as value.
pub const TENANT_LABEL: &str = "landlord.dev/tenant";

/// Every CRD Landlord serves, sorted by name (the order of the files under `crds/`).
pub fn crds() -> Vec<CustomResourceDefinition> {
    let mut crds = vec![Tenant::crd(), TenantQuota::crd(), TenantUsage::crd()];
    crds.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    crds
}

/// The CRDs as one multi-document YAML stream, each document starting with `---`.
pub fn crds_yaml() -> Result<String, serde_saphyr::ser_error::Error> {
    let mut out = String::new();
    for crd in crds() {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&crd)?);
    }
    Ok(out)
}
