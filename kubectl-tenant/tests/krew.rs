//! The krew manifest names this version and the binary, and says its URLs and checksums are
//! placeholders until the release workflow fills them.

#[test]
fn the_krew_manifest_matches_the_crate() {
    let text = include_str!("../krew/tenant.yaml");
    let manifest: serde_json::Value = serde_saphyr::from_str(text).unwrap();
    assert_eq!(manifest["kind"], "Plugin");
    assert_eq!(manifest["metadata"]["name"], "tenant");
    assert_eq!(
        manifest["spec"]["version"],
        format!("v{}", env!("CARGO_PKG_VERSION"))
    );
    let platforms = manifest["spec"]["platforms"].as_array().unwrap();
    assert_eq!(platforms.len(), 4);
    for p in platforms {
        assert_eq!(p["bin"], "kubectl-tenant");
        assert_eq!(p["sha256"].as_str().unwrap().len(), 64);
    }
    // Every URL and checksum line says who fills it.
    let marked = text
        .lines()
        .filter(|l| l.contains("uri:") || l.contains("sha256:"))
        .all(|l| l.ends_with("# PLACEHOLDER, set by the release workflow"));
    assert!(marked);
}
