#!/usr/bin/env bash
# Every benchmark in one run, side by side on this machine, into
# bench/results/<machine>-<date>.json (what `mailsort plan` reads) and a
# Markdown summary beside it:
#   1. native edge: tract against ONNX Runtime on the same INT8 file
#      (`mailsort bench`), with the INT8-compute peers (tract on the W8A8
#      file, ONNX Runtime on its dynamic-INT8 export), 20 Newsgroups at token
#      caps 128/256/384 and BANKING77 at 256;
#   2. the edge's layers one e-mail at a time (`mailsort bench-stages`);
#   3. the WebAssembly edge in Chromium against transformers.js
#      (scripts/bench/browser.sh);
#   4. the backend over HTTP (scripts/bench/backend.sh): batching against
#      one e-mail per model call (A/B), token caps 128/256/384, and latency
#      against offered load up to saturation;
#   5. on a machine with an NVIDIA GPU, CUDA FP16 against FP32 and batching
#      there (scripts/gpu-check.sh);
# then writes the evaluation report of the main job's bundle through a real
# backend (out/bench/report/index.html, `mailsort eval --report`) and prints
# the capacity plan for the seed's scenario from the new results file.
#
# Usage: scripts/bench/all.sh [--quick]
#   --quick: fewer e-mails and shorter load runs, under 10 minutes on 2 cores
#   (the full run takes about 35). Needs scripts/setup.sh; builds what is
#   missing (the main job's bundle, the wasm test bundle).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
QUICK=0
[[ "${1:-}" == --quick ]] && QUICK=1
OUT=${OUT:-out/bench}
RESULTS=${RESULTS:-bench/results}
START=$(date +%s)
step() { echo "== [$(( $(date +%s) - START ))s] $*" >&2; }

rm -rf "$OUT/edge" "$OUT/stages.json" "$OUT/browser.json" "$OUT/backend" "$OUT/gpu" "$OUT/report"
mkdir -p "$OUT/edge" "$RESULTS"
[[ -x "$MAILSORT" && -x "$BACKEND" ]] || cargo build --release --locked -p mailsort-cli -p mailsort-backend >&2
[[ -f out/support.msb ]] || scripts/run.sh >&2

"$MAILSORT_PYTHON" - "$OUT/machine.json" <<'EOF'
import json, os, re, shutil, subprocess, sys
cpu = "unknown CPU"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = re.sub(r"\s+", " ", line.split(":", 1)[1]).strip()
        break
mem = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")) / 2**20
gpu = driver = None
if shutil.which("nvidia-smi"):
    out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                         capture_output=True, text=True).stdout.strip().splitlines()
    if out:
        gpu, driver = [x.strip() for x in out[0].split(",")[:2]]
json.dump({"cpu": cpu, "cores": len(os.sched_getaffinity(0)), "memory_gib": round(mem, 1),
           "gpu": gpu, "driver": driver}, open(sys.argv[1], "w"))
EOF
cat "$OUT/machine.json" >&2; echo >&2

if (( QUICK )); then N=32 ROUNDS=1 STAGES_N=100; else N=128 ROUNDS=2 STAGES_N=500; fi
NG="$MAILSORT_DATASETS/20newsgroups/test.jsonl.gz"
# Without AVX-512 VNNI tract's INT8 kernels run W8A8 at about 1/35 of the
# edge's speed (docs/int8.md): too slow to sit through, and known.
skip=()
grep -qw avx512_vnni /proc/cpuinfo || { skip=(--skip tract-w8a8); echo "no AVX-512 VNNI: tract-w8a8 left out" >&2; }
for cap in 128 256 384; do
  step "native edge, 20 Newsgroups, token cap $cap"
  $MAILSORT bench --input "$NG" --n "$N" --rounds "$ROUNDS" --token-cap "$cap" "${skip[@]}" --json > "$OUT/edge/20newsgroups-cap$cap.json"
done
step "native edge, BANKING77, token cap 256"
$MAILSORT bench --input "$MAILSORT_DATASETS/banking77/test.jsonl" --n "$((N * 2))" --rounds "$ROUNDS" \
  --token-cap 256 "${skip[@]}" --json > "$OUT/edge/banking77-cap256.json"

step "edge layers, support-tickets"
$MAILSORT bench-stages --bundle out/support.msb --input "$MAILSORT_DATASETS/support-tickets/test.jsonl" \
  --n "$STAGES_N" --json > "$OUT/stages.json"

if command -v chromium > /dev/null; then
  step "browser edge against transformers.js"
  [[ -f out/wasm-test/b77.msb ]] || scripts/test/wasm.sh >&2
  EMAILS=$(( QUICK ? 100 : 200 )) ROUNDS=$(( QUICK ? 1 : 2 )) scripts/bench/browser.sh >&2
  cp out/bench-browser/result.json "$OUT/browser.json"
else
  echo "no chromium: skipping the browser benchmark (apt install chromium)" >&2
fi

step "backend over HTTP"
if (( QUICK )); then
  # One e-mail per model call is measured by the A/B rounds only.
  export DURATION=6 LOW_DURATION=6 SATURATE=8 AB_ROUNDS=2 AB_SECONDS=6 SWEEP_SECONDS=6 SWEEP="0.25 0.5 0.9 1.2"
  export SETTINGS="batching-cap256:--token-cap 256|batching-cap128:--token-cap 128|batching-cap384:--token-cap 384"
else
  export SWEEP="0.1 0.25 0.5 0.75 0.9 1.0 1.2" SWEEP_SECONDS=20
fi
OUT="$OUT/backend" scripts/bench/backend.sh >&2

if command -v nvidia-smi > /dev/null && nvidia-smi > /dev/null 2>&1; then
  step "GPU: FP16 against FP32, batching"
  OUT="$OUT/gpu" scripts/gpu-check.sh >&2
fi

step "evaluation report: support-tickets through edge and backend"
KEY=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
start_backend 18099 "$KEY" "$OUT/report-backend.log" --bundle out/support.msb
MAILSORT_API_KEY=$KEY $MAILSORT eval --cache-embeddings --bundle out/support.msb \
  --test "$MAILSORT_DATASETS/support-tickets/test.jsonl" --backend http://127.0.0.1:18099 \
  --report "$OUT/report" > /dev/null
stop_backend "$BACKEND_PID"

step "collecting"
quick=(); (( QUICK )) && quick=(--quick)
file=$("$MAILSORT_PYTHON" scripts/bench/collect.py "$OUT" "$RESULTS" "${quick[@]}" \
  --commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)")
cat "${file%.json}.md"
echo
$MAILSORT plan --results "$file" | tee "${file%.json}.plan.txt"
step "done: $file (and .md, .plan.txt); report: $OUT/report/index.html"
