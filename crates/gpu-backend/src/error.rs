//! Every error a client can see, and the one place that maps them to HTTP
//! status codes and the JSON body `{error, code}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use thiserror::Error;
use utoipa::ToSchema;

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for people.
    pub error: String,
    /// What went wrong, for programs (stable, snake_case).
    pub code: &'static str,
}

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
    #[error("too many requests in flight (limit {limit}); retry shortly")]
    TooManyRequests { limit: usize },
    #[error("the deadline of {deadline_ms} ms passed before the reranker finished")]
    DeadlineExceeded { deadline_ms: u64 },
    #[error("not ready: {0}")]
    NotReady(String),
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("no such route: {0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("model failure: {0}")]
    Model(String),
}

impl ApiError {
    /// Status code and machine-readable code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Self::InvalidJson(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_json"),
            Self::InvalidRequest(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
            Self::UnknownBundle { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "unknown_bundle"),
            Self::UnknownLabel { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "unknown_label"),
            Self::QueueFull { .. } => (StatusCode::TOO_MANY_REQUESTS, "queue_full"),
            Self::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests"),
            Self::DeadlineExceeded { .. } => (StatusCode::GATEWAY_TIMEOUT, "deadline_exceeded"),
            Self::NotReady(_) => (StatusCode::SERVICE_UNAVAILABLE, "not_ready"),
            Self::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "shutting_down"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::Model(_) => (StatusCode::INTERNAL_SERVER_ERROR, "model_error"),
        }
    }

    /// The body as sent to the client.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.to_string(),
            code: self.status_and_code().1,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, _) = self.status_and_code();
        let retry_after = match &self {
            Self::QueueFull { retry_after_s, .. } => Some(*retry_after_s),
            Self::TooManyRequests { .. } | Self::NotReady(_) => Some(1),
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
        response
            .extensions_mut()
            .insert(ErrorCode(self.status_and_code().1));
        response
    }
}

/// The error code of a failed response, for the metrics middleware.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

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
            assert!(e.status_and_code().0.is_client_error(), "{e}");
        }
        assert!(
            ApiError::Model("x".into())
                .status_and_code()
                .0
                .is_server_error()
        );
    }
}
