//! The wire format of every mailsort server: the bodies of the backend's
//! `/v1/rerank` and `/v1/classify`, the one error vocabulary ([`ErrorCode`],
//! [`ErrorBody`]) that the backend and the Worker answer with, and the
//! client side of `/v1/rerank` that every edge (CLI, Worker) calls it with.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::types::{Candidate, DecidedBy, Decision, EmailInput};

/// The path of the reranking endpoint.
pub const RERANK_PATH: &str = "/v1/rerank";

/// What went wrong, for programs: the `code` of every error body, and the
/// one place where a failure kind gets its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    Unauthorized,
    NotFound,
    MethodNotAllowed,
    PayloadTooLarge,
    UnsupportedMediaType,
    InvalidJson,
    InvalidRequest,
    UnknownBundle,
    UnknownLabel,
    /// The e-mail cannot be parsed or cleaned (in a batch: that e-mail alone).
    UnreadableEmail,
    QueueFull,
    TooManyRequests,
    NotReady,
    ShuttingDown,
    DeadlineExceeded,
    /// The client was too slow sending its request.
    RequestTimeout,
    /// The reranking engine behind the server (a remote one) is down or
    /// its circuit breaker is open; the edge's label stands meanwhile.
    RerankerUnavailable,
    ModelError,
    /// The server's own configuration or start-up failed.
    Internal,
}

impl ErrorCode {
    /// The HTTP status that answers this kind of failure.
    pub fn status(self) -> u16 {
        match self {
            Self::Unauthorized => 401,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::RequestTimeout => 408,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::InvalidJson
            | Self::InvalidRequest
            | Self::UnknownBundle
            | Self::UnknownLabel
            | Self::UnreadableEmail => 422,
            Self::QueueFull | Self::TooManyRequests => 429,
            Self::ModelError | Self::Internal => 500,
            Self::NotReady | Self::ShuttingDown | Self::RerankerUnavailable => 503,
            Self::DeadlineExceeded => 504,
        }
    }

    /// The snake_case name sent as `code`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::InvalidJson => "invalid_json",
            Self::InvalidRequest => "invalid_request",
            Self::UnknownBundle => "unknown_bundle",
            Self::UnknownLabel => "unknown_label",
            Self::UnreadableEmail => "unreadable_email",
            Self::QueueFull => "queue_full",
            Self::TooManyRequests => "too_many_requests",
            Self::NotReady => "not_ready",
            Self::ShuttingDown => "shutting_down",
            Self::DeadlineExceeded => "deadline_exceeded",
            Self::ModelError => "model_error",
            Self::Internal => "internal",
            Self::RequestTimeout => "request_timeout",
            Self::RerankerUnavailable => "reranker_unavailable",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The JSON body of every error response, and of a per-e-mail error inside
/// a successful one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// What went wrong, for people.
    pub error: String,
    /// What went wrong, for programs (stable, snake_case).
    pub code: ErrorCode,
}

/// Why a call to `/v1/rerank` gave no usable answer.
#[derive(Debug, Error)]
pub enum RerankCallError {
    #[error("the backend answered {status} {code}: {message}")]
    Refused {
        status: u16,
        code: ErrorCode,
        message: String,
    },
    #[error("the backend answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("the backend's answer is unreadable: {0}")]
    Unreadable(String),
    #[error("the backend answered {got} results for {sent} e-mails")]
    Count { got: usize, sent: usize },
}

impl RerankCallError {
    /// Whether the same request may succeed later: the backend was busy
    /// (429), or it or a proxy in front of it was down or slow (502, 503,
    /// 504). Anything else needs a change on one side first.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Refused { status, .. } | Self::Status { status, .. } => {
                matches!(status, 429 | 502 | 503 | 504)
            }
            Self::Unreadable(_) | Self::Count { .. } => false,
        }
    }

    /// What an edge may pass on to its own callers: the status and code,
    /// never the backend's words (they can name its bundles and labels).
    pub fn summary(&self) -> String {
        match self {
            Self::Refused { status, code, .. } => format!("the backend answered {status} {code}"),
            Self::Status { status, .. } => format!("the backend answered {status}"),
            Self::Unreadable(_) => "the backend's answer is unreadable".into(),
            Self::Count { .. } => self.to_string(),
        }
    }
}

/// The URL of `/v1/rerank` under a backend's base URL.
pub fn rerank_url(base: &str) -> String {
    format!("{}{RERANK_PATH}", base.trim_end_matches('/'))
}

/// The `Authorization` header value for a backend key.
pub fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

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
    /// Run every model on every e-mail, also where the bundle's fusion does
    /// not read it (otherwise those scores are left out): what
    /// `mailsort calibrate-fusion` asks for, to refit the fusion.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub score_all: bool,
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

impl RerankEmail {
    /// Checks the candidates against the wire rules: 1 to `max_candidates`
    /// labels, no repeats, probabilities in [0, 1] given for all or none.
    /// Returns the edge's probabilities when they were given. Whether each
    /// label exists is the bundle's business, not this check's.
    pub fn check_candidates(&self, max_candidates: usize) -> Result<Option<Vec<f32>>, String> {
        let n = self.candidates.len();
        if n == 0 || n > max_candidates {
            return Err(format!(
                "e-mail {:?}: send 1 to {max_candidates} candidates (got {n})",
                self.id
            ));
        }
        let mut seen = std::collections::HashSet::with_capacity(n);
        if let Some(c) = self
            .candidates
            .iter()
            .find(|c| !seen.insert(c.label.as_str()))
        {
            return Err(format!(
                "e-mail {:?}: label {:?} is listed twice",
                self.id, c.label
            ));
        }
        let probs: Vec<f32> = self
            .candidates
            .iter()
            .filter_map(|c| c.probability)
            .collect();
        if probs.iter().any(|p| !(0.0..=1.0).contains(p)) {
            return Err(format!(
                "e-mail {:?}: probabilities must lie in [0, 1]",
                self.id
            ));
        }
        match probs.len() {
            0 => Ok(None),
            k if k == n => Ok(Some(probs)),
            _ => Err(format!(
                "e-mail {:?}: give a probability for every candidate or for none",
                self.id
            )),
        }
    }
}

impl RerankRequest {
    /// The request an edge sends for its forwarded decisions, each with the
    /// cleaned text it embedded.
    pub fn for_decisions<'a>(
        bundle: &str,
        forwarded: impl IntoIterator<Item = (&'a Decision, &'a str)>,
        deadline_ms: Option<u64>,
    ) -> Self {
        Self {
            bundle: bundle.to_string(),
            emails: forwarded
                .into_iter()
                .map(|(d, text)| RerankEmail::from_decision(d, text))
                .collect(),
            deadline_ms,
            score_all: false,
        }
    }
}

impl RerankResponse {
    /// Reads a backend's answer to a request of `sent` e-mails: the
    /// response on 200 with one result per e-mail, else why not (the
    /// backend's own error code when it sent one).
    pub fn read(status: u16, body: &[u8], sent: usize) -> Result<Self, RerankCallError> {
        if status != 200 {
            return Err(match serde_json::from_slice::<ErrorBody>(body) {
                Ok(e) => RerankCallError::Refused {
                    status,
                    code: e.code,
                    message: e.error,
                },
                Err(_) => RerankCallError::Status {
                    status,
                    body: String::from_utf8_lossy(body).trim().to_string(),
                },
            });
        }
        let answer: Self =
            serde_json::from_slice(body).map_err(|e| RerankCallError::Unreadable(e.to_string()))?;
        if answer.results.len() != sent {
            return Err(RerankCallError::Count {
                got: answer.results.len(),
                sent,
            });
        }
        Ok(answer)
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
    /// SHA-256 of the bundle's second-opinion file, when its head joined
    /// the fusion (a fusion file fitted with it names it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub second_opinion: Option<String>,
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
    /// SHA-256 of the reranker's FP32 ONNX file: which weights answered
    /// (a per-bundle fusion file names the reranker it was fitted with).
    #[serde(default)]
    pub sha256: String,
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
    /// The cross-encoder's logit for (e-mail, label); absent where the
    /// bundle's fusion for this e-mail does not read the cross-encoder, so
    /// it was not run (unless the request asked for `score_all`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    /// Calibrated over this e-mail's candidates (fused with the edge's
    /// probabilities when they were sent).
    pub probability: f32,
    /// The second opinion's probability over this e-mail's candidates,
    /// where the bundle is served with one and its fusion for this e-mail
    /// reads it (or the request asked for `score_all`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_probability: Option<f32>,
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
    pub error: Option<ErrorBody>,
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_call_error_summary_keeps_the_code_and_drops_the_backends_words() {
        let refused = RerankCallError::Refused {
            status: 422,
            code: ErrorCode::UnknownBundle,
            message: "unknown bundle \"x\"; this server has support (1d59b50b)".into(),
        };
        assert_eq!(refused.summary(), "the backend answered 422 unknown_bundle");
        let status = RerankCallError::Status {
            status: 502,
            body: "<html>upstream 10.0.0.7 failed</html>".into(),
        };
        assert_eq!(status.summary(), "the backend answered 502");
    }

    use super::*;

    #[test]
    fn busy_and_down_are_transient_and_refusals_are_not() {
        let refused = |status, code| RerankCallError::Refused {
            status,
            code,
            message: String::new(),
        };
        assert!(refused(429, ErrorCode::QueueFull).is_transient());
        assert!(refused(504, ErrorCode::DeadlineExceeded).is_transient());
        assert!(refused(503, ErrorCode::NotReady).is_transient());
        assert!(
            RerankCallError::Status {
                status: 502,
                body: String::new()
            }
            .is_transient()
        );
        assert!(!refused(401, ErrorCode::Unauthorized).is_transient());
        assert!(!refused(422, ErrorCode::UnknownBundle).is_transient());
        assert!(!RerankCallError::Unreadable("x".into()).is_transient());
    }

    fn email(candidates: &[(&str, Option<f32>)]) -> RerankEmail {
        RerankEmail {
            id: "e".into(),
            text: "t".into(),
            candidates: candidates
                .iter()
                .map(|&(label, probability)| CandidateIn {
                    label: label.into(),
                    probability,
                })
                .collect(),
        }
    }

    #[test]
    fn candidates_are_checked_against_the_wire_rules() {
        assert_eq!(
            email(&[("a", None), ("b", None)]).check_candidates(4),
            Ok(None)
        );
        assert_eq!(
            email(&[("a", Some(0.7)), ("b", Some(0.3))]).check_candidates(4),
            Ok(Some(vec![0.7, 0.3]))
        );
        let refused = |c: &[(&str, Option<f32>)], max: usize, why: &str| {
            let e = email(c).check_candidates(max).expect_err(why);
            assert!(e.contains(why), "{e:?} should say {why:?}");
        };
        refused(&[], 4, "send 1 to 4 candidates (got 0)");
        refused(&[("a", None), ("b", None), ("c", None)], 2, "(got 3)");
        refused(&[("a", None), ("a", None)], 4, "listed twice");
        refused(&[("a", Some(1.5))], 4, "[0, 1]");
        refused(&[("a", Some(f32::NAN))], 4, "[0, 1]");
        refused(
            &[("a", Some(0.5)), ("b", None)],
            4,
            "every candidate or for none",
        );
    }

    #[test]
    fn codes_serialise_as_their_names_and_map_to_statuses() {
        for code in [
            ErrorCode::Unauthorized,
            ErrorCode::UnreadableEmail,
            ErrorCode::QueueFull,
            ErrorCode::DeadlineExceeded,
            ErrorCode::Internal,
        ] {
            let json = serde_json::to_string(&code).expect("serialises");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
        assert_eq!(ErrorCode::Unauthorized.status(), 401);
        assert_eq!(ErrorCode::UnreadableEmail.status(), 422);
        assert_eq!(ErrorCode::QueueFull.status(), 429);
        assert_eq!(ErrorCode::ModelError.status(), 500);
        assert_eq!(ErrorCode::DeadlineExceeded.status(), 504);
    }

    #[test]
    fn reading_an_answer_keeps_the_backends_error_code() {
        let body = br#"{"error":"the queue is full","code":"queue_full"}"#;
        match RerankResponse::read(429, body, 1) {
            Err(RerankCallError::Refused { status, code, .. }) => {
                assert_eq!((status, code), (429, ErrorCode::QueueFull));
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert!(matches!(
            RerankResponse::read(502, b"bad gateway", 1),
            Err(RerankCallError::Status { status: 502, .. })
        ));
        let empty = br#"{"bundle":"b","reranker":{"name":"r","trained":true,"device":"cpu","precision":"fp32"},"results":[]}"#;
        assert!(matches!(
            RerankResponse::read(200, empty, 2),
            Err(RerankCallError::Count { got: 0, sent: 2 })
        ));
    }

    #[test]
    fn rerank_url_joins_without_double_slashes() {
        assert_eq!(rerank_url("http://h:1/"), "http://h:1/v1/rerank");
        assert_eq!(rerank_url("http://h:1"), "http://h:1/v1/rerank");
    }
}
