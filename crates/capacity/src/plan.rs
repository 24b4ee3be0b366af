//! The capacity plan: from a scenario (volume, peak, forwarded share,
//! candidates) and a results file to latency per layer, backend replicas,
//! edge compute, cost, and the points where the answer changes. Every
//! number carries its source: a figure of the results file, a price, or a
//! stated assumption.

use serde::Serialize;

use crate::CapacityError;
use crate::prices::{Card, Prices};
use crate::projection::ModelShape;
use crate::results::{BackendSetting, BenchResults, LoadPoint, Quantiles};

/// What the user plans for, and the assumptions the plan makes.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Scenario {
    pub emails_per_day: f64,
    pub peak_per_second: f64,
    /// Share of e-mails the edge forwards.
    pub forward_rate: f64,
    /// Candidates reranked per forwarded e-mail.
    pub candidates: usize,
    pub token_cap: usize,
    /// Assumed network round trip edge → backend, p50; p99 is taken as twice it.
    pub network_rtt_ms: f64,
    /// Share of a replica's measured saturation the plan fills at peak.
    pub target_utilization: f64,
    /// Replicas kept up at any load (availability).
    pub min_replicas: usize,
    /// Queue wait the autoscaler should hold, for its queue-pairs target.
    pub queue_wait_ms: f64,
    /// Share of a GPU's dense FP16 peak a projection assumes is reached.
    pub gpu_efficiency: f64,
    /// The backend's default request deadline.
    pub deadline_ms: f64,
}

impl Scenario {
    /// The seed's scenario: 200,000 e-mails a day, peaks of 40 a second, 15%
    /// forwarded (the middle of 10-20%), top-5 reranking.
    pub fn seed() -> Self {
        Self {
            emails_per_day: 200_000.0,
            peak_per_second: 40.0,
            forward_rate: 0.15,
            candidates: 5,
            token_cap: 256,
            network_rtt_ms: 50.0,
            target_utilization: 0.6,
            min_replicas: 2,
            queue_wait_ms: 250.0,
            gpu_efficiency: 0.15,
            deadline_ms: 10_000.0,
        }
    }

    /// The seed's peak-to-average ratio (40/s against 200,000 a day), used to
    /// scale the peak with the volume when no peak is given.
    pub fn seed_peak_ratio() -> f64 {
        40.0 / (200_000.0 / 86_400.0)
    }

    fn check(&self) -> Result<(), CapacityError> {
        let bad = |what: &str| Err(CapacityError::Scenario(what.to_string()));
        if !(self.emails_per_day > 0.0 && self.emails_per_day.is_finite()) {
            return bad("--emails-per-day must be a positive number");
        }
        if !(self.peak_per_second > 0.0 && self.peak_per_second.is_finite()) {
            return bad("--peak-per-second must be a positive number");
        }
        if self.peak_per_second < self.emails_per_day / 86_400.0 {
            return bad("--peak-per-second is below the day's average rate");
        }
        if !(0.0..=1.0).contains(&self.forward_rate) {
            return bad("--forward-rate must be between 0 and 1");
        }
        if self.candidates == 0 {
            return bad("--candidates must be at least 1");
        }
        if !(self.target_utilization > 0.0 && self.target_utilization <= 1.0) {
            return bad("--target-utilization must be in (0, 1]");
        }
        if !(self.gpu_efficiency > 0.0 && self.gpu_efficiency <= 1.0) {
            return bad("--gpu-efficiency must be in (0, 1]");
        }
        if self.min_replicas == 0 {
            return bad("--min-replicas must be at least 1");
        }
        Ok(())
    }

    fn forwarded_pairs_at_peak(&self) -> f64 {
        self.peak_per_second * self.forward_rate * self.candidates as f64
    }

    fn forwarded_pairs_average(&self) -> f64 {
        self.emails_per_day / 86_400.0 * self.forward_rate * self.candidates as f64
    }

    fn scaled(&self, by: f64) -> Self {
        Self {
            emails_per_day: self.emails_per_day * by,
            peak_per_second: self.peak_per_second * by,
            ..self.clone()
        }
    }
}

/// A number and where it came from.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Sourced {
    pub value: f64,
    pub source: String,
}

fn sourced(value: f64, source: impl Into<String>) -> Sourced {
    Sourced {
        value,
        source: source.into(),
    }
}

/// One layer of an e-mail's path.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Layer {
    pub name: String,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub source: String,
}

/// The backend on one kind of hardware.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Placement {
    pub hardware: String,
    /// False: a projection from the model's FLOPs, not a measurement.
    pub measured: bool,
    /// Reranked pairs per second one replica sustains.
    pub pairs_per_s: Sourced,
    pub replicas_at_peak: usize,
    /// Replicas for the day's average load (what an autoscaler runs most of
    /// the day), never below the minimum.
    pub replicas_average: usize,
    pub hour_usd: Sourced,
    /// Replicas for the peak, all day.
    pub usd_per_day_peak: f64,
    /// Replicas following the load (the average's count all day).
    pub usd_per_day_autoscaled: f64,
    pub usd_per_month_autoscaled: f64,
}

/// What the edge costs, wherever it runs.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EdgeCompute {
    /// Native CLI, one thread: CPU-ms per e-mail.
    pub native_cpu_ms: Option<Sourced>,
    /// Chromium, one thread: ms per e-mail (the user's device pays).
    pub browser_ms: Option<Sourced>,
    /// A Cloudflare Worker: CPU-ms per e-mail.
    pub workers_cpu_ms: Sourced,
    pub workers_requests_per_month: f64,
    pub workers_cpu_ms_per_month: f64,
    pub workers_usd_per_month: f64,
    /// Native edge on rented cores instead, per month.
    pub native_usd_per_month: Option<f64>,
}

/// A large reranker at this scenario.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LargeReranker {
    pub model: ModelShape,
    pub flops_per_pair: f64,
    /// One CPU replica like the measured one, projected from its FLOP/s.
    pub cpu_pairs_per_s: f64,
    /// Seconds of a whole CPU replica per forwarded e-mail.
    pub cpu_seconds_per_email: f64,
    pub cpu_replicas_at_peak: usize,
    pub gpus: Vec<Placement>,
    pub verdict: String,
}

/// Suggested autoscaler targets (deploy/k8s/hpa.yaml).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Autoscaler {
    pub min_replicas: usize,
    /// CPU replicas for twice the peak.
    pub max_replicas: usize,
    /// `mailsort_queue_pairs` per pod: the pairs a replica clears in the
    /// queue wait aimed for.
    pub queue_pairs_target: usize,
    /// `mailsort_in_flight_requests` per pod, by Little's law: e-mails per
    /// second at the target utilisation times their p50 latency.
    pub in_flight_target: usize,
    pub source: String,
}

/// Where the answer changes.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Changes {
    /// The volume (scaled with the same peak-to-average ratio) from which
    /// the cheapest GPU placement costs less than CPU replicas.
    pub gpu_cheaper_from_emails_per_day: Option<f64>,
    pub gpu_cheaper_from_peak_per_second: Option<f64>,
    pub gpu_cheaper_card: Option<String>,
    pub large_reranker: LargeReranker,
    pub autoscaler: Autoscaler,
}

/// The whole plan.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Plan {
    pub scenario: Scenario,
    pub results_file: String,
    pub machine: String,
    pub forwarded_per_s_at_peak: f64,
    pub pairs_per_s_at_peak: f64,
    /// The edge's layers, then the forwarded e-mail's extra ones.
    pub edge_layers: Vec<Layer>,
    pub backend_layers: Vec<Layer>,
    /// Kept at the edge: the edge layers summed.
    pub kept_path: Layer,
    /// Forwarded: edge + network + queue + rerank, summed.
    pub forwarded_path: Layer,
    pub placements: Vec<Placement>,
    pub edge: EdgeCompute,
    pub changes: Changes,
    pub notes: Vec<String>,
}

fn replicas(need_pairs: f64, per_replica: f64, s: &Scenario) -> usize {
    let usable = per_replica * s.target_utilization;
    ((need_pairs / usable).ceil() as usize).max(s.min_replicas)
}

fn placement(
    hardware: String,
    measured: bool,
    pairs_per_s: Sourced,
    hour_usd: Sourced,
    s: &Scenario,
) -> Placement {
    let peak = replicas(s.forwarded_pairs_at_peak(), pairs_per_s.value, s);
    let average = replicas(s.forwarded_pairs_average(), pairs_per_s.value, s);
    let day = |n: usize| n as f64 * hour_usd.value * 24.0;
    Placement {
        hardware,
        measured,
        replicas_at_peak: peak,
        replicas_average: average,
        usd_per_day_peak: day(peak),
        usd_per_day_autoscaled: day(average),
        usd_per_month_autoscaled: day(average) * 30.0,
        pairs_per_s,
        hour_usd,
    }
}

/// Tokens per reranked pair as the backend computed them (padded).
fn tokens_per_pair(b: &BackendSetting, s: &Scenario) -> f64 {
    if b.mean_pairs_per_call > 0.0 && b.mean_padded_tokens_per_call > 0.0 {
        b.mean_padded_tokens_per_call / b.mean_pairs_per_call
    } else {
        s.token_cap as f64
    }
}

fn card_placement(
    card: &Card,
    results: &BenchResults,
    file: &str,
    model: &ModelShape,
    tokens: f64,
    s: &Scenario,
) -> Placement {
    let on_this_card = results
        .machine
        .gpu
        .as_deref()
        .is_some_and(|g| g.to_lowercase().contains(&card.key));
    let measured = if model == &ModelShape::minilm_l6() && on_this_card {
        results.backend_for("cuda", s.token_cap)
    } else {
        None
    };
    let pairs = match measured {
        Some(b) => sourced(
            b.saturated_emails_per_s * b.candidates as f64,
            format!(
                "{file}: backend \"{}\" saturated at {:.1} e-mails/s x {} candidates",
                b.name, b.saturated_emails_per_s, b.candidates
            ),
        ),
        None => sourced(
            card.fp16_tflops * 1e12 * s.gpu_efficiency / model.flops_per_pair(tokens),
            format!(
                "projection: {:.0} TFLOP/s dense FP16 ({}) x {:.0}% efficiency (--gpu-efficiency) / {:.2} GFLOP per pair ({:.0} tokens)",
                card.fp16_tflops,
                card.tflops_source,
                100.0 * s.gpu_efficiency,
                model.flops_per_pair(tokens) / 1e9,
                tokens
            ),
        ),
    };
    placement(
        format!(
            "{}{}",
            card.name,
            if measured.is_some() {
                ""
            } else {
                " (projected)"
            }
        ),
        measured.is_some(),
        pairs,
        sourced(card.hour.usd, card.hour.source.clone()),
        s,
    )
}

/// The load-curve step at or just above `per_s` (the last one if the load
/// is past the curve).
fn load_point(curve: &[LoadPoint], per_s: f64) -> Option<(&LoadPoint, bool)> {
    let mut sorted: Vec<&LoadPoint> = curve.iter().collect();
    sorted.sort_by(|a, b| a.offered_per_s.total_cmp(&b.offered_per_s));
    match sorted.iter().find(|p| p.offered_per_s >= per_s) {
        Some(p) => Some((p, true)),
        None => sorted.last().map(|p| (*p, false)),
    }
}

fn sum_layers(name: &str, layers: &[&Layer]) -> Layer {
    Layer {
        name: name.into(),
        p50_ms: layers.iter().map(|l| l.p50_ms).sum(),
        p99_ms: layers.iter().map(|l| l.p99_ms).sum(),
        source: "sum of the layers above (p99s summed: an upper bound)".into(),
    }
}

fn layer(name: &str, q: Quantiles, source: String) -> Layer {
    Layer {
        name: name.into(),
        p50_ms: q.p50_ms,
        p99_ms: q.p99_ms,
        source,
    }
}

/// Builds the plan. `file` names the results file in every source.
pub fn plan(
    s: &Scenario,
    results: &BenchResults,
    file: &str,
    prices: &Prices,
) -> Result<Plan, CapacityError> {
    s.check()?;
    let cpu = results.backend_for("cpu", s.token_cap).ok_or_else(|| {
        CapacityError::Missing(format!(
            "{file} has no CPU backend setting with batching: run scripts/bench/all.sh"
        ))
    })?;
    let mut notes = Vec::new();
    if cpu.token_cap != s.token_cap {
        notes.push(format!(
            "no backend run at token cap {}: the plan uses the nearest, {} (\"{}\")",
            s.token_cap, cpu.token_cap, cpu.name
        ));
    }
    if cpu.candidates != s.candidates {
        notes.push(format!(
            "the backend was measured with {} candidates per e-mail; capacity is counted in pairs, so {} candidates scale it",
            cpu.candidates, s.candidates
        ));
    }
    let cores = results.machine.cores.max(1) as f64;
    let cpu_pairs = sourced(
        cpu.saturated_emails_per_s * cpu.candidates as f64,
        format!(
            "{file}: backend \"{}\" saturated at {:.1} e-mails/s x {} candidates on {} ({} cores)",
            cpu.name, cpu.saturated_emails_per_s, cpu.candidates, results.machine.cpu, cores
        ),
    );
    let cpu_hour = sourced(
        prices.cpu_core_hour.usd * cores,
        format!(
            "{} cores x ${}/core-hour ({})",
            cores, prices.cpu_core_hour.usd, prices.cpu_core_hour.source
        ),
    );
    let cpu_place = placement(
        format!("CPU replica like the measured one ({} cores)", cores),
        true,
        cpu_pairs.clone(),
        cpu_hour,
        s,
    );
    let tokens = tokens_per_pair(cpu, s);
    let reranker = ModelShape::minilm_l6();
    let mut placements = vec![cpu_place.clone()];
    for card in &prices.cards {
        placements.push(card_placement(card, results, file, &reranker, tokens, s));
    }

    // Latency per layer.
    let mut edge_layers = Vec::new();
    match &results.stages {
        Some(st) => {
            let src = |what: &str| {
                format!(
                    "{file}: stages.{what} ({} e-mails of {}, one at a time, one thread)",
                    st.emails, st.set
                )
            };
            edge_layers.push(layer("cleaning", st.clean, src("clean")));
            edge_layers.push(layer("tokenising", st.tokenize, src("tokenize")));
            edge_layers.push(layer("embedding (INT8 encoder)", st.embed, src("embed")));
            edge_layers.push(layer("head and gate", st.head_gate, src("head_gate")));
        }
        None => notes.push(format!(
            "{file} has no edge stage timings: the edge layers are missing"
        )),
    }
    let forwarded_per_s = s.peak_per_second * s.forward_rate;
    let per_replica = forwarded_per_s / cpu_place.replicas_at_peak as f64;
    let mut backend_layers = vec![Layer {
        name: "network round trip".into(),
        p50_ms: s.network_rtt_ms,
        p99_ms: 2.0 * s.network_rtt_ms,
        source: "assumption: --network-rtt-ms, p99 twice p50".into(),
    }];
    match load_point(&results.load_curve, per_replica) {
        Some((p, within)) => {
            let at = format!(
                "{file}: load_curve at {:.1} forwarded e-mails/s offered ({}a replica's {:.1}/s at peak)",
                p.offered_per_s,
                if within {
                    "the first step at or above "
                } else {
                    "past the curve: its last step, below "
                },
                per_replica
            );
            if !within {
                notes.push(format!(
                    "a replica's peak load ({per_replica:.1}/s) is past the measured load curve"
                ));
            }
            match (p.queue, p.tokenize, p.model) {
                (Some(q), Some(t), Some(m)) => {
                    backend_layers.push(layer(
                        "backend queue wait",
                        q,
                        format!("{at}, stage queue"),
                    ));
                    backend_layers.push(Layer {
                        name: "rerank (tokenise + model)".into(),
                        p50_ms: t.p50_ms + m.p50_ms,
                        p99_ms: t.p99_ms + m.p99_ms,
                        source: format!("{at}, stages tokenize + model"),
                    });
                }
                _ => backend_layers.push(layer(
                    "backend (queue + rerank)",
                    p.latency,
                    format!("{at}, whole request"),
                )),
            }
        }
        None => notes.push(format!(
            "{file} has no load curve: backend latency is missing"
        )),
    }
    let kept_path = sum_layers("kept at the edge", &edge_layers.iter().collect::<Vec<_>>());
    let forwarded_path = sum_layers(
        "forwarded",
        &edge_layers
            .iter()
            .chain(backend_layers.iter())
            .collect::<Vec<_>>(),
    );

    let edge = edge_compute(s, results, file, prices, &mut notes);
    let changes = changes(
        s, results, file, prices, &cpu_place, &cpu_pairs, tokens, cpu,
    );
    Ok(Plan {
        scenario: s.clone(),
        results_file: file.to_string(),
        machine: format!(
            "{}, {} cores, {:.0} GiB{}",
            results.machine.cpu,
            results.machine.cores,
            results.machine.memory_gib,
            results
                .machine
                .gpu
                .as_deref()
                .map(|g| format!(", {g}"))
                .unwrap_or_default()
        ),
        forwarded_per_s_at_peak: forwarded_per_s,
        pairs_per_s_at_peak: s.forwarded_pairs_at_peak(),
        edge_layers,
        backend_layers,
        kept_path,
        forwarded_path,
        placements,
        edge,
        changes,
        notes,
    })
}

fn edge_compute(
    s: &Scenario,
    results: &BenchResults,
    file: &str,
    prices: &Prices,
    notes: &mut Vec<String>,
) -> EdgeCompute {
    let native = results.stages.as_ref().map(|st| {
        sourced(
            st.total.p50_ms,
            format!("{file}: stages.total p50 (native, one thread)"),
        )
    });
    let browser = results.browser.as_ref().and_then(|b| {
        b.ms_per_email.get("mailsort").map(|&ms| {
            sourced(
                ms,
                format!(
                    "{file}: browser.ms_per_email.mailsort (Chromium {}, {} thread)",
                    b.chromium, b.threads
                ),
            )
        })
    });
    // workerd runs the same V8 WebAssembly engine as Chromium.
    let workers = match (&browser, &native) {
        (Some(b), _) => sourced(
            b.value,
            "assumption: a Worker spends what Chromium's WebAssembly edge does (same V8 engine)",
        ),
        (None, Some(n)) => {
            notes.push(
                "no browser result: the Worker's CPU time is taken as twice the native edge's"
                    .into(),
            );
            sourced(
                2.0 * n.value,
                "assumption: twice the native edge (no browser result)",
            )
        }
        (None, None) => sourced(f64::NAN, "no edge timing in the results"),
    };
    let per_month = s.emails_per_day * 30.0;
    let cpu_ms = per_month * workers.value;
    let over = |used: f64, included: f64| (used - included).max(0.0) / 1e6;
    let workers_usd = prices.workers_month.usd
        + over(per_month, prices.workers_included_requests)
            * prices.workers_per_million_requests.usd
        + over(cpu_ms, prices.workers_included_cpu_ms) * prices.workers_per_million_cpu_ms.usd;
    let native_usd = native
        .as_ref()
        .map(|n| per_month * n.value / 3.6e6 * prices.cpu_core_hour.usd);
    EdgeCompute {
        native_cpu_ms: native,
        browser_ms: browser,
        workers_cpu_ms: workers,
        workers_requests_per_month: per_month,
        workers_cpu_ms_per_month: cpu_ms,
        workers_usd_per_month: workers_usd,
        native_usd_per_month: native_usd,
    }
}

#[allow(clippy::too_many_arguments)]
fn changes(
    s: &Scenario,
    results: &BenchResults,
    file: &str,
    prices: &Prices,
    cpu_place: &Placement,
    cpu_pairs: &Sourced,
    tokens: f64,
    cpu: &BackendSetting,
) -> Changes {
    let reranker = ModelShape::minilm_l6();
    // From which volume does the cheapest GPU beat CPU replicas, both sized
    // for the peak? Scanned in 2% steps of the scenario's volume.
    let mut crossover = None;
    let mut by = 1e-3;
    while by < 1e4 {
        let t = s.scaled(by);
        let cpu_cost = replicas(t.forwarded_pairs_at_peak(), cpu_pairs.value, &t) as f64
            * cpu_place.hour_usd.value;
        let best_gpu = prices
            .cards
            .iter()
            .map(|c| {
                let p = card_placement(c, results, file, &reranker, tokens, &t);
                (p.replicas_at_peak as f64 * c.hour.usd, c.name.clone())
            })
            .min_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((gpu_cost, card)) = best_gpu
            && gpu_cost < cpu_cost
        {
            crossover = Some((t.emails_per_day, t.peak_per_second, card));
            break;
        }
        by *= 1.02;
    }

    let large = ModelShape::llm_1_5b();
    let cpu_flops = cpu_pairs.value * reranker.flops_per_pair(tokens);
    let fpp = large.flops_per_pair(tokens);
    let cpu_large = cpu_flops / fpp;
    let cpu_seconds = s.candidates as f64 / cpu_large;
    let cpu_large_replicas = replicas(s.forwarded_pairs_at_peak(), cpu_large, s);
    let gpus: Vec<Placement> = prices
        .cards
        .iter()
        .map(|c| card_placement(c, results, file, &large, tokens, s))
        .collect();
    let cheapest = gpus
        .iter()
        .min_by(|a, b| a.usd_per_day_peak.total_cmp(&b.usd_per_day_peak));
    let verdict = if cpu_seconds * 1000.0 > s.deadline_ms {
        format!(
            "one forwarded e-mail would take {:.1} s of a whole CPU replica, past the {:.0} s deadline: it needs GPUs behind vLLM ({})",
            cpu_seconds,
            s.deadline_ms / 1000.0,
            cheapest
                .map(|p| format!("{} x {}", p.replicas_at_peak, p.hardware))
                .unwrap_or_default()
        )
    } else {
        format!(
            "{} CPU replicas at peak (each e-mail {:.1} s of a replica); on GPUs behind vLLM: {}",
            cpu_large_replicas,
            cpu_seconds,
            cheapest
                .map(|p| format!("{} x {}", p.replicas_at_peak, p.hardware))
                .unwrap_or_default()
        )
    };

    let usable_pairs = cpu_pairs.value * s.target_utilization;
    let usable_emails = usable_pairs / s.candidates as f64;
    let p50_s = load_point(&results.load_curve, usable_emails)
        .map(|(p, _)| p.latency.p50_ms / 1000.0)
        .unwrap_or(0.1);
    let max_replicas = replicas(2.0 * s.forwarded_pairs_at_peak(), cpu_pairs.value, s);
    Changes {
        gpu_cheaper_from_emails_per_day: crossover.as_ref().map(|c| c.0),
        gpu_cheaper_from_peak_per_second: crossover.as_ref().map(|c| c.1),
        gpu_cheaper_card: crossover.map(|c| c.2),
        large_reranker: LargeReranker {
            model: large,
            flops_per_pair: fpp,
            cpu_pairs_per_s: cpu_large,
            cpu_seconds_per_email: cpu_seconds,
            cpu_replicas_at_peak: cpu_large_replicas,
            gpus,
            verdict,
        },
        autoscaler: Autoscaler {
            min_replicas: s.min_replicas,
            max_replicas: max_replicas.max(s.min_replicas + 1),
            queue_pairs_target: ((usable_pairs * s.queue_wait_ms / 1000.0).ceil() as usize).max(1),
            in_flight_target: ((usable_emails * p50_s).ceil() as usize).max(1),
            source: format!(
                "{file}: backend \"{}\" at {:.0}% of saturation ({:.1} pairs/s), a {:.0} ms queue wait, p50 {:.0} ms from the load curve",
                cpu.name,
                100.0 * s.target_utilization,
                usable_pairs,
                s.queue_wait_ms,
                1000.0 * p50_s
            ),
        },
    }
}
