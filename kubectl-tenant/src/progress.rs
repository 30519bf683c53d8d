//! Whether a change `--wait` follows is done, has failed, or is still on its way: one pure
//! decision from what the tenant reports, so every case is a unit test.
//!
//! Only a status that has seen the generation the plugin wrote counts: a phase or a failure
//! from before the change says nothing about it.

use landlord::api::{MigrationMode, Phase, Tenant};

/// What `--wait` waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Goal {
    /// `status.phase` reaches this phase.
    Phase(Phase),
    /// `status.migration.phase` reaches `Done`; for `Move`, the source Tenant may also go.
    Migrated(MigrationMode),
    /// The Tenant is gone (`delete --wait`).
    Gone,
}

impl Goal {
    /// `phase Suspended`, `migration Done`, `deleted`.
    pub fn describe(self) -> String {
        match self {
            Goal::Phase(p) => format!("phase {p:?}"),
            Goal::Migrated(_) => "migration Done".into(),
            Goal::Gone => "deleted".into(),
        }
    }
}

/// Where a change stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Done,
    Failed(String),
    Waiting(Progress),
}

/// What a progress line or bar shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    pub phase: String,
    /// The generation the plugin wrote, while the status has not seen it yet.
    pub unobserved: Option<i64>,
    pub migration: Option<MigrationProgress>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationProgress {
    pub phase: String,
    pub percentage: u32,
    pub completed: u64,
    pub total: u64,
}

impl Progress {
    /// `phase Migrating, migration Copying 4/10 objects (40%)`.
    pub fn line(&self) -> String {
        let mut out = format!("phase {}", self.phase);
        if let Some(m) = &self.migration {
            out.push_str(&format!(
                ", migration {} {}/{} objects ({}%)",
                m.phase, m.completed, m.total, m.percentage
            ));
        }
        if let Some(g) = self.unobserved {
            out.push_str(&format!(", waiting for the operator to see generation {g}"));
        }
        out
    }
}

/// Where the change that wrote `generation` stands on `tenant` (`None`: it was deleted).
/// `migration_error` is `status.migration.lastError`.
pub fn assess(
    tenant: Option<&Tenant>,
    migration_error: Option<&str>,
    goal: Goal,
    generation: i64,
) -> Verdict {
    let Some(tenant) = tenant else {
        return match goal {
            Goal::Gone | Goal::Migrated(MigrationMode::Move) => Verdict::Done,
            _ => Verdict::Failed("the tenant was deleted".into()),
        };
    };
    let status = tenant.status.clone().unwrap_or_default();
    let observed = status.observed_generation.unwrap_or(0) >= generation;
    let phase = status.phase.unwrap_or_default();
    let migration = status.migration.as_ref();
    if observed {
        let current = |c: &&k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition| {
            c.observed_generation.is_none_or(|g| g >= generation)
        };
        let ready = status
            .conditions
            .iter()
            .filter(current)
            .find(|c| c.type_ == "Ready");
        if let Some(r) = ready.filter(|r| r.status == "False" && r.reason == "TransitionRefused") {
            return Verdict::Failed(format!("{}: {}", r.reason, r.message));
        }
        if phase == Phase::Failed {
            let why = ready.filter(|r| r.status == "False").or_else(|| {
                status
                    .conditions
                    .iter()
                    .filter(current)
                    .find(|c| c.status == "False")
            });
            return Verdict::Failed(match why {
                Some(c) => format!("phase Failed, {} {}: {}", c.type_, c.reason, c.message),
                None => "phase Failed".into(),
            });
        }
        match (goal, migration.map(|m| m.phase.as_str())) {
            (Goal::Phase(p), _) if p == phase => return Verdict::Done,
            (Goal::Migrated(_), Some("Done")) => return Verdict::Done,
            (Goal::Migrated(_), Some("Failed")) => {
                let why = migration_error.map(str::to_string).or_else(|| {
                    status
                        .conditions
                        .iter()
                        .find(|c| c.type_ == "Migrated" && c.status == "False")
                        .map(|c| format!("{}: {}", c.reason, c.message))
                });
                return Verdict::Failed(match why {
                    Some(why) => format!("migration Failed: {why}"),
                    None => "migration Failed".into(),
                });
            }
            (Goal::Migrated(_), Some("Cancelled")) => {
                return Verdict::Failed(
                    "migration Cancelled: spec.migration was removed before the cutover".into(),
                );
            }
            _ => {}
        }
    }
    Verdict::Waiting(Progress {
        phase: format!("{phase:?}"),
        unobserved: (!observed).then_some(generation),
        migration: migration.map(|m| MigrationProgress {
            phase: m.phase.clone(),
            percentage: m.percentage,
            completed: m.completed_items,
            total: m.total_items,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
    use landlord::api::{MigrationStatus, TenantSpec, TenantStatus};

    fn tenant(phase: Phase, observed: i64, conditions: Vec<Condition>) -> Tenant {
        let mut t = Tenant::new("acme", TenantSpec::default());
        t.status = Some(TenantStatus {
            phase: Some(phase),
            observed_generation: Some(observed),
            conditions,
            ..TenantStatus::default()
        });
        t
    }

    fn condition(type_: &str, status: &str, reason: &str, generation: Option<i64>) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message: format!("{reason} says what to do"),
            observed_generation: generation,
            last_transition_time: Time(jiff::Timestamp::UNIX_EPOCH),
        }
    }

    fn migrating(phase: &str, done: u64) -> Tenant {
        let mut t = tenant(Phase::Migrating, 3, vec![]);
        t.status.as_mut().unwrap().migration = Some(MigrationStatus {
            phase: phase.into(),
            total_items: 10,
            completed_items: done,
            percentage: (done * 10) as u32,
            ..MigrationStatus::default()
        });
        t
    }

    const SUSPENDED: Goal = Goal::Phase(Phase::Suspended);

    #[test]
    fn done_only_once_the_written_generation_is_observed() {
        let before = tenant(Phase::Suspended, 2, vec![]);
        assert_eq!(
            assess(Some(&before), None, SUSPENDED, 3),
            Verdict::Waiting(Progress {
                phase: "Suspended".into(),
                unobserved: Some(3),
                migration: None
            })
        );
        let after = tenant(Phase::Suspended, 3, vec![]);
        assert_eq!(assess(Some(&after), None, SUSPENDED, 3), Verdict::Done);
        let later = tenant(Phase::Suspended, 4, vec![]);
        assert_eq!(assess(Some(&later), None, SUSPENDED, 3), Verdict::Done);
        let on_the_way = tenant(Phase::Active, 3, vec![]);
        assert_eq!(
            assess(Some(&on_the_way), None, SUSPENDED, 3),
            Verdict::Waiting(Progress {
                phase: "Active".into(),
                unobserved: None,
                migration: None
            })
        );
    }

    #[test]
    fn a_refused_transition_or_a_failed_phase_is_a_failure_of_this_generation_only() {
        let refused = vec![condition("Ready", "False", "TransitionRefused", Some(3))];
        assert_eq!(
            assess(
                Some(&tenant(Phase::Archived, 3, refused)),
                None,
                Goal::Phase(Phase::Hibernated),
                3
            ),
            Verdict::Failed("TransitionRefused: TransitionRefused says what to do".into())
        );
        let stale = vec![condition("Ready", "False", "TransitionRefused", Some(2))];
        assert!(matches!(
            assess(
                Some(&tenant(Phase::Archived, 3, stale)),
                None,
                Goal::Phase(Phase::Hibernated),
                3
            ),
            Verdict::Waiting(_)
        ));
        let failed = vec![
            condition("Ready", "True", "Provisioned", Some(3)),
            condition("Provisioned", "False", "NamespaceConflict", Some(3)),
        ];
        assert_eq!(
            assess(
                Some(&tenant(Phase::Failed, 3, failed.clone())),
                None,
                SUSPENDED,
                3
            ),
            Verdict::Failed(
                "phase Failed, Provisioned NamespaceConflict: NamespaceConflict says what to do"
                    .into()
            )
        );
        assert!(matches!(
            assess(Some(&tenant(Phase::Failed, 2, failed)), None, SUSPENDED, 3),
            Verdict::Waiting(_)
        ));
        assert_eq!(
            assess(Some(&tenant(Phase::Failed, 3, vec![])), None, SUSPENDED, 3),
            Verdict::Failed("phase Failed".into())
        );
    }

    #[test]
    fn a_migration_reports_progress_then_done_or_its_last_error() {
        let goal = Goal::Migrated(MigrationMode::Copy);
        assert_eq!(
            assess(Some(&migrating("Copying", 4)), None, goal, 3),
            Verdict::Waiting(Progress {
                phase: "Migrating".into(),
                unobserved: None,
                migration: Some(MigrationProgress {
                    phase: "Copying".into(),
                    percentage: 40,
                    completed: 4,
                    total: 10
                })
            })
        );
        assert_eq!(
            assess(Some(&migrating("Done", 10)), None, goal, 3),
            Verdict::Done
        );
        assert_eq!(
            assess(
                Some(&migrating("Failed", 4)),
                Some("target unreachable: check the Secret"),
                goal,
                3
            ),
            Verdict::Failed("migration Failed: target unreachable: check the Secret".into())
        );
        let mut with_condition = migrating("Failed", 4);
        with_condition.status.as_mut().unwrap().conditions =
            vec![condition("Migrated", "False", "TargetUnreachable", Some(3))];
        assert_eq!(
            assess(Some(&with_condition), None, goal, 3),
            Verdict::Failed(
                "migration Failed: TargetUnreachable: TargetUnreachable says what to do".into()
            )
        );
        assert_eq!(
            assess(Some(&migrating("Cancelled", 4)), None, goal, 3),
            Verdict::Failed(
                "migration Cancelled: spec.migration was removed before the cutover".into()
            )
        );
    }

    #[test]
    fn a_deleted_tenant_is_done_only_for_delete_and_a_move() {
        assert_eq!(assess(None, None, Goal::Gone, 1), Verdict::Done);
        assert_eq!(
            assess(None, None, Goal::Migrated(MigrationMode::Move), 1),
            Verdict::Done
        );
        assert_eq!(
            assess(None, None, Goal::Migrated(MigrationMode::Copy), 1),
            Verdict::Failed("the tenant was deleted".into())
        );
        assert_eq!(
            assess(None, None, SUSPENDED, 1),
            Verdict::Failed("the tenant was deleted".into())
        );
    }

    #[test]
    fn progress_lines_say_phase_migration_and_what_is_awaited() {
        let p = Progress {
            phase: "Migrating".into(),
            unobserved: Some(4),
            migration: Some(MigrationProgress {
                phase: "Copying".into(),
                percentage: 40,
                completed: 4,
                total: 10,
            }),
        };
        assert_eq!(
            p.line(),
            "phase Migrating, migration Copying 4/10 objects (40%), waiting for the operator to see generation 4"
        );
    }
}
