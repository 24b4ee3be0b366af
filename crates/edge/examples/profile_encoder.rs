//! Where an encoder's time goes on tract: every node of the optimised plan
//! timed over real texts, summed by operator and by node.
//!
//! `cargo run --release -p mailsort-edge --example profile_encoder -- MODEL.onnx tokenizer.json TEXTS.jsonl [N] [BATCH]`
//!
//! TEXTS.jsonl holds one JSON object per line with a `text` (or `subject`
//! and `body`) field, such as a split of `../shared/datasets`. With
//! `FIXED=L` the plan is built for sequences of exactly L tokens (texts are
//! padded or cut; for timing only), to compare with the symbolic plan.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use mailsort_edge::embed::{Embedder, load_plan, pad_ids};
use tract_onnx::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        return Err(
            "usage: profile_encoder MODEL.onnx tokenizer.json TEXTS.jsonl [N] [BATCH]".into(),
        );
    }
    let onnx = std::fs::read(&args[1])?;
    let tokenizer = std::fs::read_to_string(&args[2])?;
    let n: usize = args.get(4).map(|s| s.parse()).transpose()?.unwrap_or(256);
    let batch: usize = args.get(5).map(|s| s.parse()).transpose()?.unwrap_or(1);
    let texts: Vec<String> = std::fs::read_to_string(&args[3])?
        .lines()
        .take(n)
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap_or_default();
            let field = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
            let t = field("text");
            if t.is_empty() {
                format!("{}\n{}", field("subject"), field("body"))
            } else {
                t
            }
        })
        .collect();
    let embedder = Embedder::new(&onnx, &tokenizer, 256)?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let ids = embedder.tokenize(&refs)?;
    // FIXED=L: a plan for [BATCH, L] (texts padded or cut to L tokens).
    let fixed: Option<usize> = std::env::var("FIXED").ok().map(|v| v.parse()).transpose()?;
    let plan = match fixed {
        None => load_plan(&onnx)?,
        Some(len) => {
            let mut model = tract_onnx::onnx()
                .with_ignore_value_info(true)
                .model_for_read(&mut std::io::Cursor::new(&onnx))?;
            for i in 0..2 {
                model.set_input_fact(
                    i,
                    InferenceFact::dt_shape(i64::datum_type(), tvec![batch, len]),
                )?;
            }
            model.into_optimized()?.into_runnable()?
        }
    };
    let ids: Vec<Vec<u32>> = match fixed {
        None => ids,
        Some(len) => ids
            .into_iter()
            .map(|mut v| {
                v.resize(len, 0);
                v
            })
            .collect(),
    };

    let mut by_node: HashMap<usize, Duration> = HashMap::new();
    let mut total = Duration::ZERO;
    for round in 0..2 {
        for chunk in ids.chunks(batch) {
            let (input, mask) = pad_ids(chunk);
            let mut state = TypedSimpleState::new(&plan)?;
            let t0 = Instant::now();
            state.run_plan_with_eval(
                tvec![
                    input.into_tensor().into_tvalue(),
                    mask.into_tensor().into_tvalue()
                ],
                |ctx, op_state, node, inputs| {
                    let t = Instant::now();
                    let r = tract_onnx::tract_core::plan::eval(ctx, op_state, node, inputs);
                    if round == 1 {
                        *by_node.entry(node.id).or_default() += t.elapsed();
                    }
                    r
                },
            )?;
            if round == 1 {
                total += t0.elapsed();
            }
        }
    }
    let model = plan.model();
    let mut by_op: HashMap<String, (Duration, usize)> = HashMap::new();
    for (&id, &d) in &by_node {
        let e = by_op
            .entry(model.node(id).op().name().to_string())
            .or_default();
        e.0 += d;
        e.1 += 1;
    }
    let pct = |d: Duration| 100.0 * d.as_secs_f64() / total.as_secs_f64();
    println!(
        "{} texts, batch {batch}, mean {:.1} tokens: {:.1} texts/s ({} nodes)",
        ids.len(),
        ids.iter().map(Vec::len).sum::<usize>() as f64 / ids.len() as f64,
        ids.len() as f64 / total.as_secs_f64(),
        model.nodes.len()
    );
    let mut ops: Vec<_> = by_op.into_iter().collect();
    ops.sort_by_key(|(_, (d, _))| std::cmp::Reverse(*d));
    println!("{:>6}  {:>5}  operator", "%", "nodes");
    for (name, (d, count)) in &ops {
        println!("{:>6.2}  {count:>5}  {name}", pct(*d));
    }
    let mut nodes: Vec<_> = by_node.into_iter().collect();
    nodes.sort_by_key(|(_, d)| std::cmp::Reverse(*d));
    println!("\nslowest nodes:");
    for (id, d) in nodes.iter().take(25) {
        let node = model.node(*id);
        println!(
            "{:>6.2}  {}  {}  {}",
            pct(*d),
            node.name,
            node.op().name(),
            node.op().info().unwrap_or_default().join(" ")
        );
    }
    Ok(())
}
