//! The admission table: documents the API server must refuse, each with the field and the
//! words of the rule that refuses it, and documents it must accept. `tests/crd_validation.rs`
//! evaluates it without a server; `tests/integration/admission.rs` sends it to kube-test and
//! to the real control plane.

#![allow(dead_code)]
pub fn tenant(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: landlord.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: {name}\nspec:\n{spec}"
    )
}

pub fn plan(spec: &str) -> String {
    format!(
        "apiVersion: landlord.dev/v1alpha1\nkind: TenantQuota\nmetadata:\n  name: pro\nspec:\n{spec}"
    )
}

/// (case, document, field path the error names, words of the message).
pub fn bad_documents() -> Vec<(&'static str, String, &'static str, &'static str)> {
    let long41 = "a".repeat(41);
    let long40 = "a".repeat(40);
    let ns23 = "n".repeat(23);
    vec![
        ("tenant name over 40", tenant(&long41, "  {}"), "", "at most 40 characters"),
        ("tenant name upper case", tenant("Acme", "  {}"), "", "DNS-1123 label"),
        ("tenant name with a dot", tenant("acme.corp", "  {}"), "", "DNS-1123 label"),
        ("namespace name upper case", tenant("acme", "  namespaces: [{name: Dev}]"), "/spec/namespaces/0/name", "does not match"),
        ("namespace name leading dash", tenant("acme", "  namespaces: [{name: -dev}]"), "/spec/namespaces/0/name", "does not match"),
        ("namespace name too long for tenant", tenant(&long40, &format!("  namespaces: [{{name: {ns23}}}]")), "", "must fit in 63 characters"),
        ("duplicate namespace names", tenant("acme", "  namespaces: [{name: dev}, {name: dev}]"), "/spec/namespaces/1", "Duplicate value"),
        ("owner of unknown kind", tenant("acme", "  owners: [{kind: Robot, name: r2}]"), "/spec/owners/0/kind", "is not one of"),
        ("service account owner without namespace", tenant("acme", "  owners: [{kind: ServiceAccount, name: ci}]"), "/spec/owners/0", "needs a namespace"),
        ("user owner with namespace", tenant("acme", "  owners: [{kind: User, name: alice, namespace: dev}]"), "/spec/owners/0", "applies only to ServiceAccount"),
        ("owner with empty name", tenant("acme", "  owners: [{kind: User, name: ''}]"), "/spec/owners/0/name", "shorter than 1"),
        ("negative namespace quota", tenant("acme", "  namespaces: [{name: dev, hard: {pods: '-1'}}]"), "/spec/namespaces/0/hard/pods", "does not match"),
        ("malformed namespace quota", tenant("acme", "  namespaces: [{name: dev, hard: {requests.cpu: lots}}]"), "/spec/namespaces/0/hard/requests.cpu", "does not match"),
        ("negative integer namespace quota", tenant("acme", "  namespaces: [{name: dev, hard: {pods: -5}}]"), "/spec/namespaces/0/hard/pods", "less than the minimum"),
        ("unknown state", tenant("acme", "  state: Paused"), "/spec/state", "is not one of"),
        ("unknown deletion policy", tenant("acme", "  deletionPolicy: Purge"), "/spec/deletionPolicy", "is not one of"),
        ("unknown network isolation", tenant("acme", "  isolation: {network: Closed}"), "/spec/isolation/network", "is not one of"),
        ("zero retention days", tenant("acme", "  retentionDays: 0"), "/spec/retentionDays", "less than the minimum"),
        ("reserved namespace label", tenant("acme", "  namespaces: [{name: dev, labels: {landlord.dev/tenant: other}}]"), "/spec/namespaces/0/labels", "set by Landlord"),
        ("pod security label forged", tenant("acme", "  namespaces: [{name: dev, labels: {pod-security.kubernetes.io/enforce: privileged}}]"), "/spec/namespaces/0/labels", "set by Landlord"),
        ("unknown spec field", tenant("acme", "  tenantId: 7"), "/spec", "tenantId"),
        ("plan reference upper case", tenant("acme", "  quotaRef: Pro"), "/spec/quotaRef", "does not match"),
        ("duplicate feature flags", tenant("acme", "  features: [sso, sso]"), "/spec/features", "non-unique"),
        ("override with zero period", tenant("acme", "  overrides: {rates: [{name: api-calls, limit: 10, per: 0s}]}"), "/spec/overrides/rates/0", "positive duration"),
        ("rate with negative period", plan("  rates: [{name: api-calls, limit: 10, per: -1m}]"), "/spec/rates/0/per", "does not match"),
        ("rate with period in words", plan("  rates: [{name: api-calls, limit: 10, per: 1 minute}]"), "/spec/rates/0/per", "does not match"),
        ("rate with zero period", plan("  rates: [{name: api-calls, limit: 10, per: 0m}]"), "/spec/rates/0", "positive duration"),
        ("rate with negative limit", plan("  rates: [{name: api-calls, limit: -1, per: 1m}]"), "/spec/rates/0/limit", "less than the minimum"),
        ("rate limit over 2^53", plan("  rates: [{name: api-calls, limit: 9007199254740993, per: 1m}]"), "/spec/rates/0/limit", "greater than the maximum"),
        ("rate with zero burst", plan("  rates: [{name: api-calls, limit: 10, per: 1m, burst: 0}]"), "/spec/rates/0/burst", "less than the minimum"),
        ("burst on a sliding window", plan("  rates: [{name: api-calls, limit: 10, per: 1m, burst: 20, algorithm: SlidingWindow}]"), "/spec/rates/0", "only to the TokenBucket"),
        ("unknown algorithm", plan("  rates: [{name: api-calls, limit: 10, per: 1m, algorithm: LeakyBucket}]"), "/spec/rates/0/algorithm", "is not one of"),
        ("duplicate rate names", plan("  rates: [{name: api-calls, limit: 10, per: 1m}, {name: api-calls, limit: 5, per: 1s}]"), "/spec/rates/1", "Duplicate value"),
        ("malformed plan quantity", plan("  hard: {requests.memory: 1.5.3Gi}"), "/spec/hard/requests.memory", "does not match"),
        ("negative plan quantity", plan("  hard: {requests.memory: -2Gi}"), "/spec/hard/requests.memory", "does not match"),
        ("negative max namespaces", plan("  maxNamespaces: -1"), "/spec/maxNamespaces", "less than the minimum"),
        ("unknown pod security level", plan("  podSecurity: strict"), "/spec/podSecurity", "is not one of"),
        ("negative concurrency", plan("  concurrency: [{name: connections, limit: -3}]"), "/spec/concurrency/0/limit", "less than the minimum"),
        ("price item with both targets", plan("  pricing: {currency: USD, items: [{dimension: api-calls, resource: requests.cpu, price: '1'}]}"), "/spec/pricing/items/0", "exactly one of dimension or resource"),
        ("price item with no target", plan("  pricing: {currency: USD, items: [{price: '1'}]}"), "/spec/pricing/items/0", "exactly one of dimension or resource"),
        ("negative price", plan("  pricing: {currency: USD, items: [{dimension: api-calls, price: '-1'}]}"), "/spec/pricing/items/0/price", "does not match"),
        ("lower-case currency", plan("  pricing: {currency: usd, items: []}"), "/spec/pricing/currency", "does not match"),
        ("duplicate size names", plan("  sizes: [{name: task-bytes, max: 1Mi}, {name: task-bytes, max: 2Mi}]"), "/spec/sizes/1", "Duplicate value"),
        ("size with a fraction", plan("  sizes: [{name: task-bytes, max: 1.5Mi}]"), "/spec/sizes/0/max", "does not match"),
        ("size in words", plan("  sizes: [{name: task-bytes, max: one-meg}]"), "/spec/sizes/0/max", "does not match"),
        ("negative size", plan("  sizes: [{name: task-bytes, max: -1}]"), "/spec/sizes/0/max", "less than the minimum"),
        ("size over 2^53", plan("  sizes: [{name: task-bytes, max: 9Pi}]"), "/spec/sizes/0", "at most 2^53"),
        ("override with duplicate sizes", tenant("acme", "  overrides: {sizes: [{name: task-bytes, max: 1Mi}, {name: task-bytes, max: 1Ki}]}"), "/spec/overrides/sizes/1", "Duplicate value"),
        ("duplicate allowed-value rules", plan("  allowed: [{name: queue, values: [default]}, {name: queue, values: [emails]}]"), "/spec/allowed/1", "Duplicate value"),
        ("duplicate allowed values", plan("  allowed: [{name: queue, values: [default, default]}]"), "/spec/allowed/0/values", "non-unique"),
        ("empty allowed value", plan("  allowed: [{name: queue, values: ['']}]"), "/spec/allowed/0/values/0", "shorter than 1"),
        ("allowed-value rule upper case", plan("  allowed: [{name: Queue, values: [default]}]"), "/spec/allowed/0/name", "does not match"),
        ("gauge limit over 2^53", plan("  gauges: [{name: storage-bytes, limit: 9007199254740993}]"), "/spec/gauges/0", "at most 2^53"),
        ("gauge limit with a fraction", plan("  gauges: [{name: storage-bytes, limit: 1.5Gi}]"), "/spec/gauges/0/limit", "does not match"),
        ("negative gauge limit", plan("  gauges: [{name: storage-bytes, limit: -1}]"), "/spec/gauges/0/limit", "less than the minimum"),
        (
            "usage named apart from tenant and period",
            "apiVersion: landlord.dev/v1alpha1\nkind: TenantUsage\nmetadata: {name: acme-2026-10}\nspec: {tenant: acme, period: 2026-11}".into(),
            "",
            "named <tenant>-<period>",
        ),
        (
            "usage with month 13",
            "apiVersion: landlord.dev/v1alpha1\nkind: TenantUsage\nmetadata: {name: acme-2026-13}\nspec: {tenant: acme, period: 2026-13}".into(),
            "/spec/period",
            "does not match",
        ),
    ]
}

pub fn valid_documents() -> Vec<(&'static str, String)> {
    let example = |file: &str| {
        std::fs::read_to_string(format!(
            "{}/manifests/examples/{file}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    };
    vec![
        ("minimal tenant", tenant("acme", "  {}")),
        ("tenant at the name limits", tenant(&"a".repeat(40), &format!("  namespaces: [{{name: {}}}]", "n".repeat(22)))),
        ("minimal plan", plan("  {}")),
        ("service account owner", tenant("acme", "  owners: [{kind: ServiceAccount, name: ci, namespace: tools}]")),
        ("integer quantities", plan("  hard: {pods: 10, requests.cpu: 4, requests.memory: 8Gi}\n  namespaceHard: {pods: 5}")),
        ("gauges as integers and quantities, sizes, allowed values", plan("  gauges: [{name: storage-bytes, limit: 1Gi}, {name: seats, limit: 25}, {name: vectors, limit: 9007199254740992}]\n  sizes: [{name: task-bytes, max: 1Mi}, {name: result-bytes, max: 5242880}, {name: message-bytes, max: 8Pi}]\n  allowed: [{name: queue, values: [default, emails, processing]}, {name: region, values: []}]")),
        ("overrides with sizes and allowed values", tenant("acme", "  overrides:\n    sizes: [{name: task-bytes, max: 4Mi}]\n    allowed: [{name: queue, values: [default, reports]}]")),
        ("usage", "apiVersion: landlord.dev/v1alpha1\nkind: TenantUsage\nmetadata: {name: acme-2026-11}\nspec: {tenant: acme, period: 2026-11}".into()),
        ("example tenant", example("tenant-acme.yaml")),
        ("example plan", example("plan-pro.yaml")),
    ]
}
