//! Everything the mailsort components agree on: the types that cross process
//! boundaries, e-mail cleaning, the label taxonomy, the gate that decides
//! between edge and backend, labelled datasets, the bundle wire format, the
//! backend's request and response bodies with the one error vocabulary, the
//! bearer-key check, the layout of prepared model folders, and the backend's
//! second-opinion head.
//!
//! This crate has no threads and no I/O beyond reading a model folder's
//! manifest: it compiles unchanged for `wasm32-unknown-unknown`, so the
//! browser, the Worker, the CLI and the backend clean, gate and answer with
//! the same code.

pub mod api;
pub mod auth;
pub mod budget;
pub mod bundle;
pub mod clean;
pub mod dataset;
pub mod digest;
pub mod fusion;
pub mod gate;
pub mod manifest;
pub mod second_opinion;
pub mod taxonomy;
pub mod types;

pub use api::{ErrorBody, ErrorCode};
pub use bundle::{Bundle, BundleError, LinearHead};
pub use clean::{CleanConfig, CleanError, Cleaned};
pub use dataset::{DatasetError, LabelledEmail};
pub use digest::sha256_hex;
pub use gate::{GateConfig, GateOutcome};
pub use taxonomy::{Label, Taxonomy, TaxonomyError};
pub use types::{Candidate, DecidedBy, Decision, EmailInput, ForwardReason};
