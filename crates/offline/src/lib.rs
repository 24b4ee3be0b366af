//! What mailsort does before it serves, natively: read labelled mail
//! ([`inputs`]), build a bundle from it ([`build`]: the head in [`train`],
//! the gate in [`calibrate`], the fusion of reranker scores in [`fusion`]),
//! score a bundle ([`metrics`]), carve dev
//! splits ([`split`]), write reranker-training candidates ([`candidates`]),
//! keep embeddings between runs ([`embed_cache`]),
//! get and prepare models ([`model_store`]), run the native edge on the
//! engine asked for ([`edge_engine`], ONNX Runtime in [`ort_encoder`]),
//! train the backend's second-opinion head ([`second_opinion`]),
//! reporting long steps through [`progress`].
//! The CLI is a thin face over this crate and
//! the edge core; the servers never depend on it.

pub mod build;
pub mod calibrate;
pub mod candidates;
pub mod edge_engine;
pub mod embed_cache;
pub mod fusion;
pub mod inputs;
pub mod metrics;
pub mod model_store;
pub mod progress;
pub mod second_opinion;
pub mod split;
pub mod train;

/// ONNX Runtime's sentence encoder, from its own crate (the backend uses it
/// too).
pub use mailsort_ort_embed::encoder as ort_encoder;
