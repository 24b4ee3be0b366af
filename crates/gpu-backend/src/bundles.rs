//! The bundles (taxonomies) a server serves, each with its edge classifier
//! for `/v1/classify` and its label texts for the reranker.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use mailsort_edge::{EdgeClassifier, IndexChoice};
use mailsort_shared::bundle::Bundle;
use mailsort_shared::manifest::ModelDir;
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
}

impl LoadedBundle {
    /// The reranker's text for a label of this bundle.
    pub fn label_text(&self, label: &str) -> Option<&str> {
        self.label_texts.get(label).map(String::as_str)
    }
}

/// All served bundles.
pub struct Bundles {
    bundles: Vec<LoadedBundle>,
}

impl Bundles {
    /// Loads each bundle file with the encoder in `model_dir`, which must be
    /// the one the bundle was built with; label texts carry up to
    /// `label_examples` examples each (the reranker's manifest says how many).
    pub fn load(
        paths: &[PathBuf],
        model_dir: &Path,
        label_examples: usize,
    ) -> Result<Self, BundleLoadError> {
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
            let mut classifier =
                EdgeClassifier::new(bundle, &onnx).map_err(|e| invalid(e.to_string()))?;
            classifier.use_exemplar_index(IndexChoice::Auto);
            bundles.push(LoadedBundle {
                name,
                id,
                classifier,
                label_texts,
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
