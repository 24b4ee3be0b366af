//! The mailsort edge as a Cloudflare Worker (workers-rs). It reuses the edge
//! core unchanged: the same bundle, model and decisions as the CLI and the
//! browser. Requests move `lib.rs` (routing, auth, limits) →
//! `model.rs` (classifier cached in the isolate) → `backend.rs` (forwarding
//! the ambiguous e-mails); `error.rs` maps every error to a status.
//!
//! - `POST /v1/classify`: JSON `{id?, subject, body}` or `{id?, raw}`, or a
//!   raw `message/rfc822` body; answers `{decision, backend}`.
//! - `GET /health`: open; says whether the isolate has the model loaded.
//! - Email Routing (`email` event): classifies each incoming message and
//!   forwards it to the address `LABEL_ROUTES` gives its label, with
//!   `X-Mailsort-*` headers.
#![cfg(target_arch = "wasm32")]

mod backend;
mod config;
mod error;
mod model;

use futures_util::StreamExt;
use mailsort_shared::api::ErrorCode;
use mailsort_shared::auth::KeySet;
use mailsort_shared::types::{DecidedBy, Decision, EmailInput};
use serde::{Deserialize, Serialize};
use worker::{Context, Env, ForwardableEmailMessage, Headers, Method, Request, Response, event};

use crate::backend::BackendOutcome;
use crate::config::Config;
use crate::error::ApiError;

/// One e-mail as JSON callers send it.
#[derive(Deserialize)]
struct ClassifyBody {
    #[serde(default)]
    id: String,
    #[serde(flatten)]
    input: EmailInput,
}

#[derive(Serialize)]
struct ClassifyAnswer {
    decision: Decision,
    backend: BackendOutcome,
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    match route(req, &env).await {
        Ok(response) => Ok(response),
        Err(e) => e.into_response(),
    }
}

async fn route(req: Request, env: &Env) -> Result<Response, ApiError> {
    match (req.method(), req.path().as_str()) {
        (Method::Get, "/health") => Ok(Response::from_json(&serde_json::json!({
            "status": "ok",
            "model_loaded": model::is_loaded(),
        }))?),
        (Method::Post, "/v1/classify") => classify(req, env).await,
        (_, "/v1/classify") => Err(ApiError::new(ErrorCode::MethodNotAllowed, "use POST")),
        (_, path) => Err(ApiError::new(
            ErrorCode::NotFound,
            format!("no route {path}"),
        )),
    }
}

fn authorised(req: &Request, key: &str) -> Result<bool, ApiError> {
    let header = req.headers().get("authorization")?;
    Ok(KeySet::new([key]).check(header.as_deref()))
}

async fn classify(mut req: Request, env: &Env) -> Result<Response, ApiError> {
    let config = Config::from_env(env)?;
    if !authorised(&req, &config.api_key)? {
        return Err(ApiError::unauthorized());
    }
    let declared = req
        .headers()
        .get("content-length")?
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > config.max_body_bytes) {
        return Err(too_large(config.max_body_bytes));
    }
    let content_type = req.headers().get("content-type")?.unwrap_or_default();
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let bytes = read_body(&mut req, config.max_body_bytes).await?;
    let (id, input) = match media.as_str() {
        "application/json" => {
            let body = parse_json(&bytes)?;
            (body.id, body.input)
        }
        "message/rfc822" => (
            String::new(),
            EmailInput::Raw {
                raw: String::from_utf8_lossy(&bytes).into_owned(),
            },
        ),
        _ => {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "send application/json or message/rfc822",
            ));
        }
    };
    let (decision, backend) = decide(&config, env, id, input).await?;
    Ok(Response::from_json(&ClassifyAnswer { decision, backend })?)
}

/// The JSON e-mail, refusing fields it does not know (serde cannot do that
/// through the flattened `EmailInput`).
fn parse_json(bytes: &[u8]) -> Result<ClassifyBody, ApiError> {
    let invalid = |e: String| {
        ApiError::new(
            ErrorCode::InvalidJson,
            format!("expected {{id?, subject, body}} or {{id?, raw}}: {e}"),
        )
    };
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
    let object = value
        .as_object()
        .ok_or_else(|| invalid("not an object".into()))?;
    if let Some(field) = object
        .keys()
        .find(|k| !["id", "subject", "body", "raw"].contains(&k.as_str()))
    {
        return Err(invalid(format!("unknown field `{field}`")));
    }
    serde_json::from_value(value).map_err(|e| invalid(e.to_string()))
}

/// The body, read as it arrives and refused as soon as it passes `limit`:
/// a chunked body declares no length, and must not be held whole first.
async fn read_body(req: &mut Request, limit: usize) -> Result<Vec<u8>, ApiError> {
    // `stream` fails only when there is no body at all.
    let Ok(mut stream) = req.stream() else {
        return Ok(Vec::new());
    };
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if bytes.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("the body is over the {limit}-byte limit (MAX_BODY_BYTES)"),
    )
}

/// The edge's decision, reranked by the backend when the gate forwards it.
async fn decide(
    config: &Config,
    env: &Env,
    id: String,
    input: EmailInput,
) -> Result<(Decision, BackendOutcome), ApiError> {
    let edge = model::edge(env).await?;
    let (mut decision, text) = edge
        .classify_with_text(&[(id, input)], 1)
        .pop()
        .expect("one result per e-mail")
        .map_err(|e| ApiError::new(ErrorCode::UnreadableEmail, e.to_string()))?;
    let outcome = if decision.needs_rerank() {
        backend::rerank(config, &edge.bundle().id, &mut decision, &text).await
    } else {
        BackendOutcome::NotNeeded
    };
    Ok((decision, outcome))
}

/// Email Routing: classify, then forward to the label's address with the
/// decision in `X-Mailsort-*` headers. `LABEL_ROUTES` is a JSON object from
/// label id to address; `"*"` is the address for every other label and for
/// messages that cannot be classified.
#[event(email)]
async fn email(message: ForwardableEmailMessage, env: Env, _ctx: Context) -> worker::Result<()> {
    let routes: serde_json::Map<String, serde_json::Value> = env
        .var("LABEL_ROUTES")
        .map(|v| v.to_string())
        .ok()
        .and_then(|v| serde_json::from_str(&v).ok())
        .unwrap_or_default();
    let route = |label: &str| {
        routes
            .get(label)
            .or_else(|| routes.get("*"))
            .and_then(|v| v.as_str().map(str::to_string))
    };
    let headers = Headers::new();
    let label = match classify_message(&message, &env).await {
        Ok(decision) => {
            headers.set("X-Mailsort-Label", &decision.label)?;
            headers.set(
                "X-Mailsort-Confidence",
                &format!("{:.3}", decision.confidence),
            )?;
            let by = if decision.provisional {
                "edge-provisional"
            } else if decision.decided_by == DecidedBy::Backend {
                "backend"
            } else {
                "edge"
            };
            headers.set("X-Mailsort-Decided-By", by)?;
            decision.label
        }
        Err(e) => {
            headers.set("X-Mailsort-Error", &e.message)?;
            String::new()
        }
    };
    match route(&label) {
        Some(address) => {
            message.forward_with_headers(&address, &headers.0).await?;
        }
        None => message.set_reject(&format!(
            "mailsort: no route for label {label:?} and no default (\"*\") in LABEL_ROUTES"
        )),
    }
    Ok(())
}

async fn classify_message(
    message: &ForwardableEmailMessage,
    env: &Env,
) -> Result<Decision, ApiError> {
    let config = Config::from_env(env)?;
    if message.raw_size() as usize > config.max_body_bytes {
        return Err(too_large(config.max_body_bytes));
    }
    let raw = message.raw_bytes().await?;
    let input = EmailInput::Raw {
        raw: String::from_utf8_lossy(&raw).into_owned(),
    };
    Ok(decide(&config, env, String::new(), input).await?.0)
}
