//! `mailsort eval --backend URL`: the forwarded e-mails go to a running
//! `mailsort-backend` over HTTP, exactly as an edge would send them.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mailsort_shared::api::{
    self, RerankCallError, RerankRequest, RerankResponse, RerankResult, RerankerInfo,
};
use mailsort_shared::types::Decision;

/// E-mails per `/v1/rerank` request: the backend's default limit.
const EMAILS_PER_REQUEST: usize = 64;
/// Generous: an evaluation run waits for a busy CPU backend rather than
/// counting timeouts as errors.
const DEADLINE_MS: u64 = 60_000;
/// Longest pause between two tries of a request.
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// A blocking client for one backend.
pub struct BackendClient {
    http: reqwest::blocking::Client,
    base: String,
    api_key: Option<String>,
    /// How long one request is retried while the backend is busy or down.
    retry_for: Duration,
    /// Ask for every model's scores, whatever the bundle's fusion reads.
    score_all: bool,
}

/// Why a request got no answer.
#[derive(Debug, Clone)]
pub struct CallFailure {
    pub message: String,
    /// Busy or down (429, 502–504, no connection): it may answer later.
    pub transient: bool,
}

impl std::fmt::Display for CallFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The backend's answers for the forwarded e-mails.
pub struct Reranked {
    /// The reranker that answered, as the backend describes it.
    pub reranker: String,
    /// The same, as the backend reports it (`None` when nothing was sent).
    pub info: Option<RerankerInfo>,
    /// SHA-256 of the second-opinion head that joined the fusion, if any.
    pub second_opinion: Option<String>,
    /// (index into the decisions, result).
    pub results: Vec<(usize, RerankResult)>,
    /// Forwarded decisions the backend did not answer: they keep the
    /// edge's label, provisional.
    pub unanswered: Vec<usize>,
    /// The last failure, when some went unanswered.
    pub failure: Option<CallFailure>,
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
            retry_for: Duration::ZERO,
            score_all: false,
        })
    }

    /// Retries each request for up to `retry_for` while the backend is busy
    /// or down, with back-off. The default, zero, suits callers that
    /// retry on their own (`mailsort sort` defers the message).
    pub fn with_retry(mut self, retry_for: Duration) -> Self {
        self.retry_for = retry_for;
        self
    }

    /// Asks the backend to run every model on every e-mail, also where the
    /// bundle's fusion does not read it: what a refit of the fusion needs.
    pub fn scoring_all(mut self) -> Self {
        self.score_all = true;
        self
    }

    /// Reranks every forwarded decision (with its cleaned text). Every
    /// forwarded decision ends in `results` or in `unanswered`: a request
    /// that failed leaves its e-mails unanswered and the others go on. After
    /// one request has used up its retries, the later ones get one try each,
    /// so a backend that stays down costs `retry_for` once, not per request.
    pub fn rerank_forwarded(&self, bundle_id: &str, decided: &[(Decision, String)]) -> Reranked {
        let forwarded: Vec<usize> = decided
            .iter()
            .enumerate()
            .filter(|(_, (d, _))| d.needs_rerank())
            .map(|(i, _)| i)
            .collect();
        let mut out = Vec::with_capacity(forwarded.len());
        let mut reranker = String::new();
        let mut info = None;
        let mut second_opinion = None;
        let mut unanswered = Vec::new();
        let mut failure: Option<CallFailure> = None;
        for (n, chunk) in forwarded.chunks(EMAILS_PER_REQUEST).enumerate() {
            let mut request = RerankRequest::for_decisions(
                bundle_id,
                chunk
                    .iter()
                    .map(|&i| (&decided[i].0, decided[i].1.as_str())),
                Some(DEADLINE_MS),
            );
            request.score_all = self.score_all;
            let retry_for = if failure.is_some() {
                Duration::ZERO
            } else {
                self.retry_for
            };
            let answer = match self.post_retrying(&request, retry_for) {
                Ok(a) => a,
                Err(f) => {
                    unanswered.extend_from_slice(chunk);
                    failure = Some(f);
                    continue;
                }
            };
            reranker = format!(
                "{} (trained {}, {} {})",
                answer.reranker.name,
                answer.reranker.trained,
                answer.reranker.device,
                answer.reranker.precision
            );
            info = Some(answer.reranker);
            second_opinion = answer.second_opinion;
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
        Reranked {
            reranker,
            info,
            second_opinion,
            results: out,
            unanswered,
            failure,
        }
    }

    /// One request, tried again with back-off while the failure is
    /// transient and `retry_for` lasts.
    fn post_retrying(
        &self,
        request: &RerankRequest,
        retry_for: Duration,
    ) -> Result<RerankResponse, CallFailure> {
        let start = Instant::now();
        let mut wait = Duration::from_millis(500);
        loop {
            match self.post(request) {
                Ok(answer) => return Ok(answer),
                Err(f) if f.transient && start.elapsed() + wait <= retry_for => {
                    eprintln!("\n{f}; trying again in {:.1} s", wait.as_secs_f64());
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(MAX_BACKOFF);
                }
                Err(f) => return Err(f),
            }
        }
    }

    fn post(&self, request: &RerankRequest) -> Result<RerankResponse, CallFailure> {
        let url = api::rerank_url(&self.base);
        let mut call = self.http.post(&url).json(request);
        if let Some(key) = &self.api_key {
            call = call.header(reqwest::header::AUTHORIZATION, api::bearer(key));
        }
        // No connection, or one cut short, is the backend down or restarting.
        let down = |what: &str, e: reqwest::Error| CallFailure {
            message: format!("{what}: {e}"),
            transient: true,
        };
        let response = call
            .send()
            .map_err(|e| down(&format!("cannot reach the backend at {url}"), e))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .map_err(|e| down("cannot read the backend's answer", e))?;
        RerankResponse::read(status, &body, request.emails.len()).map_err(|e: RerankCallError| {
            CallFailure {
                transient: e.is_transient(),
                message: e.to_string(),
            }
        })
    }
}
