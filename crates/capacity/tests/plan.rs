//! The plan's arithmetic on a fixed results file, checked against numbers
//! worked out by hand (in the comments).

use std::path::Path;

use mailsort_capacity::{BenchResults, CapacityError, Prices, Scenario, plan};

fn fixture() -> BenchResults {
    BenchResults::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/results-2core.json"),
    )
    .expect("fixture loads")
}

fn close(a: f64, b: f64, what: &str) {
    assert!(
        (a - b).abs() <= 1e-6 * b.abs().max(1.0),
        "{what}: {a} != {b}"
    );
}

#[test]
fn seed_scenario_from_a_fixed_results_file() {
    let r = fixture();
    let p = plan(&Scenario::seed(), &r, "fixture.json", &Prices::default()).unwrap();
    // 40/s x 15% = 6 forwarded e-mails/s, x 5 candidates = 30 pairs/s.
    close(p.forwarded_per_s_at_peak, 6.0, "forwarded/s");
    close(p.pairs_per_s_at_peak, 30.0, "pairs/s");

    let cpu = &p.placements[0];
    assert!(cpu.measured);
    // 24 e-mails/s x 5 = 120 pairs/s a replica; 60% of it is 72 > 30, but
    // at least 2 replicas.
    close(cpu.pairs_per_s.value, 120.0, "cpu pairs/s");
    assert_eq!((cpu.replicas_at_peak, cpu.replicas_average), (2, 2));
    // 2 replicas x 2 cores x $0.0446 x 24 h.
    close(cpu.usd_per_day_peak, 2.0 * 2.0 * 0.0446 * 24.0, "cpu $/day");
    close(
        cpu.usd_per_month_autoscaled,
        30.0 * 2.0 * 2.0 * 0.0446 * 24.0,
        "cpu $/month",
    );

    // H200, projected: 100 tokens a pair (4000 padded tokens / 40 pairs),
    // 100 x (2 x 10,616,832 + 4 x 6 x 100 x 384) = 2.2155264 GFLOP;
    // 989e12 x 0.15 / that.
    let h200 = p
        .placements
        .iter()
        .find(|x| x.hardware.contains("H200"))
        .unwrap();
    assert!(!h200.measured && h200.hardware.contains("projected"));
    close(
        h200.pairs_per_s.value,
        989e12 * 0.15 / 2.2155264e9,
        "h200 pairs/s",
    );
    assert_eq!(h200.replicas_at_peak, 2);
    close(h200.usd_per_day_peak, 2.0 * 3.5 * 24.0, "h200 $/day");

    // Latency: the edge's four layers, then the network (assumed 50 ms, p99
    // 100) and the load-curve step at 5/s (a replica's peak load is 6/2 = 3).
    let names: Vec<&str> = p.edge_layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "cleaning",
            "tokenising",
            "embedding (INT8 encoder)",
            "head and gate"
        ]
    );
    close(p.kept_path.p50_ms, 0.2 + 0.1 + 3.0 + 0.05, "kept p50");
    assert_eq!(p.backend_layers[0].p50_ms, 50.0);
    assert!(
        p.backend_layers[1]
            .source
            .contains("at 5.0 forwarded e-mails/s")
    );
    close(p.backend_layers[1].p50_ms, 20.0, "queue p50");
    close(p.backend_layers[2].p99_ms, 3.0 + 150.0, "rerank p99");
    close(
        p.forwarded_path.p50_ms,
        3.35 + 50.0 + 20.0 + 91.0,
        "forwarded p50",
    );

    // Worker: 6,000,000 requests a month (inside the 10M included) and
    // 6e6 x 41.3 ms = 247.8M CPU-ms, 217.8M over the 30M included at $0.02
    // per million, plus $5.
    close(p.edge.workers_requests_per_month, 6e6, "worker requests");
    close(
        p.edge.workers_usd_per_month,
        5.0 + 217.8 * 0.02,
        "worker $/month",
    );

    // GPU beats CPU from the volume where CPU needs 16 replicas (16 x 2.1408
    // > 2 L4 x 0.71 x 24 = 34.08): 30 x by > 15 x 72 pairs/s, by > 36.
    let peak = p.changes.gpu_cheaper_from_peak_per_second.unwrap();
    assert!(
        peak > 1440.0 && peak <= 1440.0 * 1.021,
        "crossover peak {peak}"
    );
    assert_eq!(p.changes.gpu_cheaper_card.as_deref(), Some("NVIDIA L4"));

    // The 1.5B reranker: the CPU does 120 x 2.2155264 GFLOP/s; a pair costs
    // 100 x (2 x 1.31e9 + 4 x 28 x 100 x 1536) = 263.72032 GFLOP: 1.008 pairs/s,
    // 4.96 s per e-mail (under the 10 s deadline), 30 / (1.008 x 0.6) -> 50.
    let l = &p.changes.large_reranker;
    close(
        l.cpu_pairs_per_s,
        120.0 * 2.2155264e9 / 263.72032e9,
        "large cpu pairs/s",
    );
    assert_eq!(l.cpu_replicas_at_peak, 50);
    assert!(l.verdict.starts_with("50 CPU replicas"), "{}", l.verdict);

    // Autoscaler: 72 pairs/s x 0.25 s = 18 queued pairs; 14.4 e-mails/s x
    // 0.3 s (p50 at the 20/s step) = 4.32 -> 5 in flight.
    let a = &p.changes.autoscaler;
    assert_eq!((a.queue_pairs_target, a.in_flight_target), (18, 5));
    assert_eq!((a.min_replicas, a.max_replicas), (2, 3));
    assert!(p.notes.is_empty(), "{:?}", p.notes);
}

#[test]
fn ten_million_a_day_needs_more_cpu_replicas() {
    let r = fixture();
    let mut s = Scenario::seed();
    s.emails_per_day = 10e6;
    s.peak_per_second = 10e6 / 86_400.0 * Scenario::seed_peak_ratio();
    close(s.peak_per_second, 2000.0, "scaled peak");
    let p = plan(&s, &r, "fixture.json", &Prices::default()).unwrap();
    // 2000 x 0.15 x 5 = 1500 pairs/s over 72 usable a replica -> 21.
    assert_eq!(p.placements[0].replicas_at_peak, 21);
    // A replica's load, 300/21 = 14.3/s, is past the 5/s step: the 20/s one.
    assert!(p.backend_layers[1].source.contains("at 20.0"));
}

#[test]
fn another_token_cap_uses_the_nearest_and_says_so() {
    let r = fixture();
    let mut s = Scenario::seed();
    s.token_cap = 160;
    let p = plan(&s, &r, "fixture.json", &Prices::default()).unwrap();
    close(
        p.placements[0].pairs_per_s.value,
        150.0,
        "cap 128's 30 e-mails/s x 5",
    );
    assert!(
        p.notes.iter().any(|n| n.contains("nearest, 128")),
        "{:?}",
        p.notes
    );
}

#[test]
fn bad_input_is_a_clear_error() {
    let r = fixture();
    let mut s = Scenario::seed();
    s.forward_rate = 1.5;
    let e = plan(&s, &r, "f", &Prices::default()).unwrap_err();
    assert!(matches!(e, CapacityError::Scenario(_)), "{e}");
    let mut s = Scenario::seed();
    s.peak_per_second = 1.0;
    assert!(
        plan(&s, &r, "f", &Prices::default())
            .unwrap_err()
            .to_string()
            .contains("average")
    );

    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("r.json");
    std::fs::write(&wrong, r#"{"schema": 1, "oops": true}"#).unwrap();
    assert!(matches!(
        BenchResults::load(&wrong),
        Err(CapacityError::Parse { .. })
    ));
    let mut r2 = r.clone();
    r2.schema = 9;
    std::fs::write(&wrong, serde_json::to_string(&r2).unwrap()).unwrap();
    assert!(matches!(
        BenchResults::load(&wrong),
        Err(CapacityError::Schema { found: 9, .. })
    ));
    let mut r3 = r.clone();
    r3.backend.clear();
    assert!(matches!(
        plan(&Scenario::seed(), &r3, "f", &Prices::default()),
        Err(CapacityError::Missing(_))
    ));
}
