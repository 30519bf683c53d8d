//! Which `spec.state` each life command sets, and from which states it makes sense. The
//! operator's state machine (`landlord::controller::life`) decides what a state change does;
//! this only keeps a command from doing something its name does not say (`resume` waking a
//! hibernated tenant, `suspend` restoring an archived one) and says which command to use.

use landlord::api::TenantState;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Suspend,
    Resume,
    Hibernate,
    Wake,
    Archive,
    Restore,
}

/// What a command does to `spec.state`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Write the new state.
    Set(TenantState),
    /// The state is already what the command asks for: write nothing (`--wait` still follows).
    Already(TenantState),
}

impl Action {
    pub fn target(self) -> TenantState {
        match self {
            Action::Suspend => TenantState::Suspended,
            Action::Hibernate => TenantState::Hibernated,
            Action::Archive => TenantState::Archived,
            Action::Resume | Action::Wake | Action::Restore => TenantState::Active,
        }
    }

    fn from(self) -> &'static [TenantState] {
        use TenantState::*;
        match self {
            Action::Suspend => &[Active],
            Action::Resume => &[Suspended],
            Action::Hibernate => &[Active, Suspended],
            Action::Wake => &[Hibernated],
            Action::Archive => &[Active, Suspended, Hibernated],
            Action::Restore => &[Archived],
        }
    }

    /// What the command does to tenant `name` whose `spec.state` is `current`, or why not.
    pub fn decide(self, name: &str, current: TenantState) -> Result<Decision, String> {
        let target = self.target();
        if current == target {
            return Ok(Decision::Already(target));
        }
        if self.from().contains(&current) {
            return Ok(Decision::Set(target));
        }
        let hint = match current {
            TenantState::Archived => format!("\"kubectl tenant restore {name}\" restores it first"),
            TenantState::Hibernated => format!("\"kubectl tenant wake {name}\" wakes it first"),
            TenantState::Suspended => format!("\"kubectl tenant resume {name}\" resumes it first"),
            TenantState::Active => format!("there is nothing to {}", self.verb()),
        };
        Err(format!(
            "tenant {name:?} is {current:?}, so it cannot {}: {hint}",
            self.verb()
        ))
    }

    pub fn verb(self) -> &'static str {
        match self {
            Action::Suspend => "suspend",
            Action::Resume => "resume",
            Action::Hibernate => "hibernate",
            Action::Wake => "wake",
            Action::Archive => "archive",
            Action::Restore => "restore",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action as A;
    use TenantState as S;

    #[test]
    fn each_command_moves_from_the_states_its_name_says() {
        for (action, from, to) in [
            (A::Suspend, S::Active, S::Suspended),
            (A::Resume, S::Suspended, S::Active),
            (A::Hibernate, S::Active, S::Hibernated),
            (A::Hibernate, S::Suspended, S::Hibernated),
            (A::Wake, S::Hibernated, S::Active),
            (A::Archive, S::Active, S::Archived),
            (A::Archive, S::Suspended, S::Archived),
            (A::Archive, S::Hibernated, S::Archived),
            (A::Restore, S::Archived, S::Active),
        ] {
            assert_eq!(
                action.decide("acme", from),
                Ok(Decision::Set(to)),
                "{action:?}"
            );
        }
    }

    #[test]
    fn a_command_already_done_writes_nothing() {
        for action in [
            A::Suspend,
            A::Resume,
            A::Hibernate,
            A::Wake,
            A::Archive,
            A::Restore,
        ] {
            let target = action.target();
            assert_eq!(action.decide("acme", target), Ok(Decision::Already(target)));
        }
    }

    #[test]
    fn the_others_are_refused_with_the_command_to_use() {
        let refused = |action: Action, from| action.decide("acme", from).unwrap_err();
        assert_eq!(
            refused(A::Hibernate, S::Archived),
            "tenant \"acme\" is Archived, so it cannot hibernate: \"kubectl tenant restore acme\" restores it first"
        );
        assert_eq!(
            refused(A::Resume, S::Hibernated),
            "tenant \"acme\" is Hibernated, so it cannot resume: \"kubectl tenant wake acme\" wakes it first"
        );
        assert_eq!(
            refused(A::Suspend, S::Archived),
            "tenant \"acme\" is Archived, so it cannot suspend: \"kubectl tenant restore acme\" restores it first"
        );
        assert_eq!(
            refused(A::Wake, S::Suspended),
            "tenant \"acme\" is Suspended, so it cannot wake: \"kubectl tenant resume acme\" resumes it first"
        );
        assert_eq!(
            refused(A::Restore, S::Hibernated),
            "tenant \"acme\" is Hibernated, so it cannot restore: \"kubectl tenant wake acme\" wakes it first"
        );
        // Hibernated -> Suspended would wake the tenant: not what "suspend" says.
        assert_eq!(
            refused(A::Suspend, S::Hibernated),
            "tenant \"acme\" is Hibernated, so it cannot suspend: \"kubectl tenant wake acme\" wakes it first"
        );
    }
}
