//! The evaluation report of `mailsort eval --report DIR`: `index.html`, one
//! self-contained page (inline SVG, no scripts, no external files), plus
//! `figures.json` and `eval.json` from the same run.
//!
//! [`figures`] computes every plotted number from the per-e-mail decisions,
//! [`svg`] draws them, and [`html`] lays out the page.

pub mod figures;
mod html;
mod svg;

use std::fs;
use std::path::{Path, PathBuf};

pub use figures::{Figures, ReportRow};

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write the report to {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("drawing a plot failed: {0}")]
    Draw(String),
    #[error("encoding the figures failed: {0}")]
    Json(#[from] serde_json::Error),
}

/// What one evaluation run hands the report.
pub struct ReportInput<'a> {
    /// The page's heading, e.g. the bundle and the test file.
    pub title: &'a str,
    /// Facts shown under the heading (bundle id, reranker, test file…).
    pub facts: &'a [(String, String)],
    pub rows: &'a [ReportRow],
    /// Final labels came from a backend.
    pub with_backend: bool,
    /// `mailsort eval --json` of the same run, written beside the page.
    pub eval_json: &'a serde_json::Value,
    /// The taxonomy's sibling test.
    pub siblings: &'a dyn Fn(&str, &str) -> bool,
}

/// Files written by [`write_report`].
#[derive(Debug)]
pub struct ReportFiles {
    pub html: PathBuf,
    pub figures: PathBuf,
    pub eval: PathBuf,
}

/// Computes the figures, draws them and writes the page into `dir`
/// (created if needed).
pub fn write_report(
    dir: &Path,
    input: &ReportInput,
) -> Result<(Figures, ReportFiles), ReportError> {
    let figures = Figures::compute(input.rows, input.with_backend, input.siblings);
    let plots = html::Plots {
        coverage: svg::coverage(&figures)?,
        reliability: svg::reliability(&figures)?,
        confusion: svg::confusion(&figures, input.siblings)?,
        precision_recall: svg::precision_recall(&figures)?,
        forwarded: svg::forwarded_share(&figures)?,
        end_to_end: svg::end_to_end(&figures)?,
    };
    let page = html::page(input, &figures, &plots)?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReportError::Io { path, source }
    };
    fs::create_dir_all(dir).map_err(io(dir))?;
    let files = ReportFiles {
        html: dir.join("index.html"),
        figures: dir.join("figures.json"),
        eval: dir.join("eval.json"),
    };
    fs::write(&files.html, page).map_err(io(&files.html))?;
    fs::write(&files.figures, serde_json::to_string_pretty(&figures)?)
        .map_err(io(&files.figures))?;
    fs::write(&files.eval, serde_json::to_string_pretty(input.eval_json)?)
        .map_err(io(&files.eval))?;
    Ok((figures, files))
}
