//! `--candidates-out`: each labelled e-mail's cleaned text, gold label and
//! the edge's top-k candidates with their label texts, one JSON line each.
//! This is what `training/train_reranker.py` learns from (out-of-fold
//! candidates of the training split) and calibrates on (a dev split).

use std::fs;
use std::io::{BufWriter, Write};
use std::path::Path;

use mailsort_shared::taxonomy::Taxonomy;
use mailsort_shared::types::Candidate;
use serde::Serialize;
use thiserror::Error;

/// A candidates file could not be written.
#[derive(Debug, Error)]
#[error("cannot write {path}")]
pub struct WriteError {
    path: String,
    source: std::io::Error,
}

/// One labelled e-mail as the reranker sees it.
#[derive(Serialize)]
pub struct CandidateRow<'a> {
    pub id: &'a str,
    /// The cleaned, capped text the edge forwards.
    pub text: &'a str,
    /// Gold label.
    pub label: &'a str,
    /// Whether the gate forwards this e-mail to the backend.
    pub forwarded: bool,
    pub candidates: Vec<CandidateText<'a>>,
}

/// A candidate with the label text the cross-encoder reads: name and
/// description, and the label's examples, which the trainer appends as
/// `Label::rerank_text` does.
#[derive(Serialize)]
pub struct CandidateText<'a> {
    pub label: &'a str,
    pub probability: f32,
    pub text: String,
    pub examples: &'a [String],
}

impl<'a> CandidateRow<'a> {
    pub fn new(
        id: &'a str,
        text: &'a str,
        label: &'a str,
        forwarded: bool,
        candidates: &'a [Candidate],
        taxonomy: &'a Taxonomy,
    ) -> Self {
        const NONE: &[String] = &[];
        Self {
            id,
            text,
            label,
            forwarded,
            candidates: candidates
                .iter()
                .map(|c| {
                    let label = taxonomy.get(&c.label);
                    CandidateText {
                        label: &c.label,
                        probability: c.probability,
                        text: label.map_or_else(|| c.label.clone(), |l| l.text()),
                        examples: label.map_or(NONE, |l| l.examples.as_slice()),
                    }
                })
                .collect(),
        }
    }
}

/// Writes rows as JSONL.
pub fn write(path: &Path, rows: &[CandidateRow]) -> Result<(), WriteError> {
    let fail = |source| WriteError {
        path: path.display().to_string(),
        source,
    };
    let mut w = BufWriter::new(fs::File::create(path).map_err(fail)?);
    for r in rows {
        let line = serde_json::to_string(r).map_err(|e| fail(e.into()))?;
        writeln!(w, "{line}").map_err(fail)?;
    }
    w.flush().map_err(fail)
}
