//! The operator's Kubernetes client: kube's own client with every request counted by verb and
//! resource, so that "a converged operator sends nothing" can be read from its own metrics on
//! any cluster, not only from an emulator's counters.

use std::sync::Arc;

use http::{Method, Request};
use kube::api::{Api, Patch, PatchParams};
use kube::client::{Body, ClientBuilder};
use kube::{Client, Config, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::engine::Pacer;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Kubernetes' verbs: get, list, watch, create, update, patch, delete, deletecollection.
    pub verb: String,
    /// The plural resource, with `/status`-style subresources (`tenants/status`).
    pub resource: String,
}

/// Requests sent to the API server (`landlord_kube_requests_total`).
pub type RequestCounts = Family<RequestLabels, Counter>;

/// A client for `config` whose requests are counted in `counts` and whose writes (create,
/// update, patch, delete) wait for a token of `budget`. Reads are not paced: watches are
/// long-lived and a converged reconcile reads only its caches.
pub fn client(
    config: Config,
    counts: RequestCounts,
    budget: Arc<Pacer>,
    health: Arc<ApiHealth>,
) -> kube::Result<Client> {
    let pace = tower::filter::AsyncFilterLayer::new(move |request: Request<Body>| {
        let budget = budget.clone();
        async move {
            if is_write(request.method()) {
                while let Some(wait) = budget.take() {
                    tokio::time::sleep(wait).await;
                }
            }
            Ok::<_, tower::BoxError>(request)
        }
    });
    let count = tower::util::MapRequestLayer::new(move |request: Request<Body>| {
        let (verb, resource) = classify(request.method(), request.uri());
        counts
            .get_or_create(&RequestLabels {
                verb: verb.into(),
                resource,
            })
            .inc();
        request
    });
    // Every attempt, retries included, is observed and counted.
    let observing = health.clone();
    let observe = tower::util::MapResultLayer::new(move |result| {
        observing.note(&result);
        result
    });
    // The retry and the filter clone the service they guard; a buffer makes kube's boxed
    // stack cloneable. Each retry goes through the write budget again.
    Ok(ClientBuilder::try_from(config)?
        .with_layer(&observe)
        .with_layer(&count)
        .with_layer(&tower::buffer::BufferLayer::new(1024))
        .with_layer(&tower::retry::RetryLayer::new(Transient::new(health)))
        .with_layer(&pace)
        .build())
}

/// Retries of what kube's own policy leaves out (it retries 429, 503 and 504): a 500 or
/// 502, a 409 answering an apply, or no answer at all (refused, reset), for any request but a
/// POST (creates are not safe to repeat blindly). Three more tries, 50 ms doubling with
/// jitter: a passing fault costs milliseconds, not a failed reconcile and its backoff. Not
/// while the API server has been failing for a second or more: that is an outage, and every
/// watch and reconcile backs off on its own; retrying each request would multiply the load on
/// a server that is coming back.
#[derive(Clone, Debug)]
struct Transient {
    left: u32,
    delay: std::time::Duration,
    health: Arc<ApiHealth>,
}

/// How long the API server may have been failing for a request to be tried again.
const BLIP: std::time::Duration = std::time::Duration::from_secs(1);

impl Transient {
    fn new(health: Arc<ApiHealth>) -> Self {
        Self {
            left: 3,
            delay: std::time::Duration::from_millis(50),
            health,
        }
    }
}

/// Whether an answer to a `method` request is worth another try.
fn transient(method: &Method, status: http::StatusCode) -> bool {
    match status.as_u16() {
        500 | 502 => true,
        409 => method == Method::PATCH,
        _ => false,
    }
}

impl<Res> tower::retry::Policy<Request<Body>, http::Response<Res>, tower::BoxError> for Transient {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        request: &mut Request<Body>,
        result: &mut Result<http::Response<Res>, tower::BoxError>,
    ) -> Option<Self::Future> {
        let outage = self.health.failing_for().is_some_and(|d| d >= BLIP);
        if self.left == 0 || request.method() == Method::POST || outage {
            return None;
        }
        let again = match result {
            Ok(response) => transient(request.method(), response.status()),
            Err(_) => true,
        };
        if !again {
            return None;
        }
        self.left -= 1;
        let wait = self.delay.mul_f64(rand::random_range(0.5..1.5));
        self.delay *= 2;
        Some(tokio::time::sleep(wait))
    }

    fn clone_request(&mut self, request: &Request<Body>) -> Option<Request<Body>> {
        let body = request.body().try_clone()?;
        let mut copy = Request::builder()
            .method(request.method().clone())
            .uri(request.uri().clone())
            .version(request.version())
            .body(body)
            .ok()?;
        *copy.headers_mut() = request.headers().clone();
        *copy.extensions_mut() = request.extensions().clone();
        Some(copy)
    }
}

/// A status that means the API server (or the proxy or load balancer before it) is not
/// serving, as opposed to an answer about the request.
fn unavailable(status: http::StatusCode) -> bool {
    matches!(status.as_u16(), 502..=504)
}

/// Whether the API server answers, as the operator's own requests find it: a watch that
/// breaks, a request that cannot connect or gets 502–504 marks it failing; any other answer
/// marks it back. `/readyz` says "degraded" while it fails, and the quota engine keeps
/// deciding from the limits it holds (fail static).
#[derive(Debug, Default)]
pub struct ApiHealth {
    failing_since: std::sync::Mutex<Option<std::time::Instant>>,
}

impl ApiHealth {
    pub fn answered(&self) {
        *self.failing_since.lock().expect("not poisoned") = None;
    }

    pub fn failed(&self) {
        self.failing_since
            .lock()
            .expect("not poisoned")
            .get_or_insert_with(std::time::Instant::now);
    }

    /// Record what a request got.
    fn note<B, E>(&self, result: &Result<http::Response<B>, E>) {
        match result {
            Ok(r) if !unavailable(r.status()) => self.answered(),
            _ => self.failed(),
        }
    }

    /// How long requests have failed without an answer in between; `None` while it answers.
    pub fn failing_for(&self) -> Option<std::time::Duration> {
        self.failing_since
            .lock()
            .expect("not poisoned")
            .map(|since| since.elapsed())
    }
}

fn is_write(method: &Method) -> bool {
    matches!(method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
}

/// Server-side apply `status` to the status subresource of `name`, as Landlord's one field
/// manager. The Tenant, plan and usage writers all go through here.
pub async fn apply_status<K>(api: &Api<K>, name: &str, status: &impl Serialize) -> kube::Result<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    let params = PatchParams::apply(crate::naming::FIELD_MANAGER).force();
    api.patch_status(name, &params, &Patch::Apply(&body)).await
}

/// Kubernetes' verb and resource of a request, from its method and path alone:
/// `/api/v1/namespaces/a/configmaps/b` → (get, configmaps);
/// `/apis/landlord.dev/v1alpha1/tenants/x/status` PATCH → (patch, tenants/status).
pub fn classify(method: &Method, uri: &http::Uri) -> (&'static str, String) {
    let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    // Skip `api/v1` or `apis/<group>/<version>`.
    let rest = match segments.first() {
        Some(&"api") => segments.get(2..),
        Some(&"apis") => segments.get(3..),
        _ => None,
    }
    .unwrap_or_default();
    // `namespaces/<ns>/<resource>...` is namespaced; `namespaces[/<name>[/status|finalize]]`
    // is the Namespace resource itself.
    let rest = match rest {
        ["namespaces", _, "status" | "finalize"] => rest.to_vec(),
        ["namespaces", _, resource, tail @ ..] => [&[*resource][..], tail].concat(),
        other => other.to_vec(),
    };
    let (resource, named) = match rest.as_slice() {
        [] => ("", false),
        [resource] => (*resource, false),
        [resource, _name] => (*resource, true),
        [resource, _name, sub, ..] => {
            return (verb(method, true, uri), format!("{resource}/{sub}"));
        }
    };
    (verb(method, named, uri), resource.to_string())
}

fn verb(method: &Method, named: bool, uri: &http::Uri) -> &'static str {
    let watching = uri
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"));
    match (method.as_str(), named) {
        ("GET", _) if watching => "watch",
        ("GET", true) => "get",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_passing_faults_of_repeatable_requests_are_tried_again() {
        use http::StatusCode as S;
        assert!(transient(&Method::GET, S::INTERNAL_SERVER_ERROR));
        assert!(transient(&Method::PATCH, S::BAD_GATEWAY));
        assert!(transient(&Method::PATCH, S::CONFLICT));
        assert!(
            !transient(&Method::PUT, S::CONFLICT),
            "a stale update stays stale"
        );
        for status in [S::NOT_FOUND, S::FORBIDDEN, S::UNPROCESSABLE_ENTITY, S::OK] {
            assert!(!transient(&Method::PATCH, status), "{status}");
        }
    }

    fn of(method: Method, uri: &str) -> (&'static str, String) {
        classify(&method, &uri.parse().unwrap())
    }

    #[test]
    fn requests_are_named_as_kubernetes_names_them() {
        let cases = [
            (Method::GET, "/api/v1/namespaces", ("list", "namespaces")),
            (Method::GET, "/api/v1/namespaces/a", ("get", "namespaces")),
            (
                Method::GET,
                "/api/v1/namespaces?watch=true&labelSelector=x",
                ("watch", "namespaces"),
            ),
            (
                Method::GET,
                "/api/v1/namespaces/a/resourcequotas",
                ("list", "resourcequotas"),
            ),
            (
                Method::PATCH,
                "/api/v1/namespaces/a/resourcequotas/q?fieldManager=landlord",
                ("patch", "resourcequotas"),
            ),
            (
                Method::POST,
                "/apis/events.k8s.io/v1/namespaces/default/events",
                ("create", "events"),
            ),
            (
                Method::PATCH,
                "/apis/landlord.dev/v1alpha1/tenants/acme/status",
                ("patch", "tenants/status"),
            ),
            (
                Method::PUT,
                "/api/v1/namespaces/a/finalize",
                ("update", "namespaces/finalize"),
            ),
            (
                Method::DELETE,
                "/api/v1/namespaces/a/pods",
                ("deletecollection", "pods"),
            ),
            (
                Method::POST,
                "/apis/authentication.k8s.io/v1/tokenreviews",
                ("create", "tokenreviews"),
            ),
            (Method::GET, "/version", ("list", "")),
        ];
        for (method, uri, (verb, resource)) in cases {
            assert_eq!(of(method, uri), (verb, resource.to_string()), "{uri}");
        }
    }
}
