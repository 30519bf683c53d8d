//! The quota rollout: the namespaces' quotas move to their new shares without the sum of
//! their `hard` ever passing the tenant's limit. Every lowering lands first; quotas of
//! namespaces leaving the tenant go next, so their share is free; raises come last and are
//! capped by a fresh read, since pods admitted meanwhile hold part of the headroom.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceQuota;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::ResourceExt;
use kube::api::Api;

use super::{apply, delete};
use crate::controller::build::quotas;
use crate::controller::observe::{World, fresh_quotas};
use crate::controller::{Context, Error};
use crate::quantity::parse_milli;

fn hard_of(q: &ResourceQuota) -> BTreeMap<String, Quantity> {
    q.spec
        .as_ref()
        .and_then(|s| s.hard.clone())
        .unwrap_or_default()
}

fn find<'a>(list: &'a [ResourceQuota], like: &ResourceQuota) -> Option<&'a ResourceQuota> {
    list.iter()
        .find(|q| q.name_any() == like.name_any() && q.namespace() == like.namespace())
}

fn api(ctx: &Context, q: &ResourceQuota) -> Api<ResourceQuota> {
    Api::namespaced(ctx.client.clone(), &q.namespace().unwrap_or_default())
}

/// Whether applying `desired` would write any quota (or the world holds one no longer
/// wanted).
pub fn needs_writes(world: &World, desired: &[ResourceQuota]) -> bool {
    world.quotas.iter().any(|q| find(desired, q).is_none())
        || desired.iter().any(|q| {
            let mut stamped = q.clone();
            super::stamp(&mut stamped);
            super::needs_apply(&stamped, find(&world.quotas, q))
        })
}

/// Lower, free and cap: returns the quotas to apply (with every raise made safe).
///
/// `world.quotas` must have been read afresh when any quota is to change (see
/// [`needs_writes`]; `provision` does so): when nothing is lowered or deleted first, the caps
/// are computed from them without reading again.
pub async fn roll_out(
    ctx: &Context,
    world: &World,
    desired: &[ResourceQuota],
    tenant_hard: &BTreeMap<String, Quantity>,
) -> Result<Vec<ResourceQuota>, Error> {
    let mut changed = false;
    for quota in desired {
        let Some(live) = find(&world.quotas, quota) else {
            continue;
        };
        if let Some(step) = quotas::lowering_step(&hard_of(live), &hard_of(quota))? {
            let mut lowered = quota.clone();
            lowered.spec.as_mut().expect("quotas have a spec").hard = Some(step);
            apply(&api(ctx, quota), lowered, Some(live), &()).await?;
            changed = true;
        }
    }
    for departing in world.quotas.iter().filter(|q| find(desired, q).is_none()) {
        delete(&api(ctx, departing), &departing.name_any()).await?;
        changed = true;
    }
    cap_raises(ctx, world, desired, tenant_hard, changed).await
}

/// The desired quotas with every raise limited to the tenant's really free headroom, read
/// afresh after the lowerings (`changed`); no extra read when nothing is raised, or when
/// nothing was written since `world.quotas` were read.
async fn cap_raises(
    ctx: &Context,
    world: &World,
    desired: &[ResourceQuota],
    tenant_hard: &BTreeMap<String, Quantity>,
    changed: bool,
) -> Result<Vec<ResourceQuota>, Error> {
    let raises = desired.iter().any(|q| {
        let live = find(&world.quotas, q).map(hard_of).unwrap_or_default();
        hard_of(q).iter().any(|(r, v)| {
            tenant_hard.contains_key(r)
                && live
                    .get(r)
                    .is_none_or(|l| parse_milli(&l.0) < parse_milli(&v.0))
        })
    });
    if !raises {
        return Ok(desired.to_vec());
    }
    let namespaces: Vec<String> = desired.iter().filter_map(|q| q.namespace()).collect();
    let fresh = if changed {
        fresh_quotas(&ctx.client, namespaces.iter().map(String::as_str)).await?
    } else {
        let mut observed = world.observed_quotas();
        observed.retain(|ns, _| namespaces.contains(ns));
        observed
    };
    let targets: quotas::Quotas = desired
        .iter()
        .map(|q| (q.namespace().unwrap_or_default(), hard_of(q)))
        .collect();
    let capped = quotas::cap_raises(tenant_hard, &targets, &fresh)?;
    Ok(desired
        .iter()
        .map(|q| {
            let mut q = q.clone();
            if let Some(hard) = capped.get(&q.namespace().unwrap_or_default()) {
                q.spec.get_or_insert_with(Default::default).hard = Some(hard.clone());
            }
            q
        })
        .collect())
}
