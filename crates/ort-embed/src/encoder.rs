//! A sentence encoder on ONNX Runtime (native only): the `onnxruntime-int8`
//! edge engine, the peer of `mailsort bench`, and the backend's second
//! opinion.
//!
//! ONNX Runtime is loaded at run time (`ort`'s `load-dynamic`) from the
//! `libonnxruntime.so` inside the PyPI `onnxruntime` wheel: the crate's
//! default build downloads binaries from a CDN, which fails offline.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorRef;
use thiserror::Error;

use mailsort_edge::embed::pad_ids;
use mailsort_edge::{EmbedError, Encoder};

/// ONNX Runtime failures, as text (ort's error types are generic).
#[derive(Debug, Error)]
#[error("ONNX Runtime: {0}")]
pub struct OrtError(pub String);

fn e(err: impl std::fmt::Display) -> OrtError {
    OrtError(err.to_string())
}

/// The process's ONNX Runtime environment; ort keeps only a weak reference.
static ENV: OnceLock<Environment> = OnceLock::new();

/// Loads `libonnxruntime.so` once per process and returns the process's
/// one environment (the backend's cross-encoder sessions use it too).
pub fn init(dylib: &Path) -> Result<&'static Environment, OrtError> {
    if let Some(env) = ENV.get() {
        return Ok(env);
    }
    if !dylib.is_file() {
        return Err(OrtError(format!(
            "{} does not exist: install the onnxruntime wheel (scripts/setup.sh does) and set ORT_DYLIB_PATH",
            dylib.display()
        )));
    }
    let env = ort::init_from(dylib)
        .map_err(e)?
        .with_name("mailsort")
        .build()
        .map_err(e)?;
    Ok(ENV.get_or_init(|| env))
}

/// ONNX Runtime CPU sessions over one encoder file. `Session::run` needs
/// `&mut`, so each embedding thread takes a session of its own from the
/// pool; with one session the calls simply queue.
pub struct OrtEncoder {
    sessions: Vec<Mutex<Session>>,
    next: AtomicUsize,
}

impl OrtEncoder {
    /// `sessions` CPU sessions (one per embedding thread) with full graph
    /// optimisation and `threads` intra-op threads each. [`init`] first.
    pub fn new(model: &Path, sessions: usize, threads: usize) -> Result<Self, OrtError> {
        let env = ENV
            .get()
            .ok_or_else(|| OrtError("ort_encoder::init was not called".into()))?;
        let bytes =
            std::fs::read(model).map_err(|err| OrtError(format!("{}: {err}", model.display())))?;
        let sessions = (0..sessions.max(1))
            .map(|_| {
                Session::builder(env)
                    .map_err(e)?
                    .with_optimization_level(GraphOptimizationLevel::Level3)
                    .map_err(e)?
                    .with_intra_threads(threads)
                    .map_err(e)?
                    .commit_from_memory(&bytes)
                    .map(Mutex::new)
                    .map_err(|err| OrtError(format!("{}: {err}", model.display())))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            sessions,
            next: AtomicUsize::new(0),
        })
    }

    /// Embeds one batch of token ids, padded to the longest.
    pub fn embed_ids(&self, ids: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, OrtError> {
        // A free session if there is one, else wait on the next in turn.
        let mut session = self
            .sessions
            .iter()
            .find_map(|s| s.try_lock().ok())
            .unwrap_or_else(|| {
                let i = self.next.fetch_add(1, Ordering::Relaxed) % self.sessions.len();
                self.sessions[i]
                    .lock()
                    .expect("a session's lock is only held around run, which does not panic")
            });
        let (input, mask) = pad_ids(ids);
        let outputs = session
            .run(ort::inputs![
                "input_ids" => TensorRef::from_array_view(&input).map_err(e)?,
                "attention_mask" => TensorRef::from_array_view(&mask).map_err(e)?,
            ])
            .map_err(e)?;
        let out = outputs["sentence_embedding"]
            .try_extract_array::<f32>()
            .map_err(e)?;
        if out.ndim() != 2 {
            return Err(OrtError(format!(
                "expected output [batch, dim], got {:?}",
                out.shape()
            )));
        }
        Ok(out
            .outer_iter()
            .map(|row| row.iter().copied().collect())
            .collect())
    }
}

impl Encoder for OrtEncoder {
    fn encode(&self, ids: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.embed_ids(ids).map_err(|err| EmbedError::Run(err.0))
    }
}
