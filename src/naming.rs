//! Names, labels and the ownership test: everything that decides what Landlord writes under
//! which name, and what it may call its own. One place, so that the reconciler, the ledger
//! and the engine's authentication can never disagree.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;

pub use crate::api::TENANT_LABEL;

/// The one field manager Landlord writes with.
pub const FIELD_MANAGER: &str = "landlord";
/// Finalizer that runs the deletion policy before a Tenant goes.
pub const FINALIZER: &str = "landlord.dev/cleanup";
/// Annotation holding the hash of the applied object.
pub const APPLIED: &str = "landlord.dev/applied";
/// Marks objects Landlord manages, next to the tenant label.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "landlord");

/// Names of the objects Landlord writes into each tenant namespace.
pub const QUOTA_NAME: &str = "landlord-quota";
pub const LIMITS_NAME: &str = "landlord-limits";
pub const ISOLATION_NAME: &str = "landlord-isolation";
/// Owners' RoleBinding, suffixed with the role it grants (`-admin`, `-view`): `roleRef` is
/// immutable, so suspending a tenant replaces the binding rather than editing it.
pub const OWNERS_NAME: &str = "landlord-owners";

/// `<tenant>-<name>`.
pub fn namespace_name(tenant: &str, short: &str) -> String {
    format!("{tenant}-{short}")
}

/// Name of the cluster-wide role (and its binding) that lets owners read their own Tenant.
pub fn reader_name(tenant: &str) -> String {
    format!("landlord:tenant:{tenant}:reader")
}

/// `<tenant>-<YYYY-MM>`: one TenantUsage per tenant and month.
pub fn usage_name(tenant: &str, period: &str) -> String {
    format!("{tenant}-{period}")
}

/// The labels on everything Landlord writes for `tenant`.
pub fn labels(tenant: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (TENANT_LABEL.to_string(), tenant.to_string()),
        (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
    ])
}

/// Whether a namespace labelled for `tenant` was made by Landlord for it. The label alone is
/// not proof: anyone who can label a namespace could make Landlord delete it. Ours are named
/// `<tenant>-…` and carry our field manager's entry.
pub fn is_ours(ns: &Namespace, tenant: &str) -> bool {
    ns.name_any().starts_with(&format!("{tenant}-"))
        && ns
            .metadata
            .managed_fields
            .iter()
            .flatten()
            .any(|m| m.manager.as_deref() == Some(FIELD_MANAGER))
}

/// Names of the TenantUsage objects owners may read: this month and the eleven before it.
pub fn usage_names(tenant: &str, now: jiff::Timestamp) -> Vec<String> {
    let date = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    let (mut year, mut month) = (date.year() as i32, date.month() as i32);
    let mut names = Vec::with_capacity(12);
    for _ in 0..12 {
        names.push(usage_name(tenant, &format!("{year:04}-{month:02}")));
        month -= 1;
        if month == 0 {
            month = 12;
            year -= 1;
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_names_cover_a_year_across_the_new_year() {
        let names = usage_names("acme", "2026-02-10T00:00:00Z".parse().unwrap());
        assert_eq!(names.len(), 12);
        assert_eq!(names[0], "acme-2026-02");
        assert_eq!(names[1], "acme-2026-01");
        assert_eq!(names[2], "acme-2025-12");
        assert_eq!(names[11], "acme-2025-03");
    }

    #[test]
    fn a_label_alone_does_not_make_a_namespace_ours() {
        let ns = |name: &str, manager: &str| {
            let mut n = Namespace::default();
            n.metadata.name = Some(name.into());
            n.metadata.managed_fields = Some(vec![
                k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry {
                    manager: Some(manager.into()),
                    ..Default::default()
                },
            ]);
            n
        };
        assert!(is_ours(&ns("acme-prod", "landlord"), "acme"));
        assert!(!is_ours(&ns("acme-prod", "kubectl"), "acme"));
        assert!(!is_ours(&ns("prod", "landlord"), "acme"));
    }
}
