//! `mailsort calibrate`: set the gate's thresholds on a dev split the
//! bundle was not trained on.

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use mailsort_offline::calibrate::{self, Target};

use super::{ImportArgs, ModelArgs, RunArgs, load_classifier, read_labelled};
use crate::progress::Bars;

#[derive(Args)]
pub struct CalibrateArgs {
    #[arg(long)]
    bundle: PathBuf,
    #[arg(long)]
    dev: PathBuf,
    /// Target forwarded share.
    #[arg(long, conflicts_with = "edge_accuracy")]
    forward_rate: Option<f32>,
    /// Target accuracy on kept e-mails.
    #[arg(long)]
    edge_accuracy: Option<f32>,
    /// Candidates the edge reports and forwards per e-mail (the bundle's
    /// `top_k`, 5 by default). More candidates give the backend more
    /// chances to hold the right label, and cost the cross-encoder a pair
    /// each.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=mailsort_shared::gate::MAX_TOP_K as i64))]
    top_k: Option<u16>,
    /// Also refit the head's temperature on the dev split.
    #[arg(long)]
    refit_temperature: bool,
    /// Write here instead of overwriting the bundle.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    import: ImportArgs,
}

pub fn run(args: CalibrateArgs) -> Result<()> {
    let target = match (args.forward_rate, args.edge_accuracy) {
        (_, Some(a)) => Target::EdgeAccuracy(a),
        (Some(r), None) => Target::ForwardRate(r),
        (None, None) => Target::ForwardRate(0.15),
    };
    let mut classifier = load_classifier(&args.bundle, &args.model)?;
    let kept = &classifier.bundle().gate.keep_at_edge;
    if !kept.is_empty() {
        eprintln!(
            "the edge forwards {} e-mails again: new thresholds need a new fusion (mailsort calibrate-fusion --keep-at-edge)",
            kept.join(" and ")
        );
    }
    if let Some(k) = args.top_k {
        classifier.bundle_mut().gate.top_k = k.into();
    }
    let rows = read_labelled(&args.dev, &args.import)?;
    let mut done = calibrate::calibrate_on_dev(
        &mut classifier,
        &rows,
        target,
        args.refit_temperature,
        args.run.batching(),
        &Bars::default(),
    )?;
    if let Some((before, after)) = done.temperature {
        eprintln!("temperature {before:.3} -> {after:.3}");
    }
    let dest = args.out.as_ref().unwrap_or(&args.bundle);
    fs::write(dest, done.bundle.encode()?)
        .with_context(|| format!("cannot write {}", dest.display()))?;
    eprintln!(
        "wrote {}: on {} dev e-mails the gate forwards {:.1}% and the edge keeps {:.2}% accurate",
        dest.display(),
        rows.len(),
        100.0 * done.fit.forward_rate,
        100.0 * done.fit.edge_accuracy
    );
    println!("{}", serde_json::to_string(&done.fit)?);
    Ok(())
}
