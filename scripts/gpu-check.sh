#!/usr/bin/env bash
# The backend on CUDA: FP16 against FP32 (same scores? how much faster?) and
# dynamic batching against one e-mail per model call, measured over real
# HTTP with oha (scripts/bench/backend.sh with DEVICE=cuda).
#
# Run from the repo root on a machine with an NVIDIA GPU and driver, after
# scripts/setup.sh and scripts/run.sh (or with the release binaries,
# models/ and out/ carried there). ONNX Runtime GPU comes from PyPI, or
# from a folder of downloaded wheels: WHEELS=/path/to/wheels.
# Results: out/bench/gpu/summary.md and out/bench/gpu/fp16-vs-fp32.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

GPU_VENV=${GPU_VENV:-.venv-gpu}
if [[ ! -x "$GPU_VENV/bin/python" ]]; then
  python3 -m venv "$GPU_VENV"
  "$GPU_VENV/bin/pip" install --quiet ${WHEELS:+--no-index --find-links "$WHEELS"} \
    "onnxruntime-gpu[cuda,cudnn]==1.32.0" nvidia-cublas
fi
SITE=$("$GPU_VENV/bin/python" -c 'import site; print(site.getsitepackages()[0])')
export ORT_DYLIB_PATH=$(ls "$SITE"/onnxruntime/capi/libonnxruntime.so.* | head -1)
export LD_LIBRARY_PATH="$SITE/nvidia/cu13/lib:$SITE/nvidia/cudnn/lib:${LD_LIBRARY_PATH:-}"
OUT=out/bench/gpu
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/card.txt"

REQUESTS=out/bench/backend/rerank-requests.jsonl
if [[ ! -f "$REQUESTS" ]]; then
  mkdir -p out/bench/backend
  $MAILSORT classify --bundle out/support.msb "$MAILSORT_DATASETS/support-tickets/test.jsonl" \
    --forwarded-out "$REQUESTS" > /dev/null
fi

# Same requests through FP16 and FP32 on the GPU: largest score difference
# and how often the chosen label agrees.
KEY=gpu-check-key-0123456789
for p in fp16 fp32; do
  start_backend 18095 "$KEY" "$OUT/server-$p.log" --bundle out/support.msb --device cuda --precision "$p"
  # score_all: compare the logits even where a fusion file would skip them.
  sed 's/^{/{"score_all":true,/' "$REQUESTS" | while read -r body; do
    curl -s -H "Authorization: Bearer $KEY" -H 'content-type: application/json' \
      -d "$body" http://127.0.0.1:18095/v1/rerank
    echo
  done > "$OUT/responses-$p.jsonl"
  stop_backend "$BACKEND_PID"
done
"$MAILSORT_PYTHON" - "$OUT" <<'PY' | tee "$OUT/fp16-vs-fp32.txt"
import json, sys
out = sys.argv[1]
load = lambda p: [json.loads(l)["results"][0] for l in open(f"{out}/responses-{p}.jsonl") if l.strip()]
a, b = load("fp16"), load("fp32")
diff = max(abs(x["score"] - y["score"]) for ra, rb in zip(a, b)
           for x, y in zip(sorted(ra["candidates"], key=lambda c: c["label"]),
                           sorted(rb["candidates"], key=lambda c: c["label"])))
same = sum(ra["label"] == rb["label"] for ra, rb in zip(a, b))
print(f"FP16 vs FP32 on CUDA, {len(a)} e-mails: max |score diff| {diff:.2e}, same label {same}/{len(a)}")
PY

OUT=$OUT REQUESTS=$REQUESTS DEVICE=cuda AB_FLAGS="--precision fp16" RATE=${RATE:-40} DURATION=${DURATION:-30} SATURATE=${SATURATE:-20} \
  CONNECTIONS=${CONNECTIONS:-128} \
  SETTINGS="fp16-batching:--precision fp16|fp16-single:--precision fp16 --no-batching|fp32-batching:--precision fp32|fp32-single:--precision fp32 --no-batching" \
  scripts/bench/backend.sh
