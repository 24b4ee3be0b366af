//! `mailsort eval --backend URL`: the forwarded e-mails go to a running
//! `mailsort-backend` over HTTP, exactly as an edge would send them.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use mailsort_shared::api::{self, RerankRequest, RerankResponse, RerankResult, RerankerInfo};
use mailsort_shared::types::Decision;

/// E-mails per `/v1/rerank` request: the backend's default limit.
const EMAILS_PER_REQUEST: usize = 64;
/// Generous: an evaluation run waits for a busy CPU backend rather than
/// counting timeouts as errors.
const DEADLINE_MS: u64 = 60_000;

/// A blocking client for one backend.
pub struct BackendClient {
    http: reqwest::blocking::Client,
    base: String,
    api_key: Option<String>,
}

/// The backend's answers for the forwarded e-mails.
pub struct Reranked {
    /// The reranker that answered, as the backend describes it.
    pub reranker: String,
    /// The same, as the backend reports it (`None` when nothing was sent).
    pub info: Option<RerankerInfo>,
    /// (index into the decisions, result).
    pub results: Vec<(usize, RerankResult)>,
}

impl BackendClient {
    pub fn new(url: &str, api_key: Option<&str>) -> Result<Self> {
        let base = url.trim_end_matches('/').to_string();
        if !base.starts_with("http://") {
            bail!("--backend must be an http:// URL (this build speaks plain HTTP), got {url}");
        }
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_millis(DEADLINE_MS + 10_000))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self {
            http,
            base,
            api_key: api_key.map(str::to_string),
        })
    }

    /// Reranks every forwarded decision (with its cleaned text).
    pub fn rerank_forwarded(
        &self,
        bundle_id: &str,
        decided: &[(Decision, String)],
    ) -> Result<Reranked> {
        let forwarded: Vec<usize> = decided
            .iter()
            .enumerate()
            .filter(|(_, (d, _))| d.needs_rerank())
            .map(|(i, _)| i)
            .collect();
        let mut out = Vec::with_capacity(forwarded.len());
        let mut reranker = String::new();
        let mut info = None;
        for (n, chunk) in forwarded.chunks(EMAILS_PER_REQUEST).enumerate() {
            let request = RerankRequest::for_decisions(
                bundle_id,
                chunk
                    .iter()
                    .map(|&i| (&decided[i].0, decided[i].1.as_str())),
                Some(DEADLINE_MS),
            );
            let answer = self.post(&request)?;
            reranker = format!(
                "{} (trained {}, {} {})",
                answer.reranker.name,
                answer.reranker.trained,
                answer.reranker.device,
                answer.reranker.precision
            );
            info = Some(answer.reranker);
            out.extend(chunk.iter().copied().zip(answer.results));
            eprint!(
                "\rreranked {}/{} forwarded e-mails",
                (n * EMAILS_PER_REQUEST + chunk.len()),
                forwarded.len()
            );
        }
        if !forwarded.is_empty() {
            eprintln!();
        }
        Ok(Reranked {
            reranker,
            info,
            results: out,
        })
    }

    fn post(&self, request: &RerankRequest) -> Result<RerankResponse> {
        let url = api::rerank_url(&self.base);
        let mut call = self.http.post(&url).json(request);
        if let Some(key) = &self.api_key {
            call = call.header(reqwest::header::AUTHORIZATION, api::bearer(key));
        }
        let response = call
            .send()
            .with_context(|| format!("cannot reach the backend at {url}"))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .context("cannot read the backend's answer")?;
        Ok(RerankResponse::read(status, &body, request.emails.len())?)
    }
}
