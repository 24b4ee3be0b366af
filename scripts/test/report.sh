#!/usr/bin/env bash
# The evaluation report from a small real run: a fifth of BANKING77's test e-mails
# through the wasm test's bundle and a real backend on loopback
# (`mailsort eval --backend … --report`), then web/tests/report.test.mjs
# opens the page in Debian's Chromium, checks its figures against the same
# run's JSON and keeps a screenshot at out/report-test/report.png.
# Part of scripts/test.sh; needs scripts/setup.sh and scripts/test/wasm.sh's bundle.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
OUT=out/report-test
BUNDLE=${BUNDLE:-out/wasm-test/b77.msb}
[[ -f "$BUNDLE" ]] || { echo "$BUNDLE is missing: run scripts/test/wasm.sh first" >&2; exit 1; }
(cd web && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error)
rm -rf "$OUT" && mkdir -p "$OUT"
KEY=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
PORT=${PORT:-18197}
start_backend "$PORT" "$KEY" "$OUT/backend.log" --bundle "$BUNDLE" --reranker-dir models/reranker
# Every fifth test e-mail: all 77 labels, 616 e-mails.
awk 'NR % 5 == 1' "$MAILSORT_DATASETS/banking77/test.jsonl" > "$OUT/test.jsonl"
MAILSORT_API_KEY=$KEY $MAILSORT eval --bundle "$BUNDLE" --test "$OUT/test.jsonl" \
  --backend "http://127.0.0.1:$PORT" --json --report "$OUT/report" > "$OUT/eval.json"
stop_backend "$BACKEND_PID"
cmp <("$MAILSORT_PYTHON" -m json.tool --sort-keys "$OUT/eval.json") \
  <("$MAILSORT_PYTHON" -m json.tool --sort-keys "$OUT/report/eval.json") \
  || { echo "the report's eval.json differs from the run's JSON" >&2; exit 1; }
MAILSORT_REPORT_DIR="$OUT/report" MAILSORT_EVAL_JSON="$OUT/eval.json" \
  MAILSORT_SCREENSHOT="$OUT/report.png" node --test web/tests/report.test.mjs
echo "report test passed; screenshot at $OUT/report.png" >&2
