#!/usr/bin/env python3
"""One INT8 matmul, the size of the edge encoder's, on ONNX Runtime and tract.

Writes a MatMulInteger graph with constant int8 weights [K, N] and times
ONNX Runtime (one thread) with int8 and with uint8 activations (its fast
path), then runs tract on the int8 graph (crates/edge/examples/matmul_int8.rs,
built first with `cargo build --release -p mailsort-edge --example matmul_int8`).

Usage: scripts/bench/matmul-int8.py [S ...]   (default S: 15 16 32 128; K 384, N 1536)
"""

import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

K, N = 384, 1536


def graph(path, dtype):
    w = np.random.default_rng(0).integers(-127, 128, (K, N)).astype(np.int8)
    g = helper.make_graph(
        [helper.make_node("MatMulInteger", ["x", "w"], ["y"])],
        "matmul_int8",
        [helper.make_tensor_value_info("x", dtype, [1, "s", K])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [1, "s", N])],
        [numpy_helper.from_array(w, "w")],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, path)


def time_ort(path, x, calls=2000):
    o = ort.SessionOptions()
    o.intra_op_num_threads = 1
    s = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
    for _ in range(calls // 20):
        s.run(None, {"x": x})
    t = time.perf_counter()
    for _ in range(calls):
        s.run(None, {"x": x})
    return (time.perf_counter() - t) / calls


def main():
    sizes = [int(a) for a in sys.argv[1:]] or [15, 16, 32, 128]
    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/mailsort-target"))
    tract = os.path.join(target, "release", "examples", "matmul_int8")
    with tempfile.TemporaryDirectory() as d:
        s8, u8 = os.path.join(d, "s8.onnx"), os.path.join(d, "u8.onnx")
        graph(s8, TensorProto.INT8)
        graph(u8, TensorProto.UINT8)
        rng = np.random.default_rng(1)
        for s in sizes:
            macs = s * K * N
            for name, path, x in (
                ("int8", s8, rng.integers(-127, 128, (1, s, K)).astype(np.int8)),
                ("uint8", u8, rng.integers(0, 256, (1, s, K)).astype(np.uint8)),
            ):
                secs = time_ort(path, x)
                print(f"onnxruntime {name} {s}x{K}x{N}: {secs * 1e6:.1f} us, {macs / secs / 1e9:.1f} GMAC/s")
            if os.path.exists(tract):
                subprocess.run([tract, s8, str(s), str(K), str(N)], check=True)
            else:
                print(f"{tract} is missing: build it with cargo build --release -p mailsort-edge --example matmul_int8")


if __name__ == "__main__":
    main()
