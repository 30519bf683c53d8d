//! `kubectl tenant list`: the tenants as a `kubectl get` table, or as YAML, JSON or names.

use kube::Client;
use landlord::api::Tenant;

use crate::cli::ListOutput;
use crate::cluster::{self, Fetched};
use crate::failure::Failure;
use crate::format::{self, NONE, or_none};

const HEADERS: &[&str] = &[
    "NAME",
    "PHASE",
    "PLAN",
    "NAMESPACES",
    "CPU %",
    "MEMORY %",
    "COST",
    "AGE",
];
const WIDE: &[&str] = &["STATE", "READY", "DISPLAY NAME"];

/// One table row; `wide` adds the desired state, the Ready reason and the display name.
pub fn row(tenant: &Tenant, wide: bool, now: jiff::Timestamp) -> Vec<String> {
    let status = tenant.status.clone().unwrap_or_default();
    let mut row = vec![
        tenant.metadata.name.clone().unwrap_or_default(),
        or_none(status.phase.map(|p| format!("{p:?}"))),
        or_none(tenant.spec.quota_ref.as_ref()),
        status
            .namespace_count
            .unwrap_or(status.namespaces.len() as u32)
            .to_string(),
        or_none(status.cpu_utilization.map(|u| format!("{u}%"))),
        or_none(status.memory_utilization.map(|u| format!("{u}%"))),
        or_none(status.cost.map(|c| format!("{} {}", c.amount, c.currency))),
        format::age_since(tenant.metadata.creation_timestamp.as_ref(), now),
    ];
    if wide {
        let ready = status.conditions.iter().find(|c| c.type_ == "Ready");
        row.extend([
            format!("{:?}", tenant.spec.state),
            ready.map_or(NONE.to_string(), |c| format!("{} ({})", c.status, c.reason)),
            or_none(tenant.spec.display_name.as_ref()),
        ]);
    }
    row
}

/// The table, or kubectl's message for none.
pub fn table(tenants: &[&Tenant], wide: bool, now: jiff::Timestamp) -> String {
    if tenants.is_empty() {
        return "No tenants found.\n".into();
    }
    let mut headers = HEADERS.to_vec();
    if wide {
        headers.extend(WIDE);
    }
    format::table(&headers, tenants.iter().map(|t| row(t, wide, now)))
}

pub async fn run(
    client: &Client,
    output: Option<ListOutput>,
    selector: Option<&str>,
) -> Result<(), Failure> {
    let tenants = cluster::all_tenants(client, selector).await?;
    let text = match output {
        None | Some(ListOutput::Wide) => {
            let typed: Vec<&Tenant> = tenants.iter().map(|f| &f.tenant).collect();
            let text = table(&typed, output.is_some(), jiff::Timestamp::now());
            if tenants.is_empty() {
                // kubectl says so on stderr, so that a pipe reads nothing.
                eprint!("{text}");
                return Ok(());
            }
            text
        }
        Some(ListOutput::Name) => tenants
            .iter()
            .map(|f| format!("{}\n", format::tenant_ref(f.name())))
            .collect(),
        Some(ListOutput::Yaml | ListOutput::Json) => cluster::render(
            &cluster::printable_list(tenants.into_iter().map(|f: Fetched| f.raw)),
            output == Some(ListOutput::Yaml),
        )?,
    };
    print!("{text}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
    use landlord::api::{CostStatus, Phase, TenantSpec, TenantState, TenantStatus};

    fn now() -> jiff::Timestamp {
        "2026-11-29T20:00:00Z".parse().unwrap()
    }

    fn acme() -> Tenant {
        let mut t = Tenant::new(
            "acme",
            TenantSpec {
                quota_ref: Some("pro".into()),
                display_name: Some("ACME Corporation".into()),
                state: TenantState::Suspended,
                ..TenantSpec::default()
            },
        );
        t.metadata.creation_timestamp = Some(Time("2026-11-27T16:00:00Z".parse().unwrap()));
        t.status = Some(TenantStatus {
            phase: Some(Phase::Suspended),
            namespace_count: Some(2),
            cpu_utilization: Some(50),
            memory_utilization: Some(7),
            cost: Some(CostStatus {
                period: "2026-11".into(),
                amount: "12.34".into(),
                currency: "USD".into(),
            }),
            conditions: vec![Condition {
                type_: "Ready".into(),
                status: "True".into(),
                reason: "Suspended".into(),
                message: String::new(),
                observed_generation: Some(1),
                last_transition_time: Time(now()),
            }],
            ..TenantStatus::default()
        });
        t
    }

    #[test]
    fn rows_show_what_the_status_reports_and_none_for_the_rest() {
        let fresh = Tenant::new("new", TenantSpec::default());
        assert_eq!(
            table(&[&acme(), &fresh], false, now()),
            "NAME   PHASE       PLAN     NAMESPACES   CPU %    MEMORY %   COST        AGE\n\
             acme   Suspended   pro      2            50%      7%         12.34 USD   2d4h\n\
             new    <none>      <none>   0            <none>   <none>     <none>      <none>\n"
        );
    }

    #[test]
    fn wide_adds_state_ready_and_display_name() {
        assert_eq!(
            row(&acme(), true, now())[8..],
            ["Suspended", "True (Suspended)", "ACME Corporation"]
        );
        assert_eq!(table(&[], true, now()), "No tenants found.\n");
    }
}
