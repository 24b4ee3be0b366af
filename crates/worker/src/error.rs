//! Every error the Worker answers with: a code from the shared vocabulary
//! (`mailsort_shared::api::ErrorCode`, which also gives its HTTP status) and
//! a message, sent as the backend's `{error, code}` body.

use mailsort_shared::api::{ErrorBody, ErrorCode};
use worker::Response;

/// An error answered to the caller.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn unauthorized() -> Self {
        Self::new(
            ErrorCode::Unauthorized,
            "missing or wrong API key: send Authorization: Bearer <key>",
        )
    }

    /// Configuration or start-up problems are the operator's, not the caller's.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }

    pub fn into_response(self) -> worker::Result<Response> {
        let status = self.code.status();
        let body = ErrorBody {
            error: self.message,
            code: self.code,
        };
        let mut response = Response::from_json(&body)?.with_status(status);
        if self.code == ErrorCode::Unauthorized {
            response
                .headers_mut()
                .set("WWW-Authenticate", "Bearer realm=\"mailsort\"")?;
        }
        Ok(response)
    }
}

impl From<worker::Error> for ApiError {
    fn from(e: worker::Error) -> Self {
        Self::internal(e.to_string())
    }
}
