//! Migration I/O: a tenant copied (or moved) to the cluster whose kubeconfig a Secret holds.
//! `migration` decides; this module reads the source, writes the target and records progress.
//!
//! What goes: the plan (`TenantQuota`) when the target lacks it, the `Tenant` (same spec
//! without `migration`), its namespaces under Landlord's field manager and labels (so the
//! target's Landlord owns them), every namespaced object an archive would keep, in dependency
//! order and in batches, and the `TenantUsage` ledgers. What does not: volume data, and
//! cluster-scoped objects other than those.
//!
//! Every write is a server-side apply by name, so a batch run twice writes the same objects
//! and never duplicates one. Progress is recorded after every batch, in the status and on the
//! target's Tenant (`migration::CHECKPOINT`), so a copy interrupted anywhere resumes at the
//! last batch it finished.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::events::EventType;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use super::migration::{self, Comparison, Next, Stage};
use super::status::conditions::{ConditionType, Observation, Reason};
use super::status::{self};
use super::{Context, Error, hibernate};
use crate::api::{
    MigrationMode, MigrationStatus, Phase, SecretKeyRef, Tenant, TenantQuota, TenantState,
    TenantUsage,
};
use crate::archive::{self, ArchiveError};
use crate::naming::{FIELD_MANAGER, TENANT_LABEL, is_ours};

/// The field manager of everything a migration writes on the target but the namespaces
/// (which are Landlord's, so that the target's Landlord owns them).
pub const MIGRATION_MANAGER: &str = "landlord-migration";
/// The key of the target Secret read when `targetRef.key` is not set.
pub const DEFAULT_KEY: &str = "kubeconfig";
/// How long one reconcile copies before it lets the controller look at the tenant again (a
/// cancellation, a deletion): the copy goes on at once in the next reconcile.
const SLICE: Duration = Duration::from_secs(5);

/// The objects a run copies, in the order they are written, and their checksum: kept in
/// memory between reconciles, made again after a restart.
pub struct Planned {
    pub checksum: String,
    pub objects: Vec<Value>,
}

/// Everything that stops a migration. Messages say what to do; [`MigrationError::reason`] is
/// the condition's and the Event's reason.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error(
        "Secret {namespace}/{name} named by spec.migration.targetRef does not exist: create it with the target cluster's kubeconfig under the key {key}"
    )]
    SecretMissing {
        namespace: String,
        name: String,
        key: String,
    },
    #[error(
        "Secret {namespace}/{name} has no key {key}: put the target cluster's kubeconfig under it, or name the right key in spec.migration.targetRef.key"
    )]
    KeyMissing {
        namespace: String,
        name: String,
        key: String,
    },
    #[error(
        "the key {key} of Secret {namespace}/{name} is not a usable kubeconfig ({reason}): store the target cluster's kubeconfig there"
    )]
    NotAKubeconfig {
        namespace: String,
        name: String,
        key: String,
        reason: String,
    },
    #[error(
        "Secret {namespace}/{name} could not be read ({reason}): let Landlord's ServiceAccount get Secrets in {namespace}"
    )]
    SecretUnreadable {
        namespace: String,
        name: String,
        reason: String,
    },
    #[error("the target cluster is unreachable ({0}); Landlord retries with backoff")]
    TargetUnreachable(String),
    #[error(
        "the target cluster refused the kubeconfig's credentials ({0}): give its user rights to create Tenants, TenantQuotas, TenantUsages, namespaces and the tenant's objects there"
    )]
    TargetUnauthorized(String),
    #[error(
        "the target cluster does not serve Landlord's CRDs (landlord.dev/v1alpha1 {0}): install Landlord there first (helm install landlord, or kubectl apply -f crds/)"
    )]
    TargetNotReady(String),
    #[error(
        "namespace(s) {} exist on the target and do not belong to this tenant: delete or rename them on the target, or rename them in spec.namespaces", .0.join(", ")
    )]
    NamespaceConflict(Vec<String>),
    #[error("reading the tenant's objects at the source failed: {0}")]
    Source(ArchiveError),
    #[error(
        "putting the source's workloads to sleep for the cutover failed: {0}; Landlord retries with backoff"
    )]
    Suspend(String),
    #[error("writing to the target failed: {0}; Landlord retries with backoff")]
    Write(String),
    #[error("{} object(s) differ between the source and the target after copying: {}", .0.len(), shown(.0))]
    VerificationFailed(Vec<String>),
}

fn shown(lines: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut text = lines[..lines.len().min(SHOWN)].join("; ");
    if lines.len() > SHOWN {
        text.push_str(&format!(" and {} more", lines.len() - SHOWN));
    }
    text
}

impl MigrationError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::SecretMissing { .. } => "MigrationSecretMissing",
            Self::KeyMissing { .. } => "MigrationSecretKeyMissing",
            Self::NotAKubeconfig { .. } => "NotAKubeconfig",
            Self::SecretUnreadable { .. } => "MigrationSecretUnreadable",
            Self::TargetUnreachable(_) => "TargetUnreachable",
            Self::TargetUnauthorized(_) => "TargetUnauthorized",
            Self::TargetNotReady(_) => "TargetNotReady",
            Self::NamespaceConflict(_) => "TargetNamespaceConflict",
            Self::Source(_) => "SourceExportFailed",
            Self::Suspend(_) => "CutoverSuspendFailed",
            Self::Write(_) => "TargetWriteFailed",
            Self::VerificationFailed(_) => "VerificationFailed",
        }
    }

    /// Someone has to act (a Secret, the target's CRDs or RBAC, a conflict): the run shows
    /// `Failed`. Anything else may pass by itself and keeps the stage it happened in.
    pub fn needs_action(&self) -> bool {
        !matches!(
            self,
            Self::TargetUnreachable(_) | Self::Source(_) | Self::Suspend(_) | Self::Write(_)
        )
    }
}

/// A failure of a request to the target, by what it means for the run.
fn at_target(e: kube::Error) -> MigrationError {
    match e {
        kube::Error::Api(s) if matches!(s.code, 401 | 403) => {
            MigrationError::TargetUnauthorized(s.message)
        }
        kube::Error::Api(s) => MigrationError::Write(format!("{} ({})", s.message, s.code)),
        other => MigrationError::TargetUnreachable(other.to_string()),
    }
}

/// An archive-module failure while reading or writing the target.
fn archive_at_target(e: ArchiveError) -> MigrationError {
    match e {
        ArchiveError::Export { what, source } => {
            MigrationError::TargetUnreachable(format!("reading {what}: {source}"))
        }
        ArchiveError::Import { object, message } => {
            MigrationError::Write(format!("{object}: {message}"))
        }
        other => MigrationError::Write(other.to_string()),
    }
}

/// A client for the cluster whose kubeconfig `target` names.
pub async fn connect(source: &Client, target: &SecretKeyRef) -> Result<Client, MigrationError> {
    let key = target.key.clone().unwrap_or_else(|| DEFAULT_KEY.into());
    let (namespace, name) = (target.namespace.clone(), target.name.clone());
    let secrets: Api<Secret> = Api::namespaced(source.clone(), &namespace);
    let secret = match secrets.get_opt(&name).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return Err(MigrationError::SecretMissing {
                namespace,
                name,
                key,
            });
        }
        Err(e) => {
            return Err(MigrationError::SecretUnreadable {
                namespace,
                name,
                reason: e.to_string(),
            });
        }
    };
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(&key))
        .map(|b| b.0.clone())
        .or_else(|| {
            let text = secret.string_data.as_ref()?.get(&key)?;
            Some(text.clone().into_bytes())
        });
    let Some(bytes) = bytes else {
        return Err(MigrationError::KeyMissing {
            namespace,
            name,
            key,
        });
    };
    let bad = |reason: String| MigrationError::NotAKubeconfig {
        namespace: namespace.clone(),
        name: name.clone(),
        key: key.clone(),
        reason,
    };
    let text = String::from_utf8(bytes).map_err(|_| bad("it is not UTF-8 text".into()))?;
    let kubeconfig = Kubeconfig::from_yaml(&text).map_err(|e| bad(e.to_string()))?;
    if kubeconfig.clusters.is_empty() {
        return Err(bad("it names no cluster".into()));
    }
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| bad(e.to_string()))?;
    // A target that hangs must not hold the tenant's reconcile for minutes.
    config.connect_timeout = Some(Duration::from_secs(10));
    config.read_timeout = Some(Duration::from_secs(60));
    Client::try_from(config).map_err(|e| bad(e.to_string()))
}

/// The target serves Landlord's kinds and has no namespace of this tenant's that is someone
/// else's.
async fn check_target(
    target: &Client,
    tenant: &str,
    namespaces: &[Namespace],
) -> Result<(), MigrationError> {
    let served = |plural: &'static str, e: kube::Error| match e {
        kube::Error::Api(s) if s.code == 404 => MigrationError::TargetNotReady(plural.into()),
        other => at_target(other),
    };
    let one = ListParams::default().limit(1);
    Api::<Tenant>::all(target.clone())
        .list_metadata(&one)
        .await
        .map_err(|e| served("tenants", e))?;
    Api::<TenantQuota>::all(target.clone())
        .list_metadata(&one)
        .await
        .map_err(|e| served("tenantquotas", e))?;
    Api::<TenantUsage>::all(target.clone())
        .list_metadata(&one)
        .await
        .map_err(|e| served("tenantusages", e))?;
    let api: Api<Namespace> = Api::all(target.clone());
    let mut conflicts = Vec::new();
    for ns in namespaces {
        let Some(found) = api.get_opt(&ns.name_any()).await.map_err(at_target)? else {
            continue;
        };
        let labelled = found.labels().get(TENANT_LABEL).map(String::as_str) == Some(tenant);
        if !(labelled && is_ours(&found, tenant)) {
            conflicts.push(found.name_any());
        }
    }
    if conflicts.is_empty() {
        Ok(())
    } else {
        Err(MigrationError::NamespaceConflict(conflicts))
    }
}

/// What moves, in the order it is written: the same selection as an archive.
async fn plan(source: &Client, namespaces: &[String]) -> Result<Planned, MigrationError> {
    let exported = archive::export(source, namespaces)
        .await
        .map_err(MigrationError::Source)?;
    let objects: Vec<Value> = archive::order(&exported).into_iter().cloned().collect();
    Ok(Planned {
        checksum: migration::plan_checksum(&objects),
        objects,
    })
}

/// The plan when the target lacks it, the Tenant (spec without `migration`) and its
/// namespaces. Idempotent.
async fn prepare(
    source: &Client,
    target: &Client,
    tenant: &Tenant,
    namespaces: &[Namespace],
) -> Result<(), MigrationError> {
    let params = PatchParams::apply(MIGRATION_MANAGER).force();
    if let Some(plan) = &tenant.spec.quota_ref {
        let there: Api<TenantQuota> = Api::all(target.clone());
        if there.get_opt(plan).await.map_err(at_target)?.is_none() {
            let here: Api<TenantQuota> = Api::all(source.clone());
            if let Some(found) = here.get_opt(plan).await.map_err(|e| {
                MigrationError::Source(ArchiveError::Export {
                    what: format!("TenantQuota {plan}"),
                    source: Box::new(e),
                })
            })? {
                let body = json!({
                    "apiVersion": "landlord.dev/v1alpha1", "kind": "TenantQuota",
                    "metadata": {"name": plan, "labels": found.labels(), "annotations": user_annotations(found.annotations())},
                    "spec": found.spec,
                });
                there
                    .patch(plan, &params, &Patch::Apply(&body))
                    .await
                    .map_err(at_target)?;
            }
        }
    }
    let mut spec = tenant.spec.clone();
    spec.migration = None;
    let name = tenant.name_any();
    let body = json!({
        "apiVersion": "landlord.dev/v1alpha1", "kind": "Tenant",
        "metadata": {"name": name, "labels": tenant.labels(), "annotations": user_annotations(tenant.annotations())},
        "spec": spec,
    });
    Api::<Tenant>::all(target.clone())
        .patch(&name, &params, &Patch::Apply(&body))
        .await
        .map_err(at_target)?;
    let api: Api<Namespace> = Api::all(target.clone());
    let ours = PatchParams::apply(FIELD_MANAGER).force();
    for ns in namespaces {
        let mut ns = ns.clone();
        ns.metadata.owner_references = None;
        api.patch(&ns.name_any(), &ours, &Patch::Apply(&ns))
            .await
            .map_err(at_target)?;
    }
    Ok(())
}

/// Annotations worth carrying to another cluster: not kubectl's record of its last apply
/// (it names this cluster's object) and not the migration checkpoint.
fn user_annotations(
    annotations: &std::collections::BTreeMap<String, String>,
) -> std::collections::BTreeMap<String, String> {
    annotations
        .iter()
        .filter(|(k, _)| {
            k.as_str() != "kubectl.kubernetes.io/last-applied-configuration"
                && k.as_str() != migration::CHECKPOINT
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

async fn read_checkpoint(
    target: &Client,
    tenant: &str,
) -> Result<Option<(String, u64)>, MigrationError> {
    let found = Api::<Tenant>::all(target.clone())
        .get_metadata_opt(tenant)
        .await
        .map_err(at_target)?;
    Ok(found
        .and_then(|t| t.annotations().get(migration::CHECKPOINT).cloned())
        .and_then(|v| migration::parse_checkpoint(&v).map(|(c, n)| (c.to_string(), n))))
}

async fn write_checkpoint(
    target: &Client,
    tenant: &str,
    checksum: &str,
    completed: u64,
) -> Result<(), MigrationError> {
    let body = json!({
        "apiVersion": "landlord.dev/v1alpha1", "kind": "Tenant",
        "metadata": {"name": tenant, "annotations": {migration::CHECKPOINT: migration::checkpoint_value(checksum, completed)}},
    });
    Api::<Tenant>::all(target.clone())
        .patch(
            tenant,
            &PatchParams::apply("landlord-migration-checkpoint").force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(at_target)?;
    Ok(())
}

/// Every ledger of the tenant, status included; this month's from the engine when it is
/// given (a Move's last word, fresher than the last flush).
async fn copy_ledgers(
    source: &Client,
    target: &Client,
    tenant: &str,
    this_month: Option<(String, crate::api::TenantUsageStatus)>,
) -> Result<usize, MigrationError> {
    let here: Api<TenantUsage> = Api::all(source.clone());
    let there: Api<TenantUsage> = Api::all(target.clone());
    let mut ledgers: Vec<TenantUsage> = here
        .list(&ListParams::default())
        .await
        .map_err(|e| {
            MigrationError::Source(ArchiveError::Export {
                what: "tenantusages".into(),
                source: Box::new(e),
            })
        })?
        .items
        .into_iter()
        .filter(|u| u.spec.tenant == tenant)
        .collect();
    if let Some((name, record)) = this_month {
        match ledgers.iter_mut().find(|l| l.name_any() == name) {
            Some(l) => l.status = Some(record),
            None => {
                let period = name.trim_start_matches(&format!("{tenant}-")).to_string();
                let mut l = TenantUsage::new(
                    &name,
                    crate::api::TenantUsageSpec {
                        tenant: tenant.into(),
                        period,
                    },
                );
                l.status = Some(record);
                ledgers.push(l);
            }
        }
    }
    let params = PatchParams::apply(MIGRATION_MANAGER).force();
    for ledger in &ledgers {
        let name = ledger.name_any();
        let body = json!({
            "apiVersion": "landlord.dev/v1alpha1", "kind": "TenantUsage",
            "metadata": {"name": name, "labels": ledger.labels()},
            "spec": ledger.spec,
        });
        there
            .patch(&name, &params, &Patch::Apply(&body))
            .await
            .map_err(at_target)?;
        if let Some(status) = &ledger.status {
            let body = json!({"apiVersion": "landlord.dev/v1alpha1", "kind": "TenantUsage",
                              "metadata": {"name": name}, "status": status});
            there
                .patch_status(&name, &params, &Patch::Apply(&body))
                .await
                .map_err(at_target)?;
        }
    }
    Ok(ledgers.len())
}

/// The source's objects now (woken when a Move put them to sleep) against the target's.
async fn compare_now(
    source: &Client,
    target: &Client,
    namespaces: &[String],
    woken: bool,
) -> Result<(Vec<Value>, Comparison), MigrationError> {
    let mut here = archive::export(source, namespaces)
        .await
        .map_err(MigrationError::Source)?;
    if woken {
        here = here.iter().map(hibernate::woken).collect();
    }
    let there = archive::export(target, namespaces)
        .await
        .map_err(archive_at_target)?;
    let comparison = migration::compare(&here, &there);
    Ok((here, comparison))
}

/// Write what differs, then compare again: the set must then be the same.
async fn catch_up_and_verify(
    ctx: &Context,
    source: &Client,
    target: &Client,
    namespaces: &[String],
    woken: bool,
) -> Result<usize, MigrationError> {
    let (here, comparison) = compare_now(source, target, namespaces, woken).await?;
    let behind: Vec<Value> = migration::to_catch_up(&here, &comparison)
        .into_iter()
        .cloned()
        .collect();
    if !behind.is_empty() {
        archive::import_with(
            target,
            &behind,
            MIGRATION_MANAGER,
            ctx.settings.migration_parallelism,
        )
        .await
        .map_err(archive_at_target)?;
    }
    let (here, comparison) = compare_now(source, target, namespaces, woken).await?;
    if comparison.same() {
        Ok(here.len())
    } else {
        Err(MigrationError::VerificationFailed(comparison.lines()))
    }
}

/// What a reconcile's migration step leaves for the status.
#[derive(Default)]
pub struct Driven {
    /// `status.migration` to write (`None`: leave it as it is).
    pub progress: Option<MigrationStatus>,
    /// The `Migrated` condition.
    pub condition: Option<Observation>,
    /// A run is under way: the phase is `Migrating`.
    pub running: bool,
    /// Come back this soon to go on copying.
    pub requeue: Option<Duration>,
    /// A Move finished: the source Tenant is being deleted, the reconcile ends here.
    pub moved: bool,
}

/// The `Migrated` condition of a run at its recorded stage, without a failure.
pub fn condition_of(progress: &MigrationStatus) -> Option<Observation> {
    let stage = Stage::parse(&progress.phase)?;
    let target = progress
        .target_ref
        .as_ref()
        .map(|t| format!("Secret {}/{}", t.namespace, t.name))
        .unwrap_or_else(|| "the target".into());
    let moving = progress.mode == Some(MigrationMode::Move);
    let (ok, reason, message) = match stage {
        Stage::Done if moving => (
            true,
            "Moved",
            format!(
                "moved {} object(s) to the cluster of {target} and verified them; the source is removed under its deletionPolicy",
                progress.total_items
            ),
        ),
        Stage::Done => (
            true,
            "Copied",
            format!(
                "copied {} object(s) to the cluster of {target} and verified them",
                progress.total_items
            ),
        ),
        Stage::Cancelled => (
            false,
            "Cancelled",
            format!(
                "spec.migration was removed: the migration stopped after {} of {} object(s); the source is untouched",
                progress.completed_items, progress.total_items
            ),
        ),
        Stage::Failed => (
            false,
            "Failed",
            progress.last_error.clone().unwrap_or_default(),
        ),
        running => (
            false,
            running.as_str(),
            format!(
                "{}: {} of {} object(s) copied ({}%) to the cluster of {target}",
                running.as_str(),
                progress.completed_items,
                progress.total_items,
                progress.percentage
            ),
        ),
    };
    Some(Observation::new(
        ConditionType::Migrated,
        ok,
        Reason::Migration(reason),
        message,
    ))
}

/// Take the tenant's migration as far as one reconcile may. `namespaces` are the tenant's
/// desired namespaces, as provisioning just applied them at the source.
pub async fn drive(
    ctx: &Context,
    tenant: &Tenant,
    namespaces: &[Namespace],
) -> Result<Driven, Error> {
    let name = tenant.name_any();
    let recorded = tenant.status.as_ref().and_then(|s| s.migration.clone());
    let spec = tenant.spec.migration.as_ref();
    let mut progress = match migration::next(spec, recorded.as_ref()) {
        Next::Idle => {
            return Ok(Driven {
                condition: recorded.as_ref().and_then(condition_of),
                progress: recorded,
                ..Driven::default()
            });
        }
        Next::Cancel => return cancel(ctx, tenant, recorded.unwrap_or_default()).await,
        Next::Start => {
            let spec = spec.expect("a run starts from a spec");
            ctx.forget_migration_plan(&name);
            MigrationStatus {
                phase: Stage::Planning.as_str().into(),
                target_ref: Some(spec.target_ref.clone()),
                mode: Some(spec.mode),
                started_at: Some(Time(jiff::Timestamp::now())),
                ..MigrationStatus::default()
            }
        }
        Next::Resume(stage) => {
            let mut p = recorded.unwrap_or_default();
            p.phase = stage.as_str().into();
            p
        }
    };
    match run(ctx, tenant, namespaces, &mut progress).await {
        Ok(driven) => Ok(driven),
        Err(e) => Err(fail(ctx, tenant, progress, e).await),
    }
}

/// The stages, from the one `progress` records, until the run ends, fails or its time slice
/// is over.
async fn run(
    ctx: &Context,
    tenant: &Tenant,
    namespaces: &[Namespace],
    progress: &mut MigrationStatus,
) -> Result<Driven, MigrationError> {
    let name = tenant.name_any();
    let target_ref = progress
        .target_ref
        .clone()
        .ok_or_else(|| MigrationError::Write("the run records no target".into()))?;
    let target = connect(&ctx.client, &target_ref).await?;
    let names: Vec<String> = namespaces.iter().map(|n| n.name_any()).collect();
    let started = Instant::now();
    loop {
        let stage = Stage::parse(&progress.phase).unwrap_or(Stage::Planning);
        match stage {
            Stage::Planning => {
                replan(ctx, &target, &name, namespaces, progress).await?;
                advance(progress, Stage::Copying);
                record(ctx, tenant, progress).await?;
            }
            Stage::Copying => {
                let planned = match ctx.migration_plan(&name) {
                    Some(p) => p,
                    // After a restart: plan again, resume at the checkpoint.
                    None => replan(ctx, &target, &name, namespaces, progress).await?,
                };
                prepare(&ctx.client, &target, tenant, namespaces).await?;
                let batch = ctx.settings.migration_batch.max(1);
                while (progress.completed_items as usize) < planned.objects.len() {
                    if started.elapsed() >= SLICE {
                        return Ok(running(progress));
                    }
                    let from = progress.completed_items as usize;
                    let to = (from + batch).min(planned.objects.len());
                    archive::import_with(
                        &target,
                        &planned.objects[from..to],
                        MIGRATION_MANAGER,
                        ctx.settings.migration_parallelism,
                    )
                    .await
                    .map_err(archive_at_target)?;
                    progress.completed_items = to as u64;
                    progress.percentage =
                        migration::percentage(progress.completed_items, progress.total_items);
                    progress.last_error = None;
                    write_checkpoint(&target, &name, &planned.checksum, to as u64).await?;
                    record(ctx, tenant, progress).await?;
                }
                copy_ledgers(&ctx.client, &target, &name, None).await?;
                advance(progress, Stage::Verifying);
                record(ctx, tenant, progress).await?;
            }
            Stage::Verifying => {
                // The source may have changed during the copy: what differs is written again.
                catch_up_and_verify(ctx, &ctx.client, &target, &names, false).await?;
                if progress.mode == Some(MigrationMode::Move) {
                    advance(progress, Stage::Cutover);
                    record(ctx, tenant, progress).await?;
                } else {
                    finish(progress);
                    ctx.forget_migration_plan(&name);
                    publish_end(ctx, tenant, progress).await;
                    return Ok(Driven {
                        condition: condition_of(progress),
                        progress: Some(progress.clone()),
                        ..Driven::default()
                    });
                }
            }
            Stage::Cutover => {
                return cutover(ctx, tenant, &target, &names, progress).await;
            }
            Stage::Done | Stage::Failed | Stage::Cancelled => {
                return Ok(Driven {
                    condition: condition_of(progress),
                    progress: Some(progress.clone()),
                    ..Driven::default()
                });
            }
        }
    }
}

/// Check the target, make the plan, and set `progress` to resume at the further of its own
/// count and the target's checkpoint. The plan is kept for the next reconciles.
async fn replan(
    ctx: &Context,
    target: &Client,
    name: &str,
    namespaces: &[Namespace],
    progress: &mut MigrationStatus,
) -> Result<Arc<Planned>, MigrationError> {
    check_target(target, name, namespaces).await?;
    let names: Vec<String> = namespaces.iter().map(|n| n.name_any()).collect();
    let planned = Arc::new(plan(&ctx.client, &names).await?);
    let checkpoint = read_checkpoint(target, name).await?;
    let total = planned.objects.len() as u64;
    progress.completed_items = migration::resume_at(
        progress.completed_items,
        checkpoint.as_ref().map(|(c, n)| (c.as_str(), *n)),
        &planned.checksum,
        total,
    );
    progress.total_items = total;
    progress.checksum = Some(planned.checksum.clone());
    ctx.keep_migration_plan(name, planned.clone());
    Ok(planned)
}

/// Move's last stage: put the source's workloads to sleep, write what changed since the
/// plan, verify, carry this month's usage, then delete the source Tenant (its finalizer runs
/// the deletion policy: with the default, an archive is kept).
async fn cutover(
    ctx: &Context,
    tenant: &Tenant,
    target: &Client,
    names: &[String],
    progress: &mut MigrationStatus,
) -> Result<Driven, MigrationError> {
    let name = tenant.name_any();
    // A tenant hibernated by its owner moves asleep, as its spec on the target says.
    let wake_on_target = tenant.spec.state != TenantState::Hibernated;
    if wake_on_target {
        hibernate::run(&ctx.client, names, false)
            .await
            .map_err(|e| MigrationError::Suspend(e.to_string()))?;
    }
    let count = catch_up_and_verify(ctx, &ctx.client, target, names, wake_on_target).await?;
    let this_month = ctx.metering.as_ref().and_then(|m| {
        let record = m.record(&name)?;
        let ledger = crate::naming::usage_names(&name, jiff::Timestamp::now())
            .into_iter()
            .next()?;
        Some((ledger, record))
    });
    copy_ledgers(&ctx.client, target, &name, this_month).await?;
    progress.total_items = count as u64;
    finish(progress);
    record(ctx, tenant, progress).await?;
    ctx.forget_migration_plan(&name);
    publish_end(ctx, tenant, progress).await;
    Api::<Tenant>::all(ctx.client.clone())
        .delete(&name, &DeleteParams::default())
        .await
        .map_err(|e| MigrationError::Write(format!("deleting the source Tenant: {e}")))?;
    Ok(Driven {
        condition: condition_of(progress),
        progress: Some(progress.clone()),
        moved: true,
        ..Driven::default()
    })
}

fn advance(progress: &mut MigrationStatus, stage: Stage) {
    progress.phase = stage.as_str().into();
    progress.percentage = migration::percentage(progress.completed_items, progress.total_items);
    progress.last_error = None;
}

fn finish(progress: &mut MigrationStatus) {
    progress.completed_items = progress.total_items;
    advance(progress, Stage::Done);
    progress.finished_at = Some(Time(jiff::Timestamp::now()));
}

fn running(progress: &MigrationStatus) -> Driven {
    Driven {
        condition: condition_of(progress),
        progress: Some(progress.clone()),
        running: true,
        requeue: Some(Duration::from_millis(50)),
        moved: false,
    }
}

async fn publish_end(ctx: &Context, tenant: &Tenant, progress: &MigrationStatus) {
    if let Some(c) = condition_of(progress) {
        status::publish(ctx, tenant, EventType::Normal, c.reason.as_str(), c.message).await;
    }
}

/// Write the run's progress (phase `Migrating` while it runs) over the last status written.
async fn record(
    ctx: &Context,
    tenant: &Tenant,
    progress: &MigrationStatus,
) -> Result<(), MigrationError> {
    let phase = Stage::parse(&progress.phase)
        .is_some_and(Stage::running)
        .then_some(Phase::Migrating);
    write_migration(ctx, tenant, progress.clone(), phase, condition_of(progress))
        .await
        .map_err(|e| MigrationError::Write(format!("recording progress at the source: {e}")))
}

/// The last written status with `migration`, the phase (if given) and the `Migrated`
/// condition (if given) replaced, written when it changed.
async fn write_migration(
    ctx: &Context,
    tenant: &Tenant,
    progress: MigrationStatus,
    phase: Option<Phase>,
    condition: Option<Observation>,
) -> Result<(), Error> {
    let current = ctx.as_last_written(tenant);
    let previous = current.status.clone().unwrap_or_default();
    let mut next = previous.clone();
    next.migration = Some(progress);
    if phase.is_some() {
        next.phase = phase;
    }
    next.observed_generation = tenant.metadata.generation;
    if let Some(c) = condition {
        next.conditions =
            status::with_condition(&current, &previous, c, Time(jiff::Timestamp::now()));
    }
    status::write(ctx, &current, next).await
}

/// Record a failure (the stage kept, or `Failed` when someone must act), say it once in an
/// Event, and hand back the error for backoff.
async fn fail(
    ctx: &Context,
    tenant: &Tenant,
    mut progress: MigrationStatus,
    e: MigrationError,
) -> Error {
    let message = format!("{e}; nothing was deleted at the source");
    let said = progress.last_error.as_deref() == Some(message.as_str());
    progress.last_error = Some(message.clone());
    // A cutover keeps its stage: it must finish, and the source sleeps meanwhile.
    if e.needs_action() && progress.phase != Stage::Cutover.as_str() {
        progress.phase = Stage::Failed.as_str().into();
    }
    if !said {
        status::publish(ctx, tenant, EventType::Warning, e.reason(), message.clone()).await;
    }
    let failed = Observation::new(
        ConditionType::Migrated,
        false,
        Reason::Migration(e.reason()),
        message,
    );
    let written = write_migration(ctx, tenant, progress, Some(Phase::Migrating), Some(failed));
    if let Err(write) = written.await {
        tracing::warn!(tenant = %tenant.name_any(), error = %write, "could not report a migration failure");
    }
    Error::Migration(e)
}

/// Stop a run whose spec was removed before cutover: the source is untouched, and an Event
/// lists what the target holds now.
async fn cancel(
    ctx: &Context,
    tenant: &Tenant,
    mut progress: MigrationStatus,
) -> Result<Driven, Error> {
    let name = tenant.name_any();
    ctx.forget_migration_plan(&name);
    let namespaces: BTreeSet<String> = tenant
        .status
        .iter()
        .flat_map(|s| s.namespaces.iter().cloned())
        .collect();
    let target = progress
        .target_ref
        .as_ref()
        .map(|t| format!("Secret {}/{}", t.namespace, t.name))
        .unwrap_or_else(|| "the target".into());
    let note = format!(
        "migration cancelled: nothing at the source was changed. The cluster of {target} holds what was copied: Tenant {name}, namespace(s) {}, {} of {} object(s) and the ledgers copied so far; delete them there if they are not wanted",
        namespaces.into_iter().collect::<Vec<_>>().join(", "),
        progress.completed_items,
        progress.total_items
    );
    status::publish(ctx, tenant, EventType::Normal, "MigrationCancelled", note).await;
    progress.phase = Stage::Cancelled.as_str().into();
    progress.last_error = None;
    progress.finished_at = Some(Time(jiff::Timestamp::now()));
    Ok(Driven {
        condition: condition_of(&progress),
        progress: Some(progress),
        ..Driven::default()
    })
}
