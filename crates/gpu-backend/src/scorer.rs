//! The one interface the batcher scores pairs through, whichever engine
//! answers: the in-process ONNX cross-encoder ([`crate::cross_encoder`]) or
//! a remote engine such as vLLM ([`crate::remote`]). The queue, admission,
//! deadlines, fusion, metrics and the API are the same for both.

use std::sync::Arc;
use std::time::Instant;

use thiserror::Error;

use crate::pairs::EncodedPair;
use crate::remote::breaker::Breaker;

/// Why a batch got no scores.
#[derive(Debug, Clone, Error)]
pub enum ScoreError {
    /// The model or the engine failed in a way a retry will not fix (a bad
    /// model file, an engine answering in another format).
    #[error("{0}")]
    Failed(String),
    /// The engine cannot be reached, or its circuit breaker is open.
    #[error("the reranking engine is unavailable: {reason}")]
    Unavailable { reason: String, retry_after_s: u64 },
    /// The deadline passed while the engine worked.
    #[error("the reranking engine did not answer before the deadline")]
    Timeout,
}

/// Something that turns (e-mail, label) pairs into one logit each.
pub trait Scorer: Send {
    /// One logit per pair, in order, before `deadline`.
    fn score(&mut self, pairs: &[&EncodedPair], deadline: Instant) -> Result<Vec<f32>, ScoreError>;

    /// Runs the shapes traffic will bring once, so that the first request
    /// pays for no allocation or kernel selection (and, for a remote
    /// engine, proves that it answers in the expected format).
    fn warm_up(&mut self, token_cap: usize) -> Result<(), ScoreError>;

    /// The breaker that admission consults, for engines that have one.
    fn breaker(&self) -> Option<Arc<Breaker>> {
        None
    }
}
