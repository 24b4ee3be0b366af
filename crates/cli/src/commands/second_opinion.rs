//! `mailsort second-opinion`: train a bundle's second-opinion head for the
//! backend, on the bundle's own labelled e-mails, and write it beside the
//! bundle (`NAME.second-opinion.json`), where the backend looks for it.

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use mailsort_offline::second_opinion::train_head;
use mailsort_ort_embed::second_opinion::SecondOpinionEncoder;

use super::{CacheArgs, ImportArgs, RunArgs, read_bundle, read_labelled};
use crate::progress::Bars;

#[derive(Args)]
pub struct SecondOpinionArgs {
    /// The bundle the head is for.
    #[arg(long)]
    bundle: PathBuf,
    /// The labelled e-mails the bundle was built from (or any labelled
    /// e-mails of its labels that are not used to evaluate it).
    #[arg(long)]
    train: PathBuf,
    /// The second-opinion encoder's folder (`scripts/models/second-opinion.sh`).
    #[arg(
        long,
        env = "MAILSORT_SECOND_OPINION_DIR",
        default_value = "models/all-mpnet-base-v2"
    )]
    model_dir: PathBuf,
    /// `libonnxruntime.so` from the onnxruntime wheel.
    #[arg(long, env = "ORT_DYLIB_PATH")]
    ort_lib: PathBuf,
    /// Where to write the head (default: beside the bundle,
    /// `NAME.second-opinion.json`).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    cache: CacheArgs,
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    import: ImportArgs,
}

pub fn run(args: SecondOpinionArgs) -> Result<()> {
    let bundle = read_bundle(&args.bundle)?;
    let rows = read_labelled(&args.train, &args.import)?;
    let batching = args.run.batching();
    // One single-threaded session per embedding thread.
    let encoder = SecondOpinionEncoder::load(&args.model_dir, &args.ort_lib, batching.threads, 1)
        .with_context(|| format!("loading {}", args.model_dir.display()))?;
    let cache = args.cache.open_for(
        encoder.embedder.model_id(),
        encoder.embedder.token_cap(),
        encoder.embedder.dim(),
    );
    let file = train_head(
        &encoder,
        &bundle,
        &rows,
        batching,
        cache
            .as_ref()
            .map(|c| c as &dyn mailsort_edge::EmbeddingCache),
        &Bars::default(),
    )?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| mailsort_shared::second_opinion::head_path(&args.bundle));
    let text = serde_json::to_string(&file)?;
    fs::write(&out, text + "\n").with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!(
        "wrote {}: {} head for {} labels from {} e-mails{}",
        out.display(),
        file.encoder.name,
        file.head.labels.len(),
        file.report.examples,
        file.report
            .holdout_accuracy
            .map(|a| format!(", {:.2}% right alone on the tenth held out", 100.0 * a))
            .unwrap_or_default()
    );
    println!("{}", serde_json::to_string(&file.report)?);
    Ok(())
}
