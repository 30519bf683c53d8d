//! `kubectl tenant stats NAME`: the quota engine's rates now (`status.rates`) beside this
//! month's totals from the ledger.

use std::collections::BTreeSet;

use kube::Client;
use landlord::api::{Tenant, TenantUsageStatus};

use crate::cluster;
use crate::failure::Failure;
use crate::format::{self, NONE, or_none};
use crate::usage;

/// The stats of `tenant` with its ledger of `period` (if any); `today` is the day, `DD`.
pub fn stats(
    tenant: &Tenant,
    ledger: Option<&TenantUsageStatus>,
    period: &str,
    today: &str,
) -> String {
    let status = tenant.status.clone().unwrap_or_default();
    let mut out = format!(
        "Tenant:   {} (phase {})\nPeriod:   {period}\nCost:     {}\n",
        tenant.metadata.name.as_deref().unwrap_or_default(),
        or_none(status.phase.map(|p| format!("{p:?}"))),
        or_none(
            status
                .cost
                .as_ref()
                .or(ledger.and_then(|l| l.cost.as_ref()))
                .map(|c| format!("{} {}", c.amount, c.currency))
        ),
    );
    let dimensions: BTreeSet<&String> = status
        .rates
        .keys()
        .chain(ledger.iter().flat_map(|l| l.dimensions.keys()))
        .collect();
    if dimensions.is_empty() {
        out.push_str("\nNo engine dimensions metered yet.\n");
        return out;
    }
    out.push('\n');
    out.push_str(&format::table(
        &[
            "DIMENSION",
            "RATE/S",
            "LIMIT",
            "ALLOWED",
            "DENIED",
            "DENIED %",
            "TODAY",
            "MONTH",
        ],
        dimensions.into_iter().map(|name| {
            let rate = status.rates.get(name);
            let month = ledger.and_then(|l| l.dimensions.get(name));
            let denied_share = rate.filter(|r| r.allowed + r.denied > 0).map(|r| {
                format!(
                    "{:.1}%",
                    r.denied as f64 * 100.0 / (r.allowed + r.denied) as f64
                )
            });
            vec![
                name.clone(),
                or_none(rate.map(|r| r.rate.clone())),
                or_none(rate.and_then(|r| r.limit.clone())),
                or_none(rate.map(|r| r.allowed)),
                or_none(rate.map(|r| r.denied)),
                denied_share.unwrap_or_else(|| NONE.to_string()),
                or_none(month.map(|m| m.daily.get(today).copied().unwrap_or(0))),
                or_none(month.map(|m| m.allowed)),
            ]
        }),
    ));
    out
}

pub async fn run(client: &Client, name: &str) -> Result<(), Failure> {
    let fetched = cluster::tenant(client, name).await?;
    let now = jiff::Timestamp::now();
    let period = usage::this_month(now);
    let today = format!("{:02}", now.to_zoned(jiff::tz::TimeZone::UTC).day());
    let ledger = usage::ledger(client, name, &period).await?;
    let ledger = ledger.and_then(|u| u.status);
    print!(
        "{}",
        stats(&fetched.tenant, ledger.as_ref(), &period, &today)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use landlord::api::{Phase, RateStatus, TenantSpec, TenantStatus};
    use std::collections::BTreeMap;

    #[test]
    fn rates_and_ledger_meet_by_dimension() {
        let mut t = Tenant::new("acme", TenantSpec::default());
        t.status = Some(TenantStatus {
            phase: Some(Phase::Active),
            rates: BTreeMap::from([(
                "api-calls".to_string(),
                RateStatus {
                    rate: "12.5".into(),
                    limit: Some("2000/1m".into()),
                    allowed: 97,
                    denied: 3,
                },
            )]),
            ..TenantStatus::default()
        });
        let ledger: TenantUsageStatus = serde_json::from_value(serde_json::json!({
            "dimensions": {
                "api-calls": {"allowed": 150, "denied": 3, "daily": {"28": 100, "29": 50}},
                "tasks": {"allowed": 7, "denied": 0, "daily": {"01": 7}},
            },
            "cost": {"period": "2026-11", "amount": "1.23", "currency": "USD"},
        }))
        .unwrap();
        assert_eq!(
            stats(&t, Some(&ledger), "2026-11", "29"),
            "Tenant:   acme (phase Active)\nPeriod:   2026-11\nCost:     1.23 USD\n\
             \n\
             DIMENSION   RATE/S   LIMIT     ALLOWED   DENIED   DENIED %   TODAY   MONTH\n\
             api-calls   12.5     2000/1m   97        3        3.0%       50      150\n\
             tasks       <none>   <none>    <none>    <none>   <none>     0       7\n"
        );
        assert_eq!(
            stats(
                &Tenant::new("new", TenantSpec::default()),
                None,
                "2026-11",
                "29"
            ),
            "Tenant:   new (phase <none>)\nPeriod:   2026-11\nCost:     <none>\n\
             \nNo engine dimensions metered yet.\n"
        );
    }
}
