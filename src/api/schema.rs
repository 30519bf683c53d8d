//! Schema fragments the derive macros cannot express on their own.
//!
//! The API server evaluates CEL rules under a cost budget, so every string, list and map a rule
//! touches is bounded here, and plain schema (`pattern`, `enum`, list-map keys) is preferred over
//! CEL wherever it can say the same thing.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

/// A DNS-1123 label: what Kubernetes accepts as a namespace name.
pub const DNS_LABEL: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/// A non-negative Kubernetes quantity ("500m", "2", "1.5Gi", "1e3"); the sign is not allowed.
pub const QUANTITY: &str = r"^(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$";

/// A Go-style duration made of positive parts ("1s", "1m30s", "24h").
pub const DURATION: &str = r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$";

/// A plain decimal price with at most six fractional digits ("0.002", "12").
pub const PRICE: &str = r"^[0-9]{1,12}(\.[0-9]{1,6})?$";

/// Largest integer a JSON number carries exactly (2^53); engine amounts and limits stay below it.
pub const MAX_SAFE_INTEGER: u64 = 1 << 53;

/// One non-negative quantity, accepted as an integer or a string like the API server does.
pub fn quantity(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "x-kubernetes-int-or-string": true,
        "minimum": 0,
        "pattern": QUANTITY,
    })
}

/// A whole, non-negative quantity ("1048576", "1Mi", "5G"): digits and an optional suffix,
/// no fraction or exponent, so the amount it names is a whole number of units. Accepted as an
/// integer or a string, as the API server accepts quantities.
pub fn whole_quantity(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "x-kubernetes-int-or-string": true,
        "minimum": 0,
        "maxLength": 20,
        "pattern": WHOLE_QUANTITY,
    })
}

/// Digits and an optional binary or decimal suffix.
pub const WHOLE_QUANTITY: &str = r"^[0-9]{1,19}([KMGTPE]i|[kMGTPE])?$";

/// Allowed values of a check attribute: each listed once, bounded.
pub fn allowed_values(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "maxItems": 64,
        "x-kubernetes-list-type": "set",
        "items": {"type": "string", "minLength": 1, "maxLength": 253},
    })
}

/// A map from resource name (`requests.cpu`, `pods`, `count/services`) to a quantity.
pub fn quantity_map(generator: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "maxProperties": 32,
        "additionalProperties": quantity(generator),
    })
}

/// Labels or annotations a tenant adds to one of its namespaces.
///
/// Keys under `landlord.dev/` and `pod-security.kubernetes.io/` are refused: the first carry
/// ownership, the second come from the plan's `podSecurity`, and a tenant must not forge either.
pub fn user_labels(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "maxProperties": 32,
        "additionalProperties": {"type": "string", "maxLength": 4096},
        "x-kubernetes-validations": [{
            "rule": "self.all(k, !k.startsWith('landlord.dev/') && !k.startsWith('pod-security.kubernetes.io/'))",
            "message": "keys under landlord.dev/ and pod-security.kubernetes.io/ are set by Landlord; remove them",
        }],
    })
}

/// Feature flags: short names, each listed once.
pub fn features(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "maxItems": 64,
        "x-kubernetes-list-type": "set",
        "items": {"type": "string", "minLength": 1, "maxLength": 63, "pattern": "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"},
    })
}

/// A list keyed by its items' `name`, so the API server itself refuses duplicate names.
pub fn named_list<T: JsonSchema>(generator: &mut SchemaGenerator, max_items: u32) -> Schema {
    let items = generator.subschema_for::<T>();
    json_schema!({
        "type": "array",
        "maxItems": max_items,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
        "items": items,
    })
}
