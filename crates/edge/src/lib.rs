//! The mailsort edge: e-mail in, label decision out, without leaving the
//! machine. The same core runs natively (CLI, tests, the backend's
//! `/v1/classify`), in the browser and in a Cloudflare Worker.
//!
//! Request path: [`classify::EdgeClassifier::classify`] cleans each e-mail
//! (`mailsort_shared::clean`), embeds it ([`embed::Embedder`], tract), scores
//! labels with the bundle's learned head (and nearest exemplars, where the
//! bundle ships them, [`neighbours`]), then lets the gate
//! (`mailsort_shared::gate`) keep it at the edge or forward it.
//!
//! Modules behind the `native` feature (default) use files, threads or crates
//! that do not build for wasm32: training, model preparation, input readers,
//! the hnsw_rs index and the ONNX Runtime benchmark.

pub mod calibrate;
pub mod classify;
pub mod embed;
pub mod metrics;
pub mod neighbours;

#[cfg(feature = "native")]
pub mod inputs;
#[cfg(feature = "native")]
pub mod model_store;
#[cfg(feature = "native")]
pub mod ort_bench;
#[cfg(feature = "native")]
pub mod train;
#[cfg(feature = "wasm")]
pub mod wasm;

pub use classify::{EdgeClassifier, EdgeError};
pub use embed::{EmbedError, Embedder};
