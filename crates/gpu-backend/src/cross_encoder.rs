//! The cross-encoder on ONNX Runtime: device and precision choice, warm-up,
//! and one padded model call per batch of (e-mail, label) pairs.
//!
//! ONNX Runtime is loaded at run time (`ort`'s `load-dynamic`) from the
//! `libonnxruntime.so` of the PyPI `onnxruntime` wheel, or `onnxruntime-gpu`
//! for CUDA (whose library also runs the CPU provider).

use std::fmt;
use std::fs;
use std::path::Path;
use std::time::Instant;

use mailsort_shared::digest::sha256_hex;
use mailsort_shared::manifest::{ManifestError, RerankerDir, RerankerManifest};
use ndarray::Array2;
use ort::environment::Environment;
use ort::ep::{self, ExecutionProvider};
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorRef;
use thiserror::Error;

use crate::config::{DeviceChoice, PrecisionChoice};
use crate::pairs::EncodedPair;
use crate::scorer::{ScoreError, Scorer};

/// Why the cross-encoder could not be loaded or run.
#[derive(Debug, Error)]
pub enum ModelError {
    #[error(
        "cannot load ONNX Runtime from {path}: {detail} (install the onnxruntime wheel and set ORT_DYLIB_PATH)"
    )]
    Runtime { path: String, detail: String },
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("cannot read {path}: {detail}")]
    Read { path: String, detail: String },
    #[error(
        "{path} does not match the reranker manifest (sha256 {found}, manifest says {expected}); run `mailsort models reranker --force`"
    )]
    WrongFile {
        path: String,
        expected: String,
        found: String,
    },
    #[error("CUDA was asked for but cannot be used: {0}")]
    CudaUnavailable(String),
    #[error("ONNX Runtime session: {0}")]
    Session(String),
    #[error("running the cross-encoder failed: {0}")]
    Run(String),
}

/// Where the model ended up running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Cpu,
    Cuda,
    TensorRt,
}

/// The precision of the loaded model file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    Fp32,
    Fp16,
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Device::Cpu => "cpu",
            Device::Cuda => "cuda",
            Device::TensorRt => "tensorrt",
        })
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Precision::Fp32 => "fp32",
            Precision::Fp16 => "fp16",
        })
    }
}

/// How to build the session.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    pub device: DeviceChoice,
    pub precision: PrecisionChoice,
    pub tensorrt: bool,
    /// Intra-op threads; 0 leaves ONNX Runtime's default.
    pub threads: usize,
}

fn session_err(e: impl fmt::Display) -> ModelError {
    ModelError::Session(e.to_string())
}

/// The process's one ONNX Runtime environment, shared with the second
/// opinion's encoder.
fn environment(dylib: &Path) -> Result<&'static Environment, ModelError> {
    mailsort_ort_embed::init(dylib).map_err(|e| ModelError::Runtime {
        path: dylib.display().to_string(),
        detail: e.0,
    })
}

/// A loaded cross-encoder session.
pub struct CrossEncoder {
    session: Session,
    pub device: Device,
    pub precision: Precision,
    pub manifest: RerankerManifest,
}

impl CrossEncoder {
    /// Loads the reranker from `dir` with the provider and precision that
    /// `options` and the machine allow. With `device = auto`, CUDA is tried
    /// first and CPU is used when CUDA cannot be registered.
    pub fn load(
        dir: &RerankerDir,
        dylib: &Path,
        options: &RuntimeOptions,
    ) -> Result<Self, ModelError> {
        let env = environment(dylib)?;
        let manifest = dir.read_manifest()?;
        let want_cuda = match options.device {
            DeviceChoice::Cpu => false,
            DeviceChoice::Cuda => true,
            DeviceChoice::Auto => ep::CUDA::is_available().unwrap_or(false),
        };
        if want_cuda {
            match Self::session(env, dir, &manifest, options, true) {
                Ok(s) => return Ok(s),
                Err(e) if options.device == DeviceChoice::Cuda => return Err(e),
                Err(e) => tracing::warn!("CUDA is not usable, falling back to CPU: {e}"),
            }
        }
        Self::session(env, dir, &manifest, options, false)
    }

    fn session(
        env: &Environment,
        dir: &RerankerDir,
        manifest: &RerankerManifest,
        options: &RuntimeOptions,
        cuda: bool,
    ) -> Result<Self, ModelError> {
        let precision = match (options.precision, cuda) {
            (PrecisionChoice::Fp16, _) | (PrecisionChoice::Auto, true) => Precision::Fp16,
            (PrecisionChoice::Fp32, _) | (PrecisionChoice::Auto, false) => Precision::Fp32,
        };
        let (path, expected) = match precision {
            Precision::Fp32 => (dir.fp32(), &manifest.fp32_sha256),
            Precision::Fp16 => (dir.fp16(), &manifest.fp16_sha256),
        };
        let bytes = fs::read(&path).map_err(|e| ModelError::Read {
            path: path.display().to_string(),
            detail: e.to_string(),
        })?;
        let found = sha256_hex(&bytes);
        if &found != expected {
            return Err(ModelError::WrongFile {
                path: path.display().to_string(),
                expected: expected.clone(),
                found,
            });
        }
        let mut builder = Session::builder(env)
            .map_err(session_err)?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(session_err)?;
        if options.threads > 0 {
            builder = builder
                .with_intra_threads(options.threads)
                .map_err(session_err)?;
        }
        let mut device = Device::Cpu;
        if cuda {
            let mut providers = Vec::new();
            if options.tensorrt {
                providers.push(
                    ep::TensorRT::default()
                        .with_fp16(precision == Precision::Fp16)
                        .build()
                        .error_on_failure(),
                );
                device = Device::TensorRt;
            } else {
                device = Device::Cuda;
            }
            providers.push(ep::CUDA::default().build().error_on_failure());
            builder = builder
                .with_execution_providers(providers)
                .map_err(|e| ModelError::CudaUnavailable(e.to_string()))?;
        }
        let session = builder.commit_from_memory(&bytes).map_err(session_err)?;
        Ok(Self {
            session,
            device,
            precision,
            manifest: manifest.clone(),
        })
    }

    /// One logit per pair, in order. Pairs are padded to the longest.
    pub fn score(&mut self, pairs: &[&EncodedPair]) -> Result<Vec<f32>, ModelError> {
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        let width = pairs.iter().map(|p| p.ids.len()).max().unwrap_or(0);
        let mut ids = Array2::<i64>::zeros((pairs.len(), width));
        let mut mask = Array2::<i64>::zeros((pairs.len(), width));
        let mut types = Array2::<i64>::zeros((pairs.len(), width));
        for (row, pair) in pairs.iter().enumerate() {
            for (col, (&id, &t)) in pair.ids.iter().zip(&pair.type_ids).enumerate() {
                ids[[row, col]] = i64::from(id);
                types[[row, col]] = i64::from(t);
                mask[[row, col]] = 1;
            }
        }
        let r = |e: ort::Error| ModelError::Run(e.to_string());
        let outputs = self
            .session
            .run(ort::inputs![
                "input_ids" => TensorRef::from_array_view(&ids).map_err(r)?,
                "attention_mask" => TensorRef::from_array_view(&mask).map_err(r)?,
                "token_type_ids" => TensorRef::from_array_view(&types).map_err(r)?,
            ])
            .map_err(r)?;
        let logits = outputs["logits"].try_extract_array::<f32>().map_err(r)?;
        if logits.len() != pairs.len() {
            return Err(ModelError::Run(format!(
                "expected {} logits, got shape {:?}",
                pairs.len(),
                logits.shape()
            )));
        }
        Ok(logits.iter().copied().collect())
    }
}

impl Scorer for CrossEncoder {
    /// The call runs to its end: ONNX Runtime cannot be interrupted, and a
    /// batch is cut small enough (`--max-batch-tokens`) to finish soon.
    fn score(&mut self, pairs: &[&EncodedPair], _: Instant) -> Result<Vec<f32>, ScoreError> {
        CrossEncoder::score(self, pairs).map_err(|e| ScoreError::Failed(e.to_string()))
    }

    fn warm_up(&mut self, token_cap: usize) -> Result<(), ScoreError> {
        for &(batch, len) in &[(1, 16), (8, 64), (32, token_cap.min(128)), (4, token_cap)] {
            let pair = EncodedPair::synthetic(len);
            let pairs: Vec<&EncodedPair> = std::iter::repeat_n(&pair, batch).collect();
            CrossEncoder::score(self, &pairs).map_err(|e| ScoreError::Failed(e.to_string()))?;
        }
        Ok(())
    }
}
