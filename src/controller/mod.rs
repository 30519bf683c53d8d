//! The Tenant controller: observe → validate → build → apply → status.
//!
//! `validate`, `build/` and `status::next` are pure and unit-tested; `observe` reads the
//! watch caches (`cache`), `apply/` and `status::write` do the writes; `reconcile` is the
//! pipeline and the finalizer; `run` wires it into kube-runtime; `plans` keeps plan counts.

pub mod apply;
pub mod archiving;
pub mod build;
pub mod cache;
pub mod hibernate;
pub mod life;
pub mod migrating;
pub mod migration;
pub mod observe;
pub mod plans;
pub mod reconcile;
pub mod run;
pub mod status;
pub mod validate;

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use kube::Client;
use kube::runtime::events::Recorder;

use std::sync::Arc;

use crate::api::Phase;
use crate::metering::ledger::Metering;
use crate::metrics::Metrics;

/// Everything a reconcile needs besides the Tenant.
pub struct Context {
    pub client: Client,
    /// What reconciles read instead of asking the API server.
    pub caches: cache::Caches,
    pub recorder: Recorder,
    pub metrics: Metrics,
    pub settings: Settings,
    /// Per tenant: consecutive failures, for exponential backoff, and stale finalizer patches.
    retries: Mutex<Retries>,
    /// Last phase of each tenant, for the tenants-per-phase gauge.
    phases: Mutex<HashMap<String, Phase>>,
    /// The last status written per tenant, with the resourceVersion it was written over.
    written: Mutex<HashMap<String, (Option<String>, crate::api::TenantStatus)>>,
    /// The quota engine, when this operator runs one: limits go in, usage summaries come out.
    pub metering: Option<Arc<Metering>>,
    /// Where archives go and the key that seals them; `None`: archiving is refused.
    pub archives: Option<Arc<archiving::Archives>>,
    /// The plan of each running migration, so that its batches do not export it again.
    migration_plans: Mutex<HashMap<String, Arc<migrating::Planned>>>,
    /// Per tenant, the owned objects its last reconcile found in place: one gone since was
    /// deleted by someone else, and is reported when restored (`OwnedSet::tampered`).
    owned_seen: Mutex<HashMap<String, BTreeSet<String>>>,
}

impl Context {
    pub fn new(
        client: Client,
        caches: cache::Caches,
        recorder: Recorder,
        metrics: Metrics,
        settings: Settings,
    ) -> Self {
        Self {
            client,
            caches,
            recorder,
            metrics,
            settings,
            retries: Mutex::default(),
            phases: Mutex::default(),
            written: Mutex::default(),
            metering: None,
            archives: None,
            migration_plans: Mutex::default(),
            owned_seen: Mutex::default(),
        }
    }

    fn migration_plan(&self, tenant: &str) -> Option<Arc<migrating::Planned>> {
        let plans = self.migration_plans.lock().expect("not poisoned");
        plans.get(tenant).cloned()
    }

    fn keep_migration_plan(&self, tenant: &str, plan: Arc<migrating::Planned>) {
        let mut plans = self.migration_plans.lock().expect("not poisoned");
        plans.insert(tenant.to_string(), plan);
    }

    fn forget_migration_plan(&self, tenant: &str) {
        let mut plans = self.migration_plans.lock().expect("not poisoned");
        plans.remove(tenant);
    }

    /// Archive and restore through `archives`.
    pub fn with_archives(mut self, archives: Arc<archiving::Archives>) -> Self {
        self.archives = Some(archives);
        self
    }

    /// Run the quota engine's plan updates and status summaries through `metering`.
    pub fn with_metering(mut self, metering: Arc<Metering>) -> Self {
        self.metering = Some(metering);
        self
    }

    /// The resync interval with ±10 % jitter, so thousands of tenants do not resync in step.
    fn jittered_resync(&self) -> Duration {
        self.settings.resync.mul_f64(rand::random_range(0.9..1.1))
    }

    /// Record a tenant's phase (`None`: gone) and refresh the per-phase gauge.
    fn set_phase(&self, tenant: &str, phase: Option<Phase>) {
        let mut phases = self.phases.lock().expect("not poisoned");
        match phase {
            Some(p) => phases.insert(tenant.to_string(), p),
            None => phases.remove(tenant),
        };
        self.metrics.tenants.clear();
        for p in phases.values() {
            let label = crate::metrics::PhaseLabels {
                phase: format!("{p:?}"),
            };
            self.metrics.tenants.get_or_create(&label).inc();
        }
    }

    /// Backoff for the next retry of `tenant`: 1 s doubling to 5 min, ±10 % jitter.
    fn backoff(&self, tenant: &str) -> Duration {
        let base = self.retries.lock().expect("not poisoned").backoff(tenant);
        base.mul_f64(rand::random_range(0.9..1.1))
    }

    /// Whether `tenant`'s refused finalizer patch may still be taken for a stale cache.
    fn still_stale(&self, tenant: &str) -> bool {
        self.retries
            .lock()
            .expect("not poisoned")
            .still_stale(tenant)
    }

    /// `tenant` as of our last status write. A reconcile triggered by the objects it just
    /// wrote often runs before the Tenant watch has brought back its new status; taking the
    /// cached, older status for the current one would write the status again and repeat its
    /// Events. The cached copy is stale exactly when it is still the version we wrote over.
    pub fn as_last_written(&self, tenant: &crate::api::Tenant) -> crate::api::Tenant {
        let written = self.written.lock().expect("not poisoned");
        let mut current = tenant.clone();
        if let Some((over, status)) = written.get(&kube::ResourceExt::name_any(tenant))
            && *over == tenant.metadata.resource_version
        {
            current.status = Some(status.clone());
        }
        current
    }

    /// Record the status written over `tenant` (the cached version it was computed from).
    pub fn wrote_status(&self, tenant: &crate::api::Tenant, status: crate::api::TenantStatus) {
        self.written.lock().expect("not poisoned").insert(
            kube::ResourceExt::name_any(tenant),
            (tenant.metadata.resource_version.clone(), status),
        );
    }

    /// The owned objects `tenant`'s last reconcile found in place.
    fn owned_seen(&self, tenant: &str) -> BTreeSet<String> {
        let seen = self.owned_seen.lock().expect("not poisoned");
        seen.get(tenant).cloned().unwrap_or_default()
    }

    /// Record the owned objects found in place (empty: forget them, as when the tenant's
    /// namespaces are packed away and their objects go with them).
    fn saw_owned(&self, tenant: &str, keys: BTreeSet<String>) {
        let mut seen = self.owned_seen.lock().expect("not poisoned");
        if keys.is_empty() {
            seen.remove(tenant);
        } else {
            seen.insert(tenant.to_string(), keys);
        }
    }

    /// Forget a deleted tenant.
    fn forget(&self, tenant: &str) {
        self.saw_owned(tenant, BTreeSet::new());
        self.written.lock().expect("not poisoned").remove(tenant);
        self.metrics.tenant_status.forget(tenant);
    }

    fn succeeded(&self, tenant: &str) {
        self.retries.lock().expect("not poisoned").succeeded(tenant);
    }
}

/// Retry bookkeeping per tenant, reset by a successful reconcile.
#[derive(Default)]
struct Retries {
    failures: HashMap<String, u32>,
    stale: HashMap<String, u32>,
}

impl Retries {
    /// A stale cache clears with the next watch event, so a refusal that keeps coming back
    /// is something else (a validation rule or policy the Tenant now fails): after this many
    /// in a row it is an error like any other.
    const STALE_LIMIT: u32 = 3;

    fn backoff(&mut self, tenant: &str) -> Duration {
        let n = self.failures.entry(tenant.to_string()).or_insert(0);
        *n = (*n + 1).min(10);
        Duration::from_secs(1 << (*n - 1)).min(Duration::from_secs(300))
    }

    fn still_stale(&mut self, tenant: &str) -> bool {
        let n = self.stale.entry(tenant.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        *n <= Self::STALE_LIMIT
    }

    fn succeeded(&mut self, tenant: &str) {
        self.failures.remove(tenant);
        self.stale.remove(tenant);
    }
}

/// Operator settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How often a converged tenant is looked at again (with ±10 % jitter).
    pub resync: Duration,
    /// Only Tenants matching this label selector are reconciled (`--tenant-selector`).
    pub tenant_selector: Option<String>,
    /// How many tenants are reconciled at once.
    pub concurrency: u16,
    /// How often archives past their retention are purged.
    pub purge_interval: Duration,
    /// Objects a migration copies between two checkpoints (`--migration-batch`).
    pub migration_batch: usize,
    /// Objects of one batch written at once (`--migration-parallelism`).
    pub migration_parallelism: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            resync: Duration::from_secs(300),
            tenant_selector: None,
            concurrency: 8,
            purge_interval: Duration::from_secs(3600),
            migration_batch: 50,
            migration_parallelism: 4,
        }
    }
}

/// What can go wrong in a reconcile; each variant has a short label for metrics that says
/// which step failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading the cluster: {0}")]
    Observe(#[source] kube::Error),
    #[error("applying: {0}")]
    Apply(#[source] kube::Error),
    #[error("deleting: {0}")]
    Delete(#[source] kube::Error),
    #[error("writing the status: {0}")]
    Status(#[source] kube::Error),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    #[error("{0}")]
    Quantity(#[from] crate::quantity::QuantityError),
    #[error("{0}")]
    Archive(#[from] crate::archive::ArchiveError),
    #[error("migration: {0}")]
    Migration(#[from] migrating::MigrationError),
}

impl Error {
    /// `landlord_reconcile_errors_total{error}`: the step that failed, looking through the
    /// finalizer helper's wrapping to the reconcile's own error.
    pub fn label(&self) -> &'static str {
        use kube::runtime::finalizer::Error as F;
        match self {
            Error::Observe(_) => "observe",
            Error::Apply(_) => "apply",
            Error::Delete(_) => "delete",
            Error::Status(_) => "status",
            Error::Quantity(_) => "quantity",
            Error::Archive(_) => "archive",
            Error::Migration(_) => "migration",
            Error::Finalizer(e) => match &**e {
                F::ApplyFailed(inner) | F::CleanupFailed(inner) => inner.label(),
                F::AddFinalizer(_) => "add_finalizer",
                F::RemoveFinalizer(_) => "remove_finalizer",
                F::UnnamedObject | F::InvalidFinalizer => "finalizer",
            },
        }
    }

    /// The finalizer was to be removed from a Tenant that no longer exists (404).
    pub fn is_gone(&self) -> bool {
        use kube::runtime::finalizer::Error as F;
        matches!(self, Error::Finalizer(e) if matches!(&**e, F::RemoveFinalizer(kube::Error::Api(s)) if s.code == 404))
    }

    /// A finalizer patch the API server refused because the Tenant had already changed: its
    /// JSON-patch `test` of the old finalizer list failed (422), it conflicted (409), or the
    /// Tenant whose finalizer was to go is gone already (404). The reconcile ran on a cached
    /// copy the watch had not yet brought up to date, which a new Tenant meets whenever
    /// something else triggers a second reconcile right after the first added the finalizer,
    /// and a deleted one when two reconciles race to remove it. Nothing failed; the next
    /// reconcile (if the Tenant still exists) sees the change.
    pub fn is_stale_finalizers(&self) -> bool {
        use kube::runtime::finalizer::Error as F;
        let Error::Finalizer(e) = self else {
            return false;
        };
        match &**e {
            F::AddFinalizer(kube::Error::Api(s)) => matches!(s.code, 409 | 422),
            F::RemoveFinalizer(kube::Error::Api(s)) => matches!(s.code, 404 | 409 | 422),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_labels_name_the_step_that_failed() {
        use kube::runtime::finalizer::Error as F;
        let api = || {
            kube::Error::Api(Box::new(
                serde_json::from_value(serde_json::json!({"code": 500})).unwrap(),
            ))
        };
        let fin = |e: F<Error>| Error::Finalizer(Box::new(e));
        assert_eq!(fin(F::ApplyFailed(Error::Apply(api()))).label(), "apply");
        assert_eq!(
            fin(F::CleanupFailed(Error::Delete(api()))).label(),
            "delete"
        );
        assert_eq!(fin(F::ApplyFailed(Error::Status(api()))).label(), "status");
        assert_eq!(fin(F::AddFinalizer(api())).label(), "add_finalizer");
        assert_eq!(Error::Observe(api()).label(), "observe");
    }

    #[test]
    fn backoff_doubles_to_five_minutes_and_success_resets_it() {
        let mut r = Retries::default();
        let secs: Vec<u64> = (0..11).map(|_| r.backoff("a").as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(r.backoff("b").as_secs(), 1);
        r.succeeded("a");
        assert_eq!(r.backoff("a").as_secs(), 1);
    }

    /// Three refused finalizer patches in a row pass for a stale cache; the fourth is an
    /// error, until a reconcile succeeds.
    #[test]
    fn a_refusal_that_keeps_coming_back_is_an_error() {
        let mut r = Retries::default();
        let seen: Vec<bool> = (0..5).map(|_| r.still_stale("a")).collect();
        assert_eq!(seen, [true, true, true, false, false]);
        assert!(r.still_stale("b"));
        r.succeeded("a");
        assert!(r.still_stale("a"));
    }
}
