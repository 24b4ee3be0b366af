//! `mailsort bench`: the INT8 encoder on tract against ONNX Runtime CPU, on
//! the same file and the same token ids, interleaved round by round so that
//! both see the same machine load.

use std::fs;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use mailsort_edge::Embedder;
use mailsort_offline::inputs;
use mailsort_offline::ort_bench::{self, OrtEncoder};
use mailsort_shared::clean::{self, CleanConfig};
use serde::Serialize;

use super::ModelArgs;

#[derive(Args)]
pub struct BenchArgs {
    /// E-mails to embed (JSONL, mbox or .eml).
    #[arg(long)]
    input: PathBuf,
    /// How many e-mails from the input.
    #[arg(long, default_value_t = 256)]
    n: usize,
    /// Interleaved rounds per configuration.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    #[arg(long, default_value_t = 256)]
    token_cap: usize,
    /// `libonnxruntime.so` (from the PyPI onnxruntime wheel).
    #[arg(long, env = "ORT_DYLIB_PATH")]
    ort_lib: PathBuf,
    /// ONNX Runtime intra-op threads (tract runs on one).
    #[arg(long, default_value_t = 1)]
    ort_threads: usize,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    model: ModelArgs,
}

#[derive(Serialize)]
struct Row {
    engine: &'static str,
    batch: usize,
    emails_per_s: f64,
}

#[derive(Serialize)]
struct Report {
    emails: usize,
    mean_tokens: f64,
    rounds: usize,
    ort_threads: usize,
    rows: Vec<Row>,
    ratio_batch1: f64,
    ratio_batch32: f64,
    max_abs_diff: f32,
}

pub fn run(args: BenchArgs) -> Result<()> {
    let BenchArgs {
        input,
        n,
        rounds,
        token_cap,
        ort_lib,
        ort_threads,
        json,
        model,
    } = args;
    let dir = model.dir();
    let onnx = fs::read(dir.int8())
        .with_context(|| format!("{}: run `mailsort models fetch`", dir.int8().display()))?;
    let tok = fs::read_to_string(dir.tokenizer())?;
    let cfg = CleanConfig::with_token_cap(token_cap)?;
    let mut emails = inputs::read_any(&input, CleanConfig::default().max_message_bytes)?;
    emails.truncate(n);
    let texts: Vec<String> = emails
        .iter()
        .filter_map(|e| clean::clean(&e.input, &cfg).ok())
        .map(|c| c.text)
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let tract = Embedder::new(&onnx, &tok, token_cap)?;
    let mut ids = tract.tokenize(&refs)?;
    // As in production (`Embedder::embed_many`): batches of similar length.
    ids.sort_by_key(Vec::len);
    ort_bench::init(&ort_lib)?;
    let mut ort = OrtEncoder::new(&dir.int8(), ort_threads)?;

    // Same numbers from both engines, or the comparison means nothing.
    let a = tract.embed_ids(&ids[..8.min(ids.len())])?;
    let b = ort.embed_ids(&ids[..8.min(ids.len())])?;
    let max_abs_diff = a
        .iter()
        .flatten()
        .zip(b.iter().flatten())
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);

    let mean_tokens = ids.iter().map(Vec::len).sum::<usize>() as f64 / ids.len().max(1) as f64;
    let mut totals = [[0f64; 2]; 2]; // [batch index][engine]
    for round in 0..rounds {
        for (bi, &batch) in [1usize, 32].iter().enumerate() {
            let t = Instant::now();
            for chunk in ids.chunks(batch) {
                tract.embed_ids(chunk)?;
            }
            totals[bi][0] += t.elapsed().as_secs_f64();
            let t = Instant::now();
            for chunk in ids.chunks(batch) {
                ort.embed_ids(chunk)?;
            }
            totals[bi][1] += t.elapsed().as_secs_f64();
        }
        eprintln!("round {}/{rounds} done", round + 1);
    }
    let rate = |secs: f64| (ids.len() * rounds) as f64 / secs;
    let rows = vec![
        Row {
            engine: "tract",
            batch: 1,
            emails_per_s: rate(totals[0][0]),
        },
        Row {
            engine: "onnxruntime",
            batch: 1,
            emails_per_s: rate(totals[0][1]),
        },
        Row {
            engine: "tract",
            batch: 32,
            emails_per_s: rate(totals[1][0]),
        },
        Row {
            engine: "onnxruntime",
            batch: 32,
            emails_per_s: rate(totals[1][1]),
        },
    ];
    let report = Report {
        emails: ids.len(),
        mean_tokens,
        rounds,
        ort_threads,
        ratio_batch1: totals[0][1] / totals[0][0],
        ratio_batch32: totals[1][1] / totals[1][0],
        rows,
        max_abs_diff,
    };
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{} e-mails, {:.0} tokens on average, {} rounds, ONNX Runtime on {} thread(s), tract on 1",
            report.emails, report.mean_tokens, rounds, ort_threads
        );
        println!("{:<12} {:>6} {:>10}", "engine", "batch", "e-mails/s");
        for r in &report.rows {
            println!("{:<12} {:>6} {:>10.1}", r.engine, r.batch, r.emails_per_s);
        }
        println!(
            "tract / onnxruntime: {:.2}x at batch 1, {:.2}x at batch 32 (max |diff| {:.2e})",
            report.ratio_batch1, report.ratio_batch32, report.max_abs_diff
        );
    }
    Ok(())
}
