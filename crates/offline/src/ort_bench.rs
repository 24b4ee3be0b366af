//! The same encoder on ONNX Runtime, for side-by-side benchmarks (native only).
//!
//! ONNX Runtime is loaded at run time (`ort`'s `load-dynamic`) from the
//! `libonnxruntime.so` inside the PyPI `onnxruntime` wheel: the crate's
//! default build downloads binaries from a CDN, which fails offline.

use std::path::Path;
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorRef;
use thiserror::Error;

use mailsort_edge::embed::pad_ids;

/// ONNX Runtime failures, as text (ort's error types are generic).
#[derive(Debug, Error)]
#[error("ONNX Runtime: {0}")]
pub struct OrtError(pub String);

fn e(err: impl std::fmt::Display) -> OrtError {
    OrtError(err.to_string())
}

/// An ONNX Runtime CPU session over the sentence encoder.
pub struct OrtEncoder {
    session: Session,
}

/// The process's ONNX Runtime environment; ort keeps only a weak reference.
static ENV: OnceLock<Environment> = OnceLock::new();

/// Loads `libonnxruntime.so` once per process.
pub fn init(dylib: &Path) -> Result<(), OrtError> {
    if ENV.get().is_some() {
        return Ok(());
    }
    let env = ort::init_from(dylib).map_err(e)?.build().map_err(e)?;
    let _ = ENV.set(env);
    Ok(())
}

impl OrtEncoder {
    /// A CPU session with full graph optimisation and `threads` intra-op threads.
    pub fn new(model: &Path, threads: usize) -> Result<Self, OrtError> {
        let env = ENV
            .get()
            .ok_or_else(|| OrtError("ort_bench::init was not called".into()))?;
        let session = Session::builder(env)
            .map_err(e)?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(e)?
            .with_intra_threads(threads)
            .map_err(e)?
            .commit_from_file(model)
            .map_err(e)?;
        Ok(Self { session })
    }

    /// Embeds one batch of token ids, padded to the longest.
    pub fn embed_ids(&mut self, ids: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, OrtError> {
        let (input, mask) = pad_ids(ids);
        let outputs = self
            .session
            .run(ort::inputs![
                "input_ids" => TensorRef::from_array_view(&input).map_err(e)?,
                "attention_mask" => TensorRef::from_array_view(&mask).map_err(e)?,
            ])
            .map_err(e)?;
        let out = outputs["sentence_embedding"]
            .try_extract_array::<f32>()
            .map_err(e)?;
        Ok(out
            .outer_iter()
            .map(|row| row.iter().copied().collect())
            .collect())
    }
}
