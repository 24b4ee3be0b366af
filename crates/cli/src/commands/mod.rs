//! One file per subcommand, each with its clap arguments and a `run`; the
//! arguments and loaders several of them share are here.

pub mod bench;
pub mod bench_exemplars;
pub mod build;
pub mod calibrate;
pub mod calibrate_fusion;
pub mod classify;
pub mod eval;
pub mod models;
pub mod split;

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use mailsort_edge::{Batching, EdgeClassifier, IndexChoice};
use mailsort_offline::embed_cache::{self, FileCache};
use mailsort_shared::bundle::Bundle;
use mailsort_shared::manifest::ModelDir;

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
}

impl ModelArgs {
    pub fn dir(&self) -> ModelDir {
        ModelDir(self.model_dir.clone())
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
        if !self.cache_embeddings {
            return None;
        }
        let dir = embed_cache::default_dir()?;
        let bundle = classifier.bundle();
        let cache = FileCache::open(
            &dir,
            &bundle.model.onnx_sha256,
            bundle.clean.token_cap,
            bundle.model.dim,
        );
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

/// A bundle and its encoder, searching exemplars as `--exemplar-index` says.
pub fn load_classifier(bundle_path: &Path, model: &ModelArgs) -> Result<EdgeClassifier> {
    let bundle = read_bundle(bundle_path)?;
    let mut classifier = EdgeClassifier::new(bundle, &read_encoder(model)?)?;
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
