//! The engine's own plan types: what a tenant may use, per dimension.
//!
//! These are deliberately plain (no Kubernetes types): the operator converts a tenant's
//! effective `TenantQuota` plan into a [`TenantLimits`] and hands it to
//! [`Engine::set_tenant`](super::Engine::set_tenant).

use std::collections::HashSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How a rate limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Algorithm {
    /// `limit` tokens refilled evenly over `per`, holding at most `burst` (default `limit`).
    TokenBucket,
    /// At most `limit` in any trailing `per`, counted in 10 sub-buckets of `per / 10`.
    SlidingWindow,
    /// At most `limit` per window of `per`, windows aligned on the Unix epoch: `per` of one
    /// hour or one day resets on UTC hour or day boundaries.
    FixedWindow,
}

/// A rate limit on one dimension. A dimension may carry several (say 100/s and 1M/day);
/// a request must pass all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateSpec {
    /// The dimension, e.g. `requests` or `llm-tokens`.
    pub name: String,
    pub limit: u64,
    pub per: Duration,
    /// Token bucket only: the most that can be taken at once after a quiet spell.
    pub burst: Option<u64>,
    pub algorithm: Algorithm,
}

/// A concurrency limit: at most `limit` slots held at once, each expiring `lease` after it
/// was acquired or last renewed, so that a holder that died gives its slots back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotSpec {
    pub name: String,
    pub limit: u64,
    pub lease: Duration,
}

/// A gauge set to an absolute value (storage bytes, seats); a value above `limit` is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GaugeSpec {
    pub name: String,
    pub limit: Option<u64>,
}

/// The most one check of dimension `name` may ask for at once (a task's payload, a result, a
/// message); a larger `amount` is refused with
/// [`Reason::TooLarge`](super::Reason::TooLarge) and nothing is charged. It applies to
/// rate-limited and metered dimensions; a dimension named only here is metered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeSpec {
    pub name: String,
    pub max: u64,
}

/// The values a check attribute may take: a check carrying attribute `name` (whatever its
/// dimension) with a value not in `values` is refused with
/// [`Reason::NotAllowed`](super::Reason::NotAllowed). Checks without the attribute pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedSpec {
    pub name: String,
    pub values: Vec<String>,
}

/// Everything the engine enforces for one tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantLimits {
    pub rates: Vec<RateSpec>,
    pub concurrency: Vec<SlotSpec>,
    pub gauges: Vec<GaugeSpec>,
    pub sizes: Vec<SizeSpec>,
    pub allowed: Vec<AllowedSpec>,
    /// Denies every request with [`Reason::TenantSuspended`](super::Reason::TenantSuspended).
    pub suspended: bool,
    /// With `suspended`: the refusals say [`Reason::TenantHibernated`](super::Reason::TenantHibernated).
    pub hibernated: bool,
}

/// The most slots one concurrency dimension may have; slot ids keep the index in 20 bits.
pub const MAX_SLOTS: u64 = 1 << 20;

/// Why a [`TenantLimits`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitsError {
    #[error("dimension {0:?}: `per` must be at least one millisecond")]
    PeriodTooShort(String),
    #[error("dimension {0:?}: `burst` applies to token buckets only and must be at least 1")]
    BadBurst(String),
    #[error("dimension {0:?}: a token bucket needs a limit of at least 1")]
    ZeroRate(String),
    #[error("dimension {0:?}: at most {MAX_SLOTS} concurrency slots")]
    TooManySlots(String),
    #[error("dimension {0:?}: the slot lease must be at least one millisecond")]
    LeaseTooShort(String),
    #[error("dimension {0:?} is declared as more than one kind (rate, concurrency, gauge)")]
    MixedKinds(String),
    #[error("dimension {0:?} has more than one concurrency or gauge entry")]
    Duplicate(String),
    #[error("dimension name must be 1 to 63 characters of [a-z0-9.-], got {0:?}")]
    BadName(String),
    #[error(
        "dimension {0:?}: a size limit applies to rate-limited or metered dimensions, not to concurrency slots or gauges"
    )]
    SizeOnWrongKind(String),
    #[error("dimension {0:?} has more than one size limit")]
    DuplicateSize(String),
    #[error("attribute {0:?} has more than one list of allowed values")]
    DuplicateAllowed(String),
    #[error("attribute name must be 1 to 63 characters of [a-z0-9._-], got {0:?}")]
    BadAttribute(String),
}

pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.' || b == b'_'
        })
}

impl TenantLimits {
    /// Checks the plan is one the engine can enforce exactly.
    pub fn validate(&self) -> Result<(), LimitsError> {
        const MS: Duration = Duration::from_millis(1);
        let mut rate_names = HashSet::new();
        for r in &self.rates {
            if !valid_name(&r.name) {
                return Err(LimitsError::BadName(r.name.clone()));
            }
            if r.per < MS {
                return Err(LimitsError::PeriodTooShort(r.name.clone()));
            }
            let burst_ok = match (r.algorithm, r.burst) {
                (_, None) => true,
                (Algorithm::TokenBucket, Some(b)) => b >= 1,
                _ => false,
            };
            if !burst_ok {
                return Err(LimitsError::BadBurst(r.name.clone()));
            }
            if r.algorithm == Algorithm::TokenBucket && r.limit == 0 {
                return Err(LimitsError::ZeroRate(r.name.clone()));
            }
            rate_names.insert(r.name.as_str());
        }
        let mut others = HashSet::new();
        for s in &self.concurrency {
            if !valid_name(&s.name) {
                return Err(LimitsError::BadName(s.name.clone()));
            }
            if s.limit > MAX_SLOTS {
                return Err(LimitsError::TooManySlots(s.name.clone()));
            }
            if s.lease < MS {
                return Err(LimitsError::LeaseTooShort(s.name.clone()));
            }
            if rate_names.contains(s.name.as_str()) {
                return Err(LimitsError::MixedKinds(s.name.clone()));
            }
            if !others.insert(s.name.as_str()) {
                return Err(LimitsError::Duplicate(s.name.clone()));
            }
        }
        for g in &self.gauges {
            if !valid_name(&g.name) {
                return Err(LimitsError::BadName(g.name.clone()));
            }
            if rate_names.contains(g.name.as_str()) {
                return Err(LimitsError::MixedKinds(g.name.clone()));
            }
            if !others.insert(g.name.as_str()) {
                let kind_clash = self.concurrency.iter().any(|s| s.name == g.name);
                return Err(if kind_clash {
                    LimitsError::MixedKinds(g.name.clone())
                } else {
                    LimitsError::Duplicate(g.name.clone())
                });
            }
        }
        let mut sized = HashSet::new();
        for z in &self.sizes {
            if !valid_name(&z.name) {
                return Err(LimitsError::BadName(z.name.clone()));
            }
            if others.contains(z.name.as_str()) {
                return Err(LimitsError::SizeOnWrongKind(z.name.clone()));
            }
            if !sized.insert(z.name.as_str()) {
                return Err(LimitsError::DuplicateSize(z.name.clone()));
            }
        }
        let mut keys = HashSet::new();
        for a in &self.allowed {
            if !valid_name(&a.name) {
                return Err(LimitsError::BadAttribute(a.name.clone()));
            }
            if !keys.insert(a.name.as_str()) {
                return Err(LimitsError::DuplicateAllowed(a.name.clone()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(name: &str, algorithm: Algorithm) -> RateSpec {
        RateSpec {
            name: name.into(),
            limit: 10,
            per: Duration::from_secs(1),
            burst: None,
            algorithm,
        }
    }

    #[test]
    fn rejects_what_cannot_be_enforced() {
        let mut l = TenantLimits {
            rates: vec![rate("requests", Algorithm::TokenBucket)],
            ..Default::default()
        };
        assert_eq!(l.validate(), Ok(()));
        l.rates[0].per = Duration::from_micros(10);
        assert_eq!(
            l.validate(),
            Err(LimitsError::PeriodTooShort("requests".into()))
        );
        l.rates[0] = rate("requests", Algorithm::FixedWindow);
        l.rates[0].burst = Some(5);
        assert_eq!(l.validate(), Err(LimitsError::BadBurst("requests".into())));
        l.rates[0].burst = None;
        l.gauges.push(GaugeSpec {
            name: "requests".into(),
            limit: None,
        });
        assert_eq!(
            l.validate(),
            Err(LimitsError::MixedKinds("requests".into()))
        );
        l.gauges[0].name = "Bad Name".into();
        assert_eq!(l.validate(), Err(LimitsError::BadName("Bad Name".into())));
    }

    #[test]
    fn sizes_fit_metered_dimensions_once_and_attributes_have_one_rule() {
        let size = |name: &str| SizeSpec {
            name: name.into(),
            max: 1 << 20,
        };
        let mut l = TenantLimits {
            rates: vec![rate("tasks", Algorithm::TokenBucket)],
            gauges: vec![GaugeSpec {
                name: "storage-bytes".into(),
                limit: None,
            }],
            sizes: vec![size("tasks"), size("task-bytes")],
            allowed: vec![AllowedSpec {
                name: "queue".into(),
                values: vec!["default".into()],
            }],
            ..Default::default()
        };
        assert_eq!(l.validate(), Ok(()));
        l.sizes.push(size("storage-bytes"));
        assert_eq!(
            l.validate(),
            Err(LimitsError::SizeOnWrongKind("storage-bytes".into()))
        );
        l.sizes[2] = size("tasks");
        assert_eq!(
            l.validate(),
            Err(LimitsError::DuplicateSize("tasks".into()))
        );
        l.sizes.pop();
        l.allowed.push(l.allowed[0].clone());
        assert_eq!(
            l.validate(),
            Err(LimitsError::DuplicateAllowed("queue".into()))
        );
        l.allowed[1].name = "Queue".into();
        assert_eq!(l.validate(), Err(LimitsError::BadAttribute("Queue".into())));
    }
}
