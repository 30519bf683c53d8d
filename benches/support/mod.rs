//! What the benchmarks against an API server share.

use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use landlord::api::Tenant;

/// Install (or update) Landlord's CRDs and wait until the API serves them.
pub async fn install_crds(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in landlord::api::crds() {
        crds.patch(
            &crd.name_any(),
            &PatchParams::apply("bench").force(),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap();
    }
    let tenants: Api<Tenant> = Api::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    while tenants.list(&ListParams::default().limit(1)).await.is_err() {
        assert!(Instant::now() < deadline, "the CRDs were not served");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
