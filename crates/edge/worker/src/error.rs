//! Every error the Worker answers with, and its HTTP status: the one place
//! that maps errors to `{error, code}` JSON (the backend's shape).

use worker::Response;

/// An error answered to the caller.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn unauthorized() -> Self {
        Self::new(
            401,
            "unauthorized",
            "missing or wrong API key: send Authorization: Bearer <key>",
        )
    }

    /// Configuration or start-up problems are the operator's, not the caller's.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "internal", message)
    }

    pub fn into_response(self) -> worker::Result<Response> {
        let body = serde_json::json!({ "error": self.message, "code": self.code });
        let mut response = Response::from_json(&body)?.with_status(self.status);
        if self.status == 401 {
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
