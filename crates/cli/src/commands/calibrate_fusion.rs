//! `mailsort calibrate-fusion`: fit how a bundle's forwarded e-mails are
//! fused, on a dev split it never saw, with the reranker (and the
//! second-opinion head, where the bundle has one) that serves it.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use mailsort_offline::fusion::{self, FitOptions, Sample};
use mailsort_shared::bundle::Bundle;
use mailsort_shared::digest::sha256_hex;
use mailsort_shared::fusion::{FusionFile, RerankerRef, fusion_path};
use mailsort_shared::second_opinion::{SecondOpinionFile, head_path};

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
    /// Also set the bundle's gate to keep at the edge the kinds of e-mail
    /// whose fit is edge only, so that they cost no round trip: the fit
    /// then sees everything the gate's thresholds forward, and the bundle
    /// is rewritten (a new id), with its second-opinion head and fusion
    /// file naming it. Restart the backend with the new bundle.
    #[arg(long)]
    keep_at_edge: bool,
    /// With --keep-at-edge: write the bundle there (with its head and
    /// fusion file beside it) instead of over --bundle.
    #[arg(long, requires = "keep_at_edge")]
    bundle_out: Option<PathBuf>,
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
    let mut classifier = load_classifier(&args.bundle, &args.model)?;
    if args.keep_at_edge {
        // Fit on everything the thresholds forward, kinds kept before
        // included. The id stays the served file's, which the backend knows.
        classifier.bundle_mut().gate.keep_at_edge.clear();
    }
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
    let mut file = FusionFile {
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
    let mut bundle_path = args.bundle.clone();
    if args.keep_at_edge {
        bundle_path = args.bundle_out.clone().unwrap_or(bundle_path);
        keep_at_edge(&args.bundle, &bundle_path, classifier.bundle(), &mut file)?;
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| fusion_path(&bundle_path));
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

/// Writes `bundle` to `to` with the gate keeping at the edge the kinds that
/// `file` fits as edge only, and points `file` at it. The bundle's
/// second-opinion head beside it is rewritten beside the new one for the
/// new id (the head itself does not depend on the gate). The bundle goes
/// first: a head or fusion file naming a bundle that was never written
/// would be refused only at the backend's start.
fn keep_at_edge(from: &Path, to: &Path, bundle: &Bundle, file: &mut FusionFile) -> Result<()> {
    let old_id = file.bundle_id.clone();
    let mut bundle = bundle.clone();
    bundle.gate.keep_at_edge = file.kinds_edge_only();
    let bytes = bundle.encode()?;
    let path = head_path(from);
    let served = file.second_opinion_sha256.clone();
    let head = match fs::read(&path) {
        Ok(old) => {
            if let Some(served) = &served
                && sha256_hex(&old) != *served
            {
                bail!(
                    "{} is not the second-opinion head the backend serves (sha256 {}…): start the backend with this bundle's head, then rerun",
                    path.display(),
                    &served[..12.min(served.len())]
                );
            }
            let head: SecondOpinionFile = serde_json::from_slice(&old)
                .with_context(|| format!("{} is not a second-opinion file", path.display()))?;
            if head.bundle_id == old_id {
                Some(head)
            } else {
                // Not this bundle's: the backend refuses it already.
                eprintln!(
                    "left {} alone: it was trained for another bundle",
                    path.display()
                );
                None
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && served.is_none() => None,
        Err(e) => bail!(
            "cannot read the bundle's second-opinion head {}: {e}",
            path.display()
        ),
    };
    write_replacing(to, &bytes)?;
    if let Some(mut head) = head {
        head.bundle_id = bundle.id.clone();
        let text = serde_json::to_string(&head)? + "\n";
        write_replacing(&head_path(to), text.as_bytes())?;
        if served.is_some() {
            file.second_opinion_sha256 = Some(sha256_hex(text.as_bytes()));
        }
    }
    let kept = &bundle.gate.keep_at_edge;
    eprintln!(
        "wrote {} (bundle {}): the edge keeps {}; restart the backend with it",
        to.display(),
        &bundle.id[..12],
        if kept.is_empty() {
            "no kind of e-mail it forwards (the backend beats it on each)".to_string()
        } else {
            format!("{} e-mails (edge only on dev)", kept.join(" and "))
        }
    );
    file.bundle_id = bundle.id;
    Ok(())
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over
/// `path`, so that a reader never sees half a file.
fn write_replacing(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))
}
