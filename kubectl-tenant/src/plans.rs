//! `kubectl tenant plans`: the TenantQuotas, with what a tenant on each gets.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::Client;
use kube::api::{Api, ListParams};
use landlord::api::TenantQuota;

use crate::cli::ObjectOutput;
use crate::cluster;
use crate::failure::Failure;
use crate::format::{self, or_none};

const HEADERS: &[&str] = &[
    "NAME", "TENANTS", "MAX NS", "CPU", "MEMORY", "PODS", "RATES", "FEATURES", "AGE",
];

pub fn row(plan: &TenantQuota, now: jiff::Timestamp) -> Vec<String> {
    let spec = &plan.spec;
    let hard = |resource: &str| {
        or_none(
            spec.hard
                .as_ref()
                .and_then(|h| h.get(resource))
                .map(|Quantity(q)| q.clone()),
        )
    };
    let rates: Vec<String> = spec
        .rates
        .iter()
        .flatten()
        .map(|r| format!("{} {}/{}", r.name, r.limit, r.per))
        .collect();
    let features = spec.features.clone().unwrap_or_default();
    vec![
        plan.metadata.name.clone().unwrap_or_default(),
        or_none(plan.status.as_ref().map(|s| s.tenants)),
        or_none(spec.max_namespaces),
        hard("requests.cpu"),
        hard("requests.memory"),
        hard("pods"),
        or_none((!rates.is_empty()).then(|| rates.join(", "))),
        or_none((!features.is_empty()).then(|| features.join(","))),
        format::age_since(plan.metadata.creation_timestamp.as_ref(), now),
    ]
}

pub fn table(plans: &[TenantQuota], now: jiff::Timestamp) -> String {
    if plans.is_empty() {
        return "No plans found.\n".into();
    }
    format::table(HEADERS, plans.iter().map(|p| row(p, now)))
}

pub async fn run(client: &Client, output: Option<ObjectOutput>) -> Result<(), Failure> {
    let api: Api<TenantQuota> = Api::all(client.clone());
    let mut plans = api.list(&ListParams::default()).await?.items;
    plans.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let text = match output {
        None => {
            let text = table(&plans, jiff::Timestamp::now());
            if plans.is_empty() {
                eprint!("{text}");
                return Ok(());
            }
            text
        }
        Some(ObjectOutput::Name) => plans
            .iter()
            .map(|p| {
                format!(
                    "tenantquota.landlord.dev/{}\n",
                    p.metadata.name.as_deref().unwrap_or_default()
                )
            })
            .collect(),
        Some(o) => {
            let items = plans
                .iter()
                .map(serde_json::to_value)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Failure::new(e.to_string()))?;
            cluster::render(&cluster::printable_list(items), o == ObjectOutput::Yaml)?
        }
    };
    print!("{text}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use landlord::api::{RateLimit, TenantQuotaSpec, TenantQuotaStatus};
    use std::collections::BTreeMap;

    #[test]
    fn a_plan_row_shows_limits_rates_and_features() {
        let spec: TenantQuotaSpec = serde_json::from_value(serde_json::json!({
            "maxNamespaces": 5,
            "hard": {"requests.cpu": "8", "requests.memory": "16Gi"},
            "rates": [{"name": "api-calls", "limit": 1000, "per": "1m"},
                      {"name": "tasks", "limit": 10000, "per": "24h", "algorithm": "FixedWindow"}],
            "features": ["sso", "audit-log"],
        }))
        .unwrap();
        let mut pro = TenantQuota::new("pro", spec);
        pro.status = Some(TenantQuotaStatus {
            tenants: 3,
            ..TenantQuotaStatus::default()
        });
        pro.metadata.creation_timestamp = Some(Time("2026-11-29T19:00:00Z".parse().unwrap()));
        let free = TenantQuota::new(
            "free",
            TenantQuotaSpec {
                hard: Some(BTreeMap::from([("pods".into(), Quantity("5".into()))])),
                rates: Some(vec![RateLimit {
                    name: "api-calls".into(),
                    limit: 10,
                    per: "1s".into(),
                    burst: None,
                    algorithm: Default::default(),
                }]),
                ..TenantQuotaSpec::default()
            },
        );
        let now = "2026-11-29T20:00:00Z".parse().unwrap();
        assert_eq!(
            table(&[free, pro], now),
            "NAME   TENANTS   MAX NS   CPU      MEMORY   PODS     RATES                                FEATURES        AGE\n\
             free   <none>    <none>   <none>   <none>   5        api-calls 10/1s                      <none>          <none>\n\
             pro    3         5        8        16Gi     <none>   api-calls 1000/1m, tasks 10000/24h   sso,audit-log   60m\n"
        );
    }
}
