//! Loading what the server needs before it is ready: bundles, reranker
//! (in-process ONNX, or a remote engine checked at start-up), tokenizer,
//! the second-opinion encoder, warm-up, batcher.

use std::fs;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mailsort_shared::api::RerankerInfo;
use mailsort_shared::digest::sha256_hex;
use mailsort_shared::manifest::{RerankerDir, RerankerManifest};
use thiserror::Error;

use mailsort_ort_embed::second_opinion::{SecondOpinionEncoder, SecondOpinionLoadError};

use crate::bundles::{BundleLoadError, Bundles, SecondOpinionInfo};
use crate::config::{RerankerChoice, ServeConfig};
use crate::cross_encoder::{CrossEncoder, Device, ModelError, RuntimeOptions};
use crate::edge_pool::{EdgePool, PoolConfig};
use crate::infer::{Engine, Limits};
use crate::metrics::Metrics;
use crate::pairs::{PairEncoder, PairError};
use crate::queue::{self, BatchConfig, Batcher};
use crate::remote::breaker::BreakerConfig;
use crate::remote::{RemoteApi, RemoteConfig, RemoteError, RemoteScorer, RemoteStatus, ScoreKind};
use crate::scorer::{ScoreError, Scorer};

/// E-mails per edge-stage chunk: small enough that a request given up on
/// stops soon, large enough to batch the encoder.
const EDGE_CHUNK: usize = 16;

/// Default token budget per model call on CPU: larger calls ran slower per
/// pair with ONNX Runtime on the 2-core development machine.
const CPU_BATCH_TOKENS: usize = 1024;
/// Default token budget per model call on a GPU.
const GPU_BATCH_TOKENS: usize = 16384;

/// Pair length when `--token-cap` is not given.
const DEFAULT_TOKEN_CAP: u16 = 256;

/// The pair length to serve at: the flag, else the reranker's training
/// length (serving longer pairs than it learnt on cost accuracy on long
/// mail), kept inside the flag's range, else [`DEFAULT_TOKEN_CAP`].
fn token_cap(flag: Option<u16>, trained_at: Option<u16>) -> usize {
    usize::from(flag.unwrap_or_else(|| trained_at.map_or(DEFAULT_TOKEN_CAP, |m| m.clamp(128, 512))))
}

/// Why the server could not get ready.
#[derive(Debug, Error)]
pub enum StartupError {
    #[error(transparent)]
    Bundle(#[from] BundleLoadError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Pairs(#[from] PairError),
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error("the second-opinion encoder: {0}")]
    SecondOpinion(#[from] SecondOpinionLoadError),
    #[error("warming the reranker up failed: {0}")]
    WarmUp(ScoreError),
    #[error("{0}")]
    Config(String),
}

/// The environment variable the remote engine's API key is read from.
pub const REMOTE_KEY_ENV: &str = "MAILSORT_REMOTE_API_KEY";

/// The remote engine's settings from the flags; both the URL and the model
/// name are needed.
fn remote_config(config: &ServeConfig) -> Result<RemoteConfig, StartupError> {
    let need = |flag: &str| StartupError::Config(format!("--reranker remote needs {flag}"));
    let url = config
        .remote_url
        .clone()
        .ok_or_else(|| need("--remote-url (MAILSORT_REMOTE_URL)"))?;
    let model = config
        .remote_model
        .clone()
        .ok_or_else(|| need("--remote-model (MAILSORT_REMOTE_MODEL)"))?;
    let key = std::env::var(REMOTE_KEY_ENV)
        .ok()
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty());
    Ok(RemoteConfig {
        url,
        model,
        api: config.remote_api,
        scores: config.remote_scores.unwrap_or(match config.remote_api {
            RemoteApi::Score => ScoreKind::Logits,
            RemoteApi::Rerank => ScoreKind::Probabilities,
        }),
        key,
        call_timeout: Duration::from_millis(config.remote_timeout_ms.max(1)),
        connect_timeout: Duration::from_millis(config.remote_timeout_ms.clamp(1, 2_000)),
        retries: config.remote_retries,
        breaker: BreakerConfig {
            failures_to_open: config.breaker_failures,
            cooldown: Duration::from_millis(config.breaker_cooldown_ms),
        },
    })
}

/// The engine chosen by `--reranker`, what it reports as, the remote's
/// status (for `/health`), and the default token budget per call.
type Loaded = (Box<dyn Scorer>, RerankerInfo, Option<RemoteStatus>, usize);

fn load_scorer(
    config: &ServeConfig,
    dir: &RerankerDir,
    manifest: &RerankerManifest,
    metrics: &Arc<Metrics>,
) -> Result<Loaded, StartupError> {
    match config.reranker {
        RerankerChoice::Onnx => {
            let ort_lib = config.ort_lib.as_ref().ok_or_else(|| {
                StartupError::Config(
                    "--reranker onnx needs --ort-lib (or ORT_DYLIB_PATH): libonnxruntime.so from the onnxruntime wheel".into(),
                )
            })?;
            let options = RuntimeOptions {
                device: config.device,
                precision: config.precision,
                tensorrt: config.tensorrt,
                threads: config.threads,
            };
            let model = CrossEncoder::load(dir, ort_lib, &options)?;
            let info = RerankerInfo {
                name: model.manifest.name.clone(),
                trained: model.manifest.trained,
                device: model.device.to_string(),
                precision: model.precision.to_string(),
                sha256: model.manifest.fp32_sha256.clone(),
            };
            let tokens = match model.device {
                Device::Cpu => CPU_BATCH_TOKENS,
                Device::Cuda | Device::TensorRt => GPU_BATCH_TOKENS,
            };
            Ok((Box::new(model), info, None, tokens))
        }
        RerankerChoice::Remote => {
            let remote = remote_config(config)?;
            let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
                StartupError::Config("the remote reranker needs the server's runtime".into())
            })?;
            let model = RemoteScorer::connect(remote, &manifest.probe, runtime, metrics.clone())?;
            let info = RerankerInfo {
                name: manifest.name.clone(),
                trained: manifest.trained,
                device: "remote".into(),
                precision: "remote".into(),
                sha256: manifest.fp32_sha256.clone(),
            };
            let status = model.status();
            // The engine batches on its own device: the GPU budget.
            Ok((Box::new(model), info, Some(status), GPU_BATCH_TOKENS))
        }
    }
}

/// Loads bundles and the reranker, warms the model up and starts the
/// batcher. Blocking; minutes on a cold CPU machine.
pub fn load(
    config: &ServeConfig,
    metrics: Arc<Metrics>,
) -> Result<(Arc<Engine>, Batcher), StartupError> {
    let started = Instant::now();
    let dir = RerankerDir(config.reranker_dir.clone());
    // The manifest alone says how to cut pairs and how to write label
    // texts, so bad flags and bad bundles fail before the model's load.
    let manifest = dir.read_manifest().map_err(ModelError::from)?;
    let token_cap = token_cap(config.token_cap, manifest.max_tokens);
    if let Some(t) = config.max_batch_tokens
        && t < token_cap
    {
        return Err(StartupError::Config(format!(
            "--max-batch-tokens {t} is smaller than one pair at the token cap ({token_cap})"
        )));
    }
    tracing::info!(
        "pairs cut at {token_cap} tokens ({})",
        match (config.token_cap, manifest.max_tokens) {
            (Some(_), _) => "--token-cap".to_string(),
            (None, Some(m)) => format!("the reranker was trained at {m}"),
            (None, None) => "default; the reranker's manifest has no training length".to_string(),
        }
    );
    let second_opinion = match &config.second_opinion_dir {
        None => None,
        Some(dir) => {
            let ort_lib = config.ort_lib.as_ref().ok_or_else(|| {
                StartupError::Config(
                    "--second-opinion-dir needs --ort-lib (or ORT_DYLIB_PATH): libonnxruntime.so from the onnxruntime wheel".into(),
                )
            })?;
            let loading = Instant::now();
            let encoder = SecondOpinionEncoder::load(dir, ort_lib, 1, config.threads)?;
            tracing::info!(
                "second-opinion encoder {} ({}-d) from {} in {:.1} s",
                encoder.encoder.name,
                encoder.embedder.dim(),
                dir.display(),
                loading.elapsed().as_secs_f32()
            );
            Some(Arc::new(encoder))
        }
    };
    let second_info = second_opinion.as_ref().map(|e| SecondOpinionInfo {
        encoder: e.encoder.clone(),
        dim: e.embedder.dim(),
    });
    // Label texts follow the format this reranker was trained on.
    let bundles = Bundles::load(
        &config.bundles,
        &config.model_dir,
        &manifest,
        second_info.as_ref(),
    )?;
    tracing::info!(
        "label texts: name, description and up to {} examples",
        manifest.label_examples
    );
    for b in bundles.iter() {
        tracing::info!(
            "bundle {} ({}): {} labels; fusion {}; second opinion {}",
            b.name,
            &b.id[..12],
            b.classifier.bundle().taxonomy.labels().len(),
            b.fusion.describe(),
            b.describe_second_opinion()
        );
        metrics
            .bundle_info
            .with_label_values(&[&b.name, b.fusion.kind()])
            .set(1);
    }
    let tokenizer = fs::read_to_string(dir.tokenizer()).map_err(|e| ModelError::Read {
        path: dir.tokenizer().display().to_string(),
        detail: e.to_string(),
    })?;
    if sha256_hex(tokenizer.as_bytes()) != manifest.tokenizer_sha256 {
        return Err(ModelError::WrongFile {
            path: dir.tokenizer().display().to_string(),
            expected: manifest.tokenizer_sha256.clone(),
            found: sha256_hex(tokenizer.as_bytes()),
        }
        .into());
    }
    let encoder = PairEncoder::new(&tokenizer, token_cap)?;
    let (mut model, reranker, remote, default_batch_tokens) =
        load_scorer(config, &dir, &manifest, &metrics)?;
    let warm = Instant::now();
    model.warm_up(token_cap).map_err(StartupError::WarmUp)?;
    tracing::info!(
        "reranker {} on {} {} (warm-up {:.1} s){}",
        reranker.name,
        reranker.device,
        reranker.precision,
        warm.elapsed().as_secs_f32(),
        if reranker.trained {
            ""
        } else {
            "; its head is an untrained placeholder, so scores carry no meaning"
        }
    );
    metrics
        .model_info
        .with_label_values(&[&reranker.device, &reranker.precision, &reranker.name])
        .set(1);
    let max_batch_tokens = config.max_batch_tokens.unwrap_or(default_batch_tokens);
    tracing::info!(
        "batches: up to {max_batch_tokens} padded tokens, {} ms wait{}",
        config.max_batch_delay_ms,
        if config.no_batching {
            ", one e-mail per model call"
        } else {
            ""
        }
    );
    let (queue, batcher) = queue::start(
        model,
        BatchConfig {
            max_batch_tokens,
            max_batch_delay: Duration::from_millis(config.max_batch_delay_ms),
            no_batching: config.no_batching,
            max_queue_pairs: config.max_queue_pairs,
        },
        metrics.clone(),
    );
    let edge = EdgePool::new(PoolConfig {
        workers: config
            .edge_workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        capacity: config
            .edge_queue_units
            .unwrap_or(4 * config.max_emails.max(1)),
        chunk: EDGE_CHUNK,
    });
    let engine = Engine {
        bundles,
        edge,
        encoder,
        queue,
        reranker,
        remote,
        second_opinion,
        limits: Limits {
            max_emails: config.max_emails,
            max_candidates: config.max_candidates,
            default_deadline: Duration::from_millis(config.default_deadline_ms),
            max_deadline: Duration::from_millis(config.max_deadline_ms),
        },
        metrics,
    };
    tracing::info!("ready after {:.1} s", started.elapsed().as_secs_f32());
    Ok((Arc::new(engine), batcher))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_cap_follows_flag_then_training_length_then_default() {
        assert_eq!(token_cap(Some(384), Some(128)), 384);
        assert_eq!(token_cap(None, Some(128)), 128);
        assert_eq!(token_cap(None, Some(200)), 200);
        assert_eq!(token_cap(None, None), 256);
        // A reranker trained shorter or longer than the backend serves is
        // brought into the range the flag accepts.
        assert_eq!(token_cap(None, Some(64)), 128);
        assert_eq!(token_cap(None, Some(1024)), 512);
    }
}
