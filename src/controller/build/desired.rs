//! The objects a tenant should have, as pure functions of the tenant, its effective plan and
//! the quota values chosen by the partition. Nothing here talks to the API server.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    LimitRange, LimitRangeItem, LimitRangeSpec as K8sLimitRangeSpec, Namespace, ResourceQuota,
    ResourceQuotaSpec,
};
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{Resource, ResourceExt};

use crate::api::{
    NetworkIsolation, Owner, OwnerKind, Tenant, TenantNamespace, TenantQuotaSpec, TenantState,
};
use crate::naming::{
    ISOLATION_NAME, LIMITS_NAME, OWNERS_NAME, QUOTA_NAME, TENANT_LABEL, labels, namespace_name,
    reader_name,
};

/// Every object one tenant should have.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Desired {
    pub namespaces: Vec<Namespace>,
    pub quotas: Vec<ResourceQuota>,
    pub limit_ranges: Vec<LimitRange>,
    pub network_policies: Vec<NetworkPolicy>,
    pub role_bindings: Vec<RoleBinding>,
    pub cluster_roles: Vec<ClusterRole>,
    pub cluster_role_bindings: Vec<ClusterRoleBinding>,
}

/// What `build` needs besides the tenant.
pub struct Inputs<'a> {
    pub plan: &'a TenantQuotaSpec,
    /// The namespaces to provision (already limited to `maxNamespaces`, conflicts removed).
    pub namespaces: &'a [TenantNamespace],
    /// ResourceQuota `hard` per full namespace name, as chosen by the partition.
    pub quotas: &'a BTreeMap<String, BTreeMap<String, Quantity>>,
    /// TenantUsage objects owners may read (`<tenant>-<YYYY-MM>` of recent months).
    pub usage_names: &'a [String],
}

fn meta(tenant: &Tenant, name: &str, namespace: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: namespace.map(str::to_string),
        labels: Some(labels(&tenant.name_any())),
        owner_references: tenant.controller_owner_ref(&()).map(|r| vec![r]),
        ..ObjectMeta::default()
    }
}

/// Build every desired object.
pub fn build(tenant: &Tenant, inputs: &Inputs) -> Desired {
    let name = tenant.name_any();
    let suspended = tenant.spec.state == TenantState::Suspended;
    let mut desired = Desired::default();
    for ns in inputs.namespaces {
        let full = namespace_name(&name, &ns.name);
        desired.namespaces.push(namespace(&name, ns, inputs.plan));
        if let Some(hard) = inputs.quotas.get(&full).filter(|h| !h.is_empty()) {
            desired.quotas.push(ResourceQuota {
                metadata: meta(tenant, QUOTA_NAME, Some(&full)),
                spec: Some(ResourceQuotaSpec {
                    hard: Some(hard.clone()),
                    ..Default::default()
                }),
                status: None,
            });
        }
        if let Some(limits) = limit_range(inputs.plan) {
            desired.limit_ranges.push(LimitRange {
                metadata: meta(tenant, LIMITS_NAME, Some(&full)),
                spec: Some(limits),
            });
        }
        if tenant
            .spec
            .isolation
            .as_ref()
            .map(|i| i.network)
            .unwrap_or_default()
            == NetworkIsolation::Strict
        {
            desired.network_policies.push(NetworkPolicy {
                metadata: meta(tenant, ISOLATION_NAME, Some(&full)),
                spec: Some(isolation(&name, tenant)),
            });
        }
        if !tenant.spec.owners.is_empty() {
            let role = if suspended { "view" } else { "admin" };
            desired.role_bindings.push(RoleBinding {
                metadata: meta(tenant, &format!("{OWNERS_NAME}-{role}"), Some(&full)),
                role_ref: cluster_role_ref(role),
                subjects: Some(subjects(&tenant.spec.owners)),
            });
        }
    }
    if !tenant.spec.owners.is_empty() {
        let reader = reader_name(&name);
        desired.cluster_roles.push(ClusterRole {
            metadata: meta(tenant, &reader, None),
            rules: Some(vec![
                read_rule("tenants", vec![name.clone()]),
                read_rule("tenantusages", inputs.usage_names.to_vec()),
            ]),
            aggregation_rule: None,
        });
        desired.cluster_role_bindings.push(ClusterRoleBinding {
            metadata: meta(tenant, &reader, None),
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".into(),
                kind: "ClusterRole".into(),
                name: reader,
            },
            subjects: Some(subjects(&tenant.spec.owners)),
        });
    }
    desired
}

/// The namespace with ownership labels and Pod Security Admission labels from the plan.
///
/// No owner reference: the garbage collector must never delete a tenant namespace because
/// the Tenant or its CRD went away (Capsule lost every namespace that way, issue 1181).
fn namespace(tenant: &str, ns: &TenantNamespace, plan: &TenantQuotaSpec) -> Namespace {
    let level = plan.pod_security.unwrap_or_default().as_label();
    let mut labels = ns.labels.clone().unwrap_or_default();
    labels.extend(self::labels(tenant));
    for mode in ["enforce", "audit", "warn"] {
        labels.insert(
            format!("pod-security.kubernetes.io/{mode}"),
            level.to_string(),
        );
    }
    Namespace {
        metadata: ObjectMeta {
            name: Some(namespace_name(tenant, &ns.name)),
            labels: Some(labels),
            annotations: ns.annotations.clone().filter(|a| !a.is_empty()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    }
}

fn limit_range(plan: &TenantQuotaSpec) -> Option<K8sLimitRangeSpec> {
    let lr = plan.limit_range.as_ref()?;
    let non_empty = |m: &Option<BTreeMap<String, Quantity>>| m.clone().filter(|m| !m.is_empty());
    let item = LimitRangeItem {
        type_: "Container".into(),
        default: non_empty(&lr.default),
        default_request: non_empty(&lr.default_request),
        min: non_empty(&lr.min),
        max: non_empty(&lr.max),
        ..LimitRangeItem::default()
    };
    let empty = item.default.is_none()
        && item.default_request.is_none()
        && item.min.is_none()
        && item.max.is_none();
    (!empty).then(|| K8sLimitRangeSpec { limits: vec![item] })
}

/// Ingress only from the tenant's own namespaces and `allowFrom`; egress anywhere except other
/// tenants' namespaces (their own ingress policies refuse it too), DNS always.
fn isolation(tenant: &str, t: &Tenant) -> NetworkPolicySpec {
    let own = NetworkPolicyPeer {
        namespace_selector: Some(selector_for_tenant(tenant)),
        ..Default::default()
    };
    let mut from = vec![own.clone()];
    for selector in t
        .spec
        .isolation
        .as_ref()
        .map(|i| i.allow_from.clone())
        .unwrap_or_default()
    {
        from.push(NetworkPolicyPeer {
            namespace_selector: Some(selector),
            ..Default::default()
        });
    }
    let not_a_tenant = NetworkPolicyPeer {
        namespace_selector: Some(LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: TENANT_LABEL.into(),
                operator: "DoesNotExist".into(),
                values: None,
            }]),
            match_labels: None,
        }),
        ..Default::default()
    };
    let outside = |cidr: &str| NetworkPolicyPeer {
        ip_block: Some(IPBlock {
            cidr: cidr.into(),
            except: None,
        }),
        ..Default::default()
    };
    let dns = ["UDP", "TCP"].map(|protocol| NetworkPolicyPort {
        protocol: Some(protocol.into()),
        port: Some(IntOrString::Int(53)),
        end_port: None,
    });
    NetworkPolicySpec {
        pod_selector: Some(LabelSelector::default()),
        policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
        ingress: Some(vec![NetworkPolicyIngressRule {
            from: Some(from),
            ports: None,
        }]),
        egress: Some(vec![
            NetworkPolicyEgressRule {
                to: None,
                ports: Some(dns.to_vec()),
            },
            NetworkPolicyEgressRule {
                to: Some(vec![
                    own,
                    not_a_tenant,
                    outside("0.0.0.0/0"),
                    outside("::/0"),
                ]),
                ports: None,
            },
        ]),
    }
}

fn selector_for_tenant(tenant: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(BTreeMap::from([(
            TENANT_LABEL.to_string(),
            tenant.to_string(),
        )])),
        match_expressions: None,
    }
}

fn cluster_role_ref(name: &str) -> RoleRef {
    RoleRef {
        api_group: "rbac.authorization.k8s.io".into(),
        kind: "ClusterRole".into(),
        name: name.into(),
    }
}

fn subjects(owners: &[Owner]) -> Vec<Subject> {
    owners
        .iter()
        .map(|o| Subject {
            kind: match o.kind {
                OwnerKind::User => "User",
                OwnerKind::Group => "Group",
                OwnerKind::ServiceAccount => "ServiceAccount",
            }
            .into(),
            api_group: (o.kind != OwnerKind::ServiceAccount)
                .then(|| "rbac.authorization.k8s.io".into()),
            name: o.name.clone(),
            namespace: o.namespace.clone(),
        })
        .collect()
}

fn read_rule(resource: &str, names: Vec<String>) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![crate::api::GROUP.into()]),
        resources: Some(vec![resource.into()]),
        resource_names: Some(names),
        verbs: vec!["get".into(), "list".into(), "watch".into()],
        non_resource_urls: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tenant(yaml: &str) -> Tenant {
        let mut t = Tenant::new("acme", serde_saphyr::from_str(yaml).unwrap());
        t.metadata.uid = Some("uid-1".into());
        t
    }

    fn plan() -> TenantQuotaSpec {
        serde_saphyr::from_str("podSecurity: restricted\nlimitRange: {default: {cpu: 500m}, defaultRequest: {cpu: 100m}}").unwrap()
    }

    fn build_for(t: &Tenant, plan: &TenantQuotaSpec) -> Desired {
        let quotas = BTreeMap::from([(
            "acme-web".to_string(),
            BTreeMap::from([("pods".to_string(), Quantity("5".into()))]),
        )]);
        let usage = vec!["acme-2026-11".to_string()];
        build(
            t,
            &Inputs {
                plan,
                namespaces: &t.spec.namespaces,
                quotas: &quotas,
                usage_names: &usage,
            },
        )
    }

    const SPEC: &str = "owners: [{kind: Group, name: devs}, {kind: ServiceAccount, name: ci, namespace: tools}]\n\
                        namespaces: [{name: web, labels: {team: blue}, annotations: {note: hi}}]\n\
                        isolation: {allowFrom: [{matchLabels: {kubernetes.io/metadata.name: ingress}}]}";

    #[test]
    fn the_namespace_carries_ownership_and_pod_security_labels_and_no_owner_reference() {
        let d = build_for(&tenant(SPEC), &plan());
        let ns = serde_json::to_value(&d.namespaces[0]).unwrap();
        assert_eq!(
            ns,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "acme-web", "annotations": {"note": "hi"}, "labels": {
                "team": "blue", "landlord.dev/tenant": "acme", "app.kubernetes.io/managed-by": "landlord",
                "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/audit": "restricted",
                "pod-security.kubernetes.io/warn": "restricted"}}})
        );
    }

    #[test]
    fn quota_and_limits_are_owned_by_the_tenant() {
        let d = build_for(&tenant(SPEC), &plan());
        let owner = json!([{"apiVersion": "landlord.dev/v1alpha1", "kind": "Tenant", "name": "acme", "uid": "uid-1", "controller": true}]);
        let quota = serde_json::to_value(&d.quotas[0]).unwrap();
        assert_eq!(
            quota,
            json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "landlord-quota", "namespace": "acme-web", "ownerReferences": owner,
                "labels": {"landlord.dev/tenant": "acme", "app.kubernetes.io/managed-by": "landlord"}},
                "spec": {"hard": {"pods": "5"}}})
        );
        let limits = serde_json::to_value(&d.limit_ranges[0]).unwrap();
        assert_eq!(
            limits["spec"],
            json!({"limits": [{"type": "Container", "default": {"cpu": "500m"}, "defaultRequest": {"cpu": "100m"}}]})
        );
    }

    #[test]
    fn strict_isolation_admits_the_tenant_and_allow_from_and_always_dns() {
        let d = build_for(&tenant(SPEC), &plan());
        let np = serde_json::to_value(&d.network_policies[0]).unwrap();
        let own = json!({"namespaceSelector": {"matchLabels": {"landlord.dev/tenant": "acme"}}});
        assert_eq!(
            np["spec"],
            json!({
                "podSelector": {},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": [own, {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress"}}}]}],
                "egress": [
                    {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
                    {"to": [own, {"namespaceSelector": {"matchExpressions": [{"key": "landlord.dev/tenant", "operator": "DoesNotExist"}]}},
                            {"ipBlock": {"cidr": "0.0.0.0/0"}}, {"ipBlock": {"cidr": "::/0"}}]}
                ]
            })
        );
    }

    #[test]
    fn open_isolation_has_no_policy() {
        let d = build_for(
            &tenant("namespaces: [{name: web}]\nisolation: {network: Open}"),
            &plan(),
        );
        assert!(d.network_policies.is_empty());
    }

    #[test]
    fn owners_are_admins_in_each_namespace_and_may_read_their_tenant() {
        let d = build_for(&tenant(SPEC), &plan());
        let rb = serde_json::to_value(&d.role_bindings[0]).unwrap();
        assert_eq!(rb["metadata"]["name"], "landlord-owners-admin");
        assert_eq!(
            rb["roleRef"],
            json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"})
        );
        assert_eq!(
            rb["subjects"],
            json!([{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "devs"}, {"kind": "ServiceAccount", "name": "ci", "namespace": "tools"}])
        );
        let role = serde_json::to_value(&d.cluster_roles[0]).unwrap();
        assert_eq!(role["metadata"]["name"], "landlord:tenant:acme:reader");
        assert_eq!(
            role["rules"],
            json!([
                {"apiGroups": ["landlord.dev"], "resources": ["tenants"], "resourceNames": ["acme"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": ["landlord.dev"], "resources": ["tenantusages"], "resourceNames": ["acme-2026-11"], "verbs": ["get", "list", "watch"]}
            ])
        );
        assert_eq!(
            d.cluster_role_bindings[0].role_ref.name,
            "landlord:tenant:acme:reader"
        );
    }

    #[test]
    fn a_suspended_tenants_owners_can_only_view() {
        let d = build_for(&tenant(&format!("{SPEC}\nstate: Suspended")), &plan());
        assert_eq!(d.role_bindings[0].role_ref.name, "view");
        assert_eq!(
            d.role_bindings[0].metadata.name.as_deref(),
            Some("landlord-owners-view")
        );
    }

    #[test]
    fn no_owners_no_bindings_and_no_limits_without_a_limit_range() {
        let d = build_for(
            &tenant("namespaces: [{name: web}]"),
            &TenantQuotaSpec::default(),
        );
        assert!(
            d.role_bindings.is_empty()
                && d.cluster_roles.is_empty()
                && d.cluster_role_bindings.is_empty()
        );
        assert!(d.limit_ranges.is_empty());
        assert_eq!(
            d.namespaces[0].metadata.labels.as_ref().unwrap()["pod-security.kubernetes.io/enforce"],
            "baseline"
        );
    }
}
