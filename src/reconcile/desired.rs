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
    NetworkIsolation, Owner, OwnerKind, TENANT_LABEL, Tenant, TenantNamespace, TenantQuotaSpec,
    TenantState,
};

/// Names of the objects Landlord writes into each tenant namespace.
pub const QUOTA_NAME: &str = "landlord-quota";
pub const LIMITS_NAME: &str = "landlord-limits";
pub const ISOLATION_NAME: &str = "landlord-isolation";
pub const OWNERS_NAME: &str = "landlord-owners";
/// Marks objects Landlord manages, next to the tenant label.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "landlord");

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

/// `<tenant>-<name>`.
pub fn namespace_name(tenant: &str, short: &str) -> String {
    format!("{tenant}-{short}")
}

/// Name of the cluster-wide role (and its binding) that lets owners read their own Tenant.
pub fn reader_name(tenant: &str) -> String {
    format!("landlord:tenant:{tenant}:reader")
}

pub fn labels(tenant: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (TENANT_LABEL.to_string(), tenant.to_string()),
        (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
    ])
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
            desired.role_bindings.push(RoleBinding {
                metadata: meta(tenant, OWNERS_NAME, Some(&full)),
                role_ref: cluster_role_ref(if suspended { "view" } else { "admin" }),
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
