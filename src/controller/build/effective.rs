//! The effective plan: a tenant's TenantQuota with its `overrides` laid over it, field by field.

use std::collections::BTreeMap;

use crate::api::{EffectivePlan, LimitRangeSpec, TenantQuotaSpec, TenantSpec};

/// Merge `overrides` over `plan`:
/// - quota maps (`hard`, `namespaceHard`, each `limitRange` map) merge key by key;
/// - `rates`, `concurrency`, `gauges`, `sizes` and `allowed` merge by `name`, an override
///   replacing the whole item (an `allowed` override replaces the attribute's whole list);
/// - `features` are the union;
/// - every other field (`maxNamespaces`, `podSecurity`, `pricing`) is replaced when set.
pub fn merge(plan: &TenantQuotaSpec, overrides: &TenantQuotaSpec) -> TenantQuotaSpec {
    TenantQuotaSpec {
        hard: merge_maps(&plan.hard, &overrides.hard),
        namespace_hard: merge_maps(&plan.namespace_hard, &overrides.namespace_hard),
        max_namespaces: overrides.max_namespaces.or(plan.max_namespaces),
        limit_range: match (&plan.limit_range, &overrides.limit_range) {
            (Some(p), Some(o)) => Some(LimitRangeSpec {
                default: merge_maps(&p.default, &o.default),
                default_request: merge_maps(&p.default_request, &o.default_request),
                min: merge_maps(&p.min, &o.min),
                max: merge_maps(&p.max, &o.max),
            }),
            (p, o) => o.clone().or_else(|| p.clone()),
        },
        pod_security: overrides.pod_security.or(plan.pod_security),
        rates: merge_named(&plan.rates, &overrides.rates, |r| &r.name),
        concurrency: merge_named(&plan.concurrency, &overrides.concurrency, |c| &c.name),
        gauges: merge_named(&plan.gauges, &overrides.gauges, |g| &g.name),
        sizes: merge_named(&plan.sizes, &overrides.sizes, |z| &z.name),
        allowed: merge_named(&plan.allowed, &overrides.allowed, |a| &a.name),
        pricing: overrides.pricing.clone().or_else(|| plan.pricing.clone()),
        features: union(plan.features.as_deref(), overrides.features.as_deref()),
    }
}

/// The tenant's effective plan and feature flags, as written to `status.effective`.
pub fn effective(tenant: &TenantSpec, plan: Option<&TenantQuotaSpec>) -> EffectivePlan {
    let empty = TenantQuotaSpec::default();
    let spec = merge(
        plan.unwrap_or(&empty),
        tenant.overrides.as_ref().unwrap_or(&empty),
    );
    let features = union(spec.features.as_deref(), Some(&tenant.features)).unwrap_or_default();
    EffectivePlan {
        plan: tenant.quota_ref.clone(),
        features,
        spec,
    }
}

fn merge_maps<V: Clone>(
    base: &Option<BTreeMap<String, V>>,
    over: &Option<BTreeMap<String, V>>,
) -> Option<BTreeMap<String, V>> {
    match (base, over) {
        (Some(b), Some(o)) => Some(
            b.iter()
                .chain(o.iter())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        (b, o) => o.clone().or_else(|| b.clone()),
    }
}

fn merge_named<T: Clone>(
    base: &Option<Vec<T>>,
    over: &Option<Vec<T>>,
    name: impl Fn(&T) -> &String,
) -> Option<Vec<T>> {
    let (Some(b), Some(o)) = (base, over) else {
        return over.clone().or_else(|| base.clone());
    };
    let mut merged: Vec<T> = b
        .iter()
        .map(|item| {
            o.iter()
                .find(|x| name(x) == name(item))
                .unwrap_or(item)
                .clone()
        })
        .collect();
    merged.extend(
        o.iter()
            .filter(|x| !b.iter().any(|item| name(item) == name(x)))
            .cloned(),
    );
    Some(merged)
}

fn union(a: Option<&[String]>, b: Option<&[String]>) -> Option<Vec<String>> {
    if a.is_none() && b.is_none() {
        return None;
    }
    let mut all: Vec<String> = a
        .unwrap_or_default()
        .iter()
        .chain(b.unwrap_or_default())
        .cloned()
        .collect();
    all.sort();
    all.dedup();
    Some(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Algorithm, PodSecurityLevel};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    fn plan() -> TenantQuotaSpec {
        serde_saphyr::from_str(
            "hard: {pods: 50, requests.cpu: '8'}\nmaxNamespaces: 5\npodSecurity: restricted\n\
             rates: [{name: api-calls, limit: 1000, per: 1m, burst: 2000}, {name: tasks, limit: 10, per: 24h, algorithm: FixedWindow}]\n\
             features: [sso]",
        )
        .unwrap()
    }

    #[test]
    fn no_overrides_is_the_plan() {
        assert_eq!(merge(&plan(), &TenantQuotaSpec::default()), plan());
    }

    #[test]
    fn overrides_merge_field_by_field() {
        let overrides: TenantQuotaSpec = serde_saphyr::from_str(
            "hard: {pods: 80}\nrates: [{name: api-calls, limit: 2000, per: 1m}, {name: messages, limit: 5, per: 1s}]\nfeatures: [beta, sso]",
        )
        .unwrap();
        let merged = merge(&plan(), &overrides);
        let hard = merged.hard.unwrap();
        assert_eq!(hard["pods"], Quantity("80".into()));
        assert_eq!(hard["requests.cpu"], Quantity("8".into()));
        assert_eq!(merged.max_namespaces, Some(5));
        assert_eq!(merged.pod_security, Some(PodSecurityLevel::Restricted));
        let rates = merged.rates.unwrap();
        assert_eq!(
            rates
                .iter()
                .map(|r| (r.name.as_str(), r.limit, r.burst))
                .collect::<Vec<_>>(),
            [
                ("api-calls", 2000, None),
                ("tasks", 10, None),
                ("messages", 5, None)
            ]
        );
        assert_eq!(rates[1].algorithm, Algorithm::FixedWindow);
        assert_eq!(merged.features.unwrap(), ["beta", "sso"]);
    }

    #[test]
    fn sizes_and_allowed_values_merge_by_name() {
        let plan: TenantQuotaSpec = serde_saphyr::from_str(
            "sizes: [{name: task-bytes, max: 1Mi}, {name: result-bytes, max: 5Mi}]\n\
             allowed: [{name: queue, values: [default, emails]}]",
        )
        .unwrap();
        let overrides: TenantQuotaSpec = serde_saphyr::from_str(
            "sizes: [{name: task-bytes, max: 4Mi}, {name: message-bytes, max: 65536}]\n\
             allowed: [{name: queue, values: [default, emails, processing]}, {name: region, values: [eu]}]",
        )
        .unwrap();
        let merged = merge(&plan, &overrides);
        let sizes: Vec<(&str, &str)> = merged
            .sizes
            .iter()
            .flatten()
            .map(|z| (z.name.as_str(), z.max.0.as_str()))
            .collect();
        assert_eq!(
            sizes,
            [
                ("task-bytes", "4Mi"),
                ("result-bytes", "5Mi"),
                ("message-bytes", "65536")
            ]
        );
        let allowed: Vec<(&str, Vec<&str>)> = merged
            .allowed
            .iter()
            .flatten()
            .map(|a| {
                let values = a.values.iter().map(String::as_str).collect();
                (a.name.as_str(), values)
            })
            .collect();
        assert_eq!(
            allowed,
            [
                ("queue", vec!["default", "emails", "processing"]),
                ("region", vec!["eu"])
            ]
        );
        assert_eq!(merge(&plan, &TenantQuotaSpec::default()), plan);
    }

    #[test]
    fn effective_adds_the_tenants_features_and_names_the_plan() {
        let tenant: TenantSpec =
            serde_saphyr::from_str("quotaRef: pro\nfeatures: [zeta, sso]").unwrap();
        let effective = effective(&tenant, Some(&plan()));
        assert_eq!(effective.plan.as_deref(), Some("pro"));
        assert_eq!(effective.features, ["sso", "zeta"]);
        assert_eq!(effective.spec.rates.as_ref().map(Vec::len), Some(2));
    }
}
