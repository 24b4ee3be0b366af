//! The axum router: routes, authentication and concurrency guard, metrics
//! per request, JSON parsing with mapped rejections, and the handlers, which
//! hand over to [`crate::infer::Engine`].

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use mailsort_shared::api::{
    ClassifyRequest, ClassifyResponse, ErrorCode, RerankRequest, RerankResponse,
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

use crate::auth::ApiKeys;
use crate::error::ApiError;
use crate::http::types::{BundleInfo, HealthResponse};
use crate::infer::Engine;
use crate::metrics::Metrics;

/// Shared by every request.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

struct Shared {
    /// Set once the models are loaded and warmed up.
    engine: OnceLock<Arc<Engine>>,
    /// `None` only with `--no-auth`.
    keys: Option<ApiKeys>,
    metrics: Arc<Metrics>,
    concurrency: Arc<Semaphore>,
    max_concurrent: usize,
    max_body_bytes: usize,
    timeouts: Timeouts,
    /// The OpenAPI document as built at start (`http/openapi.rs`);
    /// `/openapi.json` adds what the loaded bundles serve.
    openapi: Value,
}

/// How long a client may take to send its request.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Longest pause between two parts of a body.
    pub body: Duration,
    /// Longest whole request, answer included: a bound on everything, set
    /// above the longest deadline a request may ask for.
    pub request: Duration,
}

impl AppState {
    pub fn new(
        keys: Option<ApiKeys>,
        metrics: Arc<Metrics>,
        max_concurrent: usize,
        max_body_bytes: usize,
        timeouts: Timeouts,
        openapi: Value,
    ) -> Self {
        Self {
            inner: Arc::new(Shared {
                engine: OnceLock::new(),
                keys,
                metrics,
                concurrency: Arc::new(Semaphore::new(max_concurrent)),
                max_concurrent,
                max_body_bytes,
                timeouts,
                openapi,
            }),
        }
    }

    /// Marks the server ready.
    pub fn set_engine(&self, engine: Arc<Engine>) {
        let _ = self.inner.engine.set(engine);
    }

    fn engine(&self) -> Result<&Arc<Engine>, ApiError> {
        self.inner
            .engine
            .get()
            .ok_or_else(|| ApiError::NotReady("models are loading".into()))
    }
}

/// All routes. `/v1/*` need a key. Health, readiness and the OpenAPI
/// document are open but name the bundles and labels only to a key holder;
/// `/metrics` is open (keep it off the public side of the proxy).
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/v1/rerank", post(rerank))
        .route("/v1/classify", post(classify))
        .route_layer(middleware::from_fn_with_state(state.clone(), guard));
    Router::new()
        .merge(api)
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .fallback(|req: Request| async move { ApiError::NotFound(req.uri().path().to_string()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(state.inner.max_body_bytes))
        .layer(RequestBodyTimeoutLayer::new(state.inner.timeouts.body))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            state.inner.timeouts.request,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// The status counted for a request whose client went away before the
/// answer (nginx's "client closed request").
const CLIENT_GONE: &str = "499";

/// Counts every request by endpoint and status, and errors by code, and
/// logs every error answer. A request whose client hangs up is dropped by
/// hyper mid-way; [`Observed`] counts it then, as status 499.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let endpoint = match req.uri().path() {
        "/v1/rerank" => "/v1/rerank",
        "/v1/classify" => "/v1/classify",
        "/health" => "/health",
        "/ready" => "/ready",
        "/metrics" => "/metrics",
        "/openapi.json" => "/openapi.json",
        _ => "other",
    };
    let mut observed = Observed {
        metrics: state.inner.metrics.clone(),
        endpoint,
        started: Instant::now(),
        done: false,
    };
    let mut response = next.run(req).await;
    // tower-http's whole-request timeout answers a bare 408: give it the
    // API's error body.
    if response.status() == StatusCode::REQUEST_TIMEOUT
        && response.extensions().get::<ErrorCode>().is_none()
    {
        response = ApiError::RequestTimeout {
            timeout_ms: state.inner.timeouts.request.as_millis() as u64,
        }
        .into_response();
    }
    observed.done = true;
    let status = response.status();
    observed.count(status.as_str());
    let code = response.extensions().get::<ErrorCode>();
    if let Some(code) = code {
        state
            .inner
            .metrics
            .errors
            .with_label_values(&[code.as_str()])
            .inc();
    }
    if status.is_server_error() {
        tracing::warn!(endpoint, status = status.as_u16(), code = ?code, "error answer");
    } else if status.is_client_error() {
        tracing::info!(endpoint, status = status.as_u16(), code = ?code, "refused");
    }
    response
}

/// One request being observed; counts it as cancelled if dropped unanswered.
struct Observed {
    metrics: Arc<Metrics>,
    endpoint: &'static str,
    started: Instant,
    done: bool,
}

impl Observed {
    fn count(&self, status: &str) {
        self.metrics
            .requests
            .with_label_values(&[self.endpoint, status])
            .inc();
        self.metrics
            .request_seconds
            .with_label_values(&[self.endpoint])
            .observe(self.started.elapsed().as_secs_f64());
    }
}

impl Drop for Observed {
    fn drop(&mut self) {
        if !self.done {
            self.count(CLIENT_GONE);
            tracing::info!(
                endpoint = self.endpoint,
                after_ms = self.started.elapsed().as_millis() as u64,
                "client went away before the answer"
            );
        }
    }
}

/// Holds one count of `mailsort_in_flight_requests` while the request
/// lives. The count is given back on drop, so that a request cancelled by
/// a client hanging up (its future dropped, never resumed) is counted out
/// too; the autoscaler reads this gauge.
struct InFlight(prometheus::IntGauge);

impl InFlight {
    fn enter(gauge: &prometheus::IntGauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Whether the request carries a valid API key (always, with `--no-auth`).
fn authorized(state: &AppState, headers: &HeaderMap) -> bool {
    state.inner.keys.as_ref().is_none_or(|keys| {
        keys.check(
            headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok()),
        )
    })
}

/// API key check, then a slot among `max_concurrent` requests.
async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if !authorized(&state, req.headers()) {
        return ApiError::Unauthorized.into_response();
    }
    let Ok(_permit) = state.inner.concurrency.clone().try_acquire_owned() else {
        return ApiError::TooManyRequests {
            limit: state.inner.max_concurrent,
        }
        .into_response();
    };
    let _in_flight = InFlight::enter(&state.inner.metrics.in_flight);
    next.run(req).await
}

/// `Json` whose rejections become [`ApiError`]s (413, 415, 422).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::UnsupportedMediaType),
            Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::PayloadTooLarge {
                    limit: state.inner.max_body_bytes,
                })
            }
            Err(r) if caused_by_timeout(&r) => Err(ApiError::RequestTimeout {
                timeout_ms: state.inner.timeouts.body.as_millis() as u64,
            }),
            Err(r) => Err(ApiError::InvalidJson(r.body_text())),
        }
    }
}

/// Whether reading the body failed because the client paused too long.
fn caused_by_timeout(rejection: &JsonRejection) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(e) = cause {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// Rerank the edge's candidates for ambiguous e-mails.
#[utoipa::path(
    post,
    path = "/v1/rerank",
    request_body = RerankRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Scores, chosen label and probabilities per e-mail", body = RerankResponse),
        (status = 401, description = "Missing or wrong API key", body = mailsort_shared::api::ErrorBody),
        (status = 413, description = "Body too large", body = mailsort_shared::api::ErrorBody),
        (status = 415, description = "Not JSON", body = mailsort_shared::api::ErrorBody),
        (status = 422, description = "Malformed JSON, unknown bundle or label, limits", body = mailsort_shared::api::ErrorBody),
        (status = 429, description = "Queue full or too many requests; see Retry-After", body = mailsort_shared::api::ErrorBody),
        (status = 503, description = "Not ready yet, or shutting down", body = mailsort_shared::api::ErrorBody),
        (status = 504, description = "Deadline passed", body = mailsort_shared::api::ErrorBody),
    )
)]
pub async fn rerank(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RerankRequest>,
) -> Result<Json<RerankResponse>, ApiError> {
    let engine = state.engine()?;
    let deadline = engine.deadline(req.deadline_ms)?;
    let (bundle, results) = engine
        .rerank(&req.bundle, req.emails, req.score_all, deadline)
        .await?;
    let second_opinion = engine
        .bundle(&bundle)?
        .second_opinion
        .as_ref()
        .map(|h| h.sha256.clone());
    Ok(Json(RerankResponse {
        bundle,
        reranker: engine.reranker.clone(),
        second_opinion,
        results,
    }))
}

/// Classify whole e-mails: edge on the server, reranker where the gate says.
#[utoipa::path(
    post,
    path = "/v1/classify",
    request_body = ClassifyRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A decision (or a per-e-mail error) per e-mail", body = ClassifyResponse),
        (status = 401, description = "Missing or wrong API key", body = mailsort_shared::api::ErrorBody),
        (status = 413, description = "Body too large", body = mailsort_shared::api::ErrorBody),
        (status = 415, description = "Not JSON", body = mailsort_shared::api::ErrorBody),
        (status = 422, description = "Malformed JSON, unknown bundle, limits", body = mailsort_shared::api::ErrorBody),
        (status = 429, description = "Queue full or too many requests; see Retry-After", body = mailsort_shared::api::ErrorBody),
        (status = 503, description = "Not ready yet, or shutting down", body = mailsort_shared::api::ErrorBody),
        (status = 504, description = "Deadline passed", body = mailsort_shared::api::ErrorBody),
    )
)]
pub async fn classify(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<ClassifyRequest>,
) -> Result<Json<ClassifyResponse>, ApiError> {
    let engine = state.engine()?;
    let deadline = engine.deadline(req.deadline_ms)?;
    let (bundle, results) = engine.classify(&req.bundle, req.emails, deadline).await?;
    Ok(Json(ClassifyResponse {
        bundle,
        reranker: engine.reranker.clone(),
        results,
    }))
}

/// The health body; with a key, what is served too.
fn health_body(state: &AppState, headers: &HeaderMap) -> HealthResponse {
    let status_only = |status: &str| HealthResponse {
        status: status.into(),
        reranker: None,
        remote: None,
        bundles: Vec::new(),
        queue_pairs: None,
        error: None,
    };
    let Some(engine) = state.inner.engine.get() else {
        return status_only("starting");
    };
    if !authorized(state, headers) {
        return status_only("ok");
    }
    HealthResponse {
        status: "ok".into(),
        reranker: Some(engine.reranker.clone()),
        remote: engine.remote.as_ref().map(|r| r.health()),
        bundles: engine
            .bundles
            .iter()
            .map(|b| BundleInfo {
                name: b.name.clone(),
                id: b.id.clone(),
                labels: b.classifier.bundle().taxonomy.labels().len(),
                fusion: b.fusion.describe(),
                second_opinion: b.describe_second_opinion(),
            })
            .collect(),
        queue_pairs: Some(engine.queue.pending()),
        error: None,
    }
}

/// Liveness: the process answers (200 while models load, too). Status
/// only without an API key; with one, the reranker, bundles and queue.
#[utoipa::path(get, path = "/health", responses((status = 200, body = HealthResponse)))]
pub async fn health(State(state): State<AppState>, headers: HeaderMap) -> Json<HealthResponse> {
    Json(health_body(&state, &headers))
}

/// Readiness: 200 once the models are loaded and warmed up, else 503.
/// The body is as for `/health`.
#[utoipa::path(
    get,
    path = "/ready",
    responses((status = 200, body = HealthResponse), (status = 503, body = HealthResponse))
)]
pub async fn ready(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> (StatusCode, Json<HealthResponse>) {
    let body = health_body(&state, &headers);
    let status = if body.status == "ok" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

/// Prometheus metrics (text format).
#[utoipa::path(get, path = "/metrics", responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.inner.metrics.render(),
    )
}

/// This document. Once ready, and asked with an API key, the `bundle` and
/// candidate `label` fields list what this server serves, and list lengths
/// carry its limits; without a key it is the generic document.
#[utoipa::path(get, path = "/openapi.json", responses((status = 200, content_type = "application/json", body = Object)))]
pub async fn openapi(State(state): State<AppState>, headers: HeaderMap) -> Json<Value> {
    let mut doc = state.inner.openapi.clone();
    if let Some(engine) = state.inner.engine.get()
        && authorized(&state, &headers)
    {
        let bundles: Vec<&str> = engine
            .bundles
            .iter()
            .flat_map(|b| [b.name.as_str(), b.id.as_str()])
            .collect();
        let labels: BTreeSet<&str> = engine
            .bundles
            .iter()
            .flat_map(|b| b.classifier.bundle().taxonomy.labels().iter())
            .map(|l| l.id.as_str())
            .collect();
        let limits = &engine.limits;
        for (field, key, value) in [
            ("RerankRequest/properties/bundle", "enum", json!(bundles)),
            ("ClassifyRequest/properties/bundle", "enum", json!(bundles)),
            ("CandidateIn/properties/label", "enum", json!(labels)),
            ("RerankRequest/properties/emails", "minItems", json!(1)),
            (
                "RerankRequest/properties/emails",
                "maxItems",
                json!(limits.max_emails),
            ),
            ("ClassifyRequest/properties/emails", "minItems", json!(1)),
            (
                "ClassifyRequest/properties/emails",
                "maxItems",
                json!(limits.max_emails),
            ),
            ("RerankEmail/properties/candidates", "minItems", json!(1)),
            (
                "RerankEmail/properties/candidates",
                "maxItems",
                json!(limits.max_candidates),
            ),
        ] {
            let pointer = format!("/components/schemas/{field}");
            if let Some(Value::Object(f)) = doc.pointer_mut(&pointer) {
                f.insert(key.into(), value);
            }
        }
    }
    Json(doc)
}
