//! The backend's second opinion: a larger frozen sentence encoder
//! (all-mpnet-base-v2) with a linear head per bundle, trained on the
//! bundle's own labelled e-mails by `mailsort second-opinion`. The backend
//! embeds each forwarded e-mail's text with that encoder, and the head's
//! probabilities over the edge's candidates join the fusion
//! ([`crate::fusion`]) beside the edge's and the cross-encoder's.
//!
//! The head is stored beside its bundle (`x.msb` → `x.second-opinion.json`)
//! and names both the bundle and the encoder it was trained for, so the
//! backend refuses one that belongs to something else.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::bundle::LinearHead;

/// Tokens of an e-mail's text the second opinion reads ([CLS] and [SEP]
/// included). Heads are trained and served at this length.
pub const TOKEN_CAP: usize = 256;

/// `manifest.json` of a prepared second-opinion folder
/// (`scripts/models/second-opinion.sh`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecondOpinionManifest {
    pub name: String,
    pub source: String,
    /// SHA-256 of `model.onnx`.
    pub fp32_sha256: String,
    pub tokenizer_sha256: String,
    pub dim: usize,
    /// Minimum cosine of the export against PyTorch on the check sentences.
    pub verify_min_cosine: f32,
}

/// The encoder a head was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncoderRef {
    pub name: String,
    /// SHA-256 of its ONNX file.
    pub sha256: String,
}

/// What training measured, for the file's reader.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HeadReport {
    /// Training e-mails the head learnt from.
    pub examples: usize,
    /// Accuracy of the head alone on the tenth of the training e-mails held
    /// out (none with fewer than 200 e-mails).
    pub holdout_accuracy: Option<f32>,
}

/// Where a bundle's second-opinion head sits, where the backend looks for
/// it: `x.msb` → `x.second-opinion.json`.
pub fn head_path(bundle: &Path) -> PathBuf {
    bundle.with_extension("second-opinion.json")
}

/// A bundle's second-opinion head (`<bundle>.second-opinion.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecondOpinionFile {
    /// The bundle's id (SHA-256 of its payload).
    pub bundle_id: String,
    pub encoder: EncoderRef,
    /// Tokens of the e-mail's text the encoder reads.
    pub token_cap: usize,
    pub head: LinearHead,
    pub report: HeadReport,
}

/// Why a second-opinion file cannot serve a bundle.
#[derive(Debug, Error)]
pub enum SecondOpinionError {
    #[error(
        "it was trained for bundle {fitted}, not this bundle ({served}); rerun `mailsort second-opinion` for this bundle"
    )]
    Bundle { fitted: String, served: String },
    #[error(
        "it was trained on encoder {name} (sha256 {fitted}), not the one served (sha256 {served}); rerun `mailsort second-opinion` with this encoder"
    )]
    Encoder {
        name: String,
        fitted: String,
        served: String,
    },
    #[error("its head is malformed: {0}")]
    Head(String),
}

impl SecondOpinionFile {
    /// Refuses a file made for another bundle or encoder, or a head whose
    /// shape or values cannot be served.
    pub fn check(
        &self,
        bundle_id: &str,
        encoder_sha256: &str,
        dim: usize,
    ) -> Result<(), SecondOpinionError> {
        if self.token_cap != TOKEN_CAP {
            return Err(SecondOpinionError::Head(format!(
                "trained at {} tokens, served at {TOKEN_CAP}",
                self.token_cap
            )));
        }
        if self.bundle_id != bundle_id {
            return Err(SecondOpinionError::Bundle {
                fitted: short(&self.bundle_id),
                served: short(bundle_id),
            });
        }
        if self.encoder.sha256 != encoder_sha256 {
            return Err(SecondOpinionError::Encoder {
                name: self.encoder.name.clone(),
                fitted: short(&self.encoder.sha256),
                served: short(encoder_sha256),
            });
        }
        let h = &self.head;
        if h.dim != dim {
            return Err(SecondOpinionError::Head(format!(
                "{} dimensions, the encoder gives {dim}",
                h.dim
            )));
        }
        if h.labels.is_empty()
            || h.weights.len() != h.labels.len() * h.dim
            || h.bias.len() != h.labels.len()
        {
            return Err(SecondOpinionError::Head(format!(
                "{} labels, {} weights, {} biases for {} dimensions",
                h.labels.len(),
                h.weights.len(),
                h.bias.len(),
                h.dim
            )));
        }
        let finite = h.weights.iter().chain(&h.bias).all(|v| v.is_finite());
        if !(finite && h.temperature.is_finite() && h.temperature > 0.0) {
            return Err(SecondOpinionError::Head(
                "non-finite weights or temperature".into(),
            ));
        }
        Ok(())
    }

    /// The head's probabilities for `embedding`, renormalised over
    /// `candidates` (in their order). A candidate the head never learnt
    /// gets a probability near zero.
    pub fn over_candidates(&self, embedding: &[f32], candidates: &[&str]) -> Vec<f32> {
        let logits = self.head.logits(embedding);
        let t = self.head.temperature.max(1e-3);
        let picked: Vec<f32> = candidates
            .iter()
            .map(|c| {
                self.head
                    .labels
                    .iter()
                    .position(|l| l == c)
                    .map_or(f32::NEG_INFINITY, |i| logits[i] / t)
            })
            .collect();
        if picked.iter().all(|l| !l.is_finite()) {
            return vec![1.0 / candidates.len().max(1) as f32; candidates.len()];
        }
        crate::bundle::softmax(&picked, 1.0)
    }
}

fn short(id: &str) -> String {
    id.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> SecondOpinionFile {
        SecondOpinionFile {
            bundle_id: "b".repeat(64),
            encoder: EncoderRef {
                name: "all-mpnet-base-v2".into(),
                sha256: "e".repeat(64),
            },
            token_cap: TOKEN_CAP,
            head: LinearHead {
                labels: vec!["a".into(), "b".into(), "c".into()],
                dim: 2,
                weights: vec![1.0, 0.0, 0.0, 1.0, -1.0, -1.0],
                bias: vec![0.0; 3],
                temperature: 1.0,
            },
            report: HeadReport::default(),
        }
    }

    #[test]
    fn probabilities_are_renormalised_over_the_candidates_in_their_order() {
        let f = file();
        let p = f.over_candidates(&[2.0, 0.0], &["b", "a"]);
        assert_eq!(p.len(), 2);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(p[1] > p[0], "{p:?}");
        let unknown = f.over_candidates(&[2.0, 0.0], &["a", "zzz"]);
        assert!(unknown[1] < 1e-6, "{unknown:?}");
    }

    #[test]
    fn a_file_for_another_bundle_encoder_or_shape_is_refused() {
        let f = file();
        assert!(f.check(&"b".repeat(64), &"e".repeat(64), 2).is_ok());
        let e = f.check(&"c".repeat(64), &"e".repeat(64), 2).unwrap_err();
        assert!(e.to_string().contains("not this bundle"), "{e}");
        let e = f.check(&"b".repeat(64), &"f".repeat(64), 2).unwrap_err();
        assert!(e.to_string().contains("all-mpnet-base-v2"), "{e}");
        let e = f.check(&"b".repeat(64), &"e".repeat(64), 768).unwrap_err();
        assert!(e.to_string().contains("768"), "{e}");
        let mut bad = file();
        bad.head.weights[0] = f32::NAN;
        assert!(bad.check(&"b".repeat(64), &"e".repeat(64), 2).is_err());
    }
}
