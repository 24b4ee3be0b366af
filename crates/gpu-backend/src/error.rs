//! Every error a client can see, and the one place that turns them into
//! responses: each gets a code from the shared vocabulary
//! (`mailsort_shared::api::ErrorCode`, which also fixes its HTTP status)
//! and the JSON body `{error, code}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mailsort_shared::api::{ErrorBody, ErrorCode};
use thiserror::Error;

use crate::edge_pool::PoolError;
use crate::pairs::PairError;
use crate::queue::QueueError;

/// Why a request failed.
#[derive(Debug, Error)]
pub enum ApiError {
    #[error("missing or invalid API key (send `Authorization: Bearer <key>`)")]
    Unauthorized,
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("expected `Content-Type: application/json`")]
    UnsupportedMediaType,
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("unknown bundle {name:?}; this server has {known}")]
    UnknownBundle { name: String, known: String },
    #[error("label {label:?} (e-mail {email:?}) is not in bundle {bundle}")]
    UnknownLabel {
        label: String,
        email: String,
        bundle: String,
    },
    #[error(
        "the queue is full ({pending} pairs waiting, more than the limit or the deadline allows); retry after {retry_after_s} s"
    )]
    QueueFull { pending: usize, retry_after_s: u64 },
    #[error(
        "the edge stage is full ({in_use} of {capacity} units admitted: one per e-mail, one more per 64 KiB); retry after 1 s"
    )]
    EdgeBusy { in_use: usize, capacity: usize },
    #[error("too many requests in flight (limit {limit}); retry shortly")]
    TooManyRequests { limit: usize },
    #[error("the deadline of {deadline_ms} ms passed before the answer was ready")]
    DeadlineExceeded { deadline_ms: u64 },
    #[error(
        "the request was not received in time (more than {timeout_ms} ms between parts of the body, or in all)"
    )]
    RequestTimeout { timeout_ms: u64 },
    #[error("not ready: {0}")]
    NotReady(String),
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("no such route: {0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("the reranking engine is unavailable ({reason}); retry after {retry_after_s} s")]
    RerankerUnavailable { reason: String, retry_after_s: u64 },
    #[error("model failure: {0}")]
    Model(String),
}

impl ApiError {
    /// The machine-readable code (and through it, the status).
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Unauthorized => ErrorCode::Unauthorized,
            Self::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            Self::UnsupportedMediaType => ErrorCode::UnsupportedMediaType,
            Self::InvalidJson(_) => ErrorCode::InvalidJson,
            Self::InvalidRequest(_) => ErrorCode::InvalidRequest,
            Self::UnknownBundle { .. } => ErrorCode::UnknownBundle,
            Self::UnknownLabel { .. } => ErrorCode::UnknownLabel,
            Self::QueueFull { .. } | Self::EdgeBusy { .. } => ErrorCode::QueueFull,
            Self::TooManyRequests { .. } => ErrorCode::TooManyRequests,
            Self::DeadlineExceeded { .. } => ErrorCode::DeadlineExceeded,
            Self::RequestTimeout { .. } => ErrorCode::RequestTimeout,
            Self::NotReady(_) => ErrorCode::NotReady,
            Self::ShuttingDown => ErrorCode::ShuttingDown,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            Self::RerankerUnavailable { .. } => ErrorCode::RerankerUnavailable,
            Self::Model(_) => ErrorCode::ModelError,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code().status())
            .expect("ErrorCode::status returns only valid status codes")
    }

    /// The body as sent to the client.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.to_string(),
            code: self.code(),
        }
    }

    /// A queue refusal or failure, for a request whose deadline was
    /// `deadline_ms`.
    pub fn from_queue(e: QueueError, deadline_ms: u64) -> Self {
        match e {
            QueueError::Full {
                pending,
                retry_after_s,
            } => Self::QueueFull {
                pending,
                retry_after_s,
            },
            QueueError::Expired => Self::DeadlineExceeded { deadline_ms },
            QueueError::Stopped => Self::ShuttingDown,
            QueueError::Unavailable {
                reason,
                retry_after_s,
            } => Self::RerankerUnavailable {
                reason,
                retry_after_s,
            },
            QueueError::Model(m) => Self::Model(m),
        }
    }

    /// An edge-stage refusal or failure, for a request whose deadline was
    /// `deadline_ms`.
    pub fn from_edge(e: PoolError, deadline_ms: u64) -> Self {
        match e {
            PoolError::Busy { in_use, capacity } => Self::EdgeBusy { in_use, capacity },
            PoolError::Expired => Self::DeadlineExceeded { deadline_ms },
            PoolError::Failed(m) => Self::Model(m),
        }
    }
}

impl From<PairError> for ApiError {
    fn from(e: PairError) -> Self {
        Self::Model(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry_after = match &self {
            Self::QueueFull { retry_after_s, .. }
            | Self::RerankerUnavailable { retry_after_s, .. } => Some(*retry_after_s),
            Self::TooManyRequests { .. } | Self::EdgeBusy { .. } | Self::NotReady(_) => Some(1),
            _ => None,
        };
        let mut response = (status, Json(self.body())).into_response();
        if let Some(s) = retry_after {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_str(&s.to_string()).expect("digits are a valid header value"),
            );
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        // The handler's metrics middleware reads the code from here.
        response.extensions_mut().insert(self.code());
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_full_is_429_with_retry_after() {
        let r = ApiError::QueueFull {
            pending: 10,
            retry_after_s: 2,
        }
        .into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "2");
    }

    #[test]
    fn client_errors_are_4xx_and_failures_5xx() {
        let client = [
            ApiError::Unauthorized,
            ApiError::InvalidJson("x".into()),
            ApiError::UnknownLabel {
                label: "a".into(),
                email: "1".into(),
                bundle: "b".into(),
            },
            ApiError::PayloadTooLarge { limit: 1 },
        ];
        for e in client {
            assert!(e.status().is_client_error(), "{e}");
        }
        assert!(ApiError::Model("x".into()).status().is_server_error());
    }
}
