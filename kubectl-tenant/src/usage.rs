//! `kubectl tenant usage NAME`: a month of a tenant's `TenantUsage` ledger as a table, JSON
//! or CSV, and the ledger read shared with `stats`.

use kube::Client;
use kube::api::Api;
use landlord::api::{TenantUsage, TenantUsageStatus};
use serde_json::json;

use crate::cli::UsageOutput;
use crate::cluster;
use crate::failure::{self, Failure};
use crate::format::{self, or_none};

/// This month, UTC, as the ledger names it.
pub fn this_month(now: jiff::Timestamp) -> String {
    let date = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    format!("{:04}-{:02}", date.year(), date.month())
}

/// The ledger of `tenant` for `period`, `None` when nothing was recorded.
pub async fn ledger(
    client: &Client,
    tenant: &str,
    period: &str,
) -> Result<Option<TenantUsage>, Failure> {
    let api: Api<TenantUsage> = Api::all(client.clone());
    match api.get(&landlord::naming::usage_name(tenant, period)).await {
        Ok(u) => Ok(Some(u)),
        Err(e) if failure::is_not_found(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The table: a header block, then dimensions and resources.
pub fn table(tenant: &str, period: &str, status: &TenantUsageStatus) -> String {
    let mut out = format!("Tenant:   {tenant}\nPeriod:   {period}\n");
    out.push_str(&format!(
        "Written:  {}\n",
        or_none(status.last_flush.as_ref().map(|t| t.0.to_string()))
    ));
    out.push_str(&format!(
        "Cost:     {}\n",
        or_none(
            status
                .cost
                .as_ref()
                .map(|c| format!("{} {}", c.amount, c.currency))
        )
    ));
    if !status.dimensions.is_empty() {
        out.push('\n');
        out.push_str(&format::table(
            &["DIMENSION", "ALLOWED", "DENIED", "DAYS"],
            status.dimensions.iter().map(|(name, d)| {
                vec![
                    name.clone(),
                    d.allowed.to_string(),
                    d.denied.to_string(),
                    d.daily.len().to_string(),
                ]
            }),
        ));
    }
    if !status.resources.is_empty() {
        out.push('\n');
        out.push_str(&format::table(
            &["RESOURCE", "UNIT-HOURS"],
            status
                .resources
                .iter()
                .map(|(name, hours)| vec![name.clone(), hours.clone()]),
        ));
    }
    out
}

/// JSON: the ledger's numbers under its tenant and period.
pub fn json(tenant: &str, period: &str, status: &TenantUsageStatus) -> String {
    let mut value = json!({"tenant": tenant, "period": period});
    if let serde_json::Value::Object(fields) = serde_json::to_value(status).unwrap_or_default() {
        value.as_object_mut().expect("an object").extend(fields);
    }
    serde_json::to_string_pretty(&value).expect("JSON") + "\n"
}

/// CSV in long form, one number per row, so that a spreadsheet can pivot it:
/// `allowed` per day and in total, `denied` in total, `unit-hours` per resource, `cost`.
pub fn csv(tenant: &str, period: &str, status: &TenantUsageStatus) -> String {
    let mut out = String::from("tenant,period,measure,name,day,value\n");
    let mut row = |measure: &str, name: &str, day: &str, value: &str| {
        out.push_str(&format!(
            "{},{period},{measure},{},{day},{}\n",
            field(tenant),
            field(name),
            field(value)
        ));
    };
    for (name, d) in &status.dimensions {
        for (day, units) in &d.daily {
            row("allowed", name, day, &units.to_string());
        }
        row("allowed", name, "total", &d.allowed.to_string());
        row("denied", name, "total", &d.denied.to_string());
    }
    for (name, hours) in &status.resources {
        row("unit-hours", name, "total", hours);
    }
    if let Some(c) = &status.cost {
        row("cost", &c.currency, "total", &c.amount);
    }
    out
}

fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub async fn run(
    client: &Client,
    tenant: &str,
    period: Option<&str>,
    output: UsageOutput,
) -> Result<(), Failure> {
    let period = period.map_or_else(|| this_month(jiff::Timestamp::now()), str::to_string);
    let Some(usage) = ledger(client, tenant, &period).await? else {
        // A ledger outlives its tenant; without either, the name is probably wrong.
        cluster::tenant(client, tenant).await?;
        return Err(Failure::new(format!(
            "no usage recorded for tenant {tenant:?} in {period}; the operator writes it as the \
             tenant's services use the quota engine (\"kubectl get tenantusages\" lists the \
             months recorded)"
        )));
    };
    let status = usage.status.unwrap_or_default();
    let text = match output {
        UsageOutput::Table => table(tenant, &period, &status),
        UsageOutput::Json => json(tenant, &period, &status),
        UsageOutput::Csv => csv(tenant, &period, &status),
    };
    print!("{text}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> TenantUsageStatus {
        serde_json::from_value(json!({
            "dimensions": {
                "api-calls": {"allowed": 150, "denied": 3, "daily": {"01": 100, "02": 50}},
                "tasks": {"allowed": 7, "denied": 0},
            },
            "resources": {"requests.cpu": "12.5"},
            "cost": {"period": "2026-11", "amount": "1.23", "currency": "USD"},
            "lastFlush": "2026-11-29T19:59:00Z",
        }))
        .unwrap()
    }

    #[test]
    fn the_table_shows_totals_by_dimension_and_resource() {
        assert_eq!(
            table("acme", "2026-11", &status()),
            "Tenant:   acme\nPeriod:   2026-11\nWritten:  2026-11-29T19:59:00Z\nCost:     1.23 USD\n\
             \n\
             DIMENSION   ALLOWED   DENIED   DAYS\n\
             api-calls   150       3        2\n\
             tasks       7         0        0\n\
             \n\
             RESOURCE       UNIT-HOURS\n\
             requests.cpu   12.5\n"
        );
    }

    #[test]
    fn csv_has_one_number_per_row() {
        assert_eq!(
            csv("acme", "2026-11", &status()),
            "tenant,period,measure,name,day,value\n\
             acme,2026-11,allowed,api-calls,01,100\n\
             acme,2026-11,allowed,api-calls,02,50\n\
             acme,2026-11,allowed,api-calls,total,150\n\
             acme,2026-11,denied,api-calls,total,3\n\
             acme,2026-11,allowed,tasks,total,7\n\
             acme,2026-11,denied,tasks,total,0\n\
             acme,2026-11,unit-hours,requests.cpu,total,12.5\n\
             acme,2026-11,cost,USD,total,1.23\n"
        );
    }

    #[test]
    fn json_puts_tenant_and_period_first() {
        let v: serde_json::Value =
            serde_json::from_str(&json("acme", "2026-11", &status())).unwrap();
        assert_eq!(v["tenant"], "acme");
        assert_eq!(v["period"], "2026-11");
        assert_eq!(v["dimensions"]["api-calls"]["daily"]["02"], 50);
        assert_eq!(v["cost"]["amount"], "1.23");
        assert_eq!(
            this_month("2026-01-31T23:59:59Z".parse().unwrap()),
            "2026-01"
        );
    }
}
