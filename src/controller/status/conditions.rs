//! Standard `metav1.Condition`s that only move when they change.
//!
//! Conditions are computed from what was observed; `lastTransitionTime` is kept unless the
//! status flips, so a steady-state reconcile produces an identical status and writes nothing.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// The condition types a Tenant reports (DESIGN.md section 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionType {
    Ready,
    Provisioned,
    QuotaHealthy,
    NetworkIsolated,
    /// Set once a migration was asked for: its stage, failure, or end.
    Migrated,
}

impl ConditionType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "Ready",
            Self::Provisioned => "Provisioned",
            Self::QuotaHealthy => "QuotaHealthy",
            Self::NetworkIsolated => "NetworkIsolated",
            Self::Migrated => "Migrated",
        }
    }
}

/// Every reason a Tenant condition can give: CamelCase, as `metav1.Condition` wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Ready,
    Provisioned,
    NamespaceConflict,
    PlanNotFound,
    StateNotSupported,
    NamespaceLimitExceeded,
    OverQuota,
    WithinQuota,
    Strict,
    IsolationOpen,
    Hibernated,
    /// A transition `controller::life` does not allow.
    TransitionRefused,
    Archiving,
    Archived,
    Restoring,
    /// An archive step failed: the archive error's own reason (`ArchiveError::reason`).
    ArchiveFailed(&'static str),
    /// A migration's stage, end or failure (`controller::migrating`).
    Migration(&'static str),
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "Ready",
            Self::Provisioned => "Provisioned",
            Self::NamespaceConflict => "NamespaceConflict",
            Self::PlanNotFound => "PlanNotFound",
            Self::StateNotSupported => "StateNotSupported",
            Self::NamespaceLimitExceeded => "NamespaceLimitExceeded",
            Self::OverQuota => "OverQuota",
            Self::WithinQuota => "WithinQuota",
            Self::Strict => "Strict",
            Self::IsolationOpen => "IsolationOpen",
            Self::Hibernated => "Hibernated",
            Self::TransitionRefused => "TransitionRefused",
            Self::Archiving => "Archiving",
            Self::Archived => "Archived",
            Self::Restoring => "Restoring",
            Self::ArchiveFailed(reason) | Self::Migration(reason) => reason,
        }
    }
}

/// A condition before times and generations are filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    pub type_: ConditionType,
    pub ok: bool,
    pub reason: Reason,
    pub message: String,
}

impl Observation {
    pub fn new(type_: ConditionType, ok: bool, reason: Reason, message: impl Into<String>) -> Self {
        Self {
            type_,
            ok,
            reason,
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
            let before = previous.iter().find(|c| c.type_ == o.type_.as_str());
            let last_transition_time = match before {
                Some(c) if c.status == status => c.last_transition_time.clone(),
                _ => now.clone(),
            };
            Condition {
                type_: o.type_.as_str().into(),
                status,
                reason: o.reason.as_str().into(),
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

/// The changed conditions that deserve an Event. A new tenant's first conditions do only
/// when they are `False` (something to act on) or say it is `Ready`: four Events for every
/// tenant created would be noise, and writes.
pub fn worth_an_event<'a>(previous: &[Condition], next: &'a [Condition]) -> Vec<&'a Condition> {
    changed(previous, next)
        .into_iter()
        .filter(|c| {
            c.status == "False"
                || c.type_ == ConditionType::Ready.as_str()
                || previous.iter().any(|p| p.type_ == c.type_)
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
            &[Observation::new(
                ConditionType::Ready,
                true,
                Reason::Provisioned,
                "ok",
            )],
            Some(1),
            time("2026-01-01T00:00:00Z"),
        );
        let after = merge(
            &before,
            &[Observation::new(
                ConditionType::Ready,
                true,
                Reason::Provisioned,
                "still ok",
            )],
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
            &[Observation::new(
                ConditionType::Ready,
                true,
                Reason::Provisioned,
                "ok",
            )],
            Some(1),
            time("2026-01-01T00:00:00Z"),
        );
        let after = merge(
            &before,
            &[Observation::new(
                ConditionType::Ready,
                false,
                Reason::PlanNotFound,
                "create it",
            )],
            Some(1),
            time("2026-01-02T00:00:00Z"),
        );
        assert_eq!(after[0].last_transition_time, time("2026-01-02T00:00:00Z"));
        assert_eq!(after[0].status, "False");
        assert_eq!(changed(&before, &after).len(), 1);
    }

    #[test]
    fn a_new_healthy_tenant_gets_one_event_and_later_changes_each_get_theirs() {
        let t = time("2026-01-01T00:00:00Z");
        let first = merge(
            &[],
            &[
                Observation::new(ConditionType::Ready, true, Reason::Ready, "ok"),
                Observation::new(ConditionType::Provisioned, true, Reason::Provisioned, "ok"),
                Observation::new(ConditionType::QuotaHealthy, false, Reason::OverQuota, "x"),
            ],
            Some(1),
            t.clone(),
        );
        let types: Vec<&str> = worth_an_event(&[], &first)
            .iter()
            .map(|c| c.type_.as_str())
            .collect();
        assert_eq!(types, ["Ready", "QuotaHealthy"]);
        let later = merge(
            &first,
            &[
                Observation::new(ConditionType::Ready, true, Reason::Ready, "ok"),
                Observation::new(
                    ConditionType::Provisioned,
                    false,
                    Reason::NamespaceConflict,
                    "x",
                ),
                Observation::new(ConditionType::QuotaHealthy, true, Reason::WithinQuota, "ok"),
            ],
            Some(2),
            t,
        );
        let types: Vec<&str> = worth_an_event(&first, &later)
            .iter()
            .map(|c| c.type_.as_str())
            .collect();
        assert_eq!(types, ["Provisioned", "QuotaHealthy"]);
    }
}
