//! The native edge on the engine the user chose ([`EdgeEngine`]): the file
//! it runs, checked against the model folder's manifest and the bundle, on
//! tract or ONNX Runtime.
//!
//! A bundle's label vectors come from `model_int8.onnx` on tract. The other
//! engines run files built from the same weights in the same folder (and
//! verified against FP32 when it was prepared), so a bundle serves on any
//! of them once its encoder is the folder's.

use std::fs;
use std::path::{Path, PathBuf};

use mailsort_edge::{EdgeClassifier, EdgeError, EmbedError, Embedder, TractEncoder};
use mailsort_shared::bundle::Bundle;
use mailsort_shared::digest::sha256_hex;
use mailsort_shared::manifest::{EdgeEngine, ManifestError, ModelDir};
use thiserror::Error;

use crate::ort_encoder::{self, OrtEncoder, OrtError};

/// Why the chosen engine cannot serve the bundle.
#[derive(Debug, Error)]
pub enum EngineError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(
        "the bundle was built with encoder sha256 {bundle}, but {folder} prepares {manifest}: use the model folder the bundle was built with"
    )]
    OtherEncoder {
        bundle: String,
        folder: String,
        manifest: String,
    },
    #[error(
        "{file} is not in this model folder (prepared before the {engine} engine existed): run `mailsort models fetch --force`"
    )]
    NotPrepared { engine: EdgeEngine, file: String },
    #[error(
        "{file} has sha256 {found}, not the manifest's {expected}: run `mailsort models fetch --force`"
    )]
    Checksum {
        file: String,
        expected: String,
        found: String,
    },
    #[error("cannot read the encoder {file}: {detail}; run `mailsort models fetch` first")]
    Read { file: String, detail: String },
    #[error(
        "the onnxruntime-int8 engine needs libonnxruntime.so: pass --ort-lib or set ORT_DYLIB_PATH (scripts/lib.sh does)"
    )]
    NoOrtLib,
    #[error(transparent)]
    Ort(#[from] OrtError),
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error(transparent)]
    Edge(#[from] EdgeError),
}

/// How the native edge embeds.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub engine: EdgeEngine,
    /// `libonnxruntime.so`, for [`EdgeEngine::OnnxRuntimeInt8`].
    pub ort_lib: Option<PathBuf>,
    /// Embedding threads that will call the encoder at once (ONNX Runtime
    /// gets one single-threaded session per thread).
    pub threads: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            engine: EdgeEngine::Tract,
            ort_lib: None,
            threads: 1,
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, EngineError> {
    fs::read(path).map_err(|e| EngineError::Read {
        file: path.display().to_string(),
        detail: e.to_string(),
    })
}

/// The bundle with its encoder on `options.engine`.
pub fn load_classifier(
    bundle: Bundle,
    dir: &ModelDir,
    options: &EngineOptions,
) -> Result<EdgeClassifier, EngineError> {
    if options.engine == EdgeEngine::Tract {
        // The bundle's own file: no manifest needed, the SHA-256 says it all.
        return Ok(EdgeClassifier::new(bundle, &read(&dir.int8())?)?);
    }
    let embedder = load_embedder(
        dir,
        &bundle.model.onnx_sha256,
        &bundle.model.tokenizer_json,
        bundle.clean.token_cap,
        options,
    )?;
    Ok(EdgeClassifier::with_embedder(bundle, embedder)?)
}

/// The encoder on `options.engine`, for a bundle whose label vectors came
/// from the encoder with SHA-256 `bundle_sha256`.
pub fn load_embedder(
    dir: &ModelDir,
    bundle_sha256: &str,
    tokenizer_json: &str,
    token_cap: usize,
    options: &EngineOptions,
) -> Result<Embedder, EngineError> {
    let engine = options.engine;
    let manifest = dir.read_manifest()?;
    if manifest.int8_sha256 != bundle_sha256 {
        return Err(EngineError::OtherEncoder {
            bundle: bundle_sha256.into(),
            folder: dir.0.display().to_string(),
            manifest: manifest.int8_sha256,
        });
    }
    let path = engine.file(dir);
    let expected = engine
        .expected_sha256(&manifest)
        .ok_or_else(|| EngineError::NotPrepared {
            engine,
            file: path.display().to_string(),
        })?;
    let bytes = read(&path)?;
    let found = sha256_hex(&bytes);
    if found != expected {
        return Err(EngineError::Checksum {
            file: path.display().to_string(),
            expected: expected.into(),
            found,
        });
    }
    let (encoder, model_id): (Box<dyn mailsort_edge::Encoder>, String) = match engine {
        EdgeEngine::Tract | EdgeEngine::TractW8a8 => (Box::new(TractEncoder::new(&bytes)?), found),
        EdgeEngine::OnnxRuntimeInt8 => {
            let lib = options.ort_lib.as_deref().ok_or(EngineError::NoOrtLib)?;
            ort_encoder::init(lib)?;
            let encoder = OrtEncoder::new(&path, options.threads, 1)?;
            (Box::new(encoder), format!("ort{found}"))
        }
    };
    Ok(Embedder::with_encoder(
        encoder,
        model_id,
        tokenizer_json,
        token_cap,
    )?)
}
