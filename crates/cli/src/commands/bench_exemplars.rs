//! `mailsort bench-exemplars`: a bundle's exemplar search, the flat scan
//! against hnsw_rs, on the same embedded e-mails: the time to build each
//! index, the time per search (interleaved round by round, so both see the
//! same machine load) and how often the two return the same neighbours.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};
use clap::Args;
use mailsort_edge::neighbours::{FlatIndex, HnswIndex, NeighbourIndex};
use mailsort_edge::{Batching, EdgeClassifier};
use mailsort_offline::{inputs, progress};
use mailsort_shared::clean;
use serde::Serialize;

use super::{ModelArgs, read_bundle, read_encoder};
use crate::progress::Bars;

#[derive(Args)]
pub struct BenchExemplarsArgs {
    #[arg(long)]
    bundle: PathBuf,
    /// E-mails to search with (JSONL, mbox or .eml).
    #[arg(long)]
    input: PathBuf,
    /// How many e-mails from the input.
    #[arg(long, default_value_t = 512)]
    n: usize,
    /// Interleaved rounds.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    model: ModelArgs,
}

#[derive(Serialize)]
struct Report {
    exemplars: usize,
    queries: usize,
    k: usize,
    rounds: usize,
    flat_build_ms: f64,
    hnsw_build_ms: f64,
    flat_search_us: f64,
    hnsw_search_us: f64,
    /// Share of queries whose k neighbours are the same set in both.
    same_neighbours: f64,
    /// Mean share of the flat scan's k neighbours that hnsw_rs also finds.
    recall_at_k: f64,
}

/// Times both exemplar indexes of the bundle on up to `n` e-mails of the input.
pub fn run(args: BenchExemplarsArgs) -> Result<()> {
    let BenchExemplarsArgs {
        bundle: bundle_path,
        input,
        n,
        rounds,
        json,
        model,
    } = args;
    let bundle = read_bundle(&bundle_path)?;
    let Some(ex) = bundle.exemplars.clone() else {
        bail!(
            "{} stores no exemplars (its build found the head alone better): nothing to search",
            bundle_path.display()
        );
    };
    let k = ex.k.max(1);
    let rounds = rounds.max(1);
    let mut emails = inputs::read_any(&input, clean::CleanConfig::default().max_message_bytes)?;
    emails.truncate(n);
    let texts: Vec<String> = emails
        .iter()
        .filter_map(|e| clean::clean(&e.input, &bundle.clean).ok())
        .map(|c| c.text)
        .collect();
    if texts.is_empty() {
        bail!("no usable e-mails in {}", input.display());
    }
    let classifier = EdgeClassifier::new(bundle, &read_encoder(&model)?)?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let queries = progress::embed(
        classifier.embedder(),
        &refs,
        Batching::threads(32, None),
        "embedding",
        &Bars::default(),
    )?;

    let t = Instant::now();
    let flat = FlatIndex::new(&ex);
    let flat_build_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let hnsw = HnswIndex::new(&ex);
    let hnsw_build_ms = t.elapsed().as_secs_f64() * 1e3;

    let mut same = 0usize;
    let mut found = 0usize;
    let mut wanted = 0usize;
    for q in &queries {
        let a: Vec<usize> = flat.search(q, k).into_iter().map(|h| h.0).collect();
        let b: Vec<usize> = hnsw.search(q, k).into_iter().map(|h| h.0).collect();
        let common = a.iter().filter(|i| b.contains(i)).count();
        found += common;
        wanted += a.len();
        if common == a.len() && a.len() == b.len() {
            same += 1;
        }
    }

    let mut secs = [0f64; 2];
    for round in 0..rounds {
        let indexes: [&dyn NeighbourIndex; 2] = [&flat, &hnsw];
        for (slot, index) in indexes.iter().enumerate() {
            let t = Instant::now();
            for q in &queries {
                std::hint::black_box(index.search(q, k));
            }
            secs[slot] += t.elapsed().as_secs_f64();
        }
        eprintln!("round {}/{rounds} done", round + 1);
    }
    let searches = (queries.len() * rounds) as f64;
    let report = Report {
        exemplars: ex.len(),
        queries: queries.len(),
        k,
        rounds,
        flat_build_ms,
        hnsw_build_ms,
        flat_search_us: secs[0] / searches * 1e6,
        hnsw_search_us: secs[1] / searches * 1e6,
        same_neighbours: same as f64 / queries.len() as f64,
        recall_at_k: found as f64 / wanted.max(1) as f64,
    };
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{} exemplars, {} e-mails, k = {}, {} rounds",
            report.exemplars, report.queries, report.k, report.rounds
        );
        println!("{:<6} {:>12} {:>14}", "index", "build ms", "µs per search");
        println!(
            "{:<6} {:>12.1} {:>14.1}",
            "flat", report.flat_build_ms, report.flat_search_us
        );
        println!(
            "{:<6} {:>12.1} {:>14.1}",
            "hnsw", report.hnsw_build_ms, report.hnsw_search_us
        );
        println!(
            "hnsw finds {:.2}% of the flat scan's neighbours; the same {} on {:.2}% of e-mails",
            report.recall_at_k * 100.0,
            k,
            report.same_neighbours * 100.0
        );
    }
    Ok(())
}
