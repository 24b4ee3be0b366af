//! Compute per reranked pair, from a model's shape, for projecting
//! throughput onto hardware that has no measured result.

use serde::Serialize;

/// The shape that sets a transformer's compute per token.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ModelShape {
    pub name: String,
    /// Parameters outside the embedding tables (they cost no FLOPs).
    pub non_embedding_params: f64,
    pub layers: f64,
    pub hidden: f64,
}

impl ModelShape {
    /// The default reranker: a MiniLM-L6 cross-encoder (6 layers, 384
    /// hidden, 1536 intermediate: 6 x (4·384² + 2·384·1536) weights).
    pub fn minilm_l6() -> Self {
        Self {
            name: "MiniLM-L6 cross-encoder (the default reranker)".into(),
            non_embedding_params: 6.0 * (4.0 * 384.0 * 384.0 + 2.0 * 384.0 * 1536.0),
            layers: 6.0,
            hidden: 384.0,
        }
    }

    /// A large LLM reranker of about 1.5B parameters (Qwen2.5-1.5B's shape:
    /// 28 layers, 1536 hidden, about 1.3B weights outside the embeddings),
    /// the kind served by vLLM.
    pub fn llm_1_5b() -> Self {
        Self {
            name: "a 1.5B-parameter LLM reranker (Qwen2.5-1.5B shape)".into(),
            non_embedding_params: 1.31e9,
            layers: 28.0,
            hidden: 1536.0,
        }
    }

    /// Forward-pass FLOPs for one pair of `tokens` tokens: two per weight
    /// per token, plus attention's scores and mixing (4·tokens·hidden per
    /// token and layer).
    pub fn flops_per_pair(&self, tokens: f64) -> f64 {
        tokens * (2.0 * self.non_embedding_params + 4.0 * self.layers * tokens * self.hidden)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minilm_costs_about_21_mflops_per_token() {
        let m = ModelShape::minilm_l6();
        let per_token = m.flops_per_pair(1.0);
        assert!((per_token - 21.24e6).abs() < 0.01e6, "{per_token}");
        // Attention grows with length: 128 tokens cost more than 128 x 1.
        assert!(m.flops_per_pair(128.0) > 128.0 * per_token);
    }
}
