//! `mailsort plan` as a user runs it: the seed's three answers with their
//! sources, JSON for scripts, and clear errors for bad input.

use std::process::Command;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../capacity/tests/fixtures/results-2core.json"
);

fn plan(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mailsort"))
        .arg("plan")
        .args(args)
        .output()
        .expect("mailsort runs")
}

#[test]
fn seed_scenario_prints_the_three_answers_with_sources() {
    let out = plan(&["--results", FIXTURE]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("200,000 e-mails/day, peak 40.0/s"), "{text}");
    assert!(text.contains("GPUs: none needed: 2 CPU replicas"), "{text}");
    assert!(
        text.contains("latency: kept at the edge p50 3.3 ms"),
        "{text}"
    );
    assert!(
        text.contains(
            "cost: backend on CPU replica like the measured one (2 cores) $128.45/month sized for the peak"
        ),
        "{text}"
    );
    assert!(
        text.contains("results-2core.json: stages.embed"),
        "sources are named: {text}"
    );
    assert!(
        text.contains("(projected)"),
        "GPU rows are marked as projections: {text}"
    );
}

#[test]
fn json_for_ten_million_a_day() {
    let out = plan(&[
        "--results",
        FIXTURE,
        "--emails-per-day",
        "10000000",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let peak = v["scenario"]["peak_per_second"].as_f64().unwrap();
    assert!((peak - 2000.0).abs() < 1e-6, "{peak}");
    assert_eq!(v["placements"][0]["replicas_at_peak"], 21);
}

#[test]
fn bad_input_is_a_clear_error() {
    let out = plan(&["--results", FIXTURE, "--forward-rate", "2"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--forward-rate must be between 0 and 1")
    );
    let out = plan(&["--results", "/nonexistent/results.json"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read results file"));
}
