//! The bodies remote engines speak: vLLM's `/v1/score` (pairs in, one score
//! each), the Jina/Cohere-style `/v1/rerank` that vLLM, Infinity and
//! text-embeddings-inference serve (one query, many documents), and the
//! OpenAI-style model list.

use serde::{Deserialize, Serialize};

/// `POST /v1/score` with two lists of equal length: scored pairwise.
#[derive(Debug, Serialize)]
pub struct ScoreRequest<'a> {
    pub model: &'a str,
    pub queries: Vec<&'a str>,
    pub documents: Vec<&'a str>,
    /// false asks for raw logits rather than sigmoid probabilities.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_activation: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct ScoreResponse {
    pub data: Vec<ScoreItem>,
}

#[derive(Debug, Deserialize)]
pub struct ScoreItem {
    pub index: usize,
    pub score: f64,
}

/// `POST /v1/rerank`: one e-mail against its candidate labels.
#[derive(Debug, Serialize)]
pub struct RerankRequest<'a> {
    pub model: &'a str,
    pub query: &'a str,
    pub documents: Vec<&'a str>,
    /// Every document back, so that each candidate gets a score.
    pub top_n: usize,
    pub return_documents: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_activation: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct RerankResponse {
    pub results: Vec<RerankItem>,
}

#[derive(Debug, Deserialize)]
pub struct RerankItem {
    pub index: usize,
    pub relevance_score: f64,
}

/// `GET /v1/models` (or `/models`).
#[derive(Debug, Deserialize)]
pub struct ModelList {
    pub data: Vec<ModelEntry>,
}

#[derive(Debug, Deserialize)]
pub struct ModelEntry {
    pub id: String,
}

/// Scores in request order from `(index, score)` items, which engines may
/// return sorted by score. Every index must appear once.
pub fn in_order(
    items: impl IntoIterator<Item = (usize, f64)>,
    n: usize,
) -> Result<Vec<f64>, String> {
    let mut out: Vec<Option<f64>> = vec![None; n];
    for (index, score) in items {
        let slot = out
            .get_mut(index)
            .ok_or_else(|| format!("index {index} is out of range for {n} pairs"))?;
        if slot.replace(score).is_some() {
            return Err(format!("index {index} is answered twice"));
        }
        if !score.is_finite() {
            return Err(format!("the score of index {index} is not finite"));
        }
    }
    out.into_iter()
        .enumerate()
        .map(|(i, s)| s.ok_or_else(|| format!("index {i} has no score")))
        .collect()
}

/// A probability from an engine that applies a sigmoid, back to the logit
/// the fusion expects. Clamped so that a saturated 0 or 1 stays finite.
pub fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-12, 1.0 - 1e-12);
    (p / (1.0 - p)).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_sorted_by_score_come_back_in_request_order() {
        let got = in_order([(2, 0.9), (0, 0.5), (1, 0.1)], 3).unwrap();
        assert_eq!(got, vec![0.5, 0.1, 0.9]);
    }

    #[test]
    fn missing_duplicate_out_of_range_and_nan_items_are_refused() {
        assert!(in_order([(0, 0.5)], 2).unwrap_err().contains("index 1"));
        assert!(
            in_order([(0, 0.5), (0, 0.4)], 2)
                .unwrap_err()
                .contains("twice")
        );
        assert!(
            in_order([(3, 0.5)], 2)
                .unwrap_err()
                .contains("out of range")
        );
        assert!(in_order([(0, f64::NAN)], 1).unwrap_err().contains("finite"));
    }

    #[test]
    fn logit_inverts_the_sigmoid_and_stays_finite_at_the_ends() {
        for z in [-8.0, -1.0, 0.0, 2.5, 9.0] {
            let p = 1.0 / (1.0 + f64::exp(-z));
            assert!((logit(p) - z).abs() < 1e-9, "{z}");
        }
        assert!(logit(1.0).is_finite() && logit(0.0).is_finite());
    }

    #[test]
    fn vllm_and_infinity_bodies_parse() {
        let vllm: ScoreResponse = serde_json::from_str(
            r#"{"id":"score-1","object":"list","created":1,"model":"m",
                "data":[{"index":0,"object":"score","score":-1.5}],
                "usage":{"prompt_tokens":9,"total_tokens":9}}"#,
        )
        .unwrap();
        assert_eq!(vllm.data[0].score, -1.5);
        let rerank: RerankResponse = serde_json::from_str(
            r#"{"object":"rerank","model":"m","id":"r",
                "results":[{"index":1,"relevance_score":0.8,"document":null},
                           {"index":0,"relevance_score":0.1}],
                "usage":{"total_tokens":3}}"#,
        )
        .unwrap();
        assert_eq!(rerank.results[0].index, 1);
    }
}
