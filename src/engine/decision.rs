//! What the engine answers, and how a request can be wrong.

use serde::{Deserialize, Serialize};

use super::limits::LimitsError;
use super::meter::BadPeriod;

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Reason {
    RateLimited,
    ConcurrencyLimit,
    GaugeLimit,
    TenantSuspended,
    /// The tenant is hibernated: its workloads sleep until it is woken.
    TenantHibernated,
    /// More than the dimension's size limit asked for in one check.
    TooLarge,
    /// A check attribute with a value its plan does not allow.
    NotAllowed,
}

/// The answer to "may this tenant use `amount` of this dimension now?".
///
/// `limit` and `remaining` are `None` for an unlimited (metered only) dimension. For a token
/// bucket they count tokens in the bucket (its burst); for windows, units in the window.
/// `retry_after_ms` is `None` when waiting cannot help (more than the limit asked for at once,
/// or a suspended tenant); it is `Some(0)` when allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    pub allowed: bool,
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    pub retry_after_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// Units counted when the request was refused (window or bucket usage, slots held,
    /// the gauge's value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<u64>,
}

impl Decision {
    pub(crate) fn allowed(limit: Option<u64>, remaining: Option<u64>) -> Self {
        Self {
            allowed: true,
            limit,
            remaining,
            retry_after_ms: Some(0),
            reason: None,
            current: None,
        }
    }

    #[cfg(test)]
    pub(crate) fn suspended() -> Self {
        Self::paused(false)
    }

    /// Every request of a suspended (or hibernated) tenant is refused with this.
    pub(crate) fn paused(hibernated: bool) -> Self {
        Self {
            allowed: false,
            limit: None,
            remaining: None,
            retry_after_ms: None,
            reason: Some(if hibernated {
                Reason::TenantHibernated
            } else {
                Reason::TenantSuspended
            }),
            current: None,
        }
    }

    /// `amount` is over the dimension's size limit `max`: waiting cannot help.
    pub(crate) fn too_large(max: u64, amount: u64) -> Self {
        Self {
            allowed: false,
            limit: Some(max),
            remaining: None,
            retry_after_ms: None,
            reason: Some(Reason::TooLarge),
            current: Some(amount),
        }
    }

    /// A check attribute's value is not one its plan allows.
    pub(crate) fn not_allowed() -> Self {
        Self {
            allowed: false,
            limit: None,
            remaining: None,
            retry_after_ms: None,
            reason: Some(Reason::NotAllowed),
            current: None,
        }
    }

    pub(crate) fn denied(
        reason: Reason,
        limit: u64,
        current: u64,
        retry_after_ms: Option<u64>,
    ) -> Self {
        Self {
            allowed: false,
            limit: Some(limit),
            remaining: Some(limit.saturating_sub(current)),
            retry_after_ms,
            reason: Some(reason),
            current: Some(current),
        }
    }
}

/// The answer to a batch: all items were charged, or none was.
///
/// Items are charged in order; at the first refusal everything charged so far is given back
/// and the remaining items are not evaluated (they come back `allowed: false` without a
/// reason). All-or-nothing because a caller asking for "1 request and 2,000 tokens" can use
/// neither alone, and charging half would bill for work that never ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchDecision {
    pub allowed: bool,
    pub retry_after_ms: Option<u64>,
    pub results: Vec<Decision>,
}

/// A concurrency slot acquired (or not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlotDecision {
    #[serde(flatten)]
    pub decision: Decision,
    /// Present when allowed: release or renew with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<jiff::Timestamp>,
}

/// A request the engine cannot answer with a decision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("unknown tenant {0:?}")]
    UnknownTenant(String),
    #[error("unknown dimension {dimension:?}; known dimensions: {}", known.join(", "))]
    UnknownDimension {
        dimension: String,
        known: Vec<String>,
    },
    #[error("dimension {dimension:?} is a {actual} dimension; {hint}")]
    WrongKind {
        dimension: String,
        actual: &'static str,
        hint: &'static str,
    },
    #[error("amount must be a whole number from 1 to 2^53, got {0}")]
    BadAmount(String),
    #[error(
        "slot {slot} of dimension {dimension:?} is not held (released, expired or never acquired)"
    )]
    SlotNotHeld { dimension: String, slot: u64 },
    #[error(transparent)]
    Limits(#[from] LimitsError),
    #[error(transparent)]
    Period(#[from] BadPeriod),
    #[error("this replica is handing over and decides no more; retry, the next leader answers")]
    Closed,
}

impl EngineError {
    /// A short label, for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::UnknownTenant(_) => "unknown_tenant",
            Self::UnknownDimension { .. } => "unknown_dimension",
            Self::WrongKind { .. } => "wrong_kind",
            Self::BadAmount(_) => "bad_amount",
            Self::SlotNotHeld { .. } => "slot_not_held",
            Self::Limits(_) => "bad_limits",
            Self::Period(_) => "bad_period",
            Self::Closed => "closed",
        }
    }
}

/// The largest amount one request may ask for: JSON numbers are exact up to 2^53.
pub const MAX_AMOUNT: u64 = 1 << 53;
