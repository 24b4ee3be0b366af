//! The bundles (taxonomies) a server serves, each with its edge classifier
//! for `/v1/classify`, its label texts for the reranker, and the fusion of
//! scores it uses: its own `<bundle>.fusion.json` (fitted on its dev split
//! by `mailsort calibrate-fusion`) where there is one, else the reranker's.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use mailsort_edge::{EdgeClassifier, IndexChoice};
use mailsort_shared::bundle::Bundle;
use mailsort_shared::digest::sha256_hex;
use mailsort_shared::fusion::{FusionFile, FusionFit, fusion_path};
use mailsort_shared::manifest::{ModelDir, RerankerManifest};
use mailsort_shared::second_opinion::{EncoderRef, SecondOpinionFile, head_path};
use mailsort_shared::types::{Candidate, ForwardReason};
use thiserror::Error;

/// Why a bundle could not be served.
#[derive(Debug, Error)]
pub enum BundleLoadError {
    #[error("cannot read {path}: {detail}")]
    Read { path: PathBuf, detail: String },
    #[error("{path}: {detail}")]
    Invalid { path: PathBuf, detail: String },
    #[error("two bundles are named {0:?}; rename one file")]
    DuplicateName(String),
    #[error("fusion file {path}: {detail}")]
    Fusion { path: PathBuf, detail: String },
    #[error("second-opinion file {path}: {detail}")]
    SecondOpinion { path: PathBuf, detail: String },
}

/// A bundle's second-opinion head as served.
pub struct ServedHead {
    pub file: SecondOpinionFile,
    /// SHA-256 of the file's bytes (fusion files fitted with it name it).
    pub sha256: String,
}

/// The second-opinion encoder the server runs, for checking heads.
#[derive(Debug, Clone)]
pub struct SecondOpinionInfo {
    pub encoder: EncoderRef,
    pub dim: usize,
}

/// How a bundle turns reranker scores and edge probabilities into labels.
#[derive(Debug, Clone)]
pub enum Fusion {
    /// Its own fusion file, fitted on its dev split with this reranker.
    Dev(FusionFile),
    /// The reranker's fusion, fitted on the reranker's training sets.
    RerankerDefault(FusionFit),
}

impl Fusion {
    /// The fit for an e-mail forwarded for `reason`.
    pub fn fit_for(&self, reason: Option<&ForwardReason>) -> FusionFit {
        match self {
            Self::Dev(file) => file.fit_for(reason),
            Self::RerankerDefault(fit) => *fit,
        }
    }

    /// `dev` or `reranker_default`, for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Dev(_) => "dev",
            Self::RerankerDefault(_) => "reranker_default",
        }
    }

    /// One line for `/health` and logs.
    pub fn describe(&self) -> String {
        match self {
            Self::Dev(file) => format!("dev: {}", file.describe()),
            Self::RerankerDefault(fit) => format!(
                "reranker default ({}): no dev calibration for this bundle (mailsort calibrate-fusion)",
                fit.describe()
            ),
        }
    }
}

/// One served bundle.
pub struct LoadedBundle {
    /// File stem, e.g. `support` for `out/support.msb`.
    pub name: String,
    /// The bundle's id (SHA-256 of its payload), what the edge sends.
    pub id: String,
    pub classifier: EdgeClassifier,
    /// Label id → the text the reranker reads (name, description, and as
    /// many examples as the reranker was trained with).
    label_texts: HashMap<String, String>,
    pub fusion: Fusion,
    /// Its second-opinion head, when the server runs the encoder and the
    /// bundle has one.
    pub second_opinion: Option<ServedHead>,
    /// Why it has none, for `/health`.
    no_second_opinion: &'static str,
}

impl LoadedBundle {
    /// The reranker's text for a label of this bundle.
    pub fn label_text(&self, label: &str) -> Option<&str> {
        self.label_texts.get(label).map(String::as_str)
    }

    /// One line for `/health` and logs.
    pub fn describe_second_opinion(&self) -> String {
        match &self.second_opinion {
            Some(h) => format!(
                "{} head ({}), {} labels, trained on {} e-mails{}",
                h.file.encoder.name,
                &h.sha256[..12],
                h.file.head.labels.len(),
                h.file.report.examples,
                h.file
                    .report
                    .holdout_accuracy
                    .map(|a| format!(", {:.2}% right alone on held-out e-mails", 100.0 * a))
                    .unwrap_or_default()
            ),
            None => self.no_second_opinion.to_string(),
        }
    }

    /// The fit for a `/v1/rerank` e-mail with the edge's probabilities
    /// (`labels[i]` has `edge[i]`): its forward reason is what this bundle's
    /// gate thresholds say of those candidates, kinds kept at the edge
    /// included (a client may forward one anyway).
    pub fn fit_for_candidates(&self, labels: &[String], edge: Option<&[f32]>) -> FusionFit {
        let reason = edge.and_then(|probs| {
            let mut candidates: Vec<Candidate> = labels
                .iter()
                .zip(probs)
                .map(|(label, &probability)| Candidate {
                    label: label.clone(),
                    probability,
                })
                .collect();
            candidates.sort_by(|a, b| b.probability.total_cmp(&a.probability));
            let bundle = self.classifier.bundle();
            bundle.gate.forward_reason(&candidates, &bundle.taxonomy)
        });
        self.fusion.fit_for(reason.as_ref())
    }
}

/// All served bundles.
pub struct Bundles {
    bundles: Vec<LoadedBundle>,
}

impl Bundles {
    /// Loads each bundle file with the encoder in `model_dir`, which must be
    /// the one the bundle was built with. The reranker's manifest says how
    /// many examples label texts carry, and which fusion applies where a
    /// bundle has no fusion file of its own; a fusion file made for another
    /// bundle or reranker is refused. With `second` (the second-opinion
    /// encoder served), each bundle's head is loaded and checked.
    pub fn load(
        paths: &[PathBuf],
        model_dir: &Path,
        reranker: &RerankerManifest,
        second: Option<&SecondOpinionInfo>,
    ) -> Result<Self, BundleLoadError> {
        let label_examples = reranker.label_examples;
        let onnx_path = ModelDir(model_dir.to_path_buf()).int8();
        let onnx = fs::read(&onnx_path).map_err(|e| BundleLoadError::Read {
            path: onnx_path.clone(),
            detail: format!("{e}; run `mailsort models fetch` first"),
        })?;
        let mut bundles: Vec<LoadedBundle> = Vec::new();
        for path in paths {
            let invalid = |detail: String| BundleLoadError::Invalid {
                path: path.clone(),
                detail,
            };
            let bytes = fs::read(path).map_err(|e| BundleLoadError::Read {
                path: path.clone(),
                detail: e.to_string(),
            })?;
            let bundle = Bundle::decode(&bytes).map_err(|e| invalid(e.to_string()))?;
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| bundle.id.clone());
            if bundles.iter().any(|b| b.name == name) {
                return Err(BundleLoadError::DuplicateName(name));
            }
            let label_texts = bundle
                .taxonomy
                .labels()
                .iter()
                .map(|l| (l.id.clone(), l.rerank_text(label_examples)))
                .collect();
            let id = bundle.id.clone();
            let (head, no_second_opinion) = match second {
                Some(info) => match load_second_opinion(path, &id, info)? {
                    Some(h) => (Some(h), ""),
                    None => (
                        None,
                        "none: no NAME.second-opinion.json (mailsort second-opinion)",
                    ),
                },
                None => (None, "none: the server runs without --second-opinion-dir"),
            };
            let fusion = load_fusion(
                path,
                &id,
                reranker,
                head.as_ref().map(|h| h.sha256.as_str()),
            )?;
            let mut classifier =
                EdgeClassifier::new(bundle, &onnx).map_err(|e| invalid(e.to_string()))?;
            classifier.use_exemplar_index(IndexChoice::Auto);
            bundles.push(LoadedBundle {
                name,
                id,
                classifier,
                label_texts,
                fusion,
                second_opinion: head,
                no_second_opinion,
            });
        }
        Ok(Self { bundles })
    }

    /// A bundle by id (or a unique id prefix of 12+ hex digits) or by name.
    pub fn get(&self, key: &str) -> Option<&LoadedBundle> {
        self.bundles
            .iter()
            .find(|b| b.id == key || b.name == key)
            .or_else(|| {
                let mut hits = self
                    .bundles
                    .iter()
                    .filter(|b| key.len() >= 12 && b.id.starts_with(key));
                match (hits.next(), hits.next()) {
                    (Some(b), None) => Some(b),
                    _ => None,
                }
            })
    }

    /// "name (id prefix), …" for error messages.
    pub fn describe(&self) -> String {
        self.bundles
            .iter()
            .map(|b| format!("{} ({})", b.name, &b.id[..12.min(b.id.len())]))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn iter(&self) -> impl Iterator<Item = &LoadedBundle> {
        self.bundles.iter()
    }
}

/// The bundle's fusion file if it has one, checked against the bundle and
/// the reranker; else the reranker's own fusion.
fn load_fusion(
    bundle_path: &Path,
    bundle_id: &str,
    reranker: &RerankerManifest,
    head_sha256: Option<&str>,
) -> Result<Fusion, BundleLoadError> {
    let path = fusion_path(bundle_path);
    let fail = |detail: String| BundleLoadError::Fusion {
        path: path.clone(),
        detail,
    };
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Fusion::RerankerDefault(FusionFit::scores(
                reranker.temperature,
                reranker.edge_weight,
            )));
        }
        Err(e) => return Err(fail(e.to_string())),
    };
    let file: FusionFile =
        serde_json::from_str(&text).map_err(|e| fail(format!("not a fusion file: {e}")))?;
    file.check(bundle_id, &reranker.fp32_sha256, head_sha256)
        .map_err(|e| fail(e.to_string()))?;
    Ok(Fusion::Dev(file))
}

/// The bundle's second-opinion head if it has one, checked against the
/// bundle and the encoder served.
fn load_second_opinion(
    bundle_path: &Path,
    bundle_id: &str,
    info: &SecondOpinionInfo,
) -> Result<Option<ServedHead>, BundleLoadError> {
    let path = head_path(bundle_path);
    let fail = |detail: String| BundleLoadError::SecondOpinion {
        path: path.clone(),
        detail,
    };
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(fail(e.to_string())),
    };
    let file: SecondOpinionFile = serde_json::from_slice(&bytes)
        .map_err(|e| fail(format!("not a second-opinion file: {e}")))?;
    file.check(bundle_id, &info.encoder.sha256, info.dim)
        .map_err(|e| fail(e.to_string()))?;
    Ok(Some(ServedHead {
        file,
        sha256: sha256_hex(&bytes),
    }))
}
