//! `mailsort plan`: the capacity plan for a mail volume, from a benchmark
//! results file (see docs/capacity.md).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use mailsort_capacity::prices::Priced;
use mailsort_capacity::{BenchResults, Prices, Scenario, render};

#[derive(Args)]
pub struct PlanArgs {
    /// The benchmark results (bench/results/<machine>-<date>.json, written
    /// by scripts/bench/all.sh).
    #[arg(long)]
    results: PathBuf,
    /// E-mails a day.
    #[arg(long, default_value_t = 200_000.0)]
    emails_per_day: f64,
    /// E-mails a second at peak [default: the seed's ratio to the average,
    /// 40/s for 200,000 a day].
    #[arg(long)]
    peak_per_second: Option<f64>,
    /// Share forwarded to the backend.
    #[arg(long, default_value_t = 0.15)]
    forward_rate: f64,
    /// Candidates reranked per forwarded e-mail.
    #[arg(long, default_value_t = 5)]
    candidates: usize,
    #[arg(long, default_value_t = 256)]
    token_cap: usize,
    /// Assumed round trip edge → backend (p99 is taken as twice it).
    #[arg(long, default_value_t = 50.0)]
    network_rtt_ms: f64,
    /// Share of a replica's measured saturation to fill at peak.
    #[arg(long, default_value_t = 0.6)]
    target_utilization: f64,
    #[arg(long, default_value_t = 2)]
    min_replicas: usize,
    /// Queue wait the autoscaler should hold.
    #[arg(long, default_value_t = 250.0)]
    queue_wait_ms: f64,
    /// Share of a GPU's dense FP16 peak that projections assume.
    #[arg(long, default_value_t = 0.15)]
    gpu_efficiency: f64,
    /// One CPU core-hour, USD [default: docs/capacity.md].
    #[arg(long)]
    cpu_core_hour_usd: Option<f64>,
    /// One GPU-hour, USD, for every card [default: per card, docs/capacity.md].
    #[arg(long)]
    gpu_hour_usd: Option<f64>,
    /// Cloudflare Workers: USD per million requests past the included ones.
    #[arg(long)]
    workers_usd_per_million_requests: Option<f64>,
    /// Cloudflare Workers: USD per million CPU-ms past the included ones.
    #[arg(long)]
    workers_usd_per_million_cpu_ms: Option<f64>,
    /// Print the plan as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: PlanArgs) -> Result<()> {
    let results = BenchResults::load(&a.results)?;
    let seed = Scenario::seed();
    let scenario = Scenario {
        emails_per_day: a.emails_per_day,
        peak_per_second: a
            .peak_per_second
            .unwrap_or(a.emails_per_day / 86_400.0 * Scenario::seed_peak_ratio()),
        forward_rate: a.forward_rate,
        candidates: a.candidates,
        token_cap: a.token_cap,
        network_rtt_ms: a.network_rtt_ms,
        target_utilization: a.target_utilization,
        min_replicas: a.min_replicas,
        queue_wait_ms: a.queue_wait_ms,
        gpu_efficiency: a.gpu_efficiency,
        ..seed
    };
    let mut prices = Prices::default();
    if let Some(v) = a.cpu_core_hour_usd {
        prices.cpu_core_hour = Priced::overridden(v, "--cpu-core-hour-usd");
    }
    if let Some(v) = a.gpu_hour_usd {
        for c in &mut prices.cards {
            c.hour = Priced::overridden(v, "--gpu-hour-usd");
        }
    }
    if let Some(v) = a.workers_usd_per_million_requests {
        prices.workers_per_million_requests =
            Priced::overridden(v, "--workers-usd-per-million-requests");
    }
    if let Some(v) = a.workers_usd_per_million_cpu_ms {
        prices.workers_per_million_cpu_ms =
            Priced::overridden(v, "--workers-usd-per-million-cpu-ms");
    }
    let file = a.results.display().to_string();
    let plan = mailsort_capacity::plan(&scenario, &results, &file, &prices)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
    } else {
        print!("{}", render::text(&plan));
    }
    Ok(())
}
