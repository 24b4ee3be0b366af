//! The backend's wire format: bodies of `/v1/rerank` and `/v1/classify`,
//! shared by the backend, the CLI and the edges that call it.

use serde::{Deserialize, Serialize};

use crate::types::{Candidate, DecidedBy, Decision, EmailInput};

/// `POST /v1/rerank`: what an edge sends for its ambiguous e-mails.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RerankRequest {
    /// Bundle id (SHA-256, or a unique prefix of 12+ hex digits) or bundle name.
    #[cfg_attr(feature = "openapi", schema(example = "support"))]
    pub bundle: String,
    /// One to `max_emails` e-mails.
    pub emails: Vec<RerankEmail>,
    /// Give up after this many milliseconds (at least 100; capped by the
    /// server's maximum). Past it the answer is 504 `deadline_exceeded`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 100))]
    pub deadline_ms: Option<u64>,
}

/// One e-mail to rerank: its cleaned, truncated text and the edge's top-k.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RerankEmail {
    /// The caller's id for the e-mail, echoed back.
    pub id: String,
    /// Cleaned text (subject and first paragraphs), as the edge embedded it.
    pub text: String,
    /// One to `max_candidates` labels of the bundle, without repeats.
    pub candidates: Vec<CandidateIn>,
}

impl RerankEmail {
    /// What an edge sends for a forwarded decision: the cleaned text it
    /// embedded and its candidates with their probabilities.
    pub fn from_decision(decision: &Decision, text: &str) -> Self {
        Self {
            id: decision.id.clone(),
            text: text.to_string(),
            candidates: decision
                .candidates
                .iter()
                .map(|c| CandidateIn {
                    label: c.label.clone(),
                    probability: Some(c.probability),
                })
                .collect(),
        }
    }
}

/// A candidate label, with the edge's probability when it has one. When every
/// candidate of an e-mail carries one, it is fused with the reranker's score.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CandidateIn {
    pub label: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 0.0, maximum = 1.0))]
    pub probability: Option<f32>,
}

/// `POST /v1/rerank` answer.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RerankResponse {
    /// The bundle's full id.
    pub bundle: String,
    pub reranker: RerankerInfo,
    /// One result per e-mail, in request order.
    pub results: Vec<RerankResult>,
}

/// The reranker that produced the scores.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RerankResult {
    pub id: String,
    /// The chosen label (highest probability).
    pub label: String,
    /// Its probability.
    pub confidence: f32,
    /// Every candidate, most probable first.
    pub candidates: Vec<ScoredCandidate>,
}

impl RerankResult {
    /// Writes the reranker's answer into the edge's decision of the same
    /// e-mail: the backend's label, confidence and candidates, final.
    pub fn apply_to(self, decision: &mut Decision) {
        decision.label = self.label;
        decision.confidence = self.confidence;
        decision.decided_by = DecidedBy::Backend;
        decision.provisional = false;
        decision.candidates = self
            .candidates
            .into_iter()
            .map(|c| Candidate {
                label: c.label,
                probability: c.probability,
            })
            .collect();
    }
}

/// A candidate's raw score and calibrated probability.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScoredCandidate {
    pub label: String,
    /// The cross-encoder's logit for (e-mail, label).
    pub score: f32,
    /// Calibrated over this e-mail's candidates (fused with the edge's
    /// probabilities when they were sent).
    pub probability: f32,
}

/// `POST /v1/classify`: whole e-mails, for clients without an edge.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ClassifyRequest {
    /// Bundle id or name, as for `/v1/rerank`.
    pub bundle: String,
    /// One to `max_emails` e-mails.
    pub emails: Vec<ClassifyEmail>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 100))]
    pub deadline_ms: Option<u64>,
}

/// An e-mail as raw RFC 5322 text or as subject and body.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClassifyEmail {
    pub id: String,
    #[serde(flatten)]
    pub input: EmailInput,
}

/// `POST /v1/classify` answer.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClassifyResponse {
    pub bundle: String,
    pub reranker: RerankerInfo,
    /// One result per e-mail, in request order.
    pub results: Vec<ClassifyResult>,
}

/// The decision for one e-mail, or why that e-mail alone failed.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClassifyResult {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ItemError>,
}

/// A per-e-mail error inside a successful response.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ItemError {
    pub error: String,
    pub code: String,
}
