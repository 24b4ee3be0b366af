//! Text to sentence embedding: the tokenizer, then the ONNX encoder, on
//! tract unless the caller brings another [`Encoder`] (natively,
//! `mailsort_offline::ort_encoder` runs ONNX Runtime).
//!
//! The encoder graph (made by `crates/offline/src/prepare_model.py`) takes `input_ids`
//! and `attention_mask` of shape `[batch, sequence]` and returns unit-length
//! `sentence_embedding` vectors `[batch, dim]`. Batches are padded to their
//! longest member only; [`Embedder::embed_many`] also groups texts of similar
//! length so that little compute is spent on padding, and
//! [`Embedder::embed_parallel`] spreads the batches over threads.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use thiserror::Error;
use tokenizers::{Tokenizer, TruncationParams};
use tract_onnx::prelude::*;

/// Why embedding failed.
#[derive(Debug, Error)]
pub enum EmbedError {
    #[error("tokenizer.json cannot be loaded: {0}")]
    Tokenizer(String),
    #[error("the ONNX model cannot be used as a mailsort sentence encoder: {0}")]
    Model(String),
    #[error("running the encoder failed: {0}")]
    Run(String),
}

pub type Plan = std::sync::Arc<TypedSimplePlan>;

/// Runs a sentence encoder on token ids. Implementations are shared by the
/// embedding threads, so they take `&self`.
pub trait Encoder: Send + Sync {
    /// One batch, padded to its longest member by the implementation: one
    /// unit vector per sequence, in order.
    fn encode(&self, ids: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, EmbedError>;
}

/// The encoder on tract: an optimised plan with symbolic batch and sequence.
pub struct TractEncoder {
    plan: Plan,
}

impl TractEncoder {
    /// Parses and optimises ONNX bytes.
    pub fn new(onnx: &[u8]) -> Result<Self, EmbedError> {
        let plan = load_plan(onnx).map_err(|e| EmbedError::Model(format!("{e:#}")))?;
        Ok(Self { plan })
    }
}

impl Encoder for TractEncoder {
    fn encode(&self, ids: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let (input_ids, mask) = pad_ids(ids);
        let outputs = self
            .plan
            .run(tvec![
                input_ids.into_tensor().into_tvalue(),
                mask.into_tensor().into_tvalue()
            ])
            .map_err(|e| EmbedError::Run(format!("{e:#}")))?;
        let out = outputs
            .first()
            .ok_or_else(|| EmbedError::Model("the encoder has no output".into()))?
            .to_plain_array_view::<f32>()
            .map_err(|e| EmbedError::Model(format!("output is not f32: {e}")))?;
        if out.ndim() != 2 {
            return Err(EmbedError::Model(format!(
                "expected output [batch, dim], got {:?} (is this a pooled sentence encoder?)",
                out.shape()
            )));
        }
        Ok(out
            .outer_iter()
            .map(|row| row.iter().copied().collect())
            .collect())
    }
}

/// Embeddings kept from earlier runs of the same encoder at the same token
/// cap, by text (natively, `mailsort_offline::embed_cache` keeps them in a
/// file). A miss is embedded and put back; nothing depends on a hit.
pub trait EmbeddingCache: Sync {
    fn get(&self, text: &str) -> Option<Vec<f32>>;
    fn put(&self, text: &str, embedding: &[f32]);
}

/// How many texts go through the encoder per call, and on how many threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    /// Texts per encoder call.
    pub batch: usize,
    /// Threads embedding at once (1 in WebAssembly).
    pub threads: usize,
}

impl Batching {
    /// Batches of `batch` on the caller's thread.
    pub fn one_thread(batch: usize) -> Self {
        Self { batch, threads: 1 }
    }

    /// Batches of `batch` on `threads` threads, or on every core.
    pub fn threads(batch: usize, threads: Option<usize>) -> Self {
        let threads = threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
        Self { batch, threads }
    }
}

/// A loaded tokenizer and encoder.
pub struct Embedder {
    tokenizer: Tokenizer,
    encoder: Box<dyn Encoder>,
    model_id: String,
    dim: usize,
    token_cap: usize,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("model_id", &self.model_id)
            .field("dim", &self.dim)
            .field("token_cap", &self.token_cap)
            .finish_non_exhaustive()
    }
}

impl Embedder {
    /// Loads an encoder from ONNX bytes, on tract, and a `tokenizer.json`
    /// text. Sequences are truncated at `token_cap` tokens ([CLS] and [SEP]
    /// included).
    pub fn new(onnx: &[u8], tokenizer_json: &str, token_cap: usize) -> Result<Self, EmbedError> {
        let encoder = TractEncoder::new(onnx)?;
        Self::with_encoder(
            Box::new(encoder),
            mailsort_shared::digest::sha256_hex(onnx),
            tokenizer_json,
            token_cap,
        )
    }

    /// Wraps an already loaded encoder. `model_id` names what it computes
    /// (the SHA-256 of its file, with the engine where engines differ), so
    /// that cached embeddings of one encoder are never served for another.
    pub fn with_encoder(
        encoder: Box<dyn Encoder>,
        model_id: String,
        tokenizer_json: &str,
        token_cap: usize,
    ) -> Result<Self, EmbedError> {
        let mut tokenizer: Tokenizer = tokenizer_json
            .parse()
            .map_err(|e: tokenizers::Error| EmbedError::Tokenizer(e.to_string()))?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: token_cap,
                ..Default::default()
            }))
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        tokenizer.with_padding(None);

        let mut embedder = Self {
            tokenizer,
            encoder,
            model_id,
            dim: 0,
            token_cap,
        };
        // A probe run both checks the graph's contract and learns its width.
        let probe = embedder.embed(&["mailsort"])?;
        embedder.dim = probe[0].len();
        if embedder.dim == 0 {
            return Err(EmbedError::Model(
                "the encoder returns empty vectors".into(),
            ));
        }
        Ok(embedder)
    }

    /// Embedding width.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// What the encoder computes, for cache keys: see [`Self::with_encoder`].
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// Token cap in force.
    pub fn token_cap(&self) -> usize {
        self.token_cap
    }

    /// Token ids of one text (truncated), for inspection and benchmarks.
    pub fn tokenize(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>, EmbedError> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        Ok(encodings
            .into_iter()
            .map(|e| e.get_ids().to_vec())
            .collect())
    }

    /// Embeds the texts as one batch, padded to the longest.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let ids = self.tokenize(texts)?;
        self.embed_ids(&ids)
    }

    /// Embeds many texts in batches of `batch_size`, grouping texts of similar
    /// length; results come back in input order.
    pub fn embed_many(
        &self,
        texts: &[&str],
        batch_size: usize,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.embed_parallel(texts, Batching::one_thread(batch_size), &|_| {})
    }

    /// Like [`embed_many`](Self::embed_many), spread over
    /// `batching.threads` threads (more than one needs native threads), and
    /// calling `progress` with the number of texts each finished batch held.
    /// Batches are cut from the longest texts down, so the slowest start
    /// first and the threads finish together.
    pub fn embed_parallel(
        &self,
        texts: &[&str],
        batching: Batching,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        let ids = self.tokenize(texts)?;
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));
        let batches: Vec<&[usize]> = order.chunks(batching.batch.max(1)).collect();
        let next = AtomicUsize::new(0);
        let out = Mutex::new(vec![Vec::new(); ids.len()]);
        let first_error = Mutex::new(None);
        let work = || {
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                let Some(chunk) = batches.get(b) else { break };
                let seqs: Vec<Vec<u32>> = chunk.iter().map(|&i| ids[i].clone()).collect();
                match self.embed_ids(&seqs) {
                    Ok(vs) => {
                        let mut out = out.lock().expect("no worker panics while holding the lock");
                        for (&i, v) in chunk.iter().zip(vs) {
                            out[i] = v;
                        }
                    }
                    Err(e) => {
                        first_error
                            .lock()
                            .expect("no worker panics while holding the lock")
                            .get_or_insert(e);
                        break;
                    }
                }
                progress(chunk.len());
            }
        };
        let threads = batching.threads.clamp(1, batches.len().max(1));
        if threads == 1 {
            // No thread is spawned: WebAssembly has none.
            work();
        } else {
            std::thread::scope(|s| {
                for _ in 0..threads {
                    s.spawn(work);
                }
            });
        }
        if let Some(e) = first_error.into_inner().expect("workers have finished") {
            return Err(e);
        }
        Ok(out.into_inner().expect("workers have finished"))
    }

    /// Like [`embed_parallel`](Self::embed_parallel), taking what `cache`
    /// already holds and embedding (and caching) only the rest.
    pub fn embed_cached(
        &self,
        texts: &[&str],
        batching: Batching,
        progress: &(dyn Fn(usize) + Sync),
        cache: Option<&dyn EmbeddingCache>,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        let Some(cache) = cache else {
            return self.embed_parallel(texts, batching, progress);
        };
        let mut out: Vec<Option<Vec<f32>>> = texts.iter().map(|t| cache.get(t)).collect();
        let missing: Vec<usize> = (0..texts.len()).filter(|&i| out[i].is_none()).collect();
        progress(texts.len() - missing.len());
        let todo: Vec<&str> = missing.iter().map(|&i| texts[i]).collect();
        let fresh = self.embed_parallel(&todo, batching, progress)?;
        for (i, v) in missing.into_iter().zip(fresh) {
            cache.put(texts[i], &v);
            out[i] = Some(v);
        }
        Ok(out
            .into_iter()
            .map(|v| v.expect("every text was a hit or has just been embedded"))
            .collect())
    }

    /// Runs the encoder on already tokenised sequences (one batch).
    pub fn embed_ids(&self, ids: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let out = self.encoder.encode(ids)?;
        if out.len() != ids.len() {
            return Err(EmbedError::Model(format!(
                "the encoder returned {} vectors for {} sequences",
                out.len(),
                ids.len()
            )));
        }
        Ok(out)
    }
}

/// `[batch, longest]` ids and attention mask, zero-padded: the encoder's inputs.
pub fn pad_ids(ids: &[Vec<u32>]) -> (tract_ndarray::Array2<i64>, tract_ndarray::Array2<i64>) {
    let longest = ids.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let mut input = tract_ndarray::Array2::<i64>::zeros((ids.len(), longest));
    let mut mask = tract_ndarray::Array2::<i64>::zeros((ids.len(), longest));
    for (r, seq) in ids.iter().enumerate() {
        for (c, &id) in seq.iter().enumerate() {
            input[[r, c]] = id as i64;
            mask[[r, c]] = 1;
        }
    }
    (input, mask)
}

/// Parses and optimises an encoder graph with symbolic batch and sequence
/// dimensions (public for the profiling example).
pub fn load_plan(onnx: &[u8]) -> TractResult<Plan> {
    let mut model = tract_onnx::onnx()
        .with_ignore_value_info(true)
        .model_for_read(&mut std::io::Cursor::new(onnx))?;
    if model.inputs.len() != 2 {
        return Err(TractError::msg(format!(
            "expected 2 inputs (input_ids, attention_mask), found {}",
            model.inputs.len()
        )));
    }
    let batch = model.sym("batch");
    let seq = model.sym("sequence");
    for i in 0..2 {
        model.set_input_fact(
            i,
            InferenceFact::dt_shape(i64::datum_type(), tvec![batch.to_dim(), seq.to_dim()]),
        )?;
    }
    model.into_optimized()?.into_runnable()
}
