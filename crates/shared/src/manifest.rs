//! The layout of a prepared model folder and the manifest that describes it:
//! the edge's sentence encoder (`mailsort models fetch`) and the backend's
//! cross-encoder (`mailsort models reranker`). Writers live in
//! `mailsort-offline`; every reader (CLI, backend) comes here.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why a manifest could not be read.
#[derive(Debug, Error)]
pub enum ManifestError {
    #[error("{path} ({detail}); run `{writer}` first")]
    Missing {
        path: String,
        detail: String,
        writer: &'static str,
    },
    #[error("invalid model: {path}: {detail}")]
    Invalid { path: String, detail: String },
}

/// Where a prepared sentence encoder lives.
#[derive(Debug, Clone)]
pub struct ModelDir(pub PathBuf);

impl ModelDir {
    /// The INT8-weight encoder the edge runs.
    pub fn int8(&self) -> PathBuf {
        self.0.join("model_int8.onnx")
    }
    /// The same INT8 weights computing in INT8 (int8 activations, one
    /// scale per token), for the `tract-w8a8` engine.
    pub fn w8a8(&self) -> PathBuf {
        self.0.join("model_w8a8.onnx")
    }
    /// ONNX Runtime's dynamic-INT8 quantisation of the FP32 encoder, for the
    /// `onnxruntime-int8` engine.
    pub fn ort_int8(&self) -> PathBuf {
        self.0.join("model_ort_int8.onnx")
    }
    /// The FP32 encoder INT8 is verified against.
    pub fn fp32(&self) -> PathBuf {
        self.0.join("model_fp32.onnx")
    }
    pub fn tokenizer(&self) -> PathBuf {
        self.0.join("tokenizer.json")
    }
    pub fn manifest(&self) -> PathBuf {
        self.0.join("manifest.json")
    }
    /// Reads the manifest written by `mailsort models fetch`.
    pub fn read_manifest(&self) -> Result<EncoderManifest, ManifestError> {
        read_manifest(&self.manifest(), "mailsort models fetch")
    }
}

/// Where a prepared reranker (cross-encoder) lives.
#[derive(Debug, Clone)]
pub struct RerankerDir(pub PathBuf);

impl RerankerDir {
    pub fn fp32(&self) -> PathBuf {
        self.0.join("model_fp32.onnx")
    }
    pub fn fp16(&self) -> PathBuf {
        self.0.join("model_fp16.onnx")
    }
    pub fn tokenizer(&self) -> PathBuf {
        self.0.join("tokenizer.json")
    }
    pub fn manifest(&self) -> PathBuf {
        self.0.join("manifest.json")
    }
    /// Reads the manifest written by `mailsort models reranker`, and checks
    /// that its fusion values are ones a trainer could have written.
    pub fn read_manifest(&self) -> Result<RerankerManifest, ManifestError> {
        let manifest: RerankerManifest =
            read_manifest(&self.manifest(), "mailsort models reranker")?;
        manifest.check().map_err(|detail| ManifestError::Invalid {
            path: self.manifest().display().to_string(),
            detail,
        })?;
        Ok(manifest)
    }
}

/// Reads a JSON manifest; a missing one names the command that writes it.
pub fn read_manifest<T: serde::de::DeserializeOwned>(
    path: &Path,
    writer: &'static str,
) -> Result<T, ManifestError> {
    let text = fs::read_to_string(path).map_err(|e| ManifestError::Missing {
        path: path.display().to_string(),
        detail: e.to_string(),
        writer,
    })?;
    serde_json::from_str(&text).map_err(|e| ManifestError::Invalid {
        path: path.display().to_string(),
        detail: e.to_string(),
    })
}

/// What `models reranker` recorded about a prepared cross-encoder, and how
/// its scores are turned into probabilities.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RerankerManifest {
    pub name: String,
    pub source: String,
    /// False when the checkpoint had no classifier and the head is a
    /// fixed-seed random projection: the scores then carry no meaning.
    pub trained: bool,
    pub fp32_sha256: String,
    pub fp16_sha256: String,
    pub tokenizer_sha256: String,
    /// Largest |FP16 − FP32| logit on the check pairs.
    pub fp16_max_abs_diff: f32,
    /// Softmax temperature over one e-mail's candidate scores.
    pub temperature: f32,
    /// Weight of the edge's log-probabilities when fused with the
    /// reranker's (0 = reranker alone).
    pub edge_weight: f32,
    /// Label examples the reranker was trained to read after each label's
    /// description (`Label::rerank_text`); 0 for rerankers from before
    /// examples existed.
    #[serde(default)]
    pub label_examples: usize,
    /// Tokens per (e-mail, label) pair the reranker was trained at; the
    /// backend cuts pairs there unless told otherwise, since serving longer
    /// pairs than it learnt on measurably hurt (docs/results.md). `None`
    /// for rerankers prepared before the trainer recorded it.
    #[serde(default)]
    pub max_tokens: Option<u16>,
    /// FP32 logits on a few fixed pairs, for checking that a remote engine
    /// serves this very checkpoint; empty for folders prepared before.
    #[serde(default)]
    pub probe: Vec<ProbePair>,
}

/// A fixed (e-mail, label) pair and the logit the reranker gives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbePair {
    pub email: String,
    pub label: String,
    pub logit: f32,
}

/// The largest temperature or edge weight a manifest may hold. Fitted
/// values are near 1; far beyond that, scores or the edge swamp the other.
pub const MAX_FUSION_VALUE: f32 = 100.0;

impl RerankerManifest {
    /// Range checks of the fusion values: temperature in (0, 100], edge
    /// weight in [0, 100], both finite.
    pub fn check(&self) -> Result<(), String> {
        let t = self.temperature;
        if !(t.is_finite() && t > 0.0 && t <= MAX_FUSION_VALUE) {
            return Err(format!(
                "temperature {t} is outside (0, {MAX_FUSION_VALUE}]"
            ));
        }
        let w = self.edge_weight;
        if !(w.is_finite() && (0.0..=MAX_FUSION_VALUE).contains(&w)) {
            return Err(format!(
                "edge weight {w} is outside [0, {MAX_FUSION_VALUE}]"
            ));
        }
        Ok(())
    }
}

/// What `models fetch` recorded about a prepared sentence encoder.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EncoderManifest {
    pub name: String,
    pub source: String,
    pub int8_sha256: String,
    pub fp32_sha256: String,
    pub tokenizer_sha256: String,
    pub dim: usize,
    pub verify_min_cosine: f32,
    pub verify_mean_cosine: f32,
    /// `model_w8a8.onnx`; absent in folders prepared before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub w8a8_sha256: Option<String>,
    /// W8A8 against FP32, minimum cosine on the check sentences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub w8a8_verify_min_cosine: Option<f32>,
    /// `model_ort_int8.onnx`; absent in folders prepared before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ort_int8_sha256: Option<String>,
    /// ONNX Runtime's dynamic INT8 against FP32, minimum cosine on the
    /// check sentences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ort_int8_verify_min_cosine: Option<f32>,
}

/// Which encoder file the native edge runs, and on which runtime. Bundles
/// learn their labels from `model_int8.onnx` on tract (the only engine in
/// WebAssembly and Workers); the others compute the same encoder in INT8,
/// verified against FP32 when the folder is prepared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EdgeEngine {
    /// `model_int8.onnx` (INT8 weights, FP32 compute) on tract.
    #[default]
    Tract,
    /// `model_w8a8.onnx` (INT8 matmuls, per-token scales) on tract.
    TractW8a8,
    /// `model_ort_int8.onnx` (ONNX Runtime's dynamic INT8) on ONNX Runtime.
    OnnxRuntimeInt8,
}

impl EdgeEngine {
    /// Every engine, by its command-line name.
    pub const ALL: [(&'static str, EdgeEngine); 3] = [
        ("tract", EdgeEngine::Tract),
        ("tract-w8a8", EdgeEngine::TractW8a8),
        ("onnxruntime-int8", EdgeEngine::OnnxRuntimeInt8),
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, e)| *e == self)
            .map(|(n, _)| *n)
            .expect("ALL lists every engine")
    }

    /// The file this engine runs.
    pub fn file(self, dir: &ModelDir) -> PathBuf {
        match self {
            EdgeEngine::Tract => dir.int8(),
            EdgeEngine::TractW8a8 => dir.w8a8(),
            EdgeEngine::OnnxRuntimeInt8 => dir.ort_int8(),
        }
    }

    /// The SHA-256 the manifest records for that file (none in folders
    /// prepared before the file existed).
    pub fn expected_sha256(self, manifest: &EncoderManifest) -> Option<&str> {
        match self {
            EdgeEngine::Tract => Some(&manifest.int8_sha256),
            EdgeEngine::TractW8a8 => manifest.w8a8_sha256.as_deref(),
            EdgeEngine::OnnxRuntimeInt8 => manifest.ort_int8_sha256.as_deref(),
        }
    }
}

impl std::str::FromStr for EdgeEngine {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, e)| *e)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|(n, _)| *n).collect();
                format!("unknown edge engine {s:?}: one of {}", names.join(", "))
            })
    }
}

impl std::fmt::Display for EdgeEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_manifest_names_its_writer() {
        let dir = RerankerDir(PathBuf::from("/nonexistent/mailsort-reranker"));
        let err = dir.read_manifest().expect_err("no such folder");
        assert!(
            err.to_string().contains("mailsort models reranker"),
            "{err}"
        );
    }

    #[test]
    fn fusion_values_out_of_range_are_refused_at_load() {
        let dir = std::env::temp_dir().join(format!("mailsort-manifest-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let write = |temperature: f32, edge_weight: f32| {
            let m = serde_json::json!({
                "name": "r", "source": "s", "trained": true, "fp32_sha256": "", "fp16_sha256": "",
                "tokenizer_sha256": "", "fp16_max_abs_diff": 0.0,
                "temperature": temperature, "edge_weight": edge_weight,
            });
            fs::write(dir.join("manifest.json"), m.to_string()).unwrap();
            RerankerDir(dir.clone()).read_manifest()
        };
        assert!(write(1.5, 0.7).is_ok());
        let err = write(-5.0, 0.7).expect_err("negative temperature");
        assert!(err.to_string().contains("temperature -5"), "{err}");
        let err = write(1.0, 1e30).expect_err("huge edge weight");
        assert!(err.to_string().contains("edge weight"), "{err}");
        assert!(write(0.0, 0.0).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_engine_parses_from_its_name_and_names_its_own_file() {
        let dir = ModelDir(PathBuf::from("m"));
        let mut files = std::collections::HashSet::new();
        for (name, engine) in EdgeEngine::ALL {
            assert_eq!(name.parse::<EdgeEngine>(), Ok(engine));
            assert_eq!(engine.to_string(), name);
            assert!(files.insert(engine.file(&dir)), "{name} shares a file");
        }
        assert_eq!(EdgeEngine::default().file(&dir), dir.int8());
        let err = "onnxruntime".parse::<EdgeEngine>().unwrap_err();
        assert!(err.contains("onnxruntime-int8"), "{err}");
    }

    #[test]
    fn an_encoder_manifest_from_before_the_w8a8_file_still_reads() {
        let old = serde_json::json!({
            "name": "m", "source": "s", "int8_sha256": "a", "fp32_sha256": "b",
            "tokenizer_sha256": "c", "dim": 384, "verify_min_cosine": 0.9995,
            "verify_mean_cosine": 0.9996,
        });
        let mut m: EncoderManifest = serde_json::from_value(old).expect("older manifests parse");
        assert_eq!((&m.w8a8_sha256, m.w8a8_verify_min_cosine), (&None, None));
        assert_eq!(EdgeEngine::OnnxRuntimeInt8.expected_sha256(&m), None);
        m.w8a8_sha256 = Some("d".into());
        let back: EncoderManifest =
            serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(back.w8a8_sha256.as_deref(), Some("d"));
    }
}
