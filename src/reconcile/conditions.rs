//! Standard `metav1.Condition`s that only move when they change.
//!
//! Conditions are computed from what was observed; `lastTransitionTime` is kept unless the
//! status flips, so a steady-state reconcile produces an identical status and writes nothing.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// A condition before times and generations are filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    pub type_: &'static str,
    pub ok: bool,
    pub reason: String,
    pub message: String,
}

impl Observation {
    pub fn new(type_: &'static str, ok: bool, reason: &str, message: impl Into<String>) -> Self {
        Self {
            type_,
            ok,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// Merge observations into the previous conditions: times kept where the status is unchanged.
pub fn merge(
    previous: &[Condition],
    observed: &[Observation],
    generation: Option<i64>,
    now: Time,
) -> Vec<Condition> {
    observed
        .iter()
        .map(|o| {
            let status = if o.ok { "True" } else { "False" }.to_string();
            let before = previous.iter().find(|c| c.type_ == o.type_);
            let last_transition_time = match before {
                Some(c) if c.status == status => c.last_transition_time.clone(),
                _ => now.clone(),
            };
            Condition {
                type_: o.type_.into(),
                status,
                reason: o.reason.clone(),
                message: o.message.clone(),
                observed_generation: generation,
                last_transition_time,
            }
        })
        .collect()
}

/// Conditions whose status or reason differ from before: each deserves an Event.
pub fn changed<'a>(previous: &[Condition], next: &'a [Condition]) -> Vec<&'a Condition> {
    next.iter()
        .filter(|n| {
            !previous
                .iter()
                .any(|p| p.type_ == n.type_ && p.status == n.status && p.reason == n.reason)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(s: &str) -> Time {
        Time(s.parse().unwrap())
    }

    #[test]
    fn unchanged_status_keeps_its_transition_time() {
        let before = merge(
            &[],
            &[Observation::new("Ready", true, "Provisioned", "ok")],
            Some(1),
            time("2026-01-01T00:00:00Z"),
        );
        let after = merge(
            &before,
            &[Observation::new("Ready", true, "Provisioned", "still ok")],
            Some(2),
            time("2026-01-02T00:00:00Z"),
        );
        assert_eq!(after[0].last_transition_time, time("2026-01-01T00:00:00Z"));
        assert_eq!(after[0].observed_generation, Some(2));
        assert_eq!(after[0].message, "still ok");
        assert!(changed(&before, &after).is_empty());
    }

    #[test]
    fn a_flip_moves_the_transition_time_and_counts_as_a_change() {
        let before = merge(
            &[],
            &[Observation::new("Ready", true, "Provisioned", "ok")],
            Some(1),
            time("2026-01-01T00:00:00Z"),
        );
        let after = merge(
            &before,
            &[Observation::new(
                "Ready",
                false,
                "PlanNotFound",
                "create it",
            )],
            Some(1),
            time("2026-01-02T00:00:00Z"),
        );
        assert_eq!(after[0].last_transition_time, time("2026-01-02T00:00:00Z"));
        assert_eq!(after[0].status, "False");
        assert_eq!(changed(&before, &after).len(), 1);
    }
}
