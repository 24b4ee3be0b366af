//! `mailsort bench`: the INT8 encoder on tract against ONNX Runtime CPU, on
//! the same file and the same token ids, interleaved round by round so that
//! every engine sees the same machine load. Also the other native edge
//! engines, on the files of the same folder: tract on the W8A8 file (INT8
//! compute) and ONNX Runtime on its own dynamic-INT8 file.

use std::fs;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use mailsort_edge::Embedder;
use mailsort_offline::inputs;
use mailsort_offline::ort_encoder::{self, OrtEncoder};
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
    /// ONNX Runtime intra-op threads (tract runs on one).
    #[arg(long, default_value_t = 1)]
    ort_threads: usize,
    /// Leave out a peer engine (repeatable): tract-w8a8 crawls where the
    /// CPU lacks AVX-512 VNNI (docs/int8.md).
    #[arg(long, value_parser = ["tract-w8a8", "onnxruntime-int8"])]
    skip: Vec<String>,
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

/// Speed of one engine over another, both batch sizes.
#[derive(Serialize)]
struct Ratio {
    engine: &'static str,
    over: &'static str,
    batch1: f64,
    batch32: f64,
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
    /// Every pair of engines compared, the edge's first.
    ratios: Vec<Ratio>,
    /// Least cosine of each peer's embeddings to the edge's (tract, INT8
    /// weights), on the first 64 e-mails.
    min_cosine_to_edge: Vec<(&'static str, f32)>,
}

/// One engine under test: embeds a batch of token ids.
type Engine<'a> = (
    &'static str,
    Box<dyn FnMut(&[Vec<u32>]) -> Result<Vec<Vec<f32>>> + 'a>,
);

const BATCHES: [usize; 2] = [1, 32];

pub fn run(args: BenchArgs) -> Result<()> {
    let BenchArgs {
        input,
        n,
        rounds,
        token_cap,
        ort_threads,
        skip,
        json,
        model,
    } = args;
    let dir = model.dir();
    let read = |p: PathBuf| {
        fs::read(&p).with_context(|| format!("{}: run `mailsort models fetch`", p.display()))
    };
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
    let tract = Embedder::new(&read(dir.int8())?, &tok, token_cap)?;
    let optional = |path: PathBuf, engine: &str| {
        if skip.iter().any(|s| s == engine) {
            return None;
        }
        if !path.exists() {
            eprintln!(
                "{} is missing (a folder from before it existed): run `mailsort models fetch --force` to bench it",
                path.display()
            );
        }
        path.exists().then_some(path)
    };
    let w8a8 = optional(dir.w8a8(), "tract-w8a8")
        .map(|p| anyhow::Ok(Embedder::new(&read(p)?, &tok, token_cap)?))
        .transpose()?;
    let mut ids = tract.tokenize(&refs)?;
    // As in production (`Embedder::embed_many`): batches of similar length.
    ids.sort_by_key(Vec::len);
    let ort_lib = model.ort_lib.as_deref().context(
        "mailsort bench runs ONNX Runtime too: pass --ort-lib or set ORT_DYLIB_PATH (scripts/lib.sh does)",
    )?;
    ort_encoder::init(ort_lib)?;
    let ort = OrtEncoder::new(&dir.int8(), 1, ort_threads)?;
    let ort_int8 = optional(dir.ort_int8(), "onnxruntime-int8")
        .map(|p| OrtEncoder::new(&p, 1, ort_threads))
        .transpose()?;

    let mut engines: Vec<Engine> = vec![
        ("tract", Box::new(|b: &[Vec<u32>]| Ok(tract.embed_ids(b)?))),
        (
            "onnxruntime",
            Box::new(|b: &[Vec<u32>]| Ok(ort.embed_ids(b)?)),
        ),
    ];
    if let Some(w) = &w8a8 {
        engines.push(("tract-w8a8", Box::new(|b: &[Vec<u32>]| Ok(w.embed_ids(b)?))));
    }
    if let Some(o) = &ort_int8 {
        engines.push((
            "onnxruntime-int8",
            Box::new(|b: &[Vec<u32>]| Ok(o.embed_ids(b)?)),
        ));
    }

    // Same numbers from both engines on the same file, or the comparison
    // means nothing; the other files are quantised differently, so they get
    // a cosine instead.
    let probe = &ids[..64.min(ids.len())];
    let outputs: Vec<Vec<Vec<f32>>> = engines
        .iter_mut()
        .map(|(_, embed)| probe.chunks(8).map(&mut *embed).collect::<Result<Vec<_>>>())
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .map(|chunks| chunks.into_iter().flatten().collect())
        .collect();
    let max_abs_diff = outputs[0]
        .iter()
        .flatten()
        .zip(outputs[1].iter().flatten())
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    let min_cosine_to_edge = engines
        .iter()
        .zip(&outputs)
        .skip(1)
        .map(|((name, _), out)| {
            let cos = out
                .iter()
                .zip(&outputs[0])
                .map(|(a, b)| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>())
                .fold(f32::INFINITY, f32::min);
            (*name, cos)
        })
        .collect();

    let mean_tokens = ids.iter().map(Vec::len).sum::<usize>() as f64 / ids.len().max(1) as f64;
    // seconds[batch index][engine], engines interleaved within each round.
    let mut seconds = vec![vec![0f64; engines.len()]; BATCHES.len()];
    for round in 0..rounds {
        for (bi, &batch) in BATCHES.iter().enumerate() {
            for (ei, (_, embed)) in engines.iter_mut().enumerate() {
                let t = Instant::now();
                for chunk in ids.chunks(batch) {
                    embed(chunk)?;
                }
                seconds[bi][ei] += t.elapsed().as_secs_f64();
            }
        }
        eprintln!("round {}/{rounds} done", round + 1);
    }
    let rate = |secs: f64| (ids.len() * rounds) as f64 / secs;
    let names: Vec<&'static str> = engines.iter().map(|(name, _)| *name).collect();
    let rows = BATCHES
        .iter()
        .enumerate()
        .flat_map(|(bi, &batch)| {
            names
                .iter()
                .enumerate()
                .map(move |(ei, &engine)| (bi, batch, ei, engine))
        })
        .map(|(bi, batch, ei, engine)| Row {
            engine,
            batch,
            emails_per_s: rate(seconds[bi][ei]),
        })
        .collect();
    let ratio = |a: usize, b: usize| Ratio {
        engine: names[a],
        over: names[b],
        batch1: seconds[0][b] / seconds[0][a],
        batch32: seconds[1][b] / seconds[1][a],
    };
    let mut ratios = vec![ratio(0, 1)];
    let index = |name: &str| names.iter().position(|n| *n == name);
    if let Some(w) = index("tract-w8a8") {
        ratios.push(ratio(w, 0));
        ratios.push(ratio(w, 1));
        if let Some(d) = index("onnxruntime-int8") {
            ratios.push(ratio(w, d));
        }
    }
    if let Some(d) = index("onnxruntime-int8") {
        ratios.push(ratio(d, 0));
    }
    let report = Report {
        emails: ids.len(),
        mean_tokens,
        rounds,
        ort_threads,
        ratio_batch1: ratios[0].batch1,
        ratio_batch32: ratios[0].batch32,
        rows,
        max_abs_diff,
        ratios,
        min_cosine_to_edge,
    };
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{} e-mails, {:.0} tokens on average, {} rounds, ONNX Runtime on {} thread(s), tract on 1",
            report.emails, report.mean_tokens, rounds, ort_threads
        );
        println!("{:<26} {:>6} {:>10}", "engine", "batch", "e-mails/s");
        for r in &report.rows {
            println!("{:<26} {:>6} {:>10.1}", r.engine, r.batch, r.emails_per_s);
        }
        for r in &report.ratios {
            println!(
                "{} / {}: {:.2}x at batch 1, {:.2}x at batch 32",
                r.engine, r.over, r.batch1, r.batch32
            );
        }
        println!(
            "tract vs onnxruntime on the same file: max |diff| {:.2e}",
            report.max_abs_diff
        );
        for (name, cos) in &report.min_cosine_to_edge {
            println!("{name}: minimum cosine to tract's embeddings {cos:.5}");
        }
    }
    Ok(())
}
