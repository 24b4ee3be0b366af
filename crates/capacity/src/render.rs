//! The plan as text for a terminal.

use std::fmt::Write;

use crate::plan::{Layer, Placement, Plan};

fn thousands(x: f64) -> String {
    let s = format!("{:.0}", x);
    let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

fn layer_line(out: &mut String, l: &Layer) {
    let _ = writeln!(
        out,
        "  {:<28} {:>9.2} {:>9.2}   {}",
        l.name, l.p50_ms, l.p99_ms, l.source
    );
}

/// The placement the plan recommends: the cheapest when sized for the peak
/// (the CPU replicas unless a GPU costs less). The answers and the cost
/// section both name it.
fn chosen(p: &Plan) -> &Placement {
    p.placements
        .iter()
        .min_by(|a, b| a.usd_per_day_peak.total_cmp(&b.usd_per_day_peak))
        .expect("a plan always has its CPU placement")
}

/// The three answers the brief asks for, before the detail.
fn answers(o: &mut String, p: &Plan) {
    let cpu = &p.placements[0];
    let gpus = p.placements.iter().skip(1);
    let cheapest_gpu = gpus.min_by(|a, b| a.usd_per_day_peak.total_cmp(&b.usd_per_day_peak));
    let gpu_text = match cheapest_gpu {
        Some(g) if cpu.usd_per_day_peak <= g.usd_per_day_peak => format!(
            "none needed: {} CPU replicas carry the peak; the cheapest GPU option, {} x {}, costs ${:.2}/day against ${:.2}",
            cpu.replicas_at_peak,
            g.replicas_at_peak,
            g.hardware,
            g.usd_per_day_peak,
            cpu.usd_per_day_peak
        ),
        Some(g) => format!(
            "{} x {} (CPU would need {} replicas, ${:.2}/day against ${:.2})",
            g.replicas_at_peak,
            g.hardware,
            cpu.replicas_at_peak,
            cpu.usd_per_day_peak,
            g.usd_per_day_peak
        ),
        None => format!("none: {} CPU replicas", cpu.replicas_at_peak),
    };
    let chosen = chosen(p);
    let _ = writeln!(o, "Answers");
    let _ = writeln!(o, "  GPUs: {gpu_text}");
    let _ = writeln!(
        o,
        "  latency: kept at the edge p50 {:.1} ms / p99 {:.1} ms; forwarded p50 {:.1} ms / p99 {:.1} ms (per layer in 1.)",
        p.kept_path.p50_ms, p.kept_path.p99_ms, p.forwarded_path.p50_ms, p.forwarded_path.p99_ms
    );
    let _ = writeln!(
        o,
        "  cost: backend on {} ${:.2}/month sized for the peak, ${:.2}/month autoscaled; edge $0 in browsers or ${:.2}/month in Workers\n",
        chosen.hardware,
        30.0 * chosen.usd_per_day_peak,
        chosen.usd_per_month_autoscaled,
        p.edge.workers_usd_per_month
    );
}

/// Renders the plan; every figure is followed by its source.
pub fn text(p: &Plan) -> String {
    let s = &p.scenario;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "mailsort plan: {} e-mails/day, peak {:.1}/s, {:.1}% forwarded, top-{} candidates, token cap {}",
        thousands(s.emails_per_day),
        s.peak_per_second,
        100.0 * s.forward_rate,
        s.candidates,
        s.token_cap
    );
    let _ = writeln!(o, "results: {} ({})\n", p.results_file, p.machine);
    answers(&mut o, p);

    let _ = writeln!(
        o,
        "1. Latency per layer, ms            p50       p99   source"
    );
    for l in &p.edge_layers {
        layer_line(&mut o, l);
    }
    layer_line(&mut o, &p.kept_path);
    for l in &p.backend_layers {
        layer_line(&mut o, l);
    }
    layer_line(&mut o, &p.forwarded_path);

    let _ = writeln!(
        o,
        "\n2. Backend at peak: {:.1} forwarded e-mails/s = {:.0} pairs/s; replicas filled to {:.0}% of saturation, at least {}",
        p.forwarded_per_s_at_peak,
        p.pairs_per_s_at_peak,
        100.0 * s.target_utilization,
        s.min_replicas
    );
    let _ = writeln!(
        o,
        "  {:<44} {:>12} {:>9} {:>8} {:>11} {:>11} {:>12}",
        "hardware",
        "pairs/s each",
        "at peak",
        "average",
        "$/day peak",
        "$/day auto",
        "$/month auto"
    );
    for pl in &p.placements {
        let _ = writeln!(
            o,
            "  {:<44} {:>12.1} {:>9} {:>8} {:>11.2} {:>11.2} {:>12.2}",
            pl.hardware,
            pl.pairs_per_s.value,
            pl.replicas_at_peak,
            pl.replicas_average,
            pl.usd_per_day_peak,
            pl.usd_per_day_autoscaled,
            pl.usd_per_month_autoscaled
        );
    }
    for pl in &p.placements {
        let _ = writeln!(
            o,
            "  - {}: {}; price {}",
            pl.hardware, pl.pairs_per_s.source, pl.hour_usd.source
        );
    }

    let e = &p.edge;
    let _ = writeln!(o, "\n3. Edge compute");
    if let Some(n) = &e.native_cpu_ms {
        let _ = writeln!(
            o,
            "  native CLI: {:.2} CPU-ms per e-mail [{}]{}",
            n.value,
            n.source,
            e.native_usd_per_month
                .map(|u| format!(", ${u:.2}/month on rented cores"))
                .unwrap_or_default()
        );
    }
    if let Some(b) = &e.browser_ms {
        let _ = writeln!(
            o,
            "  browser extension: {:.1} ms per e-mail on the user's device, $0 to you [{}]",
            b.value, b.source
        );
    }
    let _ = writeln!(
        o,
        "  Cloudflare Worker: {:.1} CPU-ms per e-mail [{}]: {} requests and {} CPU-ms a month, ${:.2}/month",
        e.workers_cpu_ms.value,
        e.workers_cpu_ms.source,
        thousands(e.workers_requests_per_month),
        thousands(e.workers_cpu_ms_per_month),
        e.workers_usd_per_month
    );

    let c = chosen(p);
    let _ = writeln!(
        o,
        "\n4. Cost: backend on {} ${:.2}/day sized for the peak all day, ${:.2}/day and ${:.2}/month autoscaled; edge in browsers $0, or in Workers ${:.2}/month",
        c.hardware,
        c.usd_per_day_peak,
        c.usd_per_day_autoscaled,
        c.usd_per_month_autoscaled,
        e.workers_usd_per_month
    );

    let ch = &p.changes;
    let _ = writeln!(o, "\n5. When the answer changes");
    match (&ch.gpu_cheaper_from_emails_per_day, &ch.gpu_cheaper_card) {
        (Some(v), Some(card)) => {
            let _ = writeln!(
                o,
                "  - a GPU ({card}) costs less than CPU replicas from about {} e-mails/day (peak {:.0}/s), both sized for the peak",
                thousands(*v),
                ch.gpu_cheaper_from_peak_per_second.unwrap_or_default()
            );
        }
        _ => {
            let _ = writeln!(
                o,
                "  - CPU replicas stay cheaper than any GPU up to 10,000x this volume"
            );
        }
    }
    let l = &ch.large_reranker;
    let _ = writeln!(
        o,
        "  - {} ({:.0} GFLOP per pair, {:.2} pairs/s per CPU replica, projected from the measured CPU's FLOP/s): {}",
        l.model.name,
        l.flops_per_pair / 1e9,
        l.cpu_pairs_per_s,
        l.verdict
    );
    let a = &ch.autoscaler;
    let _ = writeln!(
        o,
        "  - deploy/k8s/hpa.yaml for this plan: minReplicas {}, maxReplicas {}, mailsort_queue_pairs target {}, mailsort_in_flight_requests target {} [{}]",
        a.min_replicas, a.max_replicas, a.queue_pairs_target, a.in_flight_target, a.source
    );
    if p.placements.iter().any(|pl| !pl.measured) {
        let _ = writeln!(
            o,
            "\nGPU rows marked (projected) are projections, not measurements: the card's dense FP16 peak x --gpu-efficiency / the model's FLOPs per pair."
        );
    }
    for n in &p.notes {
        let _ = writeln!(o, "note: {n}");
    }
    o
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn groups_digits() {
        assert_eq!(thousands(200_000.0), "200,000");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(10_000_000.0), "10,000,000");
    }
}
