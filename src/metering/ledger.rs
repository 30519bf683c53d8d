//! Metering glue between the operator and the engine, and the durable usage ledger.
//!
//! The reconciler hands every tenant's effective plan to [`Metering::set_tenant`] and reads a
//! status summary back with [`Metering::summary`]; it is the only writer of `Tenant.status`.
//! The ledger loop ([`run`]) flushes each tenant's usage of the month into its `TenantUsage`
//! object every interval, only when it changed, and asks the controller to refresh the
//! tenants whose numbers moved. A restart reloads the month from `TenantUsage`, so at most
//! one flush interval of usage is lost.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use rust_decimal::Decimal;
use serde_json::json;
use tokio::sync::mpsc;

use crate::api::{
    self, CostStatus, DimensionUsage, RateStatus, TenantUsage, TenantUsageSpec, TenantUsageStatus,
};
use crate::engine::{
    DimensionUsage as EngineUsage, Engine, Period, Pricing, TenantLimits, Usage, pricing,
};
use crate::{naming, quantity};

/// Longest a change of resource unit-hours alone waits before it is written.
const RESOURCE_FLUSH: Duration = Duration::from_secs(300);

/// What was loaded from the ledger for the current period, added to what the engine counts.
#[derive(Clone, Debug, Default)]
struct Carried {
    period: Option<Period>,
    denied: BTreeMap<String, u64>,
    daily: BTreeMap<String, BTreeMap<String, u64>>,
    /// Resource unit-seconds in thousandths (millicore-seconds, byte-milliseconds).
    resources: BTreeMap<String, i128>,
}

/// Per-tenant state the operator keeps beside the engine.
#[derive(Clone, Debug, Default)]
struct TenantMeta {
    pricing: Option<Pricing>,
    resource_prices: Vec<api::PriceItem>,
    currency: Option<String>,
    carried: Carried,
    /// Last observed quota usage (resource → thousandths) and when, for unit-hours.
    last_resources: Option<(BTreeMap<String, i128>, jiff::Timestamp)>,
    /// Last month's carried state, kept until the month's final flush.
    previous: Option<Carried>,
    /// The month was reloaded from the ledger. Until then nothing is flushed, or a flush of
    /// only what was counted since the start would overwrite the month.
    loaded: bool,
    /// The limits the engine holds for the tenant: a reconcile that changes none of them
    /// leaves the engine alone, since every change copies the engine's tenant table.
    limits: Option<TenantLimits>,
}

/// The engine plus what the operator needs to meter and price tenants.
pub struct Metering {
    pub engine: Arc<Engine>,
    client: Client,
    tenants: Mutex<HashMap<String, TenantMeta>>,
}

impl Metering {
    pub fn new(engine: Arc<Engine>, client: Client) -> Self {
        Self {
            engine,
            client,
            tenants: Mutex::default(),
        }
    }

    fn period_now(&self) -> Period {
        let date = self
            .engine
            .clock()
            .wall()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date();
        Period::new(date.year() as u16, date.month() as u8).expect("calendar month")
    }

    /// Give the engine a tenant's limits; on first sight, reload its month from the ledger.
    pub async fn set_tenant(
        &self,
        tenant: &str,
        plan: &api::TenantQuotaSpec,
        state: api::TenantState,
    ) -> Result<(), String> {
        let suspended = state != api::TenantState::Active;
        let hibernated = state == api::TenantState::Hibernated;
        let limits = match super::plan::limits(plan, state) {
            Ok(limits) => limits,
            // A plan the engine cannot take keeps the limits and counters it had, but a
            // suspension or a resumption must still reach it.
            Err(problem) => {
                // The engine's state no longer follows a plan we recorded.
                if let Some(meta) = self.tenants.lock().expect("not poisoned").get_mut(tenant) {
                    meta.limits = None;
                }
                if !self.engine.set_suspended(tenant, suspended, hibernated) && suspended {
                    let everything_denied = TenantLimits {
                        suspended: true,
                        hibernated,
                        ..TenantLimits::default()
                    };
                    self.engine
                        .set_tenant(tenant, everything_denied)
                        .map_err(|e| format!("{problem}; suspending: {e}"))?;
                }
                return Err(problem);
            }
        };
        let (loaded, unchanged) = self
            .tenants
            .lock()
            .expect("not poisoned")
            .get(tenant)
            .map_or((false, false), |m| {
                (m.loaded, m.limits.as_ref() == Some(&limits))
            });
        if !unchanged {
            self.engine
                .set_tenant(tenant, limits.clone())
                .map_err(|e| e.to_string())?;
        }
        let resource_prices: Vec<api::PriceItem> = plan
            .pricing
            .iter()
            .flat_map(|p| p.items.iter())
            .filter(|i| i.resource.is_some())
            .cloned()
            .collect();
        {
            let mut tenants = self.tenants.lock().expect("not poisoned");
            let meta = tenants.entry(tenant.to_string()).or_default();
            meta.pricing = super::plan::pricing(plan);
            meta.currency = plan.pricing.as_ref().map(|p| p.currency.clone());
            meta.resource_prices = resource_prices;
            meta.limits = Some(limits);
        }
        if !loaded {
            // Retried on every reconcile until it succeeds.
            self.reload(tenant)
                .await
                .map_err(|e| format!("loading this month's usage: {e}"))?;
            if let Some(meta) = self.tenants.lock().expect("not poisoned").get_mut(tenant) {
                meta.loaded = true;
            }
        }
        Ok(())
    }

    pub fn remove_tenant(&self, tenant: &str) {
        self.engine.remove_tenant(tenant);
        self.tenants.lock().expect("not poisoned").remove(tenant);
    }

    /// Seed the engine with the current month's `TenantUsage`, if there is one.
    async fn reload(&self, tenant: &str) -> Result<(), String> {
        let period = self.period_now();
        let api: Api<TenantUsage> = Api::all(self.client.clone());
        let Some(stored) = api
            .get_opt(&naming::usage_name(tenant, &period.to_string()))
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(());
        };
        let status = stored.status.unwrap_or_default();
        let usage = Usage {
            tenant: tenant.to_string(),
            period,
            dimensions: status
                .dimensions
                .iter()
                .map(|(d, u)| {
                    (
                        d.clone(),
                        EngineUsage {
                            total: u.allowed,
                            hours: vec![],
                        },
                    )
                })
                .collect(),
        };
        self.engine.load_usage(&usage).map_err(|e| e.to_string())?;
        let carried = Carried {
            period: Some(period),
            denied: status
                .dimensions
                .iter()
                .map(|(d, u)| (d.clone(), u.denied))
                .collect(),
            daily: status
                .dimensions
                .iter()
                .map(|(d, u)| (d.clone(), u.daily.clone()))
                .collect(),
            resources: status
                .resources
                .iter()
                .filter_map(|(r, h)| Some((r.clone(), parse_hours(h)?)))
                .collect(),
        };
        if let Some(meta) = self.tenants.lock().expect("not poisoned").get_mut(tenant) {
            meta.carried = carried;
        }
        Ok(())
    }

    /// Record the tenant's quota `used` now; the time since the last observation is charged at
    /// the previous values (usage only changes when the reconciler sees it change).
    pub fn observe_resources(&self, tenant: &str, used: &BTreeMap<String, api::ResourceUsage>) {
        let now = self.engine.clock().wall();
        let period = self.period_now();
        let current: BTreeMap<String, i128> = used
            .iter()
            .filter_map(|(r, u)| Some((r.clone(), quantity::parse_milli(&u.used)?)))
            .collect();
        let mut tenants = self.tenants.lock().expect("not poisoned");
        let Some(meta) = tenants.get_mut(tenant) else {
            return;
        };
        if meta.carried.period != Some(period) {
            let old = std::mem::replace(
                &mut meta.carried,
                Carried {
                    period: Some(period),
                    ..Carried::default()
                },
            );
            meta.previous = Some(old);
        }
        if let Some((before, at)) = &meta.last_resources {
            let millis = (now.as_millisecond() - at.as_millisecond()).max(0) as i128;
            for (r, milli) in before {
                *meta.carried.resources.entry(r.clone()).or_default() += milli * millis / 1000;
            }
        }
        meta.last_resources = Some((current, now));
    }

    /// The ledger record of a tenant's current month.
    pub fn record(&self, tenant: &str) -> Option<TenantUsageStatus> {
        self.record_for(tenant, self.period_now())
    }

    /// The ledger record of a tenant's `period` (this month, or the last for its final flush).
    pub fn record_for(&self, tenant: &str, period: Period) -> Option<TenantUsageStatus> {
        let current = period == self.period_now();
        let usage = self.engine.usage(tenant, period).ok()?;
        let stats = self.engine.stats(tenant).ok()?;
        let meta = self
            .tenants
            .lock()
            .expect("not poisoned")
            .get(tenant)
            .cloned()?;
        if !meta.loaded {
            return None;
        }
        let carried = [Some(&meta.carried), meta.previous.as_ref()]
            .into_iter()
            .flatten()
            .find(|c| c.period == Some(period))
            .cloned()
            .unwrap_or_default();
        let mut dimensions = BTreeMap::new();
        for (d, u) in &usage.dimensions {
            let mut daily = carried.daily.get(d).cloned().unwrap_or_default();
            for h in &u.hours {
                let day = h.hour.to_zoned(jiff::tz::TimeZone::UTC).day();
                *daily.entry(format!("{day:02}")).or_default() += h.units;
            }
            // The engine counts denials of the current month only.
            let since_start = if current {
                stats.dimensions.get(d).map_or(0, |s| s.denied)
            } else {
                0
            };
            let denied = carried.denied.get(d).copied().unwrap_or(0) + since_start;
            dimensions.insert(
                d.clone(),
                DimensionUsage {
                    allowed: u.total,
                    denied,
                    daily,
                },
            );
        }
        let resources: BTreeMap<String, String> = carried
            .resources
            .iter()
            .map(|(r, ms)| (r.clone(), format_hours(*ms)))
            .collect();
        let cost = self.cost(&meta, &usage, &carried.resources, period);
        Some(TenantUsageStatus {
            dimensions,
            resources,
            cost,
            last_flush: None,
        })
    }

    fn cost(
        &self,
        meta: &TenantMeta,
        usage: &Usage,
        resources: &BTreeMap<String, i128>,
        period: Period,
    ) -> Option<CostStatus> {
        let currency = meta.currency.clone()?;
        let mut amount = match &meta.pricing {
            Some(p) => pricing::cost(p, &pricing::totals(usage))
                .ok()?
                .total
                .parse::<Decimal>()
                .ok()?,
            None => Decimal::ZERO,
        };
        for item in &meta.resource_prices {
            let resource = item.resource.as_deref()?;
            let Some(milli_seconds) = resources.get(resource) else {
                continue;
            };
            let unit = item
                .unit
                .as_ref()
                .and_then(|u| quantity::parse_milli(&u.0))
                .unwrap_or(1000)
                .max(1);
            let price: Decimal = item.price.parse().ok()?;
            // unit-hours = milli-seconds / (unit milli * 3600)
            let hours = Decimal::from_i128_with_scale(*milli_seconds, 0)
                / Decimal::from_i128_with_scale(unit * 3600, 0);
            amount += hours * price;
        }
        Some(CostStatus {
            period: period.to_string(),
            amount: amount.round_dp(6).normalize().to_string(),
            currency,
        })
    }

    /// Rates and cost for `Tenant.status`, rounded so that they only change when usage does.
    pub fn summary(&self, tenant: &str) -> (BTreeMap<String, RateStatus>, Option<CostStatus>) {
        let Ok(stats) = self.engine.stats(tenant) else {
            return (BTreeMap::new(), None);
        };
        let period = self.period_now();
        let carried_denied = self
            .tenants
            .lock()
            .expect("not poisoned")
            .get(tenant)
            .filter(|m| m.carried.period == Some(period))
            .map(|m| m.carried.denied.clone())
            .unwrap_or_default();
        let rates = stats
            .dimensions
            .iter()
            .map(|(d, s)| {
                let limit = s
                    .rates
                    .first()
                    .map(|r| format!("{}/{}", r.limit, format_ms(r.per_ms)));
                (
                    d.clone(),
                    RateStatus {
                        rate: format!("{:.2}", s.units_per_second),
                        limit,
                        allowed: s.units,
                        denied: s.denied + carried_denied.get(d).copied().unwrap_or(0),
                    },
                )
            })
            .collect();
        let cost = self.record(tenant).and_then(|r| r.cost);
        (rates, cost)
    }
}

fn format_ms(ms: u64) -> String {
    match ms {
        m if m % 3_600_000 == 0 => format!("{}h", m / 3_600_000),
        m if m % 60_000 == 0 => format!("{}m", m / 60_000),
        m if m % 1000 == 0 => format!("{}s", m / 1000),
        m => format!("{m}ms"),
    }
}

/// Thousandth-unit-seconds as unit-hours with three decimals.
fn format_hours(milli_seconds: i128) -> String {
    (Decimal::from_i128_with_scale(milli_seconds, 0) / Decimal::from(3_600_000))
        .round_dp(3)
        .normalize()
        .to_string()
}

fn parse_hours(text: &str) -> Option<i128> {
    let hours: Decimal = text.parse().ok()?;
    (hours * Decimal::from(3_600_000))
        .round()
        .to_string()
        .parse()
        .ok()
}

/// The ledger's writer: what it last wrote per tenant, so a pass writes only what moved.
pub struct Ledger {
    metering: Arc<Metering>,
    changed: mpsc::Sender<String>,
    last_flush: prometheus_client::metrics::gauge::Gauge<i64, std::sync::atomic::AtomicI64>,
    api: Api<TenantUsage>,
    /// What was last written per tenant, and when.
    flushed: HashMap<String, (TenantUsageStatus, tokio::time::Instant)>,
    created: HashSet<String>,
    last_period: Option<Period>,
}

impl Ledger {
    /// A writer that sends the names of tenants whose numbers moved on `changed`, so their
    /// status can be refreshed, and sets `last_flush` after each complete pass.
    pub fn new(
        metering: Arc<Metering>,
        changed: mpsc::Sender<String>,
        last_flush: prometheus_client::metrics::gauge::Gauge<i64, std::sync::atomic::AtomicI64>,
    ) -> Self {
        let api = Api::all(metering.client.clone());
        Self {
            metering,
            changed,
            last_flush,
            api,
            flushed: HashMap::new(),
            created: HashSet::new(),
            last_period: None,
        }
    }

    /// Write every tenant's month whose numbers changed since the last pass; returns
    /// whether every write succeeded (a failed one is tried again by the next pass).
    pub async fn pass(&mut self) -> bool {
        let mut complete = true;
        let tenants = self.metering.engine.tenants();
        let now = self.metering.period_now();
        if let Some(previous) = self.last_period.filter(|p| *p != now) {
            // A new month: write the old one a last time, with what came in since its last flush.
            for tenant in &tenants {
                let taken = jiff::Timestamp::now();
                let Some(record) = self.metering.record_for(tenant, previous) else {
                    continue;
                };
                let name = format!("{tenant}-{previous}");
                if let Err(e) = flush(
                    &self.api,
                    &name,
                    tenant,
                    previous,
                    &record,
                    taken,
                    &mut self.created,
                )
                .await
                {
                    tracing::warn!(%tenant, error = %e, "final flush of {previous} failed");
                }
            }
            self.flushed.clear();
            self.created.retain(|n| n.ends_with(&now.to_string()));
        }
        self.last_period = Some(now);
        self.flushed.retain(|t, _| tenants.contains(t));
        for tenant in tenants {
            let taken = jiff::Timestamp::now();
            let Some(record) = self.metering.record(&tenant) else {
                continue;
            };
            if !self.flushed.contains_key(&tenant) && nothing_used(&record) {
                // A tenant that has used nothing needs no ledger yet: remember the empty
                // record, so that the first use is a change, and write nothing.
                self.flushed
                    .insert(tenant, (record, tokio::time::Instant::now()));
                continue;
            }
            let metered_moved = self
                .flushed
                .get(&tenant)
                .is_none_or(|(last, _)| last.dimensions != record.dimensions);
            // Resource unit-hours grow whenever anything runs; writing them on every interval
            // would cost one write per busy tenant per interval, so they ride along with
            // metered changes or go out every RESOURCE_FLUSH.
            let resources_due = self.flushed.get(&tenant).is_some_and(|(last, at)| {
                (last.resources != record.resources || last.cost != record.cost)
                    && at.elapsed() >= RESOURCE_FLUSH
            });
            if !metered_moved && !resources_due {
                continue;
            }
            let period = self.metering.period_now();
            let name = naming::usage_name(&tenant, &period.to_string());
            if let Err(e) = flush(
                &self.api,
                &name,
                &tenant,
                period,
                &record,
                taken,
                &mut self.created,
            )
            .await
            {
                if matches!(&e, kube::Error::Api(s) if s.code == 404) {
                    self.created.remove(&name); // deleted behind our back: create it again next time
                }
                tracing::warn!(%tenant, error = %e, "usage flush failed; retrying next interval");
                complete = false;
                continue;
            }
            self.flushed
                .insert(tenant.clone(), (record, tokio::time::Instant::now()));
            if metered_moved {
                let _ = self.changed.try_send(tenant);
            }
        }
        if complete {
            self.last_flush.set(jiff::Timestamp::now().as_second());
        }
        complete
    }
}

/// Run `ledger`'s passes every `interval`. It is shared so that a replica handing over can
/// make one last pass ([`Ledger::pass`]) after its engine has closed.
pub async fn run(ledger: Arc<tokio::sync::Mutex<Ledger>>, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        ledger.lock().await.pass().await;
    }
}

/// Whether a usage record holds nothing but zeros.
fn nothing_used(record: &TenantUsageStatus) -> bool {
    record
        .dimensions
        .values()
        .all(|d| d.allowed == 0 && d.denied == 0)
        && record
            .resources
            .values()
            .all(|v| quantity::parse_milli(v).is_some_and(|m| m == 0))
}

/// Write `record`, read from the engine at `taken` (the `lastFlush` stamp), creating the
/// object first if this process has not yet.
async fn flush(
    api: &Api<TenantUsage>,
    name: &str,
    tenant: &str,
    period: Period,
    record: &TenantUsageStatus,
    taken: jiff::Timestamp,
    created: &mut HashSet<String>,
) -> Result<(), kube::Error> {
    let params = PatchParams::apply(crate::naming::FIELD_MANAGER).force();
    if !created.contains(name) {
        let object = TenantUsage::new(
            name,
            TenantUsageSpec {
                tenant: tenant.to_string(),
                period: period.to_string(),
            },
        );
        let mut body = serde_json::to_value(&object).expect("serialises");
        body.as_object_mut().expect("object").remove("status");
        body["metadata"]["labels"] = json!({naming::TENANT_LABEL: tenant});
        api.patch(name, &params, &Patch::Apply(&body)).await?;
        created.insert(name.to_string());
    }
    let mut status = record.clone();
    status.last_flush = Some(MicroTime(taken));
    crate::kube_client::apply_status(api, name, &status).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ManualClock;

    /// An engine on a manual clock with its metering against a fresh kube-test (kept alive
    /// by the returned server).
    async fn metering_at(
        at: &str,
    ) -> (
        kube_test::RunningServer,
        Arc<ManualClock>,
        Arc<Engine>,
        Metering,
    ) {
        let server = kube_test::ApiServer::start().await.unwrap();
        let clock = Arc::new(ManualClock::at_rfc3339(at));
        let engine = Arc::new(Engine::with_clock(clock.clone(), ["api-calls"]));
        let metering = Metering::new(engine.clone(), server.client().await.unwrap());
        (server, clock, engine, metering)
    }

    /// A plan the engine cannot take leaves the limits as they were, but never lets a
    /// suspended tenant through.
    #[tokio::test]
    async fn a_suspension_reaches_the_engine_even_with_a_plan_it_cannot_take() {
        let (_server, _, engine, metering) = metering_at("2026-10-10T10:00:00Z").await;
        let good: api::TenantQuotaSpec = serde_saphyr::from_str(
            "rates: [{name: api-calls, limit: 10, per: 1m}, {name: llm-tokens, limit: 5, per: 1m, algorithm: SlidingWindow}]\nconcurrency: [{name: jobs, limit: 1}]",
        )
        .unwrap();
        let bad: api::TenantQuotaSpec =
            serde_saphyr::from_str("rates: [{name: api-calls, limit: 10, per: soon}]").unwrap();
        metering
            .set_tenant("acme", &good, api::TenantState::Active)
            .await
            .unwrap();
        assert_eq!(
            engine.check("acme", "api-calls", 4).unwrap().remaining,
            Some(6)
        );
        assert_eq!(
            engine.check("acme", "llm-tokens", 2).unwrap().remaining,
            Some(3)
        );
        assert!(engine.acquire("acme", "jobs").unwrap().decision.allowed);
        let refused = metering
            .set_tenant("acme", &bad, api::TenantState::Active)
            .await
            .unwrap_err();
        assert_eq!(refused, "rate api-calls: `soon` is not a duration");
        assert_eq!(
            engine.check("acme", "api-calls", 1).unwrap().remaining,
            Some(5)
        );
        // Suspended with the bad plan: every dimension of the old plan says so.
        assert!(
            metering
                .set_tenant("acme", &bad, api::TenantState::Suspended)
                .await
                .is_err()
        );
        for d in ["api-calls", "llm-tokens"] {
            let decision = engine.check("acme", d, 1).unwrap();
            assert_eq!(
                (decision.allowed, decision.reason),
                (false, Some(crate::engine::Reason::TenantSuspended)),
                "{d}"
            );
        }
        // Resumed, still with the bad plan: the old limits and what was used are all there.
        assert!(
            metering
                .set_tenant("acme", &bad, api::TenantState::Active)
                .await
                .is_err()
        );
        assert_eq!(
            engine.check("acme", "api-calls", 1).unwrap().remaining,
            Some(4)
        );
        assert_eq!(
            engine.check("acme", "llm-tokens", 1).unwrap().remaining,
            Some(2)
        );
        assert!(!engine.acquire("acme", "jobs").unwrap().decision.allowed);
        // A tenant first seen suspended with a bad plan is denied everything.
        assert!(
            metering
                .set_tenant("newco", &bad, api::TenantState::Suspended)
                .await
                .is_err()
        );
        assert_eq!(
            engine.check("newco", "api-calls", 1).unwrap().reason,
            Some(crate::engine::Reason::TenantSuspended)
        );
    }

    /// The month that just ended stays readable for its final flush, and the new month starts
    /// from zero; usage is reloaded only once per tenant.
    #[tokio::test]
    async fn a_new_month_starts_at_zero_and_the_old_one_stays_for_its_final_flush() {
        let (_server, clock, engine, metering) = metering_at("2026-10-31T23:59:00Z").await;
        let plan: api::TenantQuotaSpec = serde_saphyr::from_str(
            "pricing: {currency: EUR, items: [{dimension: api-calls, unit: 1, price: '0.5'}]}",
        )
        .unwrap();
        metering
            .set_tenant("acme", &plan, api::TenantState::Active)
            .await
            .unwrap();
        engine.check("acme", "api-calls", 4).unwrap();
        let october: Period = "2026-10".parse().unwrap();
        assert_eq!(
            metering.record("acme").unwrap().dimensions["api-calls"].allowed,
            4
        );

        clock.advance(Duration::from_secs(120));
        metering.observe_resources("acme", &BTreeMap::new());
        engine.check("acme", "api-calls", 1).unwrap();
        let november = metering.record("acme").unwrap();
        assert_eq!(november.dimensions["api-calls"].allowed, 1);
        assert_eq!(november.cost.unwrap().period, "2026-11");
        let last = metering.record_for("acme", october).unwrap();
        assert_eq!(last.dimensions["api-calls"].allowed, 4);
        assert_eq!(last.cost.unwrap().amount, "2");
    }

    #[test]
    fn hours_round_trip() {
        assert_eq!(format_hours(3_600_000), "1");
        assert_eq!(format_hours(5_400_000), "1.5");
        assert_eq!(parse_hours("1.5"), Some(5_400_000));
        assert_eq!(format_ms(60_000), "1m");
        assert_eq!(format_ms(86_400_000), "24h");
        assert_eq!(format_ms(1500), "1500ms");
    }
}
