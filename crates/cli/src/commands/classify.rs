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

pub fn run(args: ClassifyArgs) -> Result<()> {
    let classifier = load_classifier(&args.bundle, &args.model)?;
    let mut emails = Vec::new();
    for f in &args.files {
        emails.extend(inputs::read_any(f)?);
    }
    let total = emails.len();
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut forwarded = args.forwarded_out.as_deref().map(create).transpose()?;
    let mut failed = 0;
    for (id, outcome) in decide_all(&classifier, emails, &args.run, None)? {
        match outcome {
            Ok((d, text)) => {
                writeln!(out, "{}", serde_json::to_string(&d)?)?;
                if let Some(w) = forwarded.as_mut()
                    && d.needs_rerank()
                {
                    let request =
                        RerankRequest::for_decisions(&classifier.bundle().id, [(&d, &*text)], None);
                    writeln!(w, "{}", serde_json::to_string(&request)?)?;
                }
            }
            Err(e) => {
                failed += 1;
                writeln!(out, "{}", serde_json::json!({"id": id, "error": e}))?;
            }
        }
    }
    out.flush()?;
    if let Some(mut w) = forwarded {
        w.flush()?;
    }
    if failed > 0 {
        eprintln!("{failed} of {total} e-mails could not be classified (see their `error`)");
    }
    Ok(())
}

fn create(path: &Path) -> Result<BufWriter<fs::File>> {
    let file =
        fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(BufWriter::new(file))
}
