//! The Worker's settings, from `wrangler.toml` vars and secrets.

use worker::Env;

use crate::error::ApiError;

/// Settings read once per request (reading them is cheap).
pub struct Config {
    /// Bearer key callers must send (secret `MAILSORT_API_KEY`).
    pub api_key: String,
    /// Largest request or message body accepted, in bytes.
    pub max_body_bytes: usize,
    /// The backend's base URL; forwarding is off when empty.
    pub backend_url: String,
    /// Bearer key for the backend (secret `BACKEND_API_KEY`), if it wants one.
    pub backend_key: Option<String>,
    /// How long to wait for the backend before answering provisionally.
    pub backend_timeout_ms: u64,
}

fn var(env: &Env, name: &str) -> Option<String> {
    env.var(name)
        .ok()
        .map(|v| v.to_string())
        .filter(|v| !v.is_empty())
}

fn number(env: &Env, name: &str, default: u64) -> Result<u64, ApiError> {
    match var(env, name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| ApiError::internal(format!("var {name} is not a number: {v:?}"))),
    }
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ApiError> {
        // Fail closed: without a key nobody gets in.
        let api_key = env
            .secret("MAILSORT_API_KEY")
            .map(|s| s.to_string())
            .ok()
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                ApiError::internal(
                    "the MAILSORT_API_KEY secret is not set (wrangler secret put MAILSORT_API_KEY)",
                )
            })?;
        Ok(Self {
            api_key,
            max_body_bytes: number(env, "MAX_BODY_BYTES", 1 << 20)? as usize,
            backend_url: var(env, "BACKEND_URL").unwrap_or_default(),
            backend_key: env
                .secret("BACKEND_API_KEY")
                .ok()
                .map(|s| s.to_string())
                .filter(|k| !k.is_empty()),
            backend_timeout_ms: number(env, "BACKEND_TIMEOUT_MS", 3000)?.clamp(100, 60_000),
        })
    }
}
