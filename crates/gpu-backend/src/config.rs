//! Server settings, from flags or environment variables.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::remote::{RemoteApi, ScoreKind};

/// Which engine scores the pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RerankerChoice {
    /// The cross-encoder in-process, on ONNX Runtime.
    Onnx,
    /// A remote engine (vLLM, Infinity, text-embeddings-inference) at
    /// `--remote-url`, serving the same checkpoint.
    Remote,
}

/// Where the cross-encoder runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceChoice {
    /// CUDA with the FP16 model when a GPU is usable, else CPU with FP32.
    Auto,
    Cpu,
    Cuda,
}

/// Numeric precision of the cross-encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PrecisionChoice {
    /// FP16 on CUDA, FP32 on CPU.
    Auto,
    Fp32,
    Fp16,
}

/// Everything `mailsort-backend` is started with.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address to listen on. TLS belongs to the proxy in front.
    #[arg(long, env = "MAILSORT_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Bundle files (`mailsort build`) to serve; repeat or separate with
    /// commas. Clients select one by its id or by its file stem.
    #[arg(
        long = "bundle",
        env = "MAILSORT_BUNDLES",
        value_delimiter = ',',
        required = true
    )]
    pub bundles: Vec<PathBuf>,

    /// Folder made by `mailsort models reranker`. With `--reranker remote`
    /// its manifest and tokenizer still set the token cap, the label texts
    /// and the fusion; it must come from the checkpoint the engine serves.
    #[arg(long, env = "MAILSORT_RERANKER_DIR", default_value = "models/reranker")]
    pub reranker_dir: PathBuf,

    /// Where pairs are scored: in-process ONNX Runtime, or a remote engine.
    #[arg(long, value_enum, env = "MAILSORT_RERANKER", default_value = "onnx")]
    pub reranker: RerankerChoice,

    /// Base URL of the remote engine (`--reranker remote`), such as
    /// `http://vllm:8000`. Its API key, if any, is read from
    /// `MAILSORT_REMOTE_API_KEY`.
    #[arg(long, env = "MAILSORT_REMOTE_URL")]
    pub remote_url: Option<String>,

    /// The model name the remote engine serves the reranker under.
    #[arg(long, env = "MAILSORT_REMOTE_MODEL")]
    pub remote_model: Option<String>,

    /// The remote's API: vLLM's `/v1/score`, or `/v1/rerank` (vLLM,
    /// Infinity, text-embeddings-inference).
    #[arg(long, value_enum, env = "MAILSORT_REMOTE_API", default_value = "score")]
    pub remote_api: RemoteApi,

    /// What the remote's numbers are. Default: logits for `score` (vLLM is
    /// asked for them), probabilities for `rerank`.
    #[arg(long, value_enum, env = "MAILSORT_REMOTE_SCORES")]
    pub remote_scores: Option<ScoreKind>,

    /// Longest single call to the remote (shorter when a deadline is nearer).
    #[arg(long, env = "MAILSORT_REMOTE_TIMEOUT_MS", default_value_t = 5_000)]
    pub remote_timeout_ms: u64,

    /// Extra attempts after a failed remote call, within the deadline.
    #[arg(long, env = "MAILSORT_REMOTE_RETRIES", default_value_t = 2)]
    pub remote_retries: u32,

    /// Failed remote calls in a row that open the circuit breaker.
    #[arg(long, env = "MAILSORT_BREAKER_FAILURES", default_value_t = 5)]
    pub breaker_failures: u32,

    /// How long the open breaker refuses work before it lets one call probe.
    #[arg(long, env = "MAILSORT_BREAKER_COOLDOWN_MS", default_value_t = 5_000)]
    pub breaker_cooldown_ms: u64,

    /// Folder made by `mailsort models fetch` (the bi-encoder behind /v1/classify).
    #[arg(
        long,
        env = "MAILSORT_MODEL_DIR",
        default_value = "models/all-MiniLM-L6-v2"
    )]
    pub model_dir: PathBuf,

    /// The second-opinion encoder's folder (`scripts/models/second-opinion.sh`).
    /// Bundles with a `NAME.second-opinion.json` head beside them
    /// (`mailsort second-opinion`) then fuse its probabilities too. Needs
    /// `--ort-lib`.
    #[arg(long, env = "MAILSORT_SECOND_OPINION_DIR")]
    pub second_opinion_dir: Option<PathBuf>,

    /// `libonnxruntime.so` (from the PyPI onnxruntime or onnxruntime-gpu
    /// wheel); needed with `--reranker onnx` and `--second-opinion-dir`.
    #[arg(long, env = "ORT_DYLIB_PATH")]
    pub ort_lib: Option<PathBuf>,

    #[arg(long, value_enum, env = "MAILSORT_DEVICE", default_value = "auto")]
    pub device: DeviceChoice,

    #[arg(long, value_enum, env = "MAILSORT_PRECISION", default_value = "auto")]
    pub precision: PrecisionChoice,

    /// Put ONNX Runtime's TensorRT provider in front of CUDA.
    #[arg(long, env = "MAILSORT_TENSORRT")]
    pub tensorrt: bool,

    /// CPU threads for one model call (0 = ONNX Runtime's default: all cores).
    #[arg(long, env = "MAILSORT_THREADS", default_value_t = 0)]
    pub threads: usize,

    /// Tokens per (e-mail, label) pair, [CLS] and [SEP]s included (128–512).
    /// Default: the length the reranker was trained at (its manifest's
    /// `max_tokens`, brought into 128–512), or 256 for a reranker whose
    /// manifest does not say.
    #[arg(long, env = "MAILSORT_TOKEN_CAP",
          value_parser = clap::value_parser!(u16).range(128..=512))]
    pub token_cap: Option<u16>,

    /// Padded tokens (pairs × longest pair) per model call. Default: 16384
    /// on CUDA; 1024 on CPU, where larger calls were measured slower per
    /// pair (README, backend benchmark).
    #[arg(long, env = "MAILSORT_MAX_BATCH_TOKENS")]
    pub max_batch_tokens: Option<usize>,

    /// How long the batcher waits for more work once it holds some.
    #[arg(long, env = "MAILSORT_MAX_BATCH_DELAY_MS", default_value_t = 5)]
    pub max_batch_delay_ms: u64,

    /// Run each e-mail's candidates as their own model call (for benchmarks).
    #[arg(long)]
    pub no_batching: bool,

    /// Pairs waiting or running before new work gets 429.
    #[arg(long, env = "MAILSORT_MAX_QUEUE_PAIRS", default_value_t = 2048)]
    pub max_queue_pairs: usize,

    /// E-mails cleaned and embedded at once by `/v1/classify`'s edge stage,
    /// in chunks of 16 (default: the number of cores).
    #[arg(long, env = "MAILSORT_EDGE_WORKERS")]
    pub edge_workers: Option<usize>,

    /// Work the edge stage admits, running or waiting, in units of one
    /// e-mail plus one per 64 KiB of input; beyond it `/v1/classify` gets
    /// 429 (default: four full requests, 4 × `--max-emails`).
    #[arg(long, env = "MAILSORT_EDGE_QUEUE_UNITS")]
    pub edge_queue_units: Option<usize>,

    /// Deadline of a request that names none.
    #[arg(long, env = "MAILSORT_DEADLINE_MS", default_value_t = 10_000)]
    pub default_deadline_ms: u64,

    /// Upper bound on a request's own `deadline_ms`.
    #[arg(long, env = "MAILSORT_MAX_DEADLINE_MS", default_value_t = 60_000)]
    pub max_deadline_ms: u64,

    /// Largest request body in bytes.
    #[arg(long, env = "MAILSORT_MAX_BODY_BYTES", default_value_t = 2 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Largest number of e-mails in one request.
    #[arg(long, env = "MAILSORT_MAX_EMAILS", default_value_t = 64)]
    pub max_emails: usize,

    /// Largest number of candidate labels per e-mail.
    #[arg(long, env = "MAILSORT_MAX_CANDIDATES", default_value_t = 20)]
    pub max_candidates: usize,

    /// Requests handled at once; more get 429.
    #[arg(long, env = "MAILSORT_MAX_CONCURRENT", default_value_t = 512)]
    pub max_concurrent: usize,

    /// Connections open at once; past it, new ones wait to be accepted.
    #[arg(long, env = "MAILSORT_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,

    /// Time a client has to send a request's headers, on a new connection
    /// and between keep-alive requests; then the connection is closed.
    #[arg(long, env = "MAILSORT_HEADER_TIMEOUT_MS", default_value_t = 10_000)]
    pub header_timeout_ms: u64,

    /// Longest pause between two parts of a request body (then 408).
    #[arg(long, env = "MAILSORT_BODY_TIMEOUT_MS", default_value_t = 10_000)]
    pub body_timeout_ms: u64,

    /// File with one API key per line (`#` starts a comment).
    #[arg(long, env = "MAILSORT_API_KEYS_FILE")]
    pub api_keys_file: Option<PathBuf>,

    /// API keys, comma-separated (prefer the file: environments leak).
    #[arg(
        long,
        env = "MAILSORT_API_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub api_keys: Vec<String>,

    /// Serve without API keys (only behind a proxy that authenticates).
    #[arg(long)]
    pub no_auth: bool,
}
