//! The benchmark results file, `bench/results/<machine>-<date>.json`, as
//! `scripts/bench/all.sh` writes it and `mailsort plan` reads it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::CapacityError;

/// The version of this layout; a file with another is refused.
pub const SCHEMA: u32 = 1;

/// One run of the benchmark runner on one machine.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BenchResults {
    pub schema: u32,
    pub machine: Machine,
    /// The day of the run (YYYY-MM-DD).
    pub date: String,
    /// `--quick`: shorter runs, fewer e-mails.
    pub quick: bool,
    #[serde(default)]
    pub commit: Option<String>,
    /// Native edge encoder: tract against ONNX Runtime, per set and token cap.
    #[serde(default)]
    pub edge: Vec<EdgeRun>,
    /// Per-layer latency of the native edge, one e-mail at a time.
    #[serde(default)]
    pub stages: Option<EdgeStages>,
    /// The WebAssembly edge in Chromium against transformers.js.
    #[serde(default)]
    pub browser: Option<BrowserRun>,
    /// Backend settings, each saturated over real HTTP.
    #[serde(default)]
    pub backend: Vec<BackendSetting>,
    /// Offered load against latency, up to saturation, for the default
    /// backend setting.
    #[serde(default)]
    pub load_curve: Vec<LoadPoint>,
    /// Batching against one e-mail per model call, alternating rounds.
    #[serde(default)]
    pub batching_ab: Option<AbResult>,
    /// CUDA FP16 against FP32, where a GPU was there.
    #[serde(default)]
    pub gpu: Option<GpuRun>,
}

/// Where the numbers came from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Machine {
    /// CPU model name, as `/proc/cpuinfo` gives it.
    pub cpu: String,
    /// Cores the run could use.
    pub cores: usize,
    pub memory_gib: f64,
    #[serde(default)]
    pub gpu: Option<String>,
    #[serde(default)]
    pub driver: Option<String>,
}

/// p50 and p99 in milliseconds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Quantiles {
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Quantiles {
    /// From durations in seconds (any order); `None` when empty.
    pub fn from_seconds(samples: &[f64]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        let mut v = samples.to_vec();
        v.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
            1000.0 * v[i]
        };
        Some(Self {
            p50_ms: at(0.50),
            p99_ms: at(0.99),
        })
    }
}

/// `mailsort bench` on one input at one token cap (e-mails per second, one
/// thread for tract, `ort_threads` for ONNX Runtime).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EdgeRun {
    pub set: String,
    pub token_cap: usize,
    pub emails: usize,
    pub mean_tokens: f64,
    pub ort_threads: usize,
    pub tract_batch1: f64,
    pub ort_batch1: f64,
    pub tract_batch32: f64,
    pub ort_batch32: f64,
    /// tract on the W8A8 file (INT8 compute), where the run had it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tract_w8a8_batch1: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tract_w8a8_batch32: Option<f64>,
    /// ONNX Runtime on its own dynamic-INT8 export, where the run had it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ort_dynamic_int8_batch1: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ort_dynamic_int8_batch32: Option<f64>,
}

/// `mailsort bench-stages`: each layer of the edge, one e-mail at a time on
/// one thread.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EdgeStages {
    pub set: String,
    pub token_cap: usize,
    pub emails: usize,
    pub clean: Quantiles,
    pub tokenize: Quantiles,
    pub embed: Quantiles,
    pub head_gate: Quantiles,
    /// All four together, per e-mail.
    pub total: Quantiles,
}

/// `scripts/bench/browser.sh`: milliseconds per e-mail in Chromium.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BrowserRun {
    pub emails: usize,
    pub token_cap: usize,
    pub chromium: String,
    pub threads: usize,
    /// Engine name to milliseconds per e-mail; `mailsort` is the edge.
    pub ms_per_email: BTreeMap<String, f64>,
}

/// One backend setting from `scripts/bench/backend.sh`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BackendSetting {
    pub name: String,
    /// `cpu` or `cuda`.
    pub device: String,
    /// `fp32` or `fp16`.
    pub precision: String,
    pub token_cap: usize,
    pub batching: bool,
    /// Candidates per forwarded e-mail in the requests.
    pub candidates: usize,
    /// Most forwarded e-mails per second answered, closed loop.
    pub saturated_emails_per_s: f64,
    /// Mean pairs and padded tokens per model call under saturation.
    pub mean_pairs_per_call: f64,
    pub mean_padded_tokens_per_call: f64,
}

/// One step of the offered-load sweep.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LoadPoint {
    /// Forwarded e-mails per second offered (open loop).
    pub offered_per_s: f64,
    pub answered_per_s: f64,
    /// Whole request, as the client saw it.
    pub latency: Quantiles,
    /// 429 (refused at admission) and 504 (past the deadline) answers.
    pub refused: usize,
    pub late: usize,
    /// The backend's own stage histograms over this step.
    #[serde(default)]
    pub queue: Option<Quantiles>,
    #[serde(default)]
    pub tokenize: Option<Quantiles>,
    #[serde(default)]
    pub model: Option<Quantiles>,
}

/// Alternating closed-loop rounds of two servers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AbResult {
    pub batching: Vec<f64>,
    pub single: Vec<f64>,
    pub median_ratio: f64,
}

/// `scripts/gpu-check.sh`'s agreement check.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GpuRun {
    pub card: String,
    pub fp16_vs_fp32_max_abs_diff: f64,
    pub same_label: usize,
    pub emails: usize,
}

impl BenchResults {
    /// Reads and checks a results file.
    pub fn load(path: &Path) -> Result<Self, CapacityError> {
        let text = std::fs::read_to_string(path).map_err(|source| CapacityError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let r: Self = serde_json::from_str(&text).map_err(|source| CapacityError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        if r.schema != SCHEMA {
            return Err(CapacityError::Schema {
                path: path.to_path_buf(),
                found: r.schema,
            });
        }
        Ok(r)
    }

    /// The backend setting that serves this scenario: batching on `device`
    /// at the token cap nearest `token_cap` (FP16 preferred on CUDA).
    pub fn backend_for(&self, device: &str, token_cap: usize) -> Option<&BackendSetting> {
        self.backend
            .iter()
            .filter(|s| s.device == device && s.batching && s.saturated_emails_per_s > 0.0)
            .min_by_key(|s| {
                (
                    s.token_cap.abs_diff(token_cap),
                    (device == "cuda" && s.precision != "fp16") as u8,
                    s.name.clone(),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_pick_order_statistics() {
        let s: Vec<f64> = (1..=100).map(|i| i as f64 / 1000.0).collect();
        let q = Quantiles::from_seconds(&s).unwrap();
        assert_eq!((q.p50_ms, q.p99_ms), (50.0, 99.0));
        assert!(Quantiles::from_seconds(&[]).is_none());
    }
}
