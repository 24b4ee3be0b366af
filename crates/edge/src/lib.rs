//! The mailsort edge core: e-mail in, label decision out, without leaving
//! the machine. The same core runs natively (CLI, the backend's
//! `/v1/classify`), in the browser and in a Cloudflare Worker; those faces
//! live in their own crates and call this one.
//!
//! Request path: [`classifier::EdgeClassifier::classify`] cleans each e-mail
//! (`mailsort_shared::clean`), embeds it ([`embed::Embedder`], tract), scores
//! labels with the bundle's learned head (and nearest exemplars, where the
//! bundle ships them, [`neighbours`]), then lets the gate
//! (`mailsort_shared::gate`) keep it at the edge or forward it.
//!
//! Feature `hnsw` (in `native`) adds the hnsw_rs exemplar index, which does
//! not build for wasm32.

pub mod classifier;
pub mod embed;
pub mod neighbours;

pub use classifier::{EdgeClassifier, EdgeError};
pub use embed::{Batching, EmbedError, Embedder, EmbeddingCache, Encoder, TractEncoder};
pub use neighbours::IndexChoice;
