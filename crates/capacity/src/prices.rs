//! Prices the plan uses, each with where it came from. Every one can be
//! overridden from the command line; the defaults are public list prices
//! written down on 2026-12-01 from the vendors' pages as known then, not
//! fetched from this machine (it has no network).

use serde::Serialize;

/// A price and its source.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Priced {
    pub usd: f64,
    pub source: String,
}

impl Priced {
    fn new(usd: f64, source: &str) -> Self {
        Self {
            usd,
            source: source.to_string(),
        }
    }

    /// Replaces the default with a user's value.
    pub fn overridden(usd: f64, flag: &str) -> Self {
        Self::new(usd, &format!("{flag} (given)"))
    }
}

/// A GPU the plan can place the backend on.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Card {
    /// Short name used on the command line (`h200`).
    pub key: String,
    pub name: String,
    /// Dense FP16 tensor TFLOP/s (no sparsity), from the datasheet.
    pub fp16_tflops: f64,
    pub tflops_source: String,
    pub hour: Priced,
}

/// The cards with published figures. Prices are on-demand, per GPU-hour.
pub fn cards() -> Vec<Card> {
    let card = |key: &str, name: &str, tflops: f64, tsrc: &str, usd: f64, psrc: &str| Card {
        key: key.into(),
        name: name.into(),
        fp16_tflops: tflops,
        tflops_source: tsrc.into(),
        hour: Priced::new(usd, psrc),
    };
    vec![
        card(
            "h200",
            "NVIDIA H200 SXM",
            989.0,
            "NVIDIA H200 datasheet: 1,979 TFLOPS FP16 tensor with sparsity, half dense",
            3.50,
            "typical on-demand H200 GPU-hour at GPU clouds, 2025 list prices (about $3-4)",
        ),
        card(
            "h100",
            "NVIDIA H100 SXM",
            989.0,
            "NVIDIA H100 datasheet: 1,979 TFLOPS FP16 tensor with sparsity, half dense",
            2.99,
            "Lambda on-demand H100 SXM GPU-hour, 2025 list price",
        ),
        card(
            "l4",
            "NVIDIA L4",
            121.0,
            "NVIDIA L4 datasheet: 242 TFLOPS FP16 tensor with sparsity, half dense",
            0.71,
            "Google Cloud g2-standard-4 (1 L4) on-demand, us-central1, 2025 list price",
        ),
    ]
}

/// Everything the plan prices.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Prices {
    /// One CPU core (vCPU) for an hour.
    pub cpu_core_hour: Priced,
    pub cards: Vec<Card>,
    /// Cloudflare Workers Paid (Standard usage model).
    pub workers_month: Priced,
    pub workers_included_requests: f64,
    pub workers_included_cpu_ms: f64,
    pub workers_per_million_requests: Priced,
    pub workers_per_million_cpu_ms: Priced,
}

impl Default for Prices {
    fn default() -> Self {
        const WORKERS: &str =
            "Cloudflare Workers pricing page, Paid plan, Standard usage model (2025)";
        Self {
            cpu_core_hour: Priced::new(
                0.0446,
                "AWS EC2 c7i.large on-demand, us-east-1, $0.0893/h for 2 vCPU (2025 list price)",
            ),
            cards: cards(),
            workers_month: Priced::new(5.0, WORKERS),
            workers_included_requests: 10e6,
            workers_included_cpu_ms: 30e6,
            workers_per_million_requests: Priced::new(0.30, WORKERS),
            workers_per_million_cpu_ms: Priced::new(0.02, WORKERS),
        }
    }
}
