//! The mailsort backend: a REST API that reranks the candidate labels of the
//! e-mails an edge could not settle, with a cross-encoder on ONNX Runtime
//! (FP16 on CUDA, FP32 on CPU), batched across requests.
//!
//! Request path: [`http::server`] (auth, limits, JSON) → [`infer`]
//! (validation against the bundle, pair tokenization in [`pairs`], score
//! fusion) → [`queue`] (admission, dynamic batching by length) → a
//! [`scorer::Scorer`]: [`cross_encoder`] (one ONNX Runtime call per batch)
//! or [`remote`] (a vLLM or other engine over HTTP, behind a circuit
//! breaker). `/v1/classify` runs
//! the edge first, on the bounded pool of [`edge_pool`]. [`startup`] loads
//! bundles ([`bundles`]) and the model before `/ready` turns 200.

pub mod auth;
pub mod bundles;
pub mod config;
pub mod cross_encoder;
pub mod edge_pool;
pub mod error;
pub mod http;
pub mod infer;
pub mod metrics;
pub mod pairs;
pub mod queue;
pub mod remote;
pub mod scorer;
pub mod startup;
