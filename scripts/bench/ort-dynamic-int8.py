#!/usr/bin/env python3
"""ONNX Runtime's dynamic-INT8 export of the edge encoder, a benchmark peer.

What transformers.js ships as its `q8` models and what ONNX Runtime runs
fastest on CPU: `onnxruntime.quantization.quantize_dynamic` on the FP32
graph, int8 weights per channel, uint8 activations quantised per tensor at
run time (DynamicQuantizeLinear + MatMulInteger).

Usage: ort-dynamic-int8.py MODEL_DIR OUT.onnx
MODEL_DIR is a folder from `mailsort models fetch` (its model_fp32.onnx).
"""

import os
import sys

from onnxruntime.quantization import QuantType, quantize_dynamic


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    src = os.path.join(sys.argv[1], "model_fp32.onnx")
    if not os.path.isfile(src):
        raise SystemExit(f"{src} is missing: run `mailsort models fetch` first")
    quantize_dynamic(src, sys.argv[2], weight_type=QuantType.QInt8, per_channel=True)
    print(f"wrote {sys.argv[2]} ({os.path.getsize(sys.argv[2]) / 1e6:.1f} MB)", file=sys.stderr)


if __name__ == "__main__":
    main()
