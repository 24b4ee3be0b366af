//! `mailsort calibrate-fusion`: fit how a bundle's forwarded e-mails are
//! fused, on a dev split it never saw, with the reranker (and the
//! second-opinion head, where the bundle has one) that serves it.

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use mailsort_offline::fusion::{self, FitOptions, Sample};
use mailsort_shared::fusion::{FusionFile, RerankerRef};

use super::classify::{Labelled, decide_labelled};
use super::{CacheArgs, ImportArgs, ModelArgs, RunArgs, load_classifier, read_labelled};
use crate::backend_client::BackendClient;

#[derive(Args)]
pub struct CalibrateFusionArgs {
    /// The bundle, already calibrated (its gate decides what is forwarded).
    #[arg(long)]
    bundle: PathBuf,
    /// Labelled dev e-mails the bundle was not trained on.
    #[arg(long)]
    dev: PathBuf,
    /// A running `mailsort-backend` serving this bundle with the reranker
    /// to fit for (http://host:port).
    #[arg(long)]
    backend: String,
    /// Bearer key for --backend.
    #[arg(long, env = "MAILSORT_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Where to write the fusion file (default: beside the bundle,
    /// `NAME.fusion.json`, where the backend looks for it).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Dev e-mails more than the edge that the reranker must get right
    /// before it is trusted on a kind of e-mail.
    #[arg(long, default_value_t = FitOptions::default().min_gain_emails)]
    min_gain_emails: usize,
    /// …with a net gain of at least this many standard deviations of
    /// McNemar's test on the e-mails where edge and reranker disagree.
    #[arg(long, default_value_t = FitOptions::default().z)]
    min_gain_z: f64,
    #[command(flatten)]
    cache: CacheArgs,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    import: ImportArgs,
}

pub fn run(args: CalibrateFusionArgs) -> Result<()> {
    // A fit needs every forwarded e-mail's answer: wait out a busy or
    // restarting backend for a minute, then give up.
    let backend = BackendClient::new(&args.backend, args.api_key.as_deref())?
        .with_retry(std::time::Duration::from_secs(60))
        .scoring_all();
    let classifier = load_classifier(&args.bundle, &args.model)?;
    let rows = read_labelled(&args.dev, &args.import)?;
    let Labelled { decided, gold } = decide_labelled(&classifier, &rows, &args.run, &args.cache)?;
    let bundle_id = classifier.bundle().id.clone();
    let reranked = backend.rerank_forwarded(&bundle_id, &decided);
    if let Some(f) = &reranked.failure {
        bail!(
            "the backend did not answer {} of the forwarded dev e-mails: {f}",
            reranked.unanswered.len()
        );
    }
    let Some(info) = reranked.info else {
        bail!(
            "the gate forwards none of the {} dev e-mails: nothing to fit",
            decided.len()
        );
    };
    if info.sha256.is_empty() {
        bail!(
            "the backend at {} does not say which reranker weights it serves (upgrade mailsort-backend)",
            args.backend
        );
    }
    let samples: Vec<Sample> = reranked
        .results
        .iter()
        .filter_map(|(i, result)| Sample::new(&decided[*i].0, result, &gold[*i]))
        .collect();
    if samples.len() < reranked.results.len() {
        bail!(
            "the backend's answers cover every candidate with scores for only {} of the {} forwarded dev e-mails: it answered for other labels, or left scores out",
            samples.len(),
            reranked.results.len()
        );
    }
    let opts = FitOptions {
        min_gain_emails: args.min_gain_emails,
        z: args.min_gain_z,
        ..FitOptions::default()
    };
    let fitted = fusion::fit(&samples, opts);
    let file = FusionFile {
        bundle_id,
        reranker: RerankerRef {
            name: info.name,
            sha256: info.sha256,
        },
        second_opinion_sha256: reranked.second_opinion.clone(),
        default: fitted.default,
        by_reason: fitted.by_reason,
        dev_emails: decided.len(),
        dev_forwarded: samples.len(),
        report: fitted.report,
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.bundle.with_extension("fusion.json"));
    let text = serde_json::to_string_pretty(&file)?;
    fs::write(&out, text + "\n").with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!("wrote {}: {}", out.display(), file.describe());
    for (kind, r) in &file.report {
        eprintln!(
            "  {kind:<20} {:>5} forwarded dev e-mails: edge right on {}, best reranker fusion {}, chosen {}",
            r.emails, r.edge_right, r.best_fused_right, r.chosen_right
        );
    }
    println!("{}", serde_json::to_string(&file)?);
    Ok(())
}
