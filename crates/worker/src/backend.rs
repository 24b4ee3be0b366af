//! Forwarding an ambiguous e-mail to the backend's `/v1/rerank`. Only the
//! cleaned, truncated text and the candidates go out. Any failure leaves
//! the edge's decision standing, marked provisional.

use std::time::Duration;

use futures_util::future::{Either, select};
use mailsort_shared::api::{self, RerankRequest, RerankResponse};
use mailsort_shared::types::Decision;
use serde::Serialize;
use worker::{Delay, Fetch, Headers, Method, Request, RequestInit, console_error};

use crate::config::Config;

/// What happened to the backend step, as the response reports it.
#[derive(Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum BackendOutcome {
    /// The edge decided alone.
    NotNeeded,
    /// Forwarding is off (no `BACKEND_URL`): the label is provisional.
    NotConfigured,
    /// The backend reranked the candidates.
    Reranked { reranker: String, trained: bool },
    /// The backend failed or timed out: the label is provisional.
    Unavailable { error: String },
}

async fn call(config: &Config, request: RerankRequest) -> Result<RerankResponse, String> {
    let request_len = request.emails.len();
    let body = serde_json::to_string(&request).map_err(|e| e.to_string())?;
    let headers = Headers::new();
    headers
        .set("content-type", "application/json")
        .map_err(|e| e.to_string())?;
    if let Some(key) = &config.backend_key {
        headers
            .set("authorization", &api::bearer(key))
            .map_err(|e| e.to_string())?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(body.into()));
    let url = api::rerank_url(&config.backend_url);
    let request = Request::new_with_init(&url, &init).map_err(|e| e.to_string())?;
    // The full reason goes to the Worker's log; callers get a summary, never
    // the backend's own words or addresses.
    let mut response = Fetch::Request(request).send().await.map_err(|e| {
        console_error!("backend unreachable: {e}");
        "backend unreachable".to_string()
    })?;
    let status = response.status_code();
    let body = response.bytes().await.map_err(|e| {
        console_error!("backend answer unreadable: {e}");
        "backend answer unreadable".to_string()
    })?;
    RerankResponse::read(status, &body, request_len).map_err(|e| {
        console_error!("{e}");
        e.summary()
    })
}

/// Reranks a forwarded decision in place; on failure marks it provisional.
pub async fn rerank(
    config: &Config,
    bundle: &str,
    decision: &mut Decision,
    text: &str,
) -> BackendOutcome {
    if config.backend_url.is_empty() {
        decision.mark_provisional();
        return BackendOutcome::NotConfigured;
    }
    let request = RerankRequest::for_decisions(
        bundle,
        [(&*decision, text)],
        Some(config.backend_timeout_ms),
    );
    // The backend has its own deadline; this guards a connection that hangs.
    let timeout = Delay::from(Duration::from_millis(config.backend_timeout_ms + 500));
    let answer = match select(Box::pin(call(config, request)), timeout).await {
        Either::Left((answer, _)) => answer,
        Either::Right(_) => Err(format!(
            "backend timed out after {} ms",
            config.backend_timeout_ms
        )),
    };
    match answer.and_then(|r| {
        let reranker = r.reranker;
        r.results
            .into_iter()
            .next()
            .map(|x| (x, reranker))
            .ok_or_else(|| "backend answered no result".to_string())
    }) {
        Ok((result, reranker)) => {
            result.apply_to(decision);
            BackendOutcome::Reranked {
                reranker: reranker.name,
                trained: reranker.trained,
            }
        }
        Err(error) => {
            decision.mark_provisional();
            BackendOutcome::Unavailable { error }
        }
    }
}
