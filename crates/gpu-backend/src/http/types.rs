//! Request and response bodies of the REST API (also the OpenAPI schemas).

use mailsort_shared::types::{Decision, EmailInput};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /v1/rerank`: what an edge sends for its ambiguous e-mails.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RerankRequest {
    /// Bundle id (SHA-256, or a unique prefix of 12+ hex digits) or bundle name.
    #[schema(example = "support")]
    pub bundle: String,
    /// One to `max_emails` e-mails.
    pub emails: Vec<RerankEmail>,
    /// Give up after this many milliseconds (capped by the server).
    #[serde(default)]
    #[schema(minimum = 1)]
    pub deadline_ms: Option<u64>,
}

/// One e-mail to rerank: its cleaned, truncated text and the edge's top-k.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RerankEmail {
    /// The caller's id for the e-mail, echoed back.
    pub id: String,
    /// Cleaned text (subject and first paragraphs), as the edge embedded it.
    pub text: String,
    /// One to `max_candidates` labels of the bundle, without repeats.
    pub candidates: Vec<CandidateIn>,
}

/// A candidate label, with the edge's probability when it has one. When every
/// candidate of an e-mail carries one, it is fused with the reranker's score.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CandidateIn {
    pub label: String,
    #[serde(default)]
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub probability: Option<f32>,
}

/// `POST /v1/rerank` answer.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct RerankResponse {
    /// The bundle's full id.
    pub bundle: String,
    pub reranker: RerankerInfo,
    /// One result per e-mail, in request order.
    pub results: Vec<RerankResult>,
}

/// The reranker that produced the scores.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct RerankerInfo {
    pub name: String,
    /// False while the model's head is a placeholder: scores carry no meaning.
    pub trained: bool,
    /// cpu, cuda or tensorrt.
    pub device: String,
    /// fp32 or fp16.
    pub precision: String,
}

/// The reranked labels of one e-mail.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct RerankResult {
    pub id: String,
    /// The chosen label (highest probability).
    pub label: String,
    /// Its probability.
    pub confidence: f32,
    /// Every candidate, most probable first.
    pub candidates: Vec<ScoredCandidate>,
}

/// A candidate's raw score and calibrated probability.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ScoredCandidate {
    pub label: String,
    /// The cross-encoder's logit for (e-mail, label).
    pub score: f32,
    /// Calibrated over this e-mail's candidates (fused with the edge's
    /// probabilities when they were sent).
    pub probability: f32,
}

/// `POST /v1/classify`: whole e-mails, for clients without an edge.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassifyRequest {
    /// Bundle id or name, as for `/v1/rerank`.
    pub bundle: String,
    /// One to `max_emails` e-mails.
    pub emails: Vec<ClassifyEmail>,
    #[serde(default)]
    #[schema(minimum = 1)]
    pub deadline_ms: Option<u64>,
}

/// An e-mail as raw RFC 5322 text or as subject and body.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ClassifyEmail {
    pub id: String,
    #[serde(flatten)]
    pub input: EmailInput,
}

/// `POST /v1/classify` answer.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ClassifyResponse {
    pub bundle: String,
    pub reranker: RerankerInfo,
    /// One result per e-mail, in request order.
    pub results: Vec<ClassifyResult>,
}

/// The decision for one e-mail, or why that e-mail alone failed.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ClassifyResult {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ItemError>,
}

/// A per-e-mail error inside a successful response.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ItemError {
    pub error: String,
    pub code: String,
}

/// `GET /health` and `GET /ready`.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct HealthResponse {
    /// ok, starting or failed.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reranker: Option<RerankerInfo>,
    /// Loaded bundles: name and id.
    pub bundles: Vec<BundleInfo>,
    /// Pairs waiting or running.
    pub queue_pairs: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A served bundle.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct BundleInfo {
    pub name: String,
    pub id: String,
    pub labels: usize,
}
