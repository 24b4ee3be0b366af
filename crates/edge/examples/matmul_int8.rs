//! tract's INT8 matmul alone: one `MatMulInteger` ONNX graph (int8 input
//! `[1, S, K]`, constant int8 weights `[K, N]`), timed per call.
//! `scripts/bench/matmul-int8.py` writes the graph, times ONNX Runtime on
//! it and runs this beside it.
//!
//! `cargo run --release -p mailsort-edge --example matmul_int8 -- GRAPH.onnx S K N`

use std::time::Instant;

use tract_onnx::prelude::*;

fn main() -> TractResult<()> {
    let args: Vec<usize> = std::env::args()
        .skip(2)
        .map(|a| a.parse().unwrap_or(0))
        .collect();
    let path = std::env::args()
        .nth(1)
        .ok_or_else(|| TractError::msg("usage: matmul_int8 GRAPH.onnx S K N"))?;
    let [s, k, n] = args[..] else {
        return Err(TractError::msg("usage: matmul_int8 GRAPH.onnx S K N"));
    };
    let plan = tract_onnx::onnx()
        .model_for_path(&path)?
        .with_input_fact(0, i8::fact([1, s, k]).into())?
        .into_optimized()?
        .into_runnable()?;
    let kernel = plan
        .model()
        .nodes
        .iter()
        .filter(|n| n.op().name() == "OptMatMul")
        .map(|n| n.op().info().unwrap_or_default().join(" "))
        .collect::<Vec<_>>()
        .join("; ");
    let x = tract_ndarray::Array3::<i8>::from_shape_fn((1, s, k), |(_, i, j)| {
        ((i * 7 + j * 13) % 200) as i8 - 100
    })
    .into_tensor();
    let calls = 2000;
    for _ in 0..calls / 20 {
        plan.run(tvec![x.clone().into_tvalue()])?;
    }
    let t = Instant::now();
    for _ in 0..calls {
        plan.run(tvec![x.clone().into_tvalue()])?;
    }
    let secs = t.elapsed().as_secs_f64() / calls as f64;
    println!(
        "tract {s}x{k}x{n}: {:.1} us, {:.1} GMAC/s ({kernel})",
        secs * 1e6,
        (s * k * n) as f64 / secs / 1e9
    );
    Ok(())
}
