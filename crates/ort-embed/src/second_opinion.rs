//! The backend's second-opinion encoder (all-mpnet-base-v2 by default),
//! loaded from the folder `scripts/models/second-opinion.sh` prepares:
//! `model.onnx`, `tokenizer.json` and `manifest.json`, each file checked
//! against the manifest's SHA-256 before it is used.

use std::fs;
use std::path::{Path, PathBuf};

use mailsort_edge::{EmbedError, Embedder};
use mailsort_shared::digest::sha256_hex;
use mailsort_shared::second_opinion::{EncoderRef, SecondOpinionManifest, TOKEN_CAP};
use thiserror::Error;

use crate::encoder::{OrtEncoder, OrtError, init};

/// Why the second-opinion encoder could not be loaded.
#[derive(Debug, Error)]
pub enum SecondOpinionLoadError {
    #[error(
        "cannot read {path}: {detail}; prepare the folder with scripts/models/second-opinion.sh"
    )]
    Read { path: PathBuf, detail: String },
    #[error("{path}: {detail}")]
    Invalid { path: PathBuf, detail: String },
    #[error("{path} has SHA-256 {found}, the manifest says {expected}: prepare the folder again")]
    Checksum {
        path: PathBuf,
        expected: String,
        found: String,
    },
    #[error(transparent)]
    Ort(#[from] OrtError),
    #[error("the second-opinion encoder: {0}")]
    Embed(#[from] EmbedError),
}

/// A loaded second-opinion encoder.
pub struct SecondOpinionEncoder {
    pub embedder: Embedder,
    /// What heads trained on it name.
    pub encoder: EncoderRef,
}

fn read(path: &Path) -> Result<Vec<u8>, SecondOpinionLoadError> {
    fs::read(path).map_err(|e| SecondOpinionLoadError::Read {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })
}

impl SecondOpinionEncoder {
    /// Loads `dir` on ONNX Runtime (`dylib`: `libonnxruntime.so`), with
    /// `sessions` sessions of `threads` intra-op threads each.
    pub fn load(
        dir: &Path,
        dylib: &Path,
        sessions: usize,
        threads: usize,
    ) -> Result<Self, SecondOpinionLoadError> {
        let manifest_path = dir.join("manifest.json");
        let manifest: SecondOpinionManifest = serde_json::from_slice(&read(&manifest_path)?)
            .map_err(|e| SecondOpinionLoadError::Invalid {
                path: manifest_path.clone(),
                detail: format!("not a second-opinion manifest: {e}"),
            })?;
        let model = dir.join("model.onnx");
        let tokenizer = dir.join("tokenizer.json");
        let tokenizer_bytes = read(&tokenizer)?;
        for (path, bytes, expected) in [
            (&model, read(&model)?, &manifest.fp32_sha256),
            (
                &tokenizer,
                tokenizer_bytes.clone(),
                &manifest.tokenizer_sha256,
            ),
        ] {
            let found = sha256_hex(&bytes);
            if &found != expected {
                return Err(SecondOpinionLoadError::Checksum {
                    path: path.clone(),
                    expected: expected.clone(),
                    found,
                });
            }
        }
        let tokenizer_json =
            String::from_utf8(tokenizer_bytes).map_err(|e| SecondOpinionLoadError::Invalid {
                path: tokenizer.clone(),
                detail: e.to_string(),
            })?;
        init(dylib)?;
        let encoder = OrtEncoder::new(&model, sessions, threads)?;
        let embedder = Embedder::with_encoder(
            Box::new(encoder),
            format!("ort{}", manifest.fp32_sha256),
            &tokenizer_json,
            TOKEN_CAP,
        )?;
        if embedder.dim() != manifest.dim {
            return Err(SecondOpinionLoadError::Invalid {
                path: model,
                detail: format!(
                    "gives {}-d vectors, the manifest says {}",
                    embedder.dim(),
                    manifest.dim
                ),
            });
        }
        Ok(Self {
            embedder,
            encoder: EncoderRef {
                name: manifest.name,
                sha256: manifest.fp32_sha256,
            },
        })
    }
}
