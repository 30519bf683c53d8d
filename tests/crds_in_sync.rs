//! `crds/` must be exactly what `landlord crdgen` prints; run `make crds` after changing the types.

use kube::CustomResourceExt;
use landlord::api::{Tenant, TenantQuota, TenantUsage};

#[test]
fn committed_crds_match_the_rust_types() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let committed: String = files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let generated = landlord::api::crds_yaml().unwrap();
    assert!(
        committed == generated,
        "crds/ is stale: run `make crds` and commit the result"
    );
}

#[test]
fn names_short_names_and_categories_are_as_designed() {
    let cases = [
        (Tenant::crd(), "tenants", Some("tn")),
        (TenantQuota::crd(), "tenantquotas", Some("tq")),
        (TenantUsage::crd(), "tenantusages", None),
    ];
    for (crd, plural, short) in cases {
        assert_eq!(crd.spec.group, "landlord.dev");
        assert_eq!(crd.spec.scope, "Cluster");
        assert_eq!(crd.spec.names.plural, plural);
        assert_eq!(
            crd.spec.names.short_names.clone().unwrap_or_default(),
            short.map(String::from).into_iter().collect::<Vec<_>>()
        );
        assert_eq!(
            crd.spec.names.categories,
            Some(vec!["landlord".to_string()])
        );
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1alpha1");
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{plural} has a status subresource"
        );
    }
    let columns: Vec<String> = Tenant::crd().spec.versions[0]
        .additional_printer_columns
        .clone()
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(
        columns,
        [
            "Phase",
            "Plan",
            "Namespaces",
            "CPU%",
            "Memory%",
            "Migrated%",
            "State",
            "Display-Name",
            "Age"
        ]
    );
}
