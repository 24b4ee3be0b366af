//! Capacity planning from measured numbers.
//!
//! [`results`] is the file the benchmark runner writes
//! (`bench/results/<machine>-<date>.json`); [`plan::plan`] turns it and a
//! [`plan::Scenario`] into latency per layer, replicas, edge compute and
//! cost; [`render::text`] prints that plan. Every number in a plan names its
//! source: a figure of the results file, a price in [`prices`], or a stated
//! assumption.

pub mod plan;
pub mod prices;
pub mod projection;
pub mod render;
pub mod results;

use std::path::PathBuf;

pub use plan::{Plan, Scenario, plan};
pub use prices::Prices;
pub use results::BenchResults;

/// Why a plan could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CapacityError {
    #[error("cannot read results file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a mailsort results file: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "{path} has results schema {found}; this mailsort reads schema {}",
        results::SCHEMA
    )]
    Schema { path: PathBuf, found: u32 },
    #[error("the results lack what the plan needs: {0}")]
    Missing(String),
    #[error("bad scenario: {0}")]
    Scenario(String),
}
