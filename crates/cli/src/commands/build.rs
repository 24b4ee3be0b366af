//! `mailsort build`: learn a bundle from labelled e-mails.

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use mailsort_offline::build::{self, BuildOptions};
use mailsort_offline::calibrate::Target;
use mailsort_offline::candidates;
use mailsort_offline::train::TrainOptions;
use mailsort_shared::taxonomy::Taxonomy;

use super::{ImportArgs, ModelArgs, RunArgs, limit_rows, read_labelled};
use crate::progress::Bars;

#[derive(Args)]
pub struct BuildArgs {
    /// Labelled JSONL (`id`, `subject`, `body`, `label`), optionally .gz.
    #[arg(long)]
    train: PathBuf,
    /// YAML or JSON taxonomy; without it, labels come from the training file.
    #[arg(long)]
    taxonomy: Option<PathBuf>,
    /// Bundle file to write.
    #[arg(long)]
    out: PathBuf,
    /// Tokens the encoder reads per e-mail (64–512).
    #[arg(long, default_value_t = 256)]
    token_cap: usize,
    /// Forwarded share the gate is calibrated for (out of fold).
    #[arg(long, default_value_t = 0.15, conflicts_with = "edge_accuracy")]
    forward_rate: f32,
    /// Calibrate for this accuracy on kept e-mails instead.
    #[arg(long)]
    edge_accuracy: Option<f32>,
    /// Folds for out-of-fold calibration.
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// L2 penalty of the logistic-regression head.
    #[arg(long, default_value_t = 0.05)]
    alpha: f32,
    /// Use only the first N training rows.
    #[arg(long)]
    limit: Option<usize>,
    /// Never ship nearest-exemplar evidence (smaller bundle, head only).
    #[arg(long)]
    no_exemplars: bool,
    /// Typical training e-mails (short, central) stored per label for the
    /// reranker to read beside the description, where the taxonomy gives
    /// none. They travel inside the bundle; 0 stores none.
    #[arg(long, default_value_t = 3)]
    label_examples: usize,
    /// Also write each training e-mail's out-of-fold candidates (JSONL),
    /// the input of `training/train_reranker.py`.
    #[arg(long)]
    candidates_out: Option<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    import: ImportArgs,
}

pub fn run(args: BuildArgs) -> Result<()> {
    let mut train = TrainOptions {
        alpha: args.alpha,
        folds: args.folds,
        target: args
            .edge_accuracy
            .map_or(Target::ForwardRate(args.forward_rate), Target::EdgeAccuracy),
        ..TrainOptions::default()
    };
    if args.no_exemplars {
        train.knn_weights.clear();
    }
    let opts = BuildOptions {
        token_cap: args.token_cap,
        train,
        label_examples: args.label_examples,
        batching: args.run.batching(),
    };
    let rows = limit_rows(read_labelled(&args.train, &args.import)?, args.limit);
    let taxonomy = match &args.taxonomy {
        Some(p) => {
            let text = fs::read_to_string(p)
                .with_context(|| format!("cannot read taxonomy {}", p.display()))?;
            Some(Taxonomy::parse(&text).with_context(|| format!("{}", p.display()))?)
        }
        None => None,
    };
    let built = build::build_bundle(&rows, taxonomy, &args.model.dir(), &opts, &Bars::default())?;
    if opts.label_examples > 0 {
        eprintln!(
            "stored up to {} typical e-mails as examples for {} labels",
            opts.label_examples, built.labels_given_examples
        );
    }
    if let Some(path) = &args.candidates_out {
        let rows = built.candidate_rows(&rows);
        candidates::write(path, &rows)?;
        eprintln!("wrote {} candidate rows to {}", rows.len(), path.display());
    }
    let out = &args.out;
    fs::write(out, &built.bytes).with_context(|| format!("cannot write {}", out.display()))?;
    let report = &built.report;
    eprintln!(
        "wrote {} ({:.1} KiB, id {}): out-of-sample accuracy {:.4}, gate forwards {:.1}% with edge accuracy {:.4}",
        out.display(),
        built.bytes.len() as f64 / 1024.0,
        &built.bundle.id[..12],
        report.oof_accuracy_shipped,
        100.0 * report.gate.forward_rate,
        report.gate.edge_accuracy
    );
    println!("{}", serde_json::to_string(report)?);
    Ok(())
}
