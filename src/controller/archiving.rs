//! The archive steps of a tenant's life (`life::Step::Archive`, `Restore`) and the retention
//! purge: the I/O around `crate::archive`, which owns the format, the keys and the store.
//!
//! An archive is read back from the store and verified (decrypted, every checksum and count
//! checked) before it is recorded in the status, and it is recorded before any namespace is
//! deleted; a restore is recorded as done only after every object was read back and compared.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource, ResourceExt};

use crate::api::{ArchiveStatus, Tenant};
use crate::archive::{self, ArchiveError, ArchiveStore, Bundle};

/// The field manager of restored objects: the tenant's own objects, not Landlord's.
pub const RESTORE_MANAGER: &str = "landlord-restore";

/// Where archives live and which Secret holds the keys that seal them.
pub struct Archives {
    pub store: ArchiveStore,
    pub key_namespace: String,
    pub key_secret: String,
    /// How long a retention day is: a day, except in tests.
    pub day: Duration,
}

impl Archives {
    async fn keys(&self, client: &Client) -> Result<archive::KeyRing, ArchiveError> {
        archive::load_or_create(client, &self.key_namespace, &self.key_secret).await
    }

    /// When an archive made at `at` is purged under `retention_days` (never without one).
    pub fn purge_after(
        &self,
        at: jiff::Timestamp,
        retention_days: Option<u32>,
    ) -> Option<jiff::Timestamp> {
        let days = retention_days?;
        let span = jiff::SignedDuration::try_from(self.day.checked_mul(days)?).ok()?;
        at.checked_add(span).ok()
    }
}

/// Export the objects of `namespaces`, seal, store, read back and verify: the status record.
pub async fn archive(
    client: &Client,
    archives: &Archives,
    tenant: &Tenant,
    namespaces: &[String],
    now: jiff::Timestamp,
) -> Result<ArchiveStatus, ArchiveError> {
    let name = tenant.name_any();
    let objects = archive::export(client, namespaces).await?;
    let spec = serde_json::to_value(&tenant.spec).expect("a spec serialises");
    let bundle = Bundle::new(&name, tenant.spec.quota_ref.as_deref(), spec, objects, now)?;
    let keys = archives.keys(client).await?;
    let sealed = archive::seal(&bundle, &keys.current);
    let location = archives
        .store
        .put(&name, now, &sealed, &bundle.manifest)
        .await?;
    // Nothing is recorded (and so nothing deleted) before the stored bytes open and check.
    let stored = archive::open(&archives.store.get(&location).await?, &keys)?;
    if stored.manifest.sha256 != bundle.manifest.sha256 {
        return Err(ArchiveError::WholeChecksum {
            expected: bundle.manifest.sha256,
            found: stored.manifest.sha256,
        });
    }
    Ok(ArchiveStatus {
        location,
        object_count: bundle.objects.len() as u64,
        bytes: sealed.len() as u64,
        sha256: bundle.manifest.sha256,
        archived_at: Some(Time(now)),
        purge_after: archives
            .purge_after(now, tenant.spec.retention_days)
            .map(Time),
        restored_at: None,
    })
}

/// Recreate every archived object (the namespaces exist already) and compare each with the
/// archive. Returns how many objects were restored. Idempotent: a restore interrupted and run
/// again applies the same objects and duplicates nothing.
pub async fn restore(
    client: &Client,
    archives: &Archives,
    record: &ArchiveStatus,
) -> Result<usize, ArchiveError> {
    let keys = archives.keys(client).await?;
    let bundle = archive::open(&archives.store.get(&record.location).await?, &keys)?;
    if bundle.manifest.sha256 != record.sha256 {
        return Err(ArchiveError::WholeChecksum {
            expected: record.sha256.clone(),
            found: bundle.manifest.sha256,
        });
    }
    archive::import(client, &bundle.objects, RESTORE_MANAGER).await?;
    archive::import::verify(client, &bundle.objects).await?;
    Ok(bundle.objects.len())
}

/// An archive whose retention is over: `(location, tenant)`.
pub fn expired(
    archives: &Archives,
    stored: &[archive::StoredArchive],
    retention_of: impl Fn(&str) -> Option<Option<u32>>,
    manifest_retention: impl Fn(&str) -> Option<u32>,
    now: jiff::Timestamp,
) -> Vec<(String, String)> {
    stored
        .iter()
        .filter(|a| {
            // The Tenant's own setting while it exists; the archived spec's once it is gone.
            let days = retention_of(&a.tenant).unwrap_or_else(|| manifest_retention(&a.location));
            archives
                .purge_after(a.archived_at, days)
                .is_some_and(|at| at <= now)
        })
        .map(|a| (a.location.clone(), a.tenant.clone()))
        .collect()
}

/// Purge archives past their retention every `interval`, until the process ends. Archives
/// are found in the store itself, so an archive outlives its Tenant and is still purged.
pub async fn purge(
    archives: Arc<Archives>,
    tenants: Store<Tenant>,
    recorder: kube::runtime::events::Recorder,
    interval: Duration,
) {
    let mut tick = tokio::time::interval(interval);
    loop {
        tick.tick().await;
        let stored = match archives.store.list().await {
            Ok(stored) => stored,
            Err(e) => {
                tracing::warn!(error = %e, "could not list archives for the retention purge");
                continue;
            }
        };
        let mut manifests = std::collections::HashMap::new();
        // Archives of deleted Tenants: their retention is in the archived spec.
        let orphans = stored
            .iter()
            .filter(|a| tenants.get(&ObjectRef::new(&a.tenant)).is_none());
        for a in orphans {
            if let Ok(m) = archives.store.get_manifest(&a.location).await {
                let days = m.spec.get("retentionDays").and_then(|d| d.as_u64());
                manifests.insert(a.location.clone(), days.map(|d| d as u32));
            }
        }
        let due = expired(
            &archives,
            &stored,
            |tenant| {
                tenants
                    .get(&ObjectRef::new(tenant))
                    .map(|t| t.spec.retention_days)
            },
            |location| manifests.get(location).copied().flatten(),
            jiff::Timestamp::now(),
        );
        for (location, tenant) in due {
            match archives.store.delete(&location).await {
                Ok(()) => {
                    tracing::info!(%tenant, %location, "archive purged: its retention is over");
                    if let Some(t) = tenants.get(&ObjectRef::new(&tenant)) {
                        let event = kube::runtime::events::Event {
                            type_: kube::runtime::events::EventType::Normal,
                            reason: "ArchivePurged".into(),
                            note: Some(format!(
                                "archive {location} purged: spec.retentionDays is over"
                            )),
                            action: "Purge".into(),
                            secondary: None,
                        };
                        let _ = recorder.publish(&event, &t.object_ref(&())).await;
                    }
                }
                Err(e) => {
                    tracing::warn!(%tenant, %location, error = %e, "could not purge an archive")
                }
            }
        }
    }
}
