//! A reranker served by another process: vLLM's `/v1/score` (the pairs of
//! many e-mails in one call), or the Jina/Cohere-style `/v1/rerank` that
//! vLLM, Infinity and text-embeddings-inference serve (one call per e-mail,
//! all at once). The batcher still forms the batches; each call's timeout
//! ends at the batch's first deadline, transient failures are retried with
//! back-off while time is left, and a circuit breaker ([`breaker`]) turns
//! an engine that is down into quick 503s. Scores come back as logits and
//! go through the same fusion as the ONNX reranker's.

pub mod breaker;
pub mod wire;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::ValueEnum;
use reqwest::StatusCode;
use serde::Serialize;
use thiserror::Error;
use tokio::runtime::Handle;
use tokio::task::JoinSet;
use utoipa::ToSchema;

use mailsort_shared::manifest::ProbePair;

use crate::metrics::Metrics;
use crate::pairs::EncodedPair;
use crate::scorer::{ScoreError, Scorer};
use breaker::{Breaker, BreakerConfig, BreakerSnapshot};

/// Which API the remote engine speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RemoteApi {
    /// vLLM's `POST /v1/score`: pairs in, one score each.
    Score,
    /// `POST /v1/rerank`: one query against many documents (vLLM,
    /// Infinity, text-embeddings-inference, Cohere-compatible servers).
    Rerank,
}

impl RemoteApi {
    fn path(self) -> &'static str {
        match self {
            Self::Score => "/v1/score",
            Self::Rerank => "/v1/rerank",
        }
    }
}

impl fmt::Display for RemoteApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.path())
    }
}

/// What the engine's numbers are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScoreKind {
    /// Raw logits (vLLM with `use_activation: false`, which is sent).
    Logits,
    /// Sigmoid probabilities, turned back into logits here.
    Probabilities,
}

/// How to reach and treat the remote engine.
#[derive(Debug, Clone)]
pub struct RemoteConfig {
    /// Base URL, e.g. `http://vllm:8000`.
    pub url: String,
    /// The model name the engine serves.
    pub model: String,
    pub api: RemoteApi,
    pub scores: ScoreKind,
    /// Sent as `Authorization: Bearer …` when set.
    pub key: Option<String>,
    /// Longest single call (shorter when the batch's deadline is nearer).
    pub call_timeout: Duration,
    pub connect_timeout: Duration,
    /// Extra attempts after a transient failure, within the deadline.
    pub retries: u32,
    pub breaker: BreakerConfig,
}

/// Why the remote engine cannot be used; each stops start-up with one line.
#[derive(Debug, Error)]
pub enum RemoteError {
    #[error(
        "--remote-url {url:?}: {detail} (give the engine's base URL, such as http://127.0.0.1:8000)"
    )]
    Url { url: String, detail: String },
    #[error("cannot reach the remote reranker at {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error(
        "the remote at {url} does not serve model {model:?} (--remote-model); it serves: {served}"
    )]
    WrongModel {
        url: String,
        model: String,
        served: String,
    },
    #[error("the remote at {url} refused {path}: {detail}")]
    Refused {
        url: String,
        path: String,
        detail: String,
    },
    #[error(
        "the remote at {url} answered {path} in another format ({detail}); check --remote-api and --remote-scores"
    )]
    Format {
        url: String,
        path: String,
        detail: String,
    },
    #[error(
        "the remote at {url} scores the reranker folder's check pairs differently (largest |logit difference| {diff:.3}, allowed {PROBE_TOLERANCE}): it serves another checkpoint than --reranker-dir, or sends probabilities (--remote-scores probabilities) [{detail}]"
    )]
    OtherCheckpoint {
        url: String,
        diff: f32,
        detail: String,
    },
}

/// Largest |logit| difference on the manifest's check pairs: an engine in
/// FP16 differs by about 1e-2 from the FP32 reference, another checkpoint
/// by whole units.
pub const PROBE_TOLERANCE: f32 = 0.1;

/// The remote engine as `/health` shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RemoteHealth {
    pub url: String,
    pub model: String,
    pub api: RemoteApi,
    pub breaker: BreakerSnapshot,
}

/// The remote's address and its breaker, for `/health`.
#[derive(Debug, Clone)]
pub struct RemoteStatus {
    url: String,
    model: String,
    api: RemoteApi,
    breaker: Arc<Breaker>,
}

impl RemoteStatus {
    pub fn health(&self) -> RemoteHealth {
        RemoteHealth {
            url: self.url.clone(),
            model: self.model.clone(),
            api: self.api,
            breaker: self.breaker.snapshot(),
        }
    }
}

/// How one call failed.
#[derive(Debug)]
enum CallError {
    /// Down, overloaded or slow: worth another try, and counted by the
    /// breaker.
    Transient(String),
    /// The engine answered, but not with scores: retrying will not help.
    Refused(String),
    Format(String),
}

/// The client side of a remote engine.
pub struct RemoteScorer {
    config: RemoteConfig,
    client: reqwest::Client,
    runtime: Handle,
    breaker: Arc<Breaker>,
    metrics: Arc<Metrics>,
}

/// Shortest time worth starting a call with.
const MIN_CALL: Duration = Duration::from_millis(20);
/// First pause before a retry; doubled each time.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);

impl RemoteScorer {
    /// Checks the URL, that the engine serves `config.model`, and that it
    /// gives the reranker folder's check pairs (`probe`, from its manifest)
    /// the logits they have there. Called from a blocking thread inside the
    /// server's runtime.
    pub fn connect(
        config: RemoteConfig,
        probe: &[ProbePair],
        runtime: Handle,
        metrics: Arc<Metrics>,
    ) -> Result<Self, RemoteError> {
        let url = config.url.trim_end_matches('/').to_string();
        let bad = |detail: &str| RemoteError::Url {
            url: config.url.clone(),
            detail: detail.into(),
        };
        let parsed = reqwest::Url::parse(&url).map_err(|e| bad(&e.to_string()))?;
        match parsed.scheme() {
            "http" => {}
            "https" => {
                return Err(bad(
                    "https is not built into the backend; reach the engine over http inside the cluster (or through a TLS sidecar)",
                ));
            }
            s => return Err(bad(&format!("unsupported scheme {s:?}"))),
        }
        if parsed.path() != "/" && !parsed.path().is_empty() {
            return Err(bad("give the base URL only; the API path is added"));
        }
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| bad(&e.to_string()))?;
        let scorer = Self {
            breaker: Arc::new(Breaker::new(config.breaker)),
            config: RemoteConfig { url, ..config },
            client,
            runtime,
            metrics,
        };
        scorer.check_model()?;
        let fallback = [
            ("My card has not arrived yet.", "card arrival"),
            (
                "My card has not arrived yet.",
                "billing: invoices and payments",
            ),
        ];
        let pairs: Vec<(&str, &str)> = if probe.is_empty() {
            tracing::warn!(
                "the reranker folder's manifest has no check pairs (prepared by an older mailsort): cannot check that the engine serves the same checkpoint; rerun `mailsort models reranker --force`"
            );
            fallback.to_vec()
        } else {
            probe
                .iter()
                .map(|p| (p.email.as_str(), p.label.as_str()))
                .collect()
        };
        let timeout = scorer.config.call_timeout.max(Duration::from_secs(30));
        let got = scorer
            .runtime
            .block_on(scorer.call(&pairs, timeout))
            .map_err(|e| scorer.startup_error(scorer.config.api.path(), e))?;
        if !probe.is_empty() {
            let diff = probe
                .iter()
                .zip(&got)
                .map(|(p, g)| (p.logit - g).abs())
                .fold(0.0f32, f32::max);
            if diff > PROBE_TOLERANCE {
                let detail = probe
                    .iter()
                    .zip(&got)
                    .map(|(p, g)| format!("{:.3} here, {g:.3} there", p.logit))
                    .collect::<Vec<_>>()
                    .join("; ");
                return Err(RemoteError::OtherCheckpoint {
                    url: scorer.config.url.clone(),
                    diff,
                    detail,
                });
            }
            tracing::info!(
                "remote reranker matches the reranker folder on {} check pairs (largest |logit difference| {diff:.2e})",
                probe.len()
            );
        }
        tracing::info!(
            "remote reranker {} at {} ({}) answers",
            scorer.config.model,
            scorer.config.url,
            scorer.config.api
        );
        Ok(scorer)
    }

    fn startup_error(&self, path: &str, e: CallError) -> RemoteError {
        let (url, path) = (self.config.url.clone(), path.to_string());
        match e {
            CallError::Transient(detail) => RemoteError::Unreachable { url, detail },
            CallError::Refused(detail) => RemoteError::Refused { url, path, detail },
            CallError::Format(detail) => RemoteError::Format { url, path, detail },
        }
    }

    /// The engine's model list must name `--remote-model`. vLLM and TEI
    /// serve `/v1/models`; Infinity serves `/models` unless given a prefix.
    fn check_model(&self) -> Result<(), RemoteError> {
        let timeout = self.config.call_timeout.max(Duration::from_secs(10));
        let mut last = None;
        for path in ["/v1/models", "/models"] {
            let got = self.runtime.block_on(async {
                let request = self
                    .request(self.client.get(format!("{}{path}", self.config.url)))
                    .timeout(timeout);
                let (status, body) = fetch(request).await?;
                if status == StatusCode::NOT_FOUND {
                    return Ok(None);
                }
                if !status.is_success() {
                    return Err(CallError::Refused(format!("{status}: {}", excerpt(&body))));
                }
                serde_json::from_str::<wire::ModelList>(&body)
                    .map(Some)
                    .map_err(|e| {
                        CallError::Format(format!(
                            "not an OpenAI-style model list: {e}: {}",
                            excerpt(&body)
                        ))
                    })
            });
            match got {
                Ok(Some(list)) => {
                    if list.data.iter().any(|m| m.id == self.config.model) {
                        return Ok(());
                    }
                    let served: Vec<&str> = list.data.iter().map(|m| m.id.as_str()).collect();
                    return Err(RemoteError::WrongModel {
                        url: self.config.url.clone(),
                        model: self.config.model.clone(),
                        served: if served.is_empty() {
                            "nothing".into()
                        } else {
                            served.join(", ")
                        },
                    });
                }
                Ok(None) => last = Some(path),
                Err(e) => return Err(self.startup_error(path, e)),
            }
        }
        Err(RemoteError::Refused {
            url: self.config.url.clone(),
            path: last.unwrap_or("/v1/models").into(),
            detail:
                "no model list at /v1/models or /models: is this a vLLM, Infinity or TEI server?"
                    .into(),
        })
    }

    fn request(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.config.key {
            Some(key) => builder.bearer_auth(key),
            None => builder,
        }
    }

    /// What `/health` reads, kept by the engine once the scorer has moved
    /// into the batcher.
    pub fn status(&self) -> RemoteStatus {
        RemoteStatus {
            url: self.config.url.clone(),
            model: self.config.model.clone(),
            api: self.config.api,
            breaker: self.breaker.clone(),
        }
    }

    fn use_activation(&self) -> Option<bool> {
        (self.config.scores == ScoreKind::Logits).then_some(false)
    }

    /// One attempt: every pair scored, as logits, in order.
    async fn call(&self, pairs: &[(&str, &str)], timeout: Duration) -> Result<Vec<f32>, CallError> {
        let raw = match self.config.api {
            RemoteApi::Score => {
                let body = wire::ScoreRequest {
                    model: &self.config.model,
                    queries: pairs.iter().map(|p| p.0).collect(),
                    documents: pairs.iter().map(|p| p.1).collect(),
                    use_activation: self.use_activation(),
                };
                let text = self.post(RemoteApi::Score.path(), &body, timeout).await?;
                let r: wire::ScoreResponse =
                    parse(&text, "a score list ({data: [{index, score}]})")?;
                wire::in_order(r.data.into_iter().map(|d| (d.index, d.score)), pairs.len())
                    .map_err(CallError::Format)?
            }
            RemoteApi::Rerank => self.rerank_all(pairs, timeout).await?,
        };
        raw.into_iter()
            .map(|s| match self.config.scores {
                ScoreKind::Logits => Ok(s as f32),
                ScoreKind::Probabilities if (0.0..=1.0).contains(&s) => Ok(wire::logit(s) as f32),
                ScoreKind::Probabilities => Err(CallError::Format(format!(
                    "score {s} is not a probability (the engine sends logits: --remote-scores logits)"
                ))),
            })
            .collect()
    }

    /// `/v1/rerank` takes one query: one call per distinct e-mail text, all
    /// in flight together so that the engine batches them.
    async fn rerank_all(
        &self,
        pairs: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<Vec<f64>, CallError> {
        let mut groups: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, (email, _)) in pairs.iter().enumerate() {
            groups.entry(email).or_default().push(i);
        }
        let mut calls = JoinSet::new();
        for (email, members) in groups {
            let body = serde_json::to_vec(&wire::RerankRequest {
                model: &self.config.model,
                query: email,
                documents: members.iter().map(|&i| pairs[i].1).collect(),
                top_n: members.len(),
                return_documents: false,
                use_activation: self.use_activation(),
            })
            .map_err(|e| CallError::Format(e.to_string()))?;
            let request = self
                .request(self.client.post(format!("{}/v1/rerank", self.config.url)))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .timeout(timeout)
                .body(body);
            calls.spawn(async move { (members, send(request).await) });
        }
        let mut out = vec![0.0; pairs.len()];
        while let Some(joined) = calls.join_next().await {
            let (members, text) =
                joined.map_err(|e| CallError::Format(format!("rerank task: {e}")))?;
            let r: wire::RerankResponse = parse(
                &text?,
                "a rerank list ({results: [{index, relevance_score}]})",
            )?;
            let scores = wire::in_order(
                r.results.into_iter().map(|d| (d.index, d.relevance_score)),
                members.len(),
            )
            .map_err(CallError::Format)?;
            for (i, s) in members.into_iter().zip(scores) {
                out[i] = s;
            }
        }
        Ok(out)
    }

    async fn post(
        &self,
        path: &str,
        body: &impl Serialize,
        timeout: Duration,
    ) -> Result<String, CallError> {
        let request = self
            .request(self.client.post(format!("{}{path}", self.config.url)))
            .json(body)
            .timeout(timeout);
        send(request).await
    }

    /// Attempts until one answers, a failure is final, the breaker opens
    /// or the deadline is near.
    async fn score_until(
        &self,
        pairs: &[(&str, &str)],
        deadline: Instant,
    ) -> Result<Vec<f32>, ScoreError> {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 0;
        loop {
            if let Err(open) = self.breaker.admit() {
                self.count("breaker_open");
                return Err(ScoreError::Unavailable {
                    reason: format!("circuit breaker open after: {}", open.reason),
                    retry_after_s: open.retry_after.as_secs().max(1),
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left < MIN_CALL {
                return Err(ScoreError::Timeout);
            }
            let timeout = self.config.call_timeout.min(left);
            match self.call(pairs, timeout).await {
                Ok(scores) => {
                    self.breaker.success();
                    self.count("ok");
                    self.metrics
                        .remote_breaker_state
                        .set(self.breaker.state_code());
                    return Ok(scores);
                }
                Err(CallError::Refused(m)) => {
                    self.count("refused");
                    return Err(ScoreError::Failed(format!(
                        "the remote reranker refused: {m}"
                    )));
                }
                Err(CallError::Format(m)) => {
                    self.count("format");
                    return Err(ScoreError::Failed(format!(
                        "the remote reranker answered in another format: {m}"
                    )));
                }
                Err(CallError::Transient(m)) => {
                    self.count("transient");
                    self.breaker.failure(&m);
                    self.metrics
                        .remote_breaker_state
                        .set(self.breaker.state_code());
                    attempt += 1;
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left < MIN_CALL {
                        return Err(ScoreError::Timeout);
                    }
                    if attempt > self.config.retries {
                        return Err(ScoreError::Unavailable {
                            reason: m,
                            retry_after_s: 1,
                        });
                    }
                    tokio::time::sleep(backoff.min(left / 2)).await;
                    backoff *= 2;
                }
            }
        }
    }

    fn count(&self, outcome: &str) {
        self.metrics
            .remote_calls
            .with_label_values(&[outcome])
            .inc();
    }
}

impl Scorer for RemoteScorer {
    fn score(&mut self, pairs: &[&EncodedPair], deadline: Instant) -> Result<Vec<f32>, ScoreError> {
        let texts: Vec<(&str, &str)> = pairs.iter().map(|p| (&*p.email, &*p.label)).collect();
        self.runtime.block_on(self.score_until(&texts, deadline))
    }

    /// One batch of full-length pairs: an engine whose context is shorter
    /// than the token cap fails here, at start-up, rather than on mail.
    fn warm_up(&mut self, token_cap: usize) -> Result<(), ScoreError> {
        let pair = EncodedPair::synthetic(token_cap);
        let pairs = [&pair, &pair];
        let deadline = Instant::now() + self.config.call_timeout.max(Duration::from_secs(30));
        self.score(&pairs, deadline).map(|_| ())
    }

    fn breaker(&self) -> Option<Arc<Breaker>> {
        Some(self.breaker.clone())
    }
}

/// Sends and reads the status and body; failing to is transient.
async fn fetch(request: reqwest::RequestBuilder) -> Result<(StatusCode, String), CallError> {
    let response = request
        .send()
        .await
        .map_err(|e| CallError::Transient(describe(&e)))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| CallError::Transient(describe(&e)))?;
    Ok((status, text))
}

/// Sends and reads the body; 429 and 5xx are transient, other non-2xx are
/// refusals.
async fn send(request: reqwest::RequestBuilder) -> Result<String, CallError> {
    let (status, text) = fetch(request).await?;
    if status.is_success() {
        Ok(text)
    } else if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        Err(CallError::Transient(format!(
            "{status}: {}",
            excerpt(&text)
        )))
    } else {
        Err(CallError::Refused(format!("{status}: {}", excerpt(&text))))
    }
}

fn parse<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, CallError> {
    serde_json::from_str(text)
        .map_err(|e| CallError::Format(format!("expected {what}: {e}: {}", excerpt(text))))
}

/// A reqwest error with its cause (connection refused, timed out…).
fn describe(e: &reqwest::Error) -> String {
    let mut s = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

/// The start of a body, for error messages.
fn excerpt(text: &str) -> String {
    let cut = mailsort_shared::clean::truncate_bytes(text.trim(), 200);
    if cut.len() < text.trim().len() {
        format!("{cut}…")
    } else {
        cut.to_string()
    }
}
