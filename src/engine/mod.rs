//! The embedded quota engine: rate limits, concurrency slots, gauges, metering and pricing
//! (DESIGN.md section 3). Pure: it imports nothing from Kubernetes; `engine_http` serves it
//! and `metering` connects it to the cluster. `unsafe` lives only in `cell` and `engine`,
//! where the hot path needs it.
//!
//! The hot path (`Engine::check`) takes no lock: one shared load (the engine's generation,
//! to reuse the thread's copy of the tenant snapshot), one hash lookup, and in one 64-byte
//! cache line a compare-exchange on the token bucket and a `fetch_add` on the hour meter. State per (tenant,
//! dimension) is a few atomics shared between successive plans, so a plan change keeps what
//! was used. The operator converts its plans into [`TenantLimits`], is served by `engine_http`,
//! registers [`QuotaMetrics`], and persists [`Engine::usage`] through its ledger, which seeds
//! the engine back with [`Engine::load_usage`] after a restart.

mod bucket;
mod cell;
mod slots;
mod window;

pub mod clock;
pub mod decision;
pub mod limits;
pub mod meter;
pub mod metrics;
pub mod pricing;
pub mod table;

pub use bucket::Pacer;
pub use clock::{Clock, ManualClock, SystemClock};
pub use decision::{BatchDecision, Decision, EngineError, MAX_AMOUNT, Reason, SlotDecision};
pub use limits::{
    Algorithm, AllowedSpec, GaugeSpec, LimitsError, RateSpec, SizeSpec, SlotSpec, TenantLimits,
};
pub use meter::{BadPeriod, DimensionUsage, HourUsage, Period, Usage};
pub use metrics::QuotaMetrics;
pub use pricing::{Cost, CostLine, PriceItem, Pricing, PricingError};
pub use table::{
    AllChecked, BatchItem, Check, Checked, DimensionKind, DimensionStats, Engine, GaugeStatus,
    RateStatus, SlotStatus, TenantStats, Window,
};

#[cfg(test)]
mod engine_tests;
