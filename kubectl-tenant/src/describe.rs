//! `kubectl tenant get NAME`: one tenant as a person reads it, in the manner of
//! `kubectl describe`. Sections with nothing to say are left out.

use landlord::api::{Owner, Tenant};

use crate::format::{self, NONE, or_none};

/// Label column width: the longest label (`Display name:`) and two spaces.
const LABEL: usize = 15;

fn field(out: &mut String, label: &str, value: impl AsRef<str>) {
    out.push_str(&format!(
        "{:<LABEL$}{}\n",
        format!("{label}:"),
        value.as_ref()
    ));
}

fn owner(o: &Owner) -> String {
    match &o.namespace {
        Some(ns) => format!("{:?}/{ns}/{}", o.kind, o.name),
        None => format!("{:?}/{}", o.kind, o.name),
    }
}

fn time(t: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>) -> String {
    or_none(t.map(|t| t.0.to_string()))
}

/// The summary of `tenant`, seen at `now`; `migration_error` is `status.migration.lastError`.
pub fn describe(tenant: &Tenant, migration_error: Option<&str>, now: jiff::Timestamp) -> String {
    let spec = &tenant.spec;
    let status = tenant.status.clone().unwrap_or_default();
    let mut out = String::new();
    field(
        &mut out,
        "Name",
        tenant.metadata.name.as_deref().unwrap_or_default(),
    );
    field(
        &mut out,
        "Display name",
        or_none(spec.display_name.as_ref()),
    );
    field(&mut out, "Plan", or_none(spec.quota_ref.as_ref()));
    field(
        &mut out,
        "State",
        format!(
            "{:?} (phase {})",
            spec.state,
            or_none(status.phase.map(|p| format!("{p:?}")))
        ),
    );
    field(
        &mut out,
        "Generation",
        format!(
            "{} (observed {})",
            or_none(tenant.metadata.generation),
            or_none(status.observed_generation)
        ),
    );
    let retention = spec
        .retention_days
        .map_or(String::new(), |d| format!(", archives kept {d} days"));
    field(
        &mut out,
        "Deletion",
        format!("{:?}{retention}", spec.deletion_policy),
    );
    let owners: Vec<String> = spec.owners.iter().map(owner).collect();
    field(&mut out, "Owners", none_if_empty(owners.join(", ")));
    field(
        &mut out,
        "Namespaces",
        none_if_empty(status.namespaces.join(", ")),
    );
    let created = tenant.metadata.creation_timestamp.as_ref();
    field(
        &mut out,
        "Created",
        created.map_or(NONE.to_string(), |t| {
            format!("{} ({} ago)", t.0, format::age_since(Some(t), now))
        }),
    );
    if let Some(t) = &tenant.metadata.deletion_timestamp {
        field(&mut out, "Deleting", format!("since {}", t.0));
    }

    if !status.conditions.is_empty() {
        out.push_str("Conditions:\n");
        out.push_str(&format::indented_table(
            &["TYPE", "STATUS", "REASON", "MESSAGE"],
            status.conditions.iter().map(|c| {
                vec![
                    c.type_.clone(),
                    c.status.clone(),
                    c.reason.clone(),
                    c.message.clone(),
                ]
            }),
        ));
    }
    if !status.usage.is_empty() {
        out.push_str("Usage:\n");
        out.push_str(&format::indented_table(
            &["RESOURCE", "USED", "HARD", "UTILIZATION"],
            status.usage.iter().map(|(name, u)| {
                vec![
                    name.clone(),
                    u.used.clone(),
                    or_none(u.hard.as_ref()),
                    u.utilization
                        .map_or(String::new(), |p| format!("{} {p}%", format::bar(p))),
                ]
            }),
        ));
    }
    if !status.rates.is_empty() {
        out.push_str("Rates:\n");
        out.push_str(&format::indented_table(
            &["DIMENSION", "RATE/S", "LIMIT", "ALLOWED", "DENIED"],
            status.rates.iter().map(|(name, r)| {
                vec![
                    name.clone(),
                    r.rate.clone(),
                    or_none(r.limit.as_ref()),
                    r.allowed.to_string(),
                    r.denied.to_string(),
                ]
            }),
        ));
    }
    if let Some(c) = &status.cost {
        field(
            &mut out,
            "Cost",
            format!("{} {} in {}", c.amount, c.currency, c.period),
        );
    }
    if let Some(a) = &status.archive {
        out.push_str("Archive:\n");
        let mut sub = String::new();
        field(&mut sub, "Location", &a.location);
        field(
            &mut sub,
            "Objects",
            format!("{} ({} bytes)", a.object_count, a.bytes),
        );
        field(&mut sub, "SHA-256", &a.sha256);
        field(&mut sub, "Archived at", time(a.archived_at.as_ref()));
        field(&mut sub, "Purge after", time(a.purge_after.as_ref()));
        if a.restored_at.is_some() {
            field(&mut sub, "Restored at", time(a.restored_at.as_ref()));
        }
        out.push_str(&indent(&sub));
    }
    if spec.migration.is_some() || status.migration.is_some() {
        out.push_str("Migration:\n");
        let mut sub = String::new();
        if let Some(m) = &spec.migration {
            let key = m.target_ref.key.as_deref().unwrap_or("kubeconfig");
            field(
                &mut sub,
                "Target",
                format!(
                    "Secret {}/{} key {key} ({:?})",
                    m.target_ref.namespace, m.target_ref.name, m.mode
                ),
            );
        }
        if let Some(m) = &status.migration {
            field(
                &mut sub,
                "Progress",
                format!(
                    "{} {} {}% ({}/{} objects)",
                    m.phase,
                    format::bar(m.percentage),
                    m.percentage,
                    m.completed_items,
                    m.total_items
                ),
            );
            field(&mut sub, "Started at", time(m.started_at.as_ref()));
            if m.finished_at.is_some() {
                field(&mut sub, "Finished at", time(m.finished_at.as_ref()));
            }
            if let Some(c) = &m.checksum {
                field(&mut sub, "Checksum", c);
            }
        }
        if let Some(e) = migration_error {
            field(&mut sub, "Last error", e);
        }
        out.push_str(&indent(&sub));
    }
    out
}

fn none_if_empty(s: String) -> String {
    if s.is_empty() { NONE.to_string() } else { s }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
    use landlord::api::*;
    use std::collections::BTreeMap;

    fn at(s: &str) -> Time {
        Time(s.parse().unwrap())
    }

    #[test]
    fn a_full_tenant_reads_section_by_section() {
        let mut t = Tenant::new(
            "acme",
            TenantSpec {
                display_name: Some("ACME Corporation".into()),
                quota_ref: Some("pro".into()),
                owners: vec![
                    Owner {
                        kind: OwnerKind::Group,
                        name: "acme-admins".into(),
                        namespace: None,
                    },
                    Owner {
                        kind: OwnerKind::ServiceAccount,
                        name: "deployer".into(),
                        namespace: Some("acme-ci".into()),
                    },
                ],
                retention_days: Some(30),
                migration: Some(Migration {
                    target_ref: SecretKeyRef {
                        name: "target".into(),
                        namespace: "ops".into(),
                        key: None,
                    },
                    mode: MigrationMode::Move,
                }),
                ..TenantSpec::default()
            },
        );
        t.metadata.generation = Some(4);
        t.metadata.creation_timestamp = Some(at("2026-11-29T19:00:00Z"));
        t.status = Some(TenantStatus {
            phase: Some(Phase::Migrating),
            observed_generation: Some(4),
            conditions: vec![Condition {
                type_: "Ready".into(),
                status: "True".into(),
                reason: "Provisioned".into(),
                message: "all namespaces are provisioned".into(),
                observed_generation: Some(4),
                last_transition_time: at("2026-11-29T19:00:01Z"),
            }],
            namespaces: vec!["acme-ci".into(), "acme-prod".into()],
            usage: BTreeMap::from([(
                "pods".to_string(),
                ResourceUsage {
                    used: "3".into(),
                    hard: Some("10".into()),
                    utilization: Some(30),
                },
            )]),
            rates: BTreeMap::from([(
                "api-calls".to_string(),
                RateStatus {
                    rate: "12.5".into(),
                    limit: Some("2000/1m".into()),
                    allowed: 100,
                    denied: 3,
                },
            )]),
            cost: Some(CostStatus {
                period: "2026-11".into(),
                amount: "12.34".into(),
                currency: "USD".into(),
            }),
            archive: Some(ArchiveStatus {
                location: "file:///archives/acme.llar".into(),
                object_count: 12,
                bytes: 4096,
                sha256: "abc123".into(),
                archived_at: Some(at("2026-11-29T19:10:00Z")),
                purge_after: None,
                restored_at: Some(at("2026-11-29T19:20:00Z")),
            }),
            migration: Some(MigrationStatus {
                phase: "Copying".into(),
                total_items: 10,
                completed_items: 4,
                percentage: 40,
                started_at: Some(at("2026-11-29T19:30:00Z")),
                ..MigrationStatus::default()
            }),
            ..TenantStatus::default()
        });
        let now: jiff::Timestamp = "2026-11-29T20:00:00Z".parse().unwrap();
        assert_eq!(
            describe(&t, Some("target refused a batch: retrying"), now),
            "\
Name:          acme
Display name:  ACME Corporation
Plan:          pro
State:         Active (phase Migrating)
Generation:    4 (observed 4)
Deletion:      Archive, archives kept 30 days
Owners:        Group/acme-admins, ServiceAccount/acme-ci/deployer
Namespaces:    acme-ci, acme-prod
Created:       2026-11-29T19:00:00Z (60m ago)
Conditions:
  TYPE    STATUS   REASON        MESSAGE
  Ready   True     Provisioned   all namespaces are provisioned
Usage:
  RESOURCE   USED   HARD   UTILIZATION
  pods       3      10     [######--------------] 30%
Rates:
  DIMENSION   RATE/S   LIMIT     ALLOWED   DENIED
  api-calls   12.5     2000/1m   100       3
Cost:          12.34 USD in 2026-11
Archive:
  Location:      file:///archives/acme.llar
  Objects:       12 (4096 bytes)
  SHA-256:       abc123
  Archived at:   2026-11-29T19:10:00Z
  Purge after:   <none>
  Restored at:   2026-11-29T19:20:00Z
Migration:
  Target:        Secret ops/target key kubeconfig (Move)
  Progress:      Copying [########------------] 40% (4/10 objects)
  Started at:    2026-11-29T19:30:00Z
  Last error:    target refused a batch: retrying
"
        );
    }

    #[test]
    fn a_new_tenant_says_none_and_leaves_out_empty_sections() {
        let t = Tenant::new("new", TenantSpec::default());
        let now: jiff::Timestamp = "2026-11-29T20:00:00Z".parse().unwrap();
        assert_eq!(
            describe(&t, None, now),
            "\
Name:          new
Display name:  <none>
Plan:          <none>
State:         Active (phase <none>)
Generation:    <none> (observed <none>)
Deletion:      Archive
Owners:        <none>
Namespaces:    <none>
Created:       <none>
"
        );
    }
}
