//! Migration decisions, pure: which stage a reconcile takes a migration to, where an
//! interrupted copy resumes, how progress is counted, and how the source and target object
//! sets compare. `migrating` does the I/O.
//!
//! ```text
//! Planning ──► Copying ──► Verifying ──► Done            (Copy)
//!                                  └──► Cutover ──► Done (Move: the source Tenant is deleted)
//! any stage but Cutover ──(spec.migration removed)──► Cancelled
//! a failure that needs someone to act ──► Failed ──(retried with backoff)──► Planning
//! ```
//!
//! A run is identified by its target Secret and mode, recorded in the status: changing
//! `spec.migration` starts a new run, and a run in `Cutover` finishes even when the spec is
//! removed, since the source's workloads are already asleep.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::api::{Migration, MigrationStatus};
use crate::archive::{self, import};

/// Annotation on the target's Tenant: `<plan checksum> <objects copied>`, written after every
/// batch, so that progress survives a status write that was lost with the operator.
pub const CHECKPOINT: &str = "landlord.dev/migration-checkpoint";

/// The stages of `status.migration.phase`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Planning,
    Copying,
    Verifying,
    Cutover,
    Done,
    Failed,
    Cancelled,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Planning => "Planning",
            Self::Copying => "Copying",
            Self::Verifying => "Verifying",
            Self::Cutover => "Cutover",
            Self::Done => "Done",
            Self::Failed => "Failed",
            Self::Cancelled => "Cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Stage> {
        [
            Self::Planning,
            Self::Copying,
            Self::Verifying,
            Self::Cutover,
            Self::Done,
            Self::Failed,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// A run at this stage is under way: the tenant's phase is `Migrating`.
    pub fn running(self) -> bool {
        matches!(
            self,
            Self::Planning | Self::Copying | Self::Verifying | Self::Cutover | Self::Failed
        )
    }
}

/// What a reconcile does about migration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Nothing asked for, or this run is over.
    Idle,
    /// A new run, from `Planning` (nothing recorded, or another target or mode).
    Start,
    /// Go on with the recorded run at this stage.
    Resume(Stage),
    /// `spec.migration` was removed before cutover: stop, touch nothing, say what was copied.
    Cancel,
}

/// The one decision, from the spec and the status the last reconcile wrote.
pub fn next(spec: Option<&Migration>, status: Option<&MigrationStatus>) -> Next {
    let stage = status.and_then(|s| Stage::parse(&s.phase));
    // A cutover finishes whatever the spec says now: the source sleeps already.
    if stage == Some(Stage::Cutover) {
        return Next::Resume(Stage::Cutover);
    }
    let Some(spec) = spec else {
        return match stage {
            None | Some(Stage::Done | Stage::Cancelled) => Next::Idle,
            Some(_) => Next::Cancel,
        };
    };
    let same_run = status.is_some_and(|s| {
        s.target_ref.as_ref() == Some(&spec.target_ref) && s.mode == Some(spec.mode)
    });
    match stage {
        Some(_) if !same_run => Next::Start,
        None | Some(Stage::Cancelled) => Next::Start,
        Some(Stage::Done) => Next::Idle,
        // A failure is retried from the plan; the copy resumes at its checkpoint.
        Some(Stage::Failed) => Next::Resume(Stage::Planning),
        Some(stage) => Next::Resume(stage),
    }
}

/// Whether a migration is under way, for `life`: hibernating or archiving waits for it.
pub fn in_progress(spec: Option<&Migration>, status: Option<&MigrationStatus>) -> bool {
    !matches!(next(spec, status), Next::Idle | Next::Cancel)
}

/// Whole percent of `completed` out of `total`; an empty plan is complete.
pub fn percentage(completed: u64, total: u64) -> u32 {
    if total == 0 {
        return 100;
    }
    (completed.min(total) * 100 / total) as u32
}

/// Where a copy resumes: the further of the status's count and the target's checkpoint (the
/// checkpoint only when it belongs to this plan), never past the plan's end. When the source
/// changed since the count was made, objects skipped here are caught up by verification.
pub fn resume_at(
    recorded: u64,
    checkpoint: Option<(&str, u64)>,
    checksum: &str,
    total: u64,
) -> u64 {
    let checkpointed = checkpoint
        .filter(|(c, _)| *c == checksum)
        .map(|(_, n)| n)
        .unwrap_or(0);
    recorded.max(checkpointed).min(total)
}

/// The checkpoint annotation's value.
pub fn checkpoint_value(checksum: &str, completed: u64) -> String {
    format!("{checksum} {completed}")
}

/// A checkpoint annotation read back; `None` when it is not one.
pub fn parse_checkpoint(text: &str) -> Option<(&str, u64)> {
    let (checksum, count) = text.split_once(' ')?;
    Some((checksum, count.parse().ok()?))
}

/// sha256 over the plan: every object's key and checksum, in order. Equal plans, equal sums.
pub fn plan_checksum(objects: &[Value]) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for obj in objects {
        hash.update(import::describe(obj).as_bytes());
        hash.update(b" ");
        hash.update(archive::object_sha256(obj).as_bytes());
        hash.update(b"\n");
    }
    format!("{:x}", hash.finalize())
}

/// How the target's objects differ from the source's. Keys are `Kind namespace/name
/// (apiVersion)`, as archive errors name objects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Comparison {
    /// On the source, not on the target.
    pub missing: Vec<String>,
    /// On both, different: the key and its first differences.
    pub differing: Vec<String>,
    /// On the target only.
    pub extra: Vec<String>,
}

impl Comparison {
    pub fn same(&self) -> bool {
        self.missing.is_empty() && self.differing.is_empty() && self.extra.is_empty()
    }

    /// Every difference on one line each, for a condition message or an error.
    pub fn lines(&self) -> Vec<String> {
        let missing = self
            .missing
            .iter()
            .map(|k| format!("{k}: missing on the target"));
        let extra = self.extra.iter().map(|k| {
            format!("{k}: only on the target (deleted at the source during the migration? delete it on the target)")
        });
        missing
            .chain(self.differing.iter().cloned())
            .chain(extra)
            .collect()
    }
}

/// Compare object sets, both exported (server fields stripped): same kind, namespace and
/// name, and the same sha256 of the normalised object. Where the sums differ, the target
/// may still hold everything the source has plus defaults its API server adds (another
/// Kubernetes version): the archive's containment test decides.
pub fn compare(source: &[Value], target: &[Value]) -> Comparison {
    let keyed = |objects: &[Value]| -> BTreeMap<String, Value> {
        objects
            .iter()
            .map(|o| (import::describe(o), o.clone()))
            .collect()
    };
    let (source, target) = (keyed(source), keyed(target));
    let mut out = Comparison::default();
    for (key, want) in &source {
        match target.get(key) {
            None => out.missing.push(key.clone()),
            Some(found) if archive::object_sha256(found) == archive::object_sha256(want) => {}
            Some(found) => {
                let diffs = import::differences(found, want);
                if !diffs.is_empty() {
                    out.differing.push(format!("{key}: {}", diffs.join("; ")));
                }
            }
        }
    }
    out.extra = target
        .keys()
        .filter(|k| !source.contains_key(*k))
        .cloned()
        .collect();
    out
}

/// The source objects a catch-up must write to the target: missing or differing there.
pub fn to_catch_up<'a>(source: &'a [Value], comparison: &Comparison) -> Vec<&'a Value> {
    source
        .iter()
        .filter(|o| {
            let key = import::describe(o);
            comparison.missing.contains(&key)
                || comparison.differing.iter().any(|d| {
                    d.strip_prefix(key.as_str())
                        .is_some_and(|r| r.starts_with(':'))
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{MigrationMode, SecretKeyRef};
    use serde_json::json;

    fn spec(name: &str, mode: MigrationMode) -> Migration {
        Migration {
            target_ref: SecretKeyRef {
                name: name.into(),
                namespace: "ops".into(),
                key: None,
            },
            mode,
        }
    }

    fn status(phase: Stage, of: &Migration) -> MigrationStatus {
        MigrationStatus {
            phase: phase.as_str().into(),
            target_ref: Some(of.target_ref.clone()),
            mode: Some(of.mode),
            ..Default::default()
        }
    }

    #[test]
    fn a_run_starts_resumes_and_ends_by_what_the_status_recorded() {
        let copy = spec("east", MigrationMode::Copy);
        assert_eq!(next(None, None), Next::Idle);
        assert_eq!(next(Some(&copy), None), Next::Start);
        for stage in [Stage::Planning, Stage::Copying, Stage::Verifying] {
            assert_eq!(
                next(Some(&copy), Some(&status(stage, &copy))),
                Next::Resume(stage)
            );
        }
        assert_eq!(
            next(Some(&copy), Some(&status(Stage::Done, &copy))),
            Next::Idle
        );
        assert_eq!(
            next(Some(&copy), Some(&status(Stage::Failed, &copy))),
            Next::Resume(Stage::Planning)
        );
        assert_eq!(
            next(Some(&copy), Some(&status(Stage::Cancelled, &copy))),
            Next::Start
        );
    }

    #[test]
    fn another_target_or_mode_is_a_new_run_but_a_cutover_always_finishes() {
        let copy = spec("east", MigrationMode::Copy);
        let moving = spec("east", MigrationMode::Move);
        let west = spec("west", MigrationMode::Copy);
        assert_eq!(
            next(Some(&moving), Some(&status(Stage::Done, &copy))),
            Next::Start
        );
        assert_eq!(
            next(Some(&west), Some(&status(Stage::Copying, &copy))),
            Next::Start
        );
        assert_eq!(
            next(Some(&west), Some(&status(Stage::Cutover, &moving))),
            Next::Resume(Stage::Cutover)
        );
        assert_eq!(
            next(None, Some(&status(Stage::Cutover, &moving))),
            Next::Resume(Stage::Cutover)
        );
    }

    #[test]
    fn removing_the_spec_before_cutover_cancels_and_after_the_end_does_nothing() {
        let copy = spec("east", MigrationMode::Copy);
        for stage in [
            Stage::Planning,
            Stage::Copying,
            Stage::Verifying,
            Stage::Failed,
        ] {
            assert_eq!(next(None, Some(&status(stage, &copy))), Next::Cancel);
            assert!(!in_progress(None, Some(&status(stage, &copy))));
        }
        for stage in [Stage::Done, Stage::Cancelled] {
            assert_eq!(next(None, Some(&status(stage, &copy))), Next::Idle);
        }
        assert!(in_progress(
            Some(&copy),
            Some(&status(Stage::Copying, &copy))
        ));
        assert!(!in_progress(Some(&copy), Some(&status(Stage::Done, &copy))));
    }

    #[test]
    fn progress_counts_whole_percent_and_resumes_at_the_furthest_checkpoint_of_this_plan() {
        assert_eq!(percentage(0, 500), 0);
        assert_eq!(percentage(249, 500), 49);
        assert_eq!(percentage(500, 500), 100);
        assert_eq!(percentage(600, 500), 100);
        assert_eq!(percentage(0, 0), 100);
        assert_eq!(resume_at(100, Some(("abc", 150)), "abc", 500), 150);
        assert_eq!(resume_at(200, Some(("abc", 150)), "abc", 500), 200);
        assert_eq!(resume_at(100, Some(("old", 400)), "abc", 500), 100);
        assert_eq!(resume_at(100, None, "abc", 50), 50);
        let value = checkpoint_value("abc", 42);
        assert_eq!(parse_checkpoint(&value), Some(("abc", 42)));
        assert_eq!(parse_checkpoint("abc"), None);
        assert_eq!(parse_checkpoint("abc x"), None);
    }

    fn cm(name: &str, color: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": name, "namespace": "acme-web"}, "data": {"color": color}})
    }

    #[test]
    fn comparison_names_missing_differing_and_extra_objects_and_what_to_catch_up() {
        let source = vec![cm("a", "blue"), cm("b", "red"), cm("c", "green")];
        let mut defaulted = cm("a", "blue");
        defaulted["data"]["added-by-the-server"] = json!("x");
        let target = vec![defaulted, cm("b", "pink"), cm("d", "gold")];
        let c = compare(&source, &target);
        assert_eq!(c.missing, ["ConfigMap acme-web/c (v1)"]);
        assert_eq!(
            c.differing,
            ["ConfigMap acme-web/b (v1): data.color: want \"red\", found \"pink\""]
        );
        assert_eq!(c.extra, ["ConfigMap acme-web/d (v1)"]);
        assert!(!c.same());
        let names: Vec<&str> = to_catch_up(&source, &c)
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["b", "c"]);
        assert!(compare(&source, &source).same());
        assert_eq!(plan_checksum(&source), plan_checksum(&source.clone()));
        assert_ne!(plan_checksum(&source), plan_checksum(&source[..2]));
    }
}
