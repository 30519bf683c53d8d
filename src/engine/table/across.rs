//! Checks across tenants, all or nothing: the batches of Envoy's rate limit service, whose
//! descriptors may each name another tenant and dimension.
//!
//! Unlike [`Engine::check_batch`] (one tenant, stopped at the first refusal), every check is
//! decided, so the caller learns each one's own answer and the limit that decided it; then,
//! if any was refused, everything charged is given back. Nothing is charged for a refused
//! batch, as everywhere in the engine.

use std::time::Duration;

use super::{Charge, Decision, Dimension, Engine, EngineError, Rate, Reason, Receipt, ceil_ms};

/// One check of an [`Engine::check_all`] batch.
#[derive(Debug, Clone, Copy)]
pub struct Check<'a> {
    pub tenant: &'a str,
    pub dimension: &'a str,
    pub amount: u64,
    /// Judged by the tenant's allowed-values rules (see [`Engine::check_with`]).
    pub attributes: &'a [(&'a str, &'a str)],
}

/// The rate limit that decided a check: the plan's `limit` per `per`, and how long until its
/// counter is whole again (the bucket full, the window empty; zero when nothing is counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub limit: u64,
    pub per: Duration,
    pub reset_after: Duration,
}

/// One check's answer in a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// This check's own answer: `allowed` when it passed by itself, even in a refused batch,
    /// whose `remaining` is then what remains with nothing charged.
    pub decision: Decision,
    /// The rate limit that decided: the refusing one, or the one with the least remaining.
    /// `None` for a dimension without a rate limit, and for refusals by suspension, size or
    /// attribute, which no window explains.
    pub window: Option<Window>,
}

/// The answer to a batch: every check charged, or none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllChecked {
    pub allowed: bool,
    /// In the order asked; an error for a check the engine cannot answer (unknown tenant or
    /// dimension, a slot or gauge dimension, a bad amount).
    pub checks: Vec<Result<Checked, EngineError>>,
}

impl Engine {
    /// Decides every check, and charges them all if each passes, else none. A check the
    /// engine cannot answer refuses the batch when `unknown_refuses`, and is left out of it
    /// otherwise. Refusals are metered as denied decisions; a refused batch's passing checks
    /// are not metered at all.
    pub fn check_all(&self, checks: &[Check<'_>], unknown_refuses: bool) -> AllChecked {
        if self.is_closed() {
            return AllChecked {
                allowed: false,
                checks: checks.iter().map(|_| Err(EngineError::Closed)).collect(),
            };
        }
        let map = self.tenants.load();
        let now = self.clock.now_nanos();
        let mut refused = false;
        let mut receipts = Vec::with_capacity(checks.len());
        let mut decided = Vec::with_capacity(checks.len());
        for c in checks {
            let found = Self::check_amount(c.amount).and_then(|()| {
                let t = map
                    .get(c.tenant)
                    .ok_or_else(|| EngineError::UnknownTenant(c.tenant.to_owned()))?;
                let dim = Self::dimension(t, c.dimension)?;
                Self::rate_kind(dim)?;
                Ok((t, dim))
            });
            let (t, dim) = match found {
                Ok(found) => found,
                Err(e) => {
                    refused |= unknown_refuses;
                    decided.push(Err(e));
                    continue;
                }
            };
            let outcome = if t.suspended {
                Err((Decision::paused(t.hibernated), None))
            } else if let Some(refusal) = Self::screen(t, dim, c.amount, c.attributes) {
                Err((refusal, None))
            } else {
                Self::charge_traced(dim, now, c.amount, &mut receipts)
            };
            let meter = dim.meter.as_deref().expect("rate dimensions are metered");
            match outcome {
                Ok((decision, rate)) => decided.push(Ok((dim, decision, rate))),
                Err((decision, rate)) => {
                    refused = true;
                    meter.record_denied(now);
                    decided.push(Ok((dim, decision, rate)));
                }
            }
        }
        if refused {
            for r in receipts.drain(..).rev() {
                r.rate.refund(r.receipt, r.amount);
            }
        }
        let checks = decided
            .into_iter()
            .zip(checks)
            .map(|(d, c)| {
                let (dim, mut decision, rate) = d?;
                if decision.allowed {
                    if refused {
                        if let Some(rate) = rate {
                            let limit = rate.reported_limit();
                            decision.remaining = Some(limit.saturating_sub(rate.used(now)));
                        }
                    } else {
                        let meter = dim.meter.as_deref().expect("rate dimensions are metered");
                        meter.record(now, c.amount);
                    }
                }
                let window = rate.map(|r| Window {
                    limit: r.limit,
                    per: Duration::from_nanos(r.per_nanos),
                    reset_after: Duration::from_nanos(r.reset_after(now)),
                });
                Ok(Checked { decision, window })
            })
            .collect();
        AllChecked {
            allowed: !refused,
            checks,
        }
    }

    /// Charges every rate of `dim`, or none, noting the receipts of what it charged; the
    /// answer comes with the rate that decided it.
    #[allow(clippy::type_complexity)]
    fn charge_traced<'d>(
        dim: &'d Dimension,
        now: u64,
        amount: u64,
        receipts: &mut Vec<Receipt<'d>>,
    ) -> Result<(Decision, Option<&'d Rate>), (Decision, Option<&'d Rate>)> {
        let start = receipts.len();
        let mut tightest: Option<(&Rate, u64)> = None;
        for rate in dim.kind.rates() {
            match rate.try_charge(now, amount) {
                Charge::Allowed { remaining, receipt } => {
                    receipts.push(Receipt {
                        rate,
                        receipt,
                        amount,
                    });
                    if tightest.is_none_or(|(_, r)| remaining < r) {
                        tightest = Some((rate, remaining));
                    }
                }
                Charge::Denied {
                    current,
                    retry_after,
                } => {
                    for r in receipts.drain(start..).rev() {
                        r.rate.refund(r.receipt, r.amount);
                    }
                    let limit = rate.reported_limit();
                    let retry = retry_after.map(ceil_ms);
                    let decision = Decision::denied(Reason::RateLimited, limit, current, retry);
                    return Err((decision, Some(rate)));
                }
            }
        }
        Ok(match tightest {
            Some((rate, remaining)) => (
                Decision::allowed(Some(rate.reported_limit()), Some(remaining)),
                Some(rate),
            ),
            None => (Decision::allowed(None, None), None),
        })
    }
}
