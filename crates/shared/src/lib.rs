//! Everything the mailsort components agree on: the types that cross process
//! boundaries, e-mail cleaning, the label taxonomy, the gate that decides
//! between edge and backend, labelled datasets, the bundle wire format and
//! the backend's request and response bodies.
//!
//! This crate has no I/O and no threads: it compiles unchanged for
//! `wasm32-unknown-unknown`, so the browser, the Worker, the CLI and the
//! backend clean and gate e-mail with the same code.

pub mod api;
pub mod bundle;
pub mod clean;
pub mod dataset;
pub mod gate;
pub mod taxonomy;
pub mod types;

pub use bundle::{Bundle, BundleError, LinearHead};
pub use clean::{CleanConfig, CleanError, Cleaned};
pub use dataset::{DatasetError, LabelledEmail};
pub use gate::{GateConfig, GateOutcome};
pub use taxonomy::{Label, Taxonomy, TaxonomyError};
pub use types::{Candidate, DecidedBy, Decision, EmailInput, ForwardReason};
