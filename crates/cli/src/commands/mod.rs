//! One file per subcommand, each with its clap arguments and a `run`; the
//! arguments and loaders several of them share are here.

pub mod bench;
pub mod bench_exemplars;
pub mod bench_stages;
pub mod build;
pub mod calibrate;
pub mod calibrate_fusion;
pub mod classify;
pub mod eval;
pub mod export;
pub mod import;
pub mod models;
pub mod plan;
pub mod second_opinion;
pub mod sort;
pub mod split;

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use mailsort_edge::{Batching, EdgeClassifier, IndexChoice};
use mailsort_mailbox::folders::FolderFilter;
use mailsort_mailbox::imap::{self, ImapAccount};
use mailsort_mailbox::import as mailbox_import;
use mailsort_mailbox::{ImportOptions, ImportSummary};
use mailsort_offline::edge_engine::{self, EngineOptions};
use mailsort_offline::embed_cache::{self, FileCache};
use mailsort_offline::inputs;
use mailsort_shared::bundle::Bundle;
use mailsort_shared::dataset::LabelledEmail;
use mailsort_shared::manifest::{EdgeEngine, ModelDir};

/// Where the prepared encoder lives, and how exemplars are searched.
#[derive(Args, Clone)]
pub struct ModelArgs {
    /// Folder made by `mailsort models fetch`.
    #[arg(
        long,
        env = "MAILSORT_MODEL_DIR",
        default_value = "models/all-MiniLM-L6-v2"
    )]
    pub model_dir: PathBuf,
    /// Exemplar search: a flat scan below 50,000 exemplars and hnsw_rs from
    /// there on (auto, `HNSW_MIN_EXEMPLARS`), or always one kind.
    #[arg(
        long,
        default_value = "auto",
        value_parser = PossibleValuesParser::new(["auto", "flat", "hnsw"])
            .map(|s| s.parse::<IndexChoice>().expect("only listed values reach here")),
    )]
    pub exemplar_index: IndexChoice,
    /// What embeds natively: tract on the INT8-weight file (what bundles are
    /// built with, and what WebAssembly and Workers run), tract on the W8A8
    /// file, or ONNX Runtime on its dynamic-INT8 file (the fastest, needs
    /// --ort-lib). See docs/int8.md.
    #[arg(
        long,
        env = "MAILSORT_ENGINE",
        default_value = "tract",
        value_parser = PossibleValuesParser::new(EdgeEngine::ALL.map(|(name, _)| name))
            .map(|s| s.parse::<EdgeEngine>().expect("only listed values reach here")),
    )]
    pub engine: EdgeEngine,
    /// `libonnxruntime.so` (from the PyPI onnxruntime wheel), for
    /// `--engine onnxruntime-int8`.
    #[arg(long, env = "ORT_DYLIB_PATH")]
    pub ort_lib: Option<PathBuf>,
}

impl ModelArgs {
    pub fn dir(&self) -> ModelDir {
        ModelDir(self.model_dir.clone())
    }

    /// The engine options; ONNX Runtime gets one session per core.
    pub fn engine_options(&self) -> EngineOptions {
        EngineOptions {
            engine: self.engine,
            ort_lib: self.ort_lib.clone(),
            threads: Batching::threads(1, None).threads,
        }
    }
}

/// How many threads embed in parallel.
#[derive(Args, Clone)]
pub struct RunArgs {
    /// Worker threads for embedding (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// E-mails per encoder call.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
}

impl RunArgs {
    pub fn batching(&self) -> Batching {
        Batching::threads(self.batch, self.threads)
    }
}

/// Whether embeddings are kept between runs.
#[derive(Args, Clone)]
pub struct CacheArgs {
    /// Keep the embeddings of these e-mails' cleaned texts on disk and
    /// reuse them on the next run with the same encoder and token cap
    /// (`$MAILSORT_CACHE_DIR/embeddings`, default `~/.cache/mailsort`).
    #[arg(long)]
    pub cache_embeddings: bool,
}

impl CacheArgs {
    /// The cache for `classifier`'s encoder and token cap, when asked for.
    pub fn open(&self, classifier: &EdgeClassifier) -> Option<FileCache> {
        let bundle = classifier.bundle();
        self.open_for(
            classifier.embedder().model_id(),
            bundle.clean.token_cap,
            bundle.model.dim,
        )
    }

    /// The cache for an encoder by id, token cap and width, when asked for.
    pub fn open_for(&self, model_id: &str, token_cap: usize, dim: usize) -> Option<FileCache> {
        if !self.cache_embeddings {
            return None;
        }
        let dir = embed_cache::default_dir()?;
        let cache = FileCache::open(&dir, model_id, token_cap, dim);
        eprintln!(
            "embedding cache {}: {} embeddings",
            cache.path().display(),
            cache.len()
        );
        Some(cache)
    }
}

/// The INT8 encoder's bytes.
pub fn read_encoder(model: &ModelArgs) -> Result<Vec<u8>> {
    let path = model.dir().int8();
    fs::read(&path).with_context(|| {
        format!(
            "cannot read the encoder {}; run `mailsort models fetch` first",
            path.display()
        )
    })
}

/// A bundle file, decoded and checked.
pub fn read_bundle(path: &Path) -> Result<Bundle> {
    let bytes = fs::read(path).with_context(|| format!("cannot read bundle {}", path.display()))?;
    Bundle::decode(&bytes).with_context(|| format!("{}", path.display()))
}

/// A bundle and its encoder on `--engine`, searching exemplars as
/// `--exemplar-index` says.
pub fn load_classifier(bundle_path: &Path, model: &ModelArgs) -> Result<EdgeClassifier> {
    let bundle = read_bundle(bundle_path)?;
    let mut classifier =
        edge_engine::load_classifier(bundle, &model.dir(), &model.engine_options())?;
    classifier.use_exemplar_index(model.exemplar_index);
    Ok(classifier)
}

/// The first `limit` rows, or all.
pub fn limit_rows<T>(mut rows: Vec<T>, limit: Option<usize>) -> Vec<T> {
    if let Some(n) = limit {
        rows.truncate(n);
    }
    rows
}

/// How labelled mail is read when it is a mailbox rather than JSONL.
#[derive(Args, Clone)]
pub struct ImportArgs {
    /// Also learn from this folder (a label such as `Archive` or
    /// `Work/Old`), even if it is left out by default. Repeatable.
    #[arg(long = "include-folder", value_name = "FOLDER")]
    pub include: Vec<String>,
    /// Leave this folder (and its children) out. Repeatable. INBOX, Sent,
    /// Drafts, Trash, Junk and Spam are left out by default.
    #[arg(long = "exclude-folder", value_name = "FOLDER")]
    pub exclude: Vec<String>,
    /// Labels with fewer messages are reported and left out.
    #[arg(long, default_value_t = 2)]
    pub min_per_label: usize,
    /// Messages larger than this are skipped.
    #[arg(long, default_value_t = 25)]
    pub max_message_mb: u64,
    #[command(flatten)]
    pub imap: ImapArgs,
}

/// How to reach an IMAP account given as `imaps://USER@HOST[:PORT]`.
#[derive(Args, Clone)]
pub struct ImapArgs {
    /// The account's password (or app password).
    #[arg(long, env = "MAILSORT_IMAP_PASSWORD", hide_env_values = true)]
    pub imap_password: Option<String>,
    /// Read the password from this file instead.
    #[arg(long)]
    pub imap_password_file: Option<PathBuf>,
    /// Trust these CA certificates (PEM) too, e.g. a self-signed server's.
    #[arg(long)]
    pub imap_ca_file: Option<PathBuf>,
    /// Allow `imap://` without TLS. Only loopback hosts are accepted.
    #[arg(long)]
    pub allow_plaintext: bool,
}

impl ImapArgs {
    /// The account an `imap(s)://` address names, with its password.
    pub fn account(&self, url: &str) -> Result<ImapAccount> {
        let password = match (&self.imap_password, &self.imap_password_file) {
            (_, Some(f)) => fs::read_to_string(f)
                .with_context(|| format!("cannot read {}", f.display()))?
                .trim_end_matches(['\r', '\n'])
                .to_string(),
            (Some(p), None) => p.clone(),
            (None, None) => return Err(mailsort_mailbox::MailboxError::NoPassword.into()),
        };
        Ok(ImapAccount::from_url(
            url,
            password,
            self.allow_plaintext,
            self.imap_ca_file.clone(),
        )?)
    }
}

impl ImportArgs {
    pub fn options(&self) -> ImportOptions {
        let mut filter = FolderFilter::default();
        filter.include.extend(self.include.iter().cloned());
        filter.exclude.extend(self.exclude.iter().cloned());
        ImportOptions {
            filter,
            min_per_label: self.min_per_label,
            max_message_bytes: self.max_message_mb * 1024 * 1024,
        }
    }
}

/// Labelled mail from `source`: JSONL (`.jsonl`, `.jsonl.gz`), a local
/// mailbox (Maildir++, a folder of Maildirs, a folder of mbox files, a Gmail
/// Takeout mbox) or an IMAP account (`imaps://USER@HOST`). A mailbox's
/// summary goes to standard error.
pub fn read_labelled(source: &Path, args: &ImportArgs) -> Result<Vec<LabelledEmail>> {
    let name = source.to_string_lossy();
    let imported = if imap::is_imap_url(&name) {
        imap::import_imap(&args.imap.account(&name)?, &args.options())?
    } else if name.ends_with(".jsonl") || name.ends_with(".jsonl.gz") || name.ends_with(".json") {
        return Ok(inputs::read_labelled(source, true)?);
    } else {
        mailbox_import::import_path(source, &args.options())?
    };
    print_summary(&imported.summary);
    anyhow::ensure!(
        !imported.rows.is_empty(),
        "{}: no labelled messages were read (see the summary above)",
        name
    );
    Ok(imported.rows)
}

/// The import summary, for people: per label, what was left out and why.
pub fn print_summary(s: &ImportSummary) {
    eprintln!(
        "read {} messages in {} labels from {} ({:?})",
        s.kept(),
        s.per_label.len(),
        s.source,
        s.format
    );
    for (label, n) in &s.per_label {
        eprintln!("  {n:>6}  {label}");
    }
    if !s.too_few.is_empty() {
        eprintln!("labels with too few messages to learn (left out):");
        for (label, n) in &s.too_few {
            eprintln!("  {n:>6}  {label}");
        }
    }
    if !s.folders_left_out.is_empty() {
        eprintln!("folders left out: {}", s.folders_left_out.join(", "));
    }
    if s.duplicates > 0 {
        eprintln!(
            "{} copies of messages already read (same Message-ID) counted once",
            s.duplicates
        );
    }
    if !s.skipped.is_empty() {
        eprintln!("skipped {}:", s.skipped.len());
        for k in s.skipped.iter().take(20) {
            eprintln!("  {}: {}", k.at, k.reason);
        }
        if s.skipped.len() > 20 {
            eprintln!(
                "  … and {} more (mailsort import --summary-out FILE lists all)",
                s.skipped.len() - 20
            );
        }
    }
}
