//! Envoy's rate limit service over gRPC (`envoy.service.ratelimit.v3.RateLimitService/
//! ShouldRateLimit`), deciding with the same engine as the HTTP API, so the ingress and mesh
//! gateways in front of tenants (Envoy, Envoy Gateway, Istio, Contour) can ask it directly.
//! [`mapping`] turns descriptors into checks and answers into Envoy's response.
//!
//! Who may call: a gateway speaks for many tenants, so it is trusted for what it is, not for
//! a tenant. Its bearer token (gRPC metadata `authorization: Bearer <token>`) is verified by
//! the HTTP API's own [`Authenticator`] (the operator's TokenReview and its cache), and its
//! user must be in one of the allowed groups. No or a bad token: `UNAUTHENTICATED`; another
//! group: `PERMISSION_DENIED`; the API server unreachable: `UNAVAILABLE`; a malformed request:
//! `INVALID_ARGUMENT`.

pub mod mapping;

use std::sync::Arc;

use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_server::{
    RateLimitService, RateLimitServiceServer,
};
use envoy_types::pb::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use super::{AuthError, Authenticator, Caller, Limits};
use crate::engine::{Engine, EngineError};
pub use mapping::Unknown;

/// Who may call, and what unknown descriptors get.
#[derive(Debug, Clone)]
pub struct Settings {
    /// A caller must be in one of these groups.
    pub allowed_groups: Vec<String>,
    pub unknown: Unknown,
}

/// The service: the engine, the authenticator and its settings.
pub struct RateLimiter {
    engine: Arc<Engine>,
    auth: Arc<dyn Authenticator>,
    settings: Settings,
}

impl RateLimiter {
    pub fn new(engine: Arc<Engine>, auth: Arc<dyn Authenticator>, settings: Settings) -> Self {
        Self {
            engine,
            auth,
            settings,
        }
    }

    /// The caller, if its token is good and it is in an allowed group.
    async fn admit(&self, metadata: &MetadataMap) -> Result<Caller, Status> {
        let value = metadata.get("authorization").ok_or_else(|| {
            Status::unauthenticated("missing `authorization: Bearer <token>` metadata")
        })?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Status::unauthenticated("the authorization metadata must be `Bearer <token>`")
            })?;
        let caller = match self.auth.authenticate(token).await {
            Ok(caller) => caller,
            Err(AuthError::InvalidToken) => {
                return Err(Status::unauthenticated("invalid bearer token"));
            }
            Err(e @ (AuthError::Unavailable(_) | AuthError::Busy)) => {
                return Err(Status::unavailable(e.to_string()));
            }
        };
        let groups = &self.settings.allowed_groups;
        if !caller.groups.iter().any(|g| groups.contains(g)) {
            return Err(Status::permission_denied(format!(
                "{} is not in a group allowed to call the rate limit service ({})",
                caller.username,
                groups.join(", ")
            )));
        }
        Ok(caller)
    }

    /// The engine's answer to an admitted request.
    pub fn decide(&self, request: &RateLimitRequest) -> Result<RateLimitResponse, Status> {
        let descriptors =
            mapping::descriptors(request).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let checks: Vec<_> = descriptors
            .iter()
            .filter(|d| !d.negative)
            .map(mapping::Descriptor::check)
            .collect();
        if self.engine.is_closed() {
            // Envoy's failure mode (allow or deny) decides, until the next leader answers.
            return Err(Status::unavailable(EngineError::Closed.to_string()));
        }
        let unknown_refuses = self.settings.unknown == Unknown::Deny;
        let answers = self.engine.check_all(&checks, unknown_refuses);
        Ok(mapping::response(
            &descriptors,
            &answers,
            self.settings.unknown,
        ))
    }
}

#[tonic::async_trait]
impl RateLimitService for RateLimiter {
    async fn should_rate_limit(
        &self,
        request: Request<RateLimitRequest>,
    ) -> Result<Response<RateLimitResponse>, Status> {
        self.admit(request.metadata()).await?;
        self.decide(request.get_ref()).map(Response::new)
    }
}

/// Serves `limiter` on `listener` (with `TCP_NODELAY`: answers are small and latency is the
/// point) until the process ends, with the HTTP API's limits where gRPC has the same knob: a
/// message over `max_body` is `OUT_OF_RANGE`, a head over `max_header_bytes` is refused by
/// HTTP/2, a call over `request_timeout` is `CANCELLED`, and calls beyond `max_inflight`
/// (over all connections) are shed with `RESOURCE_EXHAUSTED`. Streams per connection are not
/// capped below that: a client would queue calls over such a cap itself, where nothing can
/// shed them. Gateways hold a few long-lived HTTP/2 connections, so connections are not
/// capped here.
pub fn serve(listener: tokio::net::TcpListener, limiter: RateLimiter, limits: Limits) {
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    tokio::spawn(async move {
        let served = tonic::transport::Server::builder()
            .timeout(limits.request_timeout)
            .http2_max_header_list_size(clamp(limits.max_header_bytes))
            .layer(tower::ServiceBuilder::new().load_shed().layer(
                tower::limit::GlobalConcurrencyLimitLayer::new(limits.max_inflight),
            ))
            .add_service(
                RateLimitServiceServer::new(limiter).max_decoding_message_size(limits.max_body),
            )
            .serve_with_incoming(incoming)
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "rate limit service stopped");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Algorithm, RateSpec, TenantLimits};
    use crate::engine_http::StaticTokens;
    use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
    use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::Entry;
    use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::Code;

    fn limiter() -> RateLimiter {
        let engine = Arc::new(Engine::new(["api-calls"]));
        let limits = TenantLimits {
            rates: vec![RateSpec {
                name: "api-calls".into(),
                limit: 2,
                per: std::time::Duration::from_secs(3600),
                burst: None,
                algorithm: Algorithm::FixedWindow,
            }],
            ..Default::default()
        };
        engine.set_tenant("acme", limits).unwrap();
        let auth = StaticTokens::new().tenant("acme-token", "acme").member(
            "gw-token",
            "system:serviceaccount:gw:envoy",
            &["system:serviceaccounts:gw"],
        );
        let settings = Settings {
            allowed_groups: vec!["system:serviceaccounts:gw".into()],
            unknown: Unknown::Allow,
        };
        RateLimiter::new(engine, Arc::new(auth), settings)
    }

    fn request(token: Option<&str>) -> Request<RateLimitRequest> {
        let mut r = Request::new(RateLimitRequest {
            domain: "api-calls".into(),
            descriptors: vec![RateLimitDescriptor {
                entries: vec![Entry {
                    key: "tenant".into(),
                    value: "acme".into(),
                }],
                ..Default::default()
            }],
            hits_addend: 0,
        });
        if let Some(t) = token {
            let value = format!("Bearer {t}").parse().unwrap();
            r.metadata_mut().insert("authorization", value);
        }
        r
    }

    #[tokio::test]
    async fn only_callers_in_an_allowed_group_are_answered() {
        let l = limiter();
        let code = |r: Result<Response<RateLimitResponse>, Status>| match r {
            Ok(r) => Ok(r.into_inner().overall_code),
            Err(s) => Err((s.code(), s.message().to_owned())),
        };
        assert_eq!(
            code(l.should_rate_limit(request(None)).await),
            Err((
                tonic::Code::Unauthenticated,
                "missing `authorization: Bearer <token>` metadata".into()
            ))
        );
        assert_eq!(
            code(l.should_rate_limit(request(Some("nope"))).await),
            Err((tonic::Code::Unauthenticated, "invalid bearer token".into()))
        );
        // A tenant's own workload is not a gateway.
        assert_eq!(
            code(l.should_rate_limit(request(Some("acme-token"))).await),
            Err((
                tonic::Code::PermissionDenied,
                "system:serviceaccount:acme:default is not in a group allowed to call the rate limit service (system:serviceaccounts:gw)".into()
            ))
        );
        let ok = Code::Ok as i32;
        let over = Code::OverLimit as i32;
        assert_eq!(
            code(l.should_rate_limit(request(Some("gw-token"))).await),
            Ok(ok)
        );
        assert_eq!(
            code(l.should_rate_limit(request(Some("gw-token"))).await),
            Ok(ok)
        );
        assert_eq!(
            code(l.should_rate_limit(request(Some("gw-token"))).await),
            Ok(over)
        );
        // Nothing was charged for the refused callers.
        let stats = l.engine.stats("acme").unwrap();
        assert_eq!(stats.dimensions["api-calls"].allowed, 2);
    }

    /// A replica handing over leaves the answer to Envoy's failure mode.
    #[tokio::test]
    async fn a_closed_engine_is_unavailable() {
        let l = limiter();
        l.engine.close();
        let status = l
            .should_rate_limit(request(Some("gw-token")))
            .await
            .unwrap_err();
        assert_eq!(
            (status.code(), status.message()),
            (
                tonic::Code::Unavailable,
                "this replica is handing over and decides no more; retry, the next leader answers"
            )
        );
        assert_eq!(
            l.engine.stats("acme").unwrap().dimensions["api-calls"].allowed,
            0
        );
    }

    #[tokio::test]
    async fn a_malformed_request_is_invalid_argument() {
        let l = limiter();
        let mut r = request(Some("gw-token"));
        r.get_mut().descriptors.clear();
        let status = l.should_rate_limit(r).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
    }
}
