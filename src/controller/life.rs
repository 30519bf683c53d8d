//! A tenant's life: which step a reconcile takes, from the phase it left the tenant in, the
//! state its spec asks for and a few observed facts. Pure, so that every allowed and every
//! refused transition is a unit test.
//!
//! ```text
//!             Hibernated ◄──────────┐
//!                 │ wake            │ hibernate
//!                 ▼                 │
//!  Pending ──► Active / Suspended ──┴──► Archiving ──► Archived
//!                 ▲                                       │
//!                 └─────────────── Restoring ◄────────────┘ (state: Active or Suspended)
//! ```
//!
//! Long steps record progress in the status before they go on, so that an operator killed
//! in between resumes where it stopped: an archive is recorded (verified) before any
//! namespace is deleted, `Hibernated` is written only after every workload sleeps, and a
//! restore is marked done only after its objects were verified.

use crate::api::{Phase, TenantState};

/// What the reconcile knows when it decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Facts {
    /// The phase the last reconcile wrote (`None` for a new tenant).
    pub phase: Option<Phase>,
    pub desired: TenantState,
    /// An archive is recorded in the status, verified, and not restored yet.
    pub archive: bool,
    /// Any of the tenant's namespaces still exists.
    pub namespaces: bool,
    /// `spec.migration` is set.
    pub migrating: bool,
}

/// What the reconcile does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Provision as today; first wake the workloads a hibernation put to sleep.
    Provision { wake: bool },
    /// Provision with `pods: 0`, then put every workload to sleep.
    Hibernate,
    /// Export, seal, store and verify an archive, then record it.
    Archive,
    /// The archive is recorded: delete the namespaces.
    DeleteNamespaces,
    /// Archived, nothing left to do.
    StayArchived,
    /// Recreate the namespaces and the archived objects, verify, then provision.
    Restore,
    /// The transition is not allowed: say why and what to do; nothing changes.
    Refuse(Refusal),
}

/// Why a transition was refused, with the message the condition and the Event carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `Archived` → `Hibernated`: there is nothing running to put to sleep.
    HibernateArchived,
    /// Hibernating or archiving while a migration runs.
    Migrating,
    /// A restore asked for, but no archive is recorded.
    NoArchive,
}

impl Refusal {
    pub fn message(self) -> &'static str {
        match self {
            Self::HibernateArchived => {
                "an archived tenant cannot hibernate: set spec.state to Active to restore it first, then to Hibernated"
            }
            Self::Migrating => {
                "the tenant is migrating: remove spec.migration (or wait for it to finish) before hibernating or archiving"
            }
            Self::NoArchive => {
                "no archive is recorded for this archived tenant, so there is nothing to restore from: set spec.state back to Archived, or delete and recreate the Tenant to start afresh"
            }
        }
    }
}

/// The one decision. See the module documentation for the diagram.
pub fn next(f: Facts) -> Step {
    use Phase as P;
    use TenantState as S;
    let packed = matches!(f.phase, Some(P::Archived | P::Restoring));
    match f.desired {
        S::Archived if f.migrating => Step::Refuse(Refusal::Migrating),
        S::Archived if f.archive && f.namespaces => Step::DeleteNamespaces,
        S::Archived if f.archive => Step::StayArchived,
        // Archived with no archive and no namespaces: nothing is left to pack.
        S::Archived if f.phase == Some(P::Archived) => Step::StayArchived,
        S::Archived => Step::Archive,
        // An archive recorded and deletion begun finishes before anything else.
        _ if f.phase == Some(P::Archiving) && f.archive && f.namespaces => Step::DeleteNamespaces,
        S::Hibernated if packed || (f.phase == Some(P::Archiving) && f.archive) => {
            Step::Refuse(Refusal::HibernateArchived)
        }
        // A tenant that slept before its migration began sleeps on while it migrates.
        S::Hibernated if matches!(f.phase, Some(P::Hibernated | P::Migrating)) => {
            Step::Provision { wake: false }
        }
        S::Hibernated if f.migrating => Step::Refuse(Refusal::Migrating),
        S::Hibernated => Step::Hibernate,
        S::Active | S::Suspended if packed || (f.phase == Some(P::Archiving) && f.archive) => {
            if f.archive {
                Step::Restore
            } else {
                Step::Refuse(Refusal::NoArchive)
            }
        }
        S::Active | S::Suspended => Step::Provision {
            wake: f.phase == Some(P::Hibernated),
        },
    }
}

/// The phase a step leaves the tenant in when it finishes without error.
pub fn phase_after(step: &Step, desired: TenantState, before: Option<Phase>) -> Phase {
    match step {
        Step::Provision { .. } | Step::Restore => match desired {
            TenantState::Suspended => Phase::Suspended,
            TenantState::Hibernated => Phase::Hibernated,
            _ => Phase::Active,
        },
        Step::Hibernate => Phase::Hibernated,
        Step::Archive | Step::DeleteNamespaces => Phase::Archiving,
        Step::StayArchived => Phase::Archived,
        Step::Refuse(_) => before.unwrap_or(Phase::Pending),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Phase as P;
    use TenantState as S;

    fn facts(phase: Option<Phase>, desired: TenantState) -> Facts {
        Facts {
            phase,
            desired,
            archive: false,
            namespaces: true,
            migrating: false,
        }
    }

    #[test]
    fn active_and_suspended_provision_and_wake_only_after_hibernation() {
        for phase in [
            None,
            Some(P::Pending),
            Some(P::Active),
            Some(P::Suspended),
            Some(P::Failed),
        ] {
            for desired in [S::Active, S::Suspended] {
                assert_eq!(
                    next(facts(phase, desired)),
                    Step::Provision { wake: false },
                    "{phase:?} → {desired:?}"
                );
            }
        }
        assert_eq!(
            next(facts(Some(P::Hibernated), S::Active)),
            Step::Provision { wake: true }
        );
        assert_eq!(
            next(facts(Some(P::Hibernated), S::Suspended)),
            Step::Provision { wake: true }
        );
    }

    #[test]
    fn hibernation_sleeps_once_then_only_provisions() {
        for phase in [None, Some(P::Active), Some(P::Suspended)] {
            assert_eq!(next(facts(phase, S::Hibernated)), Step::Hibernate);
        }
        assert_eq!(
            next(facts(Some(P::Hibernated), S::Hibernated)),
            Step::Provision { wake: false }
        );
    }

    #[test]
    fn archiving_records_the_archive_then_deletes_then_stays() {
        for phase in [
            Some(P::Active),
            Some(P::Suspended),
            Some(P::Hibernated),
            Some(P::Archiving),
        ] {
            assert_eq!(next(facts(phase, S::Archived)), Step::Archive, "{phase:?}");
        }
        let recorded = Facts {
            archive: true,
            ..facts(Some(P::Archiving), S::Archived)
        };
        assert_eq!(next(recorded), Step::DeleteNamespaces);
        let gone = Facts {
            namespaces: false,
            ..recorded
        };
        assert_eq!(next(gone), Step::StayArchived);
        let archived = Facts {
            phase: Some(P::Archived),
            ..gone
        };
        assert_eq!(next(archived), Step::StayArchived);
    }

    #[test]
    fn restoring_needs_a_recorded_archive() {
        for desired in [S::Active, S::Suspended] {
            let with = Facts {
                archive: true,
                namespaces: false,
                ..facts(Some(P::Archived), desired)
            };
            assert_eq!(next(with), Step::Restore);
            let resumed = Facts {
                phase: Some(P::Restoring),
                namespaces: true,
                ..with
            };
            assert_eq!(next(resumed), Step::Restore);
            let without = Facts {
                archive: false,
                namespaces: false,
                ..with
            };
            assert_eq!(next(without), Step::Refuse(Refusal::NoArchive));
        }
    }

    #[test]
    fn an_archive_whose_deletion_began_finishes_before_a_restore() {
        let f = Facts {
            archive: true,
            ..facts(Some(P::Archiving), S::Active)
        };
        assert_eq!(next(f), Step::DeleteNamespaces);
        // Once the namespaces are gone, the same wish restores.
        assert_eq!(
            next(Facts {
                namespaces: false,
                ..f
            }),
            Step::Restore
        );
        // An archiving that recorded nothing yet is abandoned: nothing was deleted.
        let early = facts(Some(P::Archiving), S::Active);
        assert_eq!(next(early), Step::Provision { wake: false });
    }

    #[test]
    fn refused_transitions_say_what_to_do() {
        let archived = Facts {
            archive: true,
            namespaces: false,
            ..facts(Some(P::Archived), S::Hibernated)
        };
        assert_eq!(next(archived), Step::Refuse(Refusal::HibernateArchived));
        let restoring = Facts {
            phase: Some(P::Restoring),
            ..archived
        };
        assert_eq!(next(restoring), Step::Refuse(Refusal::HibernateArchived));
        let migrating = Facts {
            migrating: true,
            ..facts(Some(P::Active), S::Archived)
        };
        assert_eq!(next(migrating), Step::Refuse(Refusal::Migrating));
        let migrating = Facts {
            migrating: true,
            ..facts(Some(P::Active), S::Hibernated)
        };
        assert_eq!(next(migrating), Step::Refuse(Refusal::Migrating));
        // Asleep before the migration began: it migrates asleep.
        for phase in [P::Hibernated, P::Migrating] {
            let asleep = Facts {
                migrating: true,
                ..facts(Some(phase), S::Hibernated)
            };
            assert_eq!(next(asleep), Step::Provision { wake: false });
        }
        assert!(
            Refusal::HibernateArchived
                .message()
                .contains("spec.state to Active")
        );
        assert!(Refusal::NoArchive.message().contains("nothing to restore"));
    }

    #[test]
    fn each_step_ends_in_its_phase() {
        assert_eq!(
            phase_after(&Step::Hibernate, S::Hibernated, None),
            P::Hibernated
        );
        assert_eq!(
            phase_after(&Step::Provision { wake: true }, S::Suspended, None),
            P::Suspended
        );
        assert_eq!(
            phase_after(&Step::Provision { wake: false }, S::Hibernated, None),
            P::Hibernated
        );
        assert_eq!(
            phase_after(&Step::Restore, S::Active, Some(P::Archived)),
            P::Active
        );
        assert_eq!(
            phase_after(&Step::Archive, S::Archived, Some(P::Active)),
            P::Archiving
        );
        assert_eq!(
            phase_after(&Step::StayArchived, S::Archived, None),
            P::Archived
        );
        assert_eq!(
            phase_after(
                &Step::Refuse(Refusal::NoArchive),
                S::Active,
                Some(P::Archived)
            ),
            P::Archived
        );
    }
}
