//! `mailsort classify`: one JSON decision per line for e-mail files.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use mailsort_edge::{EdgeClassifier, EdgeError, EmbeddingCache};
use mailsort_offline::inputs::{self, InputEmail};
use mailsort_shared::api::RerankRequest;
use mailsort_shared::dataset::LabelledEmail;
use mailsort_shared::types::{Decision, EmailInput};

use super::{CacheArgs, ModelArgs, RunArgs, load_classifier};
use crate::progress;

#[derive(Args)]
pub struct ClassifyArgs {
    #[arg(long)]
    bundle: PathBuf,
    /// .eml files, mbox files, JSONL files, or `-` for standard input.
    #[arg(default_value = "-")]
    files: Vec<PathBuf>,
    /// Also write, for each e-mail the gate forwards, the backend's
    /// `/v1/rerank` request body (one JSON line each).
    #[arg(long)]
    forwarded_out: Option<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    run: RunArgs,
}

/// Each e-mail's decision and cleaned text, or why it alone failed.
pub type Outcome = std::result::Result<(Decision, String), String>;

/// Labelled e-mails classified: each one's decision and cleaned text, and
/// the gold labels, in input order.
pub struct Labelled {
    pub decided: Vec<(Decision, String)>,
    pub gold: Vec<String>,
}

/// Classifies `emails` on all cores with a progress bar, taking what
/// `cache` holds. A failure of the encoder itself stops the run; an
/// unreadable e-mail fails alone.
pub fn decide_all(
    classifier: &EdgeClassifier,
    emails: Vec<InputEmail>,
    run: &RunArgs,
    cache: Option<&dyn EmbeddingCache>,
) -> Result<Vec<(String, Outcome)>> {
    if emails.is_empty() {
        return Ok(Vec::new());
    }
    let inputs: Vec<(String, EmailInput)> = emails.into_iter().map(|e| (e.id, e.input)).collect();
    let bar = progress::bar(inputs.len(), "classify");
    let outcomes =
        classifier.classify_parallel(&inputs, run.batching(), &|n| bar.inc(n as u64), cache);
    bar.finish_and_clear();
    inputs
        .into_iter()
        .zip(outcomes)
        .map(|((id, _), outcome)| match outcome {
            Ok(decided) => Ok((id, Ok(decided))),
            Err(e @ EdgeError::Embed(_)) => Err(e.into()),
            Err(e) => Ok((id, Err(e.to_string()))),
        })
        .collect()
}

/// Classifies labelled `rows` (with the embedding cache when asked for):
/// each e-mail's decision and cleaned text, and its gold label. Any e-mail
/// that cannot be classified stops the run: a score over fewer e-mails
/// than the set holds would mislead.
pub fn decide_labelled(
    classifier: &EdgeClassifier,
    rows: &[LabelledEmail],
    run: &RunArgs,
    cache: &CacheArgs,
) -> Result<Labelled> {
    let gold: Vec<String> = rows
        .iter()
        .map(|r| r.label.clone().unwrap_or_default())
        .collect();
    let emails: Vec<InputEmail> = rows
        .iter()
        .map(|r| InputEmail {
            id: r.id.clone(),
            input: r.input(),
            label: r.label.clone(),
        })
        .collect();
    let cache = cache.open(classifier);
    let cache_ref = cache.as_ref().map(|c| c as &dyn EmbeddingCache);
    let mut decided = Vec::with_capacity(emails.len());
    for (id, outcome) in decide_all(classifier, emails, run, cache_ref)? {
        match outcome {
            Ok(d) => decided.push(d),
            Err(err) => bail!("{id}: {err}"),
        }
    }
    Ok(Labelled { decided, gold })
}

/// E-mails classified together: output follows each such chunk, so memory
/// stays bounded however long the input is.
const CHUNK: usize = 256;

/// Some e-mails or inputs failed; the others were classified. `main` exits
/// with status 2 on it.
#[derive(Debug)]
pub struct SomeFailed {
    pub failed: usize,
    pub total: usize,
}

impl std::fmt::Display for SomeFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} of {} e-mails or inputs could not be classified (see their `error` lines)",
            self.failed, self.total
        )
    }
}

impl std::error::Error for SomeFailed {}

pub fn run(args: ClassifyArgs) -> Result<()> {
    let classifier = load_classifier(&args.bundle, &args.model)?;
    let max_bytes = classifier.bundle().clean.max_message_bytes;
    let stdout = std::io::stdout();
    let mut out = Output {
        lines: BufWriter::new(stdout.lock()),
        forwarded: args.forwarded_out.as_deref().map(create).transpose()?,
        bundle_id: classifier.bundle().id.clone(),
        failed: 0,
        total: 0,
    };
    let mut chunk = Vec::with_capacity(CHUNK);
    for f in &args.files {
        for item in inputs::stream_any(f, max_bytes) {
            match item {
                Ok(email) => {
                    chunk.push(email);
                    if chunk.len() == CHUNK {
                        out.classify(&classifier, &args.run, std::mem::take(&mut chunk))?;
                    }
                }
                Err(fault) => {
                    // Keep the output in input order.
                    out.classify(&classifier, &args.run, std::mem::take(&mut chunk))?;
                    out.failure(&fault.id, &fault.error)?;
                }
            }
        }
    }
    out.classify(&classifier, &args.run, chunk)?;
    out.finish()
}

/// Where decisions go, as they come.
struct Output<W: Write> {
    lines: W,
    forwarded: Option<BufWriter<fs::File>>,
    bundle_id: String,
    failed: usize,
    total: usize,
}

impl<W: Write> Output<W> {
    /// Classifies `emails` and writes what came of each.
    fn classify(
        &mut self,
        classifier: &EdgeClassifier,
        run: &RunArgs,
        emails: Vec<InputEmail>,
    ) -> Result<()> {
        if emails.is_empty() {
            return Ok(());
        }
        for (id, outcome) in decide_all(classifier, emails, run, None)? {
            match outcome {
                Ok((d, text)) => {
                    self.total += 1;
                    writeln!(self.lines, "{}", serde_json::to_string(&d)?)?;
                    if let Some(w) = self.forwarded.as_mut()
                        && d.needs_rerank()
                    {
                        let request =
                            RerankRequest::for_decisions(&self.bundle_id, [(&d, &*text)], None);
                        writeln!(w, "{}", serde_json::to_string(&request)?)?;
                    }
                }
                Err(e) => self.failure(&id, &e)?,
            }
        }
        self.lines.flush()?;
        Ok(())
    }

    fn failure(&mut self, id: &str, error: &str) -> Result<()> {
        self.total += 1;
        self.failed += 1;
        writeln!(
            self.lines,
            "{}",
            serde_json::json!({"id": id, "error": error})
        )?;
        self.lines.flush()?;
        Ok(())
    }

    fn finish(mut self) -> Result<()> {
        self.lines.flush()?;
        if let Some(mut w) = self.forwarded.take() {
            w.flush()?;
        }
        if self.failed > 0 {
            return Err(SomeFailed {
                failed: self.failed,
                total: self.total,
            }
            .into());
        }
        Ok(())
    }
}

fn create(path: &Path) -> Result<BufWriter<fs::File>> {
    let file =
        fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(BufWriter::new(file))
}
