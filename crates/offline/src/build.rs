//! Building a bundle from labelled e-mails: choose the head's labels, embed
//! the training e-mails and the label texts, train the head and calibrate
//! the gate out of fold ([`crate::train`]), store typical e-mails as label
//! examples for the reranker, and assemble the [`Bundle`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;

use mailsort_edge::{Batching, EmbedError, Embedder};
use mailsort_shared::bundle::{BuildReport, Bundle, BundleError, ModelRef};
use mailsort_shared::clean::{self, CleanConfig, CleanError};
use mailsort_shared::dataset::LabelledEmail;
use mailsort_shared::gate::GateOutcome;
use mailsort_shared::manifest::{ManifestError, ModelDir};
use mailsort_shared::taxonomy::{Taxonomy, TaxonomyError};
use mailsort_shared::types::Candidate;
use thiserror::Error;

use crate::candidates::CandidateRow;
use crate::progress::{self, Progress};
use crate::train::{self, TrainError, TrainOptions, TrainReport};

/// Longest e-mail (in words) stored as a label example: the reranker reads
/// every example beside every e-mail, so they must be short.
const LABEL_EXAMPLE_MAX_WORDS: usize = 30;

/// Why a bundle could not be built.
#[derive(Debug, Error)]
pub enum BuildError {
    #[error(transparent)]
    Clean(#[from] CleanError),
    #[error(transparent)]
    Taxonomy(#[from] TaxonomyError),
    #[error(
        "{count} training labels are not in the taxonomy: {list}; is this the taxonomy for this training file?"
    )]
    UnknownLabels { count: usize, list: String },
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("cannot read the encoder {path}; run `mailsort models fetch` first")]
    Model {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error(transparent)]
    Bundle(#[from] BundleError),
}

/// How to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Tokens the encoder reads per e-mail (64–512).
    pub token_cap: usize,
    pub train: TrainOptions,
    /// Typical training e-mails stored per label that has no examples.
    pub label_examples: usize,
    pub batching: Batching,
}

/// A built bundle and what building it learnt.
pub struct Built {
    pub bundle: Bundle,
    /// The encoded bundle, as written to disk.
    pub bytes: Vec<u8>,
    pub report: TrainReport,
    /// Each training e-mail's cleaned text, in input order.
    pub texts: Vec<String>,
    /// Each training e-mail's candidates out of fold, in input order.
    pub oof_candidates: Vec<Vec<Candidate>>,
    /// Labels whose examples were filled from training e-mails.
    pub labels_given_examples: usize,
}

impl Built {
    /// The reranker's training rows: each training e-mail with its gold
    /// label, whether the gate forwards it, and its out-of-fold candidates.
    pub fn candidate_rows<'a>(&'a self, rows: &'a [LabelledEmail]) -> Vec<CandidateRow<'a>> {
        let taxonomy = &self.bundle.taxonomy;
        rows.iter()
            .zip(&self.texts)
            .zip(&self.oof_candidates)
            .map(|((r, text), c)| {
                let forwarded = self.bundle.gate.decide(c, taxonomy) != GateOutcome::Keep;
                let gold = r.label.as_deref().unwrap_or("");
                CandidateRow::new(&r.id, text, gold, forwarded, c, taxonomy)
            })
            .collect()
    }
}

/// Builds a bundle from labelled `rows` with the encoder in `model`. Without
/// a taxonomy, labels (and their `parent` groups) come from the rows.
pub fn build_bundle(
    rows: &[LabelledEmail],
    taxonomy: Option<Taxonomy>,
    model: &ModelDir,
    opts: &BuildOptions,
    progress: &dyn Progress,
) -> Result<Built, BuildError> {
    let clean_cfg = CleanConfig::with_token_cap(opts.token_cap)?;
    let mut taxonomy = match taxonomy {
        Some(t) => t,
        None => Taxonomy::from_training_labels(
            rows.iter()
                .map(|r| (r.label.as_deref().unwrap_or(""), r.parent.as_deref())),
        )?,
    };
    check_labels(rows, &taxonomy)?;
    let labels = head_labels(rows, &taxonomy);
    let index: HashMap<&str, usize> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i))
        .collect();

    let manifest = model.read_manifest()?;
    let read = |path: std::path::PathBuf| {
        fs::read(&path).map_err(|source| BuildError::Model {
            path: path.display().to_string(),
            source,
        })
    };
    let onnx = read(model.int8())?;
    let tokenizer_json = String::from_utf8_lossy(&read(model.tokenizer())?).into_owned();
    let embedder = Embedder::new(&onnx, &tokenizer_json, clean_cfg.token_cap)?;

    let texts: Vec<String> = rows.iter().map(|r| r.cleaned_text(&clean_cfg)).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    progress.note(&format!("embedding {} training e-mails…", refs.len()));
    let x = progress::embed(&embedder, &refs, opts.batching, "train", progress)?;
    let y: Vec<usize> = rows
        .iter()
        .map(|r| index[r.label.as_deref().unwrap_or("")])
        .collect();

    // Label names, descriptions and examples always join the training data.
    let mut extra_texts = Vec::new();
    let mut extra_y = Vec::new();
    for l in taxonomy
        .labels()
        .iter()
        .filter(|l| index.contains_key(l.id.as_str()))
    {
        extra_texts.push(l.text());
        extra_y.push(index[l.id.as_str()]);
        for e in &l.examples {
            extra_texts.push(clean::clean_pair("", e, &clean_cfg).text);
            extra_y.push(index[l.id.as_str()]);
        }
    }
    let extra_refs: Vec<&str> = extra_texts.iter().map(String::as_str).collect();
    let extra_x = progress::embed(&embedder, &extra_refs, opts.batching, "labels", progress)?;

    progress.note(&format!(
        "training the head on {} e-mails, {} labels…",
        x.len(),
        labels.len()
    ));
    let trained = train::train(
        &x,
        &y,
        &extra_x,
        &extra_y,
        &labels,
        &taxonomy,
        &opts.train,
        |m| progress.note(&format!("  {m}")),
    )?;
    let mut labels_given_examples = 0;
    if opts.label_examples > 0 {
        let eligible: Vec<bool> = texts
            .iter()
            .map(|t| t.split_whitespace().count() <= LABEL_EXAMPLE_MAX_WORDS)
            .collect();
        let picks = train::pick_examples(&x, &y, &eligible, labels.len(), opts.label_examples);
        for (label, picked) in labels.iter().zip(picks) {
            let examples = picked
                .iter()
                .map(|&i| texts[i].split_whitespace().collect::<Vec<_>>().join(" "))
                .collect();
            labels_given_examples += usize::from(taxonomy.fill_examples(label, examples));
        }
    }
    let report = trained.report;
    let mut bundle = Bundle {
        id: String::new(),
        created_by: format!("mailsort {}", env!("CARGO_PKG_VERSION")),
        model: ModelRef {
            name: format!("{} (int8 weight-only)", manifest.name),
            onnx_sha256: manifest.int8_sha256.clone(),
            dim: embedder.dim(),
            tokenizer_json,
        },
        clean: clean_cfg,
        taxonomy,
        head: trained.head,
        exemplars: trained.exemplars,
        gate: trained.gate,
        report: BuildReport {
            train_examples: rows.len(),
            dev_examples: 0,
            dev_accuracy_head: Some(report.oof_accuracy_head),
            dev_accuracy_knn: Some(report.oof_accuracy_knn),
            dev_accuracy_shipped: Some(report.oof_accuracy_shipped),
            calibrated_forward_rate: Some(report.gate.forward_rate),
            calibrated_edge_accuracy: Some(report.gate.edge_accuracy),
        },
    };
    let bytes = bundle.encode()?;
    Ok(Built {
        bundle,
        bytes,
        report,
        texts,
        oof_candidates: trained.oof_candidates,
        labels_given_examples,
    })
}

/// Every training label must be in the taxonomy.
fn check_labels(rows: &[LabelledEmail], taxonomy: &Taxonomy) -> Result<(), BuildError> {
    let unknown: BTreeMap<&str, &str> = rows
        .iter()
        .filter(|r| taxonomy.get(r.label.as_deref().unwrap_or("")).is_none())
        .map(|r| (r.label.as_deref().unwrap_or(""), r.id.as_str()))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = unknown
        .iter()
        .take(10)
        .map(|(l, id)| format!("`{l}` (e.g. id {id})"))
        .collect();
    let more = match unknown.len() {
        n if n > 10 => format!(" and {} more", n - 10),
        _ => String::new(),
    };
    Err(BuildError::UnknownLabels {
        count: unknown.len(),
        list: format!("{}{more}", list.join(", ")),
    })
}

/// The head's labels: every label with e-mails or examples, plus childless
/// labels (which learn from their name and description alone).
fn head_labels(rows: &[LabelledEmail], taxonomy: &Taxonomy) -> Vec<String> {
    let with_children: HashSet<&str> = taxonomy
        .labels()
        .iter()
        .filter_map(|l| l.parent.as_deref())
        .collect();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for r in rows {
        *counts.entry(r.label.as_deref().unwrap_or("")).or_default() += 1;
    }
    taxonomy
        .labels()
        .iter()
        .filter(|l| {
            counts.contains_key(l.id.as_str())
                || !l.examples.is_empty()
                || !with_children.contains(l.id.as_str())
        })
        .map(|l| l.id.clone())
        .collect()
}
