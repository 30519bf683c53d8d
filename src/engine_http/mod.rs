//! The quota API over HTTP: an axum [`Router`] the operator mounts.
//!
//! Every route is under `/v1/tenants/{tenant}/`. Order of refusals: no or bad token 401,
//! another tenant's route 403, unknown tenant 404, bad body 400, unknown dimension 404 (listing
//! the known ones), over a limit 429 with `Retry-After` (whole seconds, rounded up; absent
//! when waiting cannot help), suspended tenant 403 with the decision as body, an attribute
//! value the plan does not allow 403 (`NotAllowed`), an amount over the dimension's size
//! limit 413 (`TooLarge`). A refused request charges nothing. Bodies are JSON (camelCase), at
//! most 1 MiB by default (413 beyond); [`limits`] has the caps on size, time and load.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub mod auth;
pub mod limits;
#[cfg(test)]
mod properties;
pub mod ratelimit;
#[cfg(test)]
mod tests;

pub use auth::{AuthError, Authenticator, Caller, StaticTokens};
pub use limits::Limits;

use crate::engine::Engine;
use crate::engine::decision::{Decision, EngineError, MAX_AMOUNT, Reason};
use crate::engine::meter::{Period, Usage};

/// Most items in one batch.
pub const MAX_BATCH: usize = 1_000;

#[derive(Clone)]
struct Api {
    engine: Arc<Engine>,
    auth: Arc<dyn Authenticator>,
    max_body: usize,
}

/// Builds the quota API router with the default [`Limits`].
pub fn router(engine: Arc<Engine>, auth: Arc<dyn Authenticator>) -> Router {
    router_with(engine, auth, Limits::default())
}

/// Builds the quota API router: the routes, the body cap, and the in-flight cap, load
/// shedding and request timeout of `limits` (the connection and header caps are the
/// server's: [`limits::serve`]).
pub fn router_with(engine: Arc<Engine>, auth: Arc<dyn Authenticator>, limits: Limits) -> Router {
    let routes = Router::new()
        .route("/v1/tenants/{tenant}/check", post(check))
        .route("/v1/tenants/{tenant}/check:batch", post(check_batch))
        .route(
            "/v1/tenants/{tenant}/slots/{dimension}/acquire",
            post(acquire),
        )
        .route(
            "/v1/tenants/{tenant}/slots/{dimension}/release",
            post(release),
        )
        .route("/v1/tenants/{tenant}/slots/{dimension}/renew", post(renew))
        .route("/v1/tenants/{tenant}/gauges/{dimension}", put(set_gauge))
        .route("/v1/tenants/{tenant}/stats", get(stats))
        .route("/v1/tenants/{tenant}/usage", get(usage))
        .layer(axum::extract::DefaultBodyLimit::max(limits.max_body))
        .with_state(Api {
            engine,
            auth,
            max_body: limits.max_body,
        });
    limits::layered(routes, limits)
}

/// An error answer: `{"error": label, "message": text}`, plus the known dimensions when a
/// dimension was not found.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    label: &'static str,
    message: String,
    known: Option<Vec<String>>,
    /// Seconds for `Retry-After`.
    retry_after: Option<u64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    known_dimensions: Option<&'a [String]>,
}

impl ApiError {
    fn new(status: StatusCode, label: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            label,
            message: message.into(),
            known: None,
            retry_after: None,
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.label,
            message: &self.message,
            known_dimensions: self.known.as_deref(),
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let status = match &e {
            EngineError::UnknownTenant(_) | EngineError::UnknownDimension { .. } => {
                StatusCode::NOT_FOUND
            }
            EngineError::SlotNotHeld { .. } => StatusCode::CONFLICT,
            EngineError::Closed => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        };
        let mut api = Self::new(status, e.label(), e.to_string());
        if matches!(e, EngineError::Closed) {
            api.retry_after = Some(1);
        }
        if let EngineError::UnknownDimension { known, .. } = e {
            api.known = Some(known);
        }
        api
    }
}

/// The authenticated caller of a request.
struct Authed(Caller);

impl FromRequestParts<Api> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, ApiError> {
        let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m);
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| unauthorized("missing bearer token"))?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthorized("the Authorization header must be `Bearer <token>`"))?;
        match api.auth.authenticate(token).await {
            Ok(caller) => Ok(Authed(caller)),
            Err(AuthError::InvalidToken) => Err(unauthorized("invalid bearer token")),
            Err(e @ AuthError::Unavailable(_)) => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "auth_unavailable",
                e.to_string(),
            )),
            Err(e @ AuthError::Busy) => {
                let mut e =
                    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "auth_busy", e.to_string());
                e.retry_after = Some(1);
                Err(e)
            }
        }
    }
}

/// The raw body: an over-size one is answered 413, an unreadable one 400.
struct Body(Bytes);

impl FromRequest<Api> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, api: &Api) -> Result<Self, ApiError> {
        match Bytes::from_request(req, api).await {
            Ok(b) => Ok(Body(b)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("request body is larger than {} bytes", api.max_body),
            )),
            Err(e) => Err(ApiError::bad_request(format!(
                "cannot read the request body: {}",
                e.body_text()
            ))),
        }
    }
}

impl Body {
    fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        if self.0.is_empty() {
            return Err(ApiError::bad_request(
                "request body is empty; expected a JSON object",
            ));
        }
        serde_json::from_slice(&self.0)
            .map_err(|e| ApiError::bad_request(format!("malformed JSON body: {e}")))
    }
}

/// Checks the caller may act for `tenant` and that it exists.
fn admit(api: &Api, caller: &Caller, tenant: &str) -> Result<(), ApiError> {
    if !caller.may_act_for(tenant) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("{} may not act for tenant {tenant:?}", caller.username),
        ));
    }
    if !api.engine.has_tenant(tenant) {
        return Err(EngineError::UnknownTenant(tenant.to_owned()).into());
    }
    Ok(())
}

fn amount(n: &serde_json::Number) -> Result<u64, ApiError> {
    n.as_u64()
        .filter(|a| (1..=MAX_AMOUNT).contains(a))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "amount must be a whole number from 1 to {MAX_AMOUNT}, got {n}"
            ))
        })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CheckRequest {
    dimension: String,
    amount: serde_json::Number,
    /// Judged by the plan's allowed-values rules (`{"queue": "emails"}`).
    #[serde(default)]
    attributes: std::collections::BTreeMap<String, String>,
}

impl CheckRequest {
    fn attributes(&self) -> Vec<(&str, &str)> {
        self.attributes
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BatchRequest {
    items: Vec<CheckRequest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SlotRequest {
    slot: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GaugeRequest {
    value: serde_json::Number,
}

/// 200 when allowed; 429 (with `Retry-After` when waiting helps) when over a limit; 403 when
/// the tenant is suspended or an attribute's value is not allowed; 413 when the amount is over
/// the size limit.
fn decided<T: Serialize>(decision: &Decision, body: &T) -> Response {
    let mut headers = HeaderMap::new();
    let status = match (decision.allowed, decision.reason) {
        (true, _) => StatusCode::OK,
        (false, Some(Reason::TenantSuspended | Reason::TenantHibernated | Reason::NotAllowed)) => {
            StatusCode::FORBIDDEN
        }
        (false, Some(Reason::TooLarge)) => StatusCode::PAYLOAD_TOO_LARGE,
        (false, _) => {
            if let Some(ms) = decision.retry_after_ms {
                let secs = ms.div_ceil(1000).max(1);
                headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            StatusCode::TOO_MANY_REQUESTS
        }
    };
    (status, headers, Json(body)).into_response()
}

async fn check(
    State(api): State<Api>,
    Authed(caller): Authed,
    Path(tenant): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    admit(&api, &caller, &tenant)?;
    let req: CheckRequest = body.json()?;
    let n = amount(&req.amount)?;
    let decision = api
        .engine
        .check_with(&tenant, &req.dimension, n, &req.attributes())?;
    Ok(decided(&decision, &decision))
}

async fn check_batch(
    State(api): State<Api>,
    Authed(caller): Authed,
    Path(tenant): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    admit(&api, &caller, &tenant)?;
    let req: BatchRequest = body.json()?;
    if req.items.is_empty() || req.items.len() > MAX_BATCH {
        return Err(ApiError::bad_request(format!(
            "items must hold 1 to {MAX_BATCH} entries, got {}",
            req.items.len()
        )));
    }
    let attributes: Vec<Vec<(&str, &str)>> =
        req.items.iter().map(CheckRequest::attributes).collect();
    let items = req
        .items
        .iter()
        .zip(&attributes)
        .map(|(i, a)| Ok((i.dimension.as_str(), amount(&i.amount)?, &a[..])))
        .collect::<Result<Vec<_>, ApiError>>()?;
    let batch = api.engine.check_batch_with(&tenant, &items)?;
    let summary = batch
        .results
        .iter()
        .find(|d| d.reason.is_some())
        .cloned()
        .unwrap_or_else(|| Decision::allowed(None, None));
    Ok(decided(&summary, &batch))
}

async fn acquire(
    State(api): State<Api>,
    Authed(caller): Authed,
    Path((tenant, dimension)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    admit(&api, &caller, &tenant)?;
    let slot = api.engine.acquire(&tenant, &dimension)?;
    Ok(decided(&slot.decision, &slot))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SlotAnswer {
    slot: u64,
    released: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<jiff::Timestamp>,
}

async fn release(
    State(api): State<Api>,
    Authed(caller): Authed,
    Path((tenant, dimension)): Path<(String, String)>,
    body: Body,
) -> Result<Json<SlotAnswer>, ApiError> {
    admit(&api, &caller, &tenant)?;
    let req: SlotRequest = body.json()?;
    api.engine.release(&tenant, &dimension, req.slot)?;
    Ok(Json(SlotAnswer {
        slot: req.slot,
        released: true,
        expires_at: None,
    }))
}

async fn renew(
    State(api): State<Api>,
    Authed(caller): Authed,
    Path((tenant, dimension)): Path<(String, String)>,
    body: Body,
) -> Result<Json<SlotAnswer>, ApiError> {
    admit(&api, &caller, &tenant)?;
    let req: SlotRequest = body.json()?;
    let expires = api.engine.renew(&tenant, &dimension, req.slot)?;
    Ok(Json(SlotAnswer {
        slot: req.slot,
        released: false,
        expires_at: Some(expires),
    }))
}

async fn set_gauge(
    State(api): State<Api>,
    Authed(caller): Authed,
    Path((tenant, dimension)): Path<(String, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    admit(&api, &caller, &tenant)?;
    let req: GaugeRequest = body.json()?;
    let value = req
        .value
        .as_u64()
        .filter(|v| *v <= MAX_AMOUNT)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "value must be a whole number from 0 to {MAX_AMOUNT}, got {}",
                req.value
            ))
        })?;
    let decision = api.engine.set_gauge(&tenant, &dimension, value)?;
    Ok(decided(&decision, &decision))
}

async fn stats(
    State(api): State<Api>,
    Authed(caller): Authed,
    Path(tenant): Path<String>,
) -> Result<Response, ApiError> {
    admit(&api, &caller, &tenant)?;
    Ok(Json(api.engine.stats(&tenant)?).into_response())
}

async fn usage(
    State(api): State<Api>,
    Authed(caller): Authed,
    Path(tenant): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    admit(&api, &caller, &tenant)?;
    let period = match query.get("period") {
        Some(p) => p
            .parse::<Period>()
            .map_err(|e| ApiError::bad_request(e.to_string()))?,
        None => Period::of_nanos(api.engine.clock().now_nanos()),
    };
    let usage = api.engine.usage(&tenant, period)?;
    match query.get("format").map(String::as_str) {
        None | Some("json") => Ok(Json(usage).into_response()),
        Some("csv") => Ok((
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            usage_csv(&usage),
        )
            .into_response()),
        Some(other) => Err(ApiError::bad_request(format!(
            "format must be json or csv, got {other:?}"
        ))),
    }
}

/// One row per dimension and hour with usage, then one `total` row per dimension (the total
/// can exceed the hours' sum when the ledger seeded a total without its hours).
pub fn usage_csv(usage: &Usage) -> String {
    let mut out = String::from("tenant,period,dimension,hour,units\n");
    for (dimension, d) in &usage.dimensions {
        for h in &d.hours {
            out.push_str(&format!(
                "{},{},{},{},{}\n",
                csv_field(&usage.tenant),
                usage.period,
                csv_field(dimension),
                h.hour,
                h.units
            ));
        }
        out.push_str(&format!(
            "{},{},{},total,{}\n",
            csv_field(&usage.tenant),
            usage.period,
            csv_field(dimension),
            d.total
        ));
    }
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}
