//! `mailsort`: prepare models, build, calibrate, run and evaluate the edge
//! classifier. Each subcommand is one file in `commands/`, over the edge
//! core (`mailsort-edge`) and the offline library (`mailsort-offline`).

mod backend_client;
mod commands;
mod progress;

use clap::{Parser, Subcommand};

use crate::commands::{
    bench, bench_exemplars, bench_stages, build, calibrate, calibrate_fusion, classify, eval,
    export, import, models, plan, second_opinion, sort, split,
};

/// Sorts e-mail into your labels, on your machine.
#[derive(Parser)]
#[command(name = "mailsort", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Get, prepare and verify the sentence encoder.
    #[command(subcommand)]
    Models(models::ModelsCommand),
    /// Learn a bundle from labelled e-mails.
    Build(build::BuildArgs),
    /// Classify e-mails and print one JSON decision per line.
    Classify(classify::ClassifyArgs),
    /// Measure a bundle on a labelled test set.
    Eval(eval::EvalArgs),
    /// Set the gate's thresholds on a dev split the bundle was not trained on.
    Calibrate(calibrate::CalibrateArgs),
    /// Fit how the backend fuses a bundle's forwarded e-mails, on a dev
    /// split, with the reranker that serves it (writes NAME.fusion.json;
    /// with --keep-at-edge also the bundle, keeping what the fit leaves to
    /// the edge).
    CalibrateFusion(calibrate_fusion::CalibrateFusionArgs),
    /// Train a bundle's second-opinion head for the backend (a larger
    /// encoder's view of the bundle's labels; writes NAME.second-opinion.json).
    SecondOpinion(second_opinion::SecondOpinionArgs),
    /// Read labelled mail from a mailbox (Maildir, mbox, Takeout, IMAP):
    /// the summary, and optionally labelled JSONL.
    Import(import::ImportCmdArgs),
    /// Write labelled JSONL as a mailbox, or as an INBOX to sort.
    Export(export::ExportArgs),
    /// File new INBOX mail into label folders (a local Maildir or IMAP).
    Sort(sort::SortArgs),
    /// Carve a stratified dev split out of a labelled file.
    Split(split::SplitArgs),
    /// E-mails per second of the INT8 encoder: tract against ONNX Runtime.
    Bench(bench::BenchArgs),
    /// Exemplar search of a bundle: the flat scan against hnsw_rs (build
    /// time, time per search, same neighbours).
    BenchExemplars(bench_exemplars::BenchExemplarsArgs),
    /// The edge's layers one e-mail at a time: cleaning, tokenising,
    /// embedding, head and gate (p50 and p99).
    BenchStages(bench_stages::BenchStagesArgs),
    /// A capacity plan for a mail volume from a benchmark results file:
    /// latency per layer, replicas, edge compute, cost, with sources.
    Plan(plan::PlanArgs),
}

fn main() {
    let result = match Cli::parse().command {
        Command::Models(c) => models::run(c),
        Command::Build(a) => build::run(a),
        Command::Classify(a) => classify::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Calibrate(a) => calibrate::run(a),
        Command::CalibrateFusion(a) => calibrate_fusion::run(a),
        Command::SecondOpinion(a) => second_opinion::run(a),
        Command::Import(a) => import::run(a),
        Command::Export(a) => export::run(a),
        Command::Sort(a) => sort::run(a),
        Command::Split(a) => split::run(a),
        Command::Bench(a) => bench::run(a),
        Command::BenchExemplars(a) => bench_exemplars::run(a),
        Command::BenchStages(a) => bench_stages::run(a),
        Command::Plan(a) => plan::run(a),
    };
    if let Err(err) = result {
        eprintln!("error: {err:#}");
        // 2: the run went through, but some of its e-mails failed.
        let partial = err.downcast_ref::<classify::SomeFailed>().is_some();
        std::process::exit(if partial { 2 } else { 1 });
    }
}
