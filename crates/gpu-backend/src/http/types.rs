//! Bodies the backend alone serves: health and readiness. The API bodies
//! live in `mailsort_shared::api`.

use mailsort_shared::api::RerankerInfo;

use crate::remote::RemoteHealth;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `GET /health` and `GET /ready`. Without an API key only `status` is
/// given: the rest names what this server serves.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HealthResponse {
    /// ok, starting or failed.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reranker: Option<RerankerInfo>,
    /// The remote engine and its circuit breaker, when `--reranker remote`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<RemoteHealth>,
    /// Loaded bundles: name and id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bundles: Vec<BundleInfo>,
    /// Pairs waiting or running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_pairs: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A served bundle.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct BundleInfo {
    pub name: String,
    pub id: String,
    pub labels: usize,
    /// How its forwarded e-mails are fused: `dev: …` when a fusion file
    /// fitted on its dev split is loaded, else `reranker default (…)`.
    pub fusion: String,
    /// Its second-opinion head: what it was trained on, or why none is
    /// served.
    pub second_opinion: String,
}
