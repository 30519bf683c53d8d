//! The gateway examples of `manifests/examples/envoy/` parse as YAML and carry what Envoy and
//! Landlord's rate limit service need: the rate limit filter before the router, a gRPC
//! service on an HTTP/2 cluster that exists (or the Istio name of the example Service), the
//! token in the `authorization` metadata, a domain, and descriptors naming `tenant` and
//! `dimension`.

use serde_json::Value;

use landlord::engine_http::ratelimit::mapping::{DIMENSION_KEY, TENANT_KEY};

const RATELIMIT_FILTER: &str = "envoy.filters.http.ratelimit";
const RATELIMIT_TYPE: &str =
    "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit";
const HTTP_OPTIONS: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

fn documents(file: &str) -> Vec<Value> {
    let path = format!(
        "{}/manifests/examples/envoy/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap();
    serde_saphyr::from_multiple::<Value>(&text)
        .unwrap_or_else(|e| panic!("{path} is not YAML: {e}"))
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

/// The rate limit filter's config; returns the gRPC cluster it calls.
fn check_filter(filter: &Value) -> String {
    assert_eq!(filter["name"], RATELIMIT_FILTER);
    let config = &filter["typed_config"];
    assert_eq!(config["@type"], RATELIMIT_TYPE);
    assert!(
        config["domain"].as_str().is_some_and(|d| !d.is_empty()),
        "a domain"
    );
    let service = &config["rate_limit_service"];
    assert_eq!(service["transport_api_version"], "V3");
    let metadata = service["grpc_service"]["initial_metadata"]
        .as_array()
        .unwrap();
    assert!(
        metadata
            .iter()
            .any(|m| m["key"] == "authorization"
                && m["value"].as_str().unwrap().starts_with("Bearer ")),
        "the token in the authorization metadata: {metadata:?}"
    );
    service["grpc_service"]["envoy_grpc"]["cluster_name"]
        .as_str()
        .expect("an envoy_grpc cluster")
        .to_owned()
}

/// A cluster Envoy can speak gRPC to (HTTP/2) at the example Service's address.
fn check_cluster(cluster: &Value, name: &str) {
    assert_eq!(cluster["name"], name);
    let options = &cluster["typed_extension_protocol_options"][HTTP_OPTIONS];
    assert!(
        options["explicit_http_config"]["http2_protocol_options"].is_object(),
        "HTTP/2 for gRPC"
    );
    let endpoint = &cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"];
    let address = &endpoint["address"]["socket_address"];
    assert_eq!(
        (&address["address"], &address["port_value"]),
        (
            &Value::from("landlord-rls.landlord-system.svc.cluster.local"),
            &Value::from(8082)
        )
    );
}

/// Rate limit actions whose descriptors name the tenant and the dimension.
fn check_rate_limits(rate_limits: &Value) {
    let rate_limits = rate_limits.as_array().expect("rate_limits");
    assert!(!rate_limits.is_empty());
    for r in rate_limits {
        let keys: Vec<&str> = r["actions"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| {
                a.as_object()
                    .unwrap()
                    .values()
                    .find_map(|v| v["descriptor_key"].as_str())
            })
            .collect();
        assert_eq!(keys[..2], [TENANT_KEY, DIMENSION_KEY], "{r}");
    }
}

#[test]
fn the_envoy_bootstrap_calls_the_rate_limit_service() {
    let docs = documents("envoy.yaml");
    let resources = &docs[0]["static_resources"];
    let hcm = &resources["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
    let filters = hcm["http_filters"].as_array().unwrap();
    let names: Vec<&str> = filters
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [RATELIMIT_FILTER, "envoy.filters.http.router"]);
    let cluster_name = check_filter(&filters[0]);
    let cluster = resources["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == cluster_name.as_str())
        .unwrap_or_else(|| panic!("no cluster {cluster_name}"));
    check_cluster(cluster, &cluster_name);
    check_rate_limits(&hcm["route_config"]["virtual_hosts"][0]["rate_limits"]);
}

#[test]
fn the_envoy_gateway_patch_adds_filter_cluster_and_descriptors() {
    let docs = documents("envoy-gateway.yaml");
    assert_eq!(docs[0]["kind"], "EnvoyPatchPolicy");
    assert_eq!(docs[0]["spec"]["type"], "JSONPatch");
    let patches = docs[0]["spec"]["jsonPatches"].as_array().unwrap();
    let of_type = |suffix: &str| {
        patches
            .iter()
            .find(|p| p["type"].as_str().unwrap().ends_with(suffix))
            .unwrap_or_else(|| panic!("no {suffix} patch"))
    };
    let cluster_name = check_filter(&of_type("listener.v3.Listener")["operation"]["value"]);
    check_cluster(
        &of_type("cluster.v3.Cluster")["operation"]["value"],
        &cluster_name,
    );
    check_rate_limits(&of_type("route.v3.RouteConfiguration")["operation"]["value"]);
}

#[test]
fn the_istio_filter_calls_the_example_service() {
    let docs = documents("istio.yaml");
    assert_eq!(docs[0]["kind"], "EnvoyFilter");
    let patches = docs[0]["spec"]["configPatches"].as_array().unwrap();
    let filter = &patches[0];
    assert_eq!(filter["applyTo"], "HTTP_FILTER");
    assert_eq!(filter["patch"]["operation"], "INSERT_BEFORE");
    assert_eq!(
        filter["match"]["listener"]["filterChain"]["filter"]["subFilter"]["name"],
        "envoy.filters.http.router"
    );
    let cluster = check_filter(&filter["patch"]["value"]);
    // Istio's name for the Service of rls-service.yaml.
    let services = documents("rls-service.yaml");
    let service = services.iter().find(|d| d["kind"] == "Service").unwrap();
    let port = &service["spec"]["ports"][0];
    assert_eq!(port["appProtocol"], "grpc");
    assert_eq!(
        cluster,
        format!(
            "outbound|{}||{}.{}.svc.cluster.local",
            port["port"], service["metadata"]["name"], service["metadata"]["namespace"]
        )
        .replace('"', "")
    );
    assert_eq!(patches[1]["applyTo"], "VIRTUAL_HOST");
    check_rate_limits(&patches[1]["patch"]["value"]["rate_limits"]);
}

#[test]
fn the_gateways_identity_is_in_the_default_allowed_group() {
    let docs = documents("rls-service.yaml");
    let account = docs.iter().find(|d| d["kind"] == "ServiceAccount").unwrap();
    let group = format!(
        "system:serviceaccounts:{}",
        account["metadata"]["namespace"].as_str().unwrap()
    );
    assert_eq!(
        landlord::operator::Options::default().rls_allowed_group,
        [group]
    );
    let secret = docs.iter().find(|d| d["kind"] == "Secret").unwrap();
    assert_eq!(secret["type"], "kubernetes.io/service-account-token");
    assert_eq!(
        secret["metadata"]["annotations"]["kubernetes.io/service-account.name"],
        account["metadata"]["name"]
    );
}
