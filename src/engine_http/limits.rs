//! What one client of the quota API can take: body and header size, time per request, open
//! connections and requests in flight. A gateway speaks for thousands of tenants, so the
//! defaults are far above normal use; they are there so that a hostile or broken client cannot
//! hold the engine's memory, tasks or sockets.
//!
//! Load beyond the in-flight cap is shed at once (503 with `Retry-After`) rather than queued:
//! a queue only turns overload into latency for everyone. Connections beyond their cap get
//! one 503 and are closed.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::Semaphore;
use tower::BoxError;

use super::ApiError;

/// The quota API's limits (flags `--engine-max-*` and `--engine-request-timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body, in bytes; larger ones get 413.
    pub max_body: usize,
    /// Largest request head (request line and headers), in bytes; larger ones get 431.
    pub max_header_bytes: usize,
    /// Time for a request's headers to arrive (else the connection is closed) and, separately,
    /// for its body to arrive and its answer to be made (else 408).
    pub request_timeout: Duration,
    /// Requests being handled at once; more get 503 at once.
    pub max_inflight: usize,
    /// Open connections; more get one 503 each and are closed.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body: 1 << 20,
            max_header_bytes: 16 << 10,
            request_timeout: Duration::from_secs(10),
            max_inflight: 1024,
            max_connections: 4096,
        }
    }
}

/// The smallest head buffer hyper accepts; a header cap below it would not be enforced.
pub const MIN_HEADER_BYTES: usize = 8192;

/// How long a shed client is asked to wait.
const RETRY_AFTER_SECS: u64 = 1;

/// What a request refused by a limit is answered. `error` comes from the tower layers: a
/// timeout or a shed load; anything else is the engine's fault (500).
pub fn refusal(error: &BoxError, limits: &Limits) -> ApiError {
    if error.is::<tower::timeout::error::Elapsed>() {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "the request was not received and answered within {} ms",
                limits.request_timeout.as_millis()
            ),
        )
    } else if error.is::<tower::load_shed::error::Overloaded>() {
        overloaded(format!(
            "the quota API is handling {} requests, its most at once; retry after {RETRY_AFTER_SECS} s",
            limits.max_inflight
        ))
    } else {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            error.to_string(),
        )
    }
}

fn overloaded(message: String) -> ApiError {
    let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", message);
    e.retry_after = Some(RETRY_AFTER_SECS);
    e
}

/// The answer to a connection over the cap.
fn too_many_connections(limits: &Limits) -> Response {
    let mut r = overloaded(format!(
        "the quota API has {} connections open, its most; retry after {RETRY_AFTER_SECS} s",
        limits.max_connections
    ))
    .into_response();
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// Wraps the routes in the in-flight cap, load shedding and the request timeout. The cap is
/// one semaphore for every route.
pub fn layered(routes: Router, limits: Limits) -> Router {
    let inflight = Arc::new(Semaphore::new(limits.max_inflight));
    routes.layer(
        tower::ServiceBuilder::new()
            .layer(HandleErrorLayer::new(move |e: BoxError| async move {
                refusal(&e, &limits)
            }))
            .load_shed()
            .layer(tower::limit::GlobalConcurrencyLimitLayer::with_semaphore(
                inflight,
            ))
            .timeout(limits.request_timeout),
    )
}

/// Serves `app` on `listener` over HTTP/1.1 until the task is dropped, with the header size
/// cap, the header read timeout and the connection cap of `limits`.
pub async fn serve(listener: tokio::net::TcpListener, app: Router, limits: Limits) {
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, most likely: wait rather than spin.
                tracing::warn!(error = %e, "quota API: accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let permit = connections.clone().try_acquire_owned();
        let app = app.clone();
        tokio::spawn(async move {
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(limits.request_timeout)
                .max_buf_size(limits.max_header_bytes.max(MIN_HEADER_BYTES))
                .max_header_size(limits.max_header_bytes);
            let io = TokioIo::new(stream);
            let served = match permit {
                Ok(_permit) => {
                    http.serve_connection(io, TowerToHyperService::new(app))
                        .await
                }
                Err(_) => {
                    let refuse = hyper::service::service_fn(move |_| async move {
                        Ok::<_, Infallible>(too_many_connections(&limits))
                    });
                    http.keep_alive(false).serve_connection(io, refuse).await
                }
            };
            if let Err(e) = served {
                tracing::debug!(error = %e, "quota API connection ended");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_say_which_limit() {
        let limits = Limits::default();
        let timeout: BoxError = Box::new(tower::timeout::error::Elapsed::new());
        let e = refusal(&timeout, &limits);
        assert_eq!(e.status, StatusCode::REQUEST_TIMEOUT);
        assert_eq!(
            e.message,
            "the request was not received and answered within 10000 ms"
        );
        let shed: BoxError = Box::new(tower::load_shed::error::Overloaded::new());
        let e = refusal(&shed, &limits);
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.retry_after, Some(1));
        assert_eq!(
            e.message,
            "the quota API is handling 1024 requests, its most at once; retry after 1 s"
        );
        let other: BoxError = "boom".into();
        assert_eq!(
            refusal(&other, &limits).status,
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
