//! Namespaces: applied first (everything else lives in them) and never deleted as orphans:
//! one that leaves the tenant ends by its deletion policy.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::{apply, delete};
use crate::api::DeletionPolicy;
use crate::controller::{Context, Error};
use crate::naming::FIELD_MANAGER;

/// Apply each wanted namespace over its live counterpart.
pub async fn apply_all(
    ctx: &Context,
    wanted: &[Namespace],
    live: &[Namespace],
) -> Result<(), Error> {
    let api: Api<Namespace> = Api::all(ctx.client.clone());
    for ns in wanted {
        let current = live.iter().find(|l| l.name_any() == ns.name_any());
        apply(&api, ns.clone(), current, &()).await?;
    }
    Ok(())
}

/// End every live namespace that is not wanted, by `policy`.
pub async fn end_unwanted(
    ctx: &Context,
    wanted: &[Namespace],
    live: &[Namespace],
    policy: DeletionPolicy,
) -> Result<(), Error> {
    let wanted: BTreeSet<String> = wanted.iter().map(|n| n.name_any()).collect();
    for ns in live.iter().filter(|n| !wanted.contains(&n.name_any())) {
        end(ctx, &ns.name_any(), policy).await?;
    }
    Ok(())
}

/// `Delete` deletes the namespace; `Retain` and (until archiving exists) `Archive` release
/// it: applying an empty namespace under our field manager drops every label and annotation
/// we set, and nothing anyone else set.
async fn end(ctx: &Context, name: &str, policy: DeletionPolicy) -> Result<(), Error> {
    let api: Api<Namespace> = Api::all(ctx.client.clone());
    match policy {
        DeletionPolicy::Delete => delete(&api, name).await,
        DeletionPolicy::Retain | DeletionPolicy::Archive => {
            let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
            api.patch(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
            .map_err(Error::Apply)?;
            Ok(())
        }
    }
}
