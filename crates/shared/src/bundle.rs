//! The bundle: everything the edge needs to classify, in one versioned file
//! that the CLI, the browser and the Worker all load.
//!
//! Layout: the 8-byte magic `MSBUNDLE`, the format version (u32 little
//! endian), the SHA-256 of the payload (32 bytes), then the payload, a
//! [`Bundle`] in postcard encoding. The model itself is not inside: the
//! bundle names it by SHA-256, and loaders refuse any other model file.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::clean::CleanConfig;
use crate::gate::GateConfig;
use crate::taxonomy::Taxonomy;

/// First bytes of every bundle file.
pub const MAGIC: &[u8; 8] = b"MSBUNDLE";
/// Bumped whenever the payload layout changes.
pub const FORMAT_VERSION: u32 = 2;
/// The range a head's softmax temperature may take.
pub const MIN_TEMPERATURE: f32 = 1e-3;
pub const MAX_TEMPERATURE: f32 = 100.0;
/// The largest head weight or bias a bundle may hold (trained ones are
/// near 1).
pub const MAX_WEIGHT: f32 = 1e4;

/// The encoder a bundle was built with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRef {
    /// Human name, e.g. `all-MiniLM-L6-v2 (int8 weight-only)`.
    pub name: String,
    /// SHA-256 (hex) of the ONNX file the label vectors were made with.
    pub onnx_sha256: String,
    /// Embedding width.
    pub dim: usize,
    /// The tokenizer, `tokenizer.json` text, configured for dynamic padding.
    pub tokenizer_json: String,
}

/// Multinomial logistic regression over the (L2-normalised) embedding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearHead {
    /// Label ids, in the order of the rows of `weights`.
    pub labels: Vec<String>,
    pub dim: usize,
    /// `labels.len() × dim`, row-major.
    pub weights: Vec<f32>,
    pub bias: Vec<f32>,
    /// Logits are divided by this before the softmax (temperature scaling).
    pub temperature: f32,
}

impl LinearHead {
    /// Raw scores (before temperature) for one embedding, in `labels` order.
    pub fn logits(&self, embedding: &[f32]) -> Vec<f32> {
        self.weights
            .chunks_exact(self.dim)
            .zip(&self.bias)
            .map(|(row, b)| row.iter().zip(embedding).map(|(w, x)| w * x).sum::<f32>() + b)
            .collect()
    }

    /// Calibrated probabilities for one embedding, in `labels` order.
    pub fn probabilities(&self, embedding: &[f32]) -> Vec<f32> {
        softmax(&self.logits(embedding), self.temperature)
    }
}

/// Softmax of `logits / temperature`.
pub fn softmax(logits: &[f32], temperature: f32) -> Vec<f32> {
    let t = if temperature > 0.0 { temperature } else { 1.0 };
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = logits.iter().map(|l| ((l - max) / t).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

/// Labelled e-mail embeddings for nearest-neighbour evidence, stored as int8
/// with one scale per vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exemplars {
    pub dim: usize,
    /// Index into [`LinearHead::labels`] for each vector.
    pub label_index: Vec<u32>,
    pub scales: Vec<f32>,
    pub vectors: Vec<i8>,
    /// Neighbours consulted.
    pub k: usize,
    /// Weight of the kNN label distribution when mixed with the head's.
    pub weight: f32,
}

impl Exemplars {
    /// Quantises unit vectors to int8.
    pub fn from_vectors(
        dim: usize,
        vectors: &[Vec<f32>],
        label_index: Vec<u32>,
        k: usize,
        weight: f32,
    ) -> Self {
        let mut scales = Vec::with_capacity(vectors.len());
        let mut q = Vec::with_capacity(vectors.len() * dim);
        for v in vectors {
            let max = v.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-12);
            let s = max / 127.0;
            scales.push(s);
            q.extend(v.iter().map(|x| (x / s).round().clamp(-127.0, 127.0) as i8));
        }
        Self {
            dim,
            label_index,
            scales,
            vectors: q,
            k,
            weight,
        }
    }

    /// Number of stored vectors.
    pub fn len(&self) -> usize {
        self.scales.len()
    }

    /// True when there are no vectors.
    pub fn is_empty(&self) -> bool {
        self.scales.is_empty()
    }

    /// Vector `i`, dequantised.
    pub fn vector(&self, i: usize) -> Vec<f32> {
        let s = self.scales[i];
        self.vectors[i * self.dim..(i + 1) * self.dim]
            .iter()
            .map(|&q| q as f32 * s)
            .collect()
    }
}

/// Numbers measured when the bundle was built or calibrated.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildReport {
    pub train_examples: usize,
    pub dev_examples: usize,
    /// Dev accuracy of the head alone, the exemplars alone, and the mix shipped.
    pub dev_accuracy_head: Option<f32>,
    pub dev_accuracy_knn: Option<f32>,
    pub dev_accuracy_shipped: Option<f32>,
    /// Forwarded share and edge accuracy on the calibration split.
    pub calibrated_forward_rate: Option<f32>,
    pub calibrated_edge_accuracy: Option<f32>,
}

/// Everything the edge needs to classify.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bundle {
    /// Content id: the SHA-256 (hex) of the payload, set when encoding.
    #[serde(skip)]
    pub id: String,
    pub created_by: String,
    pub model: ModelRef,
    pub clean: CleanConfig,
    pub taxonomy: Taxonomy,
    pub head: LinearHead,
    pub exemplars: Option<Exemplars>,
    pub gate: GateConfig,
    pub report: BuildReport,
}

/// Version 1 files: the same payload before the gate could keep kinds of
/// e-mail at the edge (`GateConfig::keep_at_edge`). Postcard is not
/// self-describing, so they are read through these copies of the old
/// structs and converted with nothing kept.
mod v1 {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Serialize};

    use super::{BuildReport, Exemplars, LinearHead, ModelRef};
    use crate::clean::CleanConfig;
    use crate::gate::GateConfig;
    use crate::taxonomy::Taxonomy;

    pub const VERSION: u32 = 1;

    #[derive(Serialize, Deserialize)]
    pub struct Bundle {
        pub created_by: String,
        pub model: ModelRef,
        pub clean: CleanConfig,
        pub taxonomy: Taxonomy,
        pub head: LinearHead,
        pub exemplars: Option<Exemplars>,
        pub gate: Gate,
        pub report: BuildReport,
    }

    #[derive(Serialize, Deserialize)]
    pub struct Gate {
        pub top_k: usize,
        pub margin_threshold: f32,
        pub per_label: BTreeMap<String, f32>,
        pub confusable_threshold: f32,
        pub confusable_pairs: Vec<(String, String)>,
        pub siblings_confusable: bool,
    }

    impl From<Bundle> for super::Bundle {
        fn from(b: Bundle) -> Self {
            let g = b.gate;
            Self {
                id: String::new(),
                created_by: b.created_by,
                model: b.model,
                clean: b.clean,
                taxonomy: b.taxonomy,
                head: b.head,
                exemplars: b.exemplars,
                gate: GateConfig {
                    top_k: g.top_k,
                    margin_threshold: g.margin_threshold,
                    per_label: g.per_label,
                    confusable_threshold: g.confusable_threshold,
                    confusable_pairs: g.confusable_pairs,
                    siblings_confusable: g.siblings_confusable,
                    keep_at_edge: Vec::new(),
                },
                report: b.report,
            }
        }
    }
}

/// Why a bundle file could not be read or written.
#[derive(Debug, Error)]
pub enum BundleError {
    #[error("not a mailsort bundle (the file does not start with MSBUNDLE)")]
    NotABundle,
    #[error(
        "bundle format version {found} is not supported (this build reads versions 1 to {FORMAT_VERSION}); rebuild it with `mailsort build`"
    )]
    Version { found: u32 },
    #[error("bundle is corrupt: its checksum does not match its content")]
    Checksum,
    #[error("bundle payload cannot be decoded: {0}")]
    Decode(String),
    #[error("bundle cannot be encoded: {0}")]
    Encode(String),
    #[error("bundle is inconsistent: {0}")]
    Invalid(String),
}

impl Bundle {
    /// Serialises to the file layout described in the module docs and sets `id`.
    pub fn encode(&mut self) -> Result<Vec<u8>, BundleError> {
        self.validate()?;
        let payload =
            postcard::to_allocvec(self).map_err(|e| BundleError::Encode(e.to_string()))?;
        let digest = Sha256::digest(&payload);
        self.id = hex::encode(digest);
        let mut out = Vec::with_capacity(payload.len() + 44);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&digest);
        out.extend_from_slice(&payload);
        Ok(out)
    }

    /// Reads and checks a bundle file's bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, BundleError> {
        if bytes.len() < 44 || &bytes[..8] != MAGIC {
            return Err(BundleError::NotABundle);
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("slice of 4 bytes"));
        if version != FORMAT_VERSION && version != v1::VERSION {
            return Err(BundleError::Version { found: version });
        }
        let payload = &bytes[44..];
        let digest = Sha256::digest(payload);
        if digest.as_slice() != &bytes[12..44] {
            return Err(BundleError::Checksum);
        }
        let decoded = if version == v1::VERSION {
            postcard::from_bytes::<v1::Bundle>(payload).map(Bundle::from)
        } else {
            postcard::from_bytes(payload)
        };
        // The id stays the digest of the stored payload, so that heads and
        // fusion files made for a version-1 file still match it.
        let mut bundle = decoded.map_err(|e| BundleError::Decode(e.to_string()))?;
        bundle.id = hex::encode(digest);
        bundle.validate()?;
        Ok(bundle)
    }

    /// Checks that sizes agree, every head label is in the taxonomy, and
    /// the cleaning limits are ones the encoder can run with.
    pub fn validate(&self) -> Result<(), BundleError> {
        let h = &self.head;
        let invalid = |m: String| Err(BundleError::Invalid(m));
        // A checksum only proves the file is whole: a cap past the encoder's
        // positions would load, then fail on the first long e-mail.
        if let Err(e) = CleanConfig::with_token_cap(self.clean.token_cap) {
            return invalid(e.to_string());
        }
        if self.clean.max_message_bytes == 0 {
            return invalid("the largest message it accepts is 0 bytes".into());
        }
        if h.labels.is_empty() {
            return invalid("the head has no labels".into());
        }
        if h.dim != self.model.dim
            || h.weights.len() != h.labels.len() * h.dim
            || h.bias.len() != h.labels.len()
        {
            return invalid(format!(
                "head shape {}x{} (weights {}, bias {}) does not match model width {}",
                h.labels.len(),
                h.dim,
                h.weights.len(),
                h.bias.len(),
                self.model.dim
            ));
        }
        if let Some(l) = h.labels.iter().find(|l| self.taxonomy.get(l).is_none()) {
            return invalid(format!("head label `{l}` is not in the taxonomy"));
        }
        // Within these, logits stay finite for any unit embedding, so the
        // probabilities are always numbers.
        if !(h.temperature.is_finite()
            && (MIN_TEMPERATURE..=MAX_TEMPERATURE).contains(&h.temperature))
        {
            return invalid(format!(
                "head temperature {} is outside [{MIN_TEMPERATURE}, {MAX_TEMPERATURE}]",
                h.temperature
            ));
        }
        if h.weights
            .iter()
            .chain(&h.bias)
            .any(|w| !(w.is_finite() && w.abs() <= MAX_WEIGHT))
        {
            return invalid(format!(
                "a head weight or bias is not a number within ±{MAX_WEIGHT}"
            ));
        }
        if let Err(e) = self.gate.check() {
            return invalid(e);
        }
        if let Some(e) = &self.exemplars {
            let n = e.scales.len();
            if e.dim != h.dim || e.vectors.len() != n * e.dim || e.label_index.len() != n {
                return invalid("exemplar arrays disagree in size".into());
            }
            if e.label_index.iter().any(|&i| i as usize >= h.labels.len()) {
                return invalid("an exemplar points to a label the head does not have".into());
            }
            if !(e.weight.is_finite() && (0.0..=1.0).contains(&e.weight)) || e.k == 0 {
                return invalid(format!(
                    "exemplar weight {} (must be in [0, 1]) or k {} (must be 1 or more)",
                    e.weight, e.k
                ));
            }
            if e.scales.iter().any(|s| !(s.is_finite() && *s >= 0.0)) {
                return invalid("an exemplar scale is not a finite number ≥ 0".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn tiny() -> Bundle {
        Bundle {
            id: String::new(),
            created_by: "test".into(),
            model: ModelRef {
                name: "m".into(),
                onnx_sha256: "00".into(),
                dim: 2,
                tokenizer_json: "{}".into(),
            },
            clean: CleanConfig::default(),
            taxonomy: Taxonomy::from_training_labels([("a", None), ("b", None)]).unwrap(),
            head: LinearHead {
                labels: vec!["a".into(), "b".into()],
                dim: 2,
                weights: vec![1.0, 0.0, 0.0, 1.0],
                bias: vec![0.0, 0.0],
                temperature: 1.0,
            },
            exemplars: Some(Exemplars::from_vectors(
                2,
                &[vec![1.0, 0.0]],
                vec![0],
                1,
                0.5,
            )),
            gate: GateConfig::default(),
            report: BuildReport::default(),
        }
    }

    #[test]
    fn round_trip_and_corruption() {
        let mut b = tiny();
        let bytes = b.encode().unwrap();
        let back = Bundle::decode(&bytes).unwrap();
        assert_eq!(back, b);
        assert_eq!(back.id.len(), 64);

        let mut bad = bytes.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(matches!(Bundle::decode(&bad), Err(BundleError::Checksum)));
        // A version-1 file (the gate without kept kinds) still reads, with
        // the id of its own payload; other versions are refused by number.
        let old = v1::Bundle {
            created_by: b.created_by.clone(),
            model: b.model.clone(),
            clean: b.clean,
            taxonomy: b.taxonomy.clone(),
            head: b.head.clone(),
            exemplars: b.exemplars.clone(),
            gate: v1::Gate {
                top_k: b.gate.top_k,
                margin_threshold: b.gate.margin_threshold,
                per_label: b.gate.per_label.clone(),
                confusable_threshold: b.gate.confusable_threshold,
                confusable_pairs: b.gate.confusable_pairs.clone(),
                siblings_confusable: b.gate.siblings_confusable,
            },
            report: b.report.clone(),
        };
        let payload = postcard::to_allocvec(&old).unwrap();
        let mut v1_bytes = MAGIC.to_vec();
        v1_bytes.extend_from_slice(&1u32.to_le_bytes());
        v1_bytes.extend_from_slice(&Sha256::digest(&payload));
        v1_bytes.extend_from_slice(&payload);
        let read = Bundle::decode(&v1_bytes).unwrap();
        assert_eq!(read.id, hex::encode(Sha256::digest(&payload)));
        assert_eq!(
            Bundle {
                id: b.id.clone(),
                ..read
            },
            b
        );
        for other in [0u8, 3] {
            let mut v = bytes.clone();
            v[8] = other;
            assert!(matches!(
                Bundle::decode(&v),
                Err(BundleError::Version { found }) if found == u32::from(other)
            ));
        }
        assert!(matches!(
            Bundle::decode(b"{\"json\": true}"),
            Err(BundleError::NotABundle)
        ));
    }

    #[test]
    fn inconsistent_bundles_are_refused() {
        let mut b = tiny();
        b.head.labels[1] = "zzz".into();
        assert!(matches!(b.encode(), Err(BundleError::Invalid(_))));
        let mut b = tiny();
        b.head.bias.pop();
        assert!(matches!(b.encode(), Err(BundleError::Invalid(_))));
    }

    /// Encoded by hand, unchecked: a bundle edited with its checksum
    /// recomputed.
    fn edited(b: &Bundle) -> Vec<u8> {
        let payload = postcard::to_allocvec(b).unwrap();
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&Sha256::digest(&payload));
        bytes.extend_from_slice(&payload);
        bytes
    }

    #[test]
    fn a_token_cap_the_encoder_cannot_run_is_refused_at_load() {
        let mut b = tiny();
        b.clean.token_cap = 100_000;
        match Bundle::decode(&edited(&b)) {
            Err(BundleError::Invalid(m)) => assert!(m.contains("token cap 100000"), "{m}"),
            other => panic!("loaded: {other:?}"),
        }
        b.clean.token_cap = 512;
        assert!(b.encode().is_ok());
    }

    #[test]
    fn values_out_of_range_are_refused_at_load() {
        let refused = |f: &dyn Fn(&mut Bundle), says: &str| {
            let mut b = tiny();
            f(&mut b);
            match Bundle::decode(&edited(&b)) {
                Err(BundleError::Invalid(m)) => assert!(m.contains(says), "{m:?} lacks {says:?}"),
                other => panic!("loaded: {other:?}"),
            }
        };
        refused(&|b| b.head.temperature = 0.0, "head temperature 0");
        refused(&|b| b.head.temperature = f32::NAN, "head temperature NaN");
        refused(&|b| b.head.weights[0] = f32::INFINITY, "head weight");
        refused(&|b| b.head.bias[1] = 1e30, "head weight or bias");
        refused(&|b| b.gate.margin_threshold = 2.0, "margin threshold 2");
        refused(&|b| b.gate.top_k = 0, "top_k 0");
        refused(
            &|b| b.exemplars.as_mut().unwrap().weight = -1.0,
            "exemplar weight -1",
        );
        refused(
            &|b| b.exemplars.as_mut().unwrap().scales[0] = f32::NAN,
            "exemplar scale",
        );
    }

    #[test]
    fn head_probabilities_sum_to_one_and_respect_temperature() {
        let b = tiny();
        let p = b.head.probabilities(&[1.0, 0.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(p[0] > p[1]);
        let hot = softmax(&[1.0, 0.0], 10.0);
        assert!(hot[0] - hot[1] < p[0] - p[1]);
    }
}
