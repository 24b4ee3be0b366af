#!/usr/bin/env bash
# The edge Worker, end to end: builds it (scripts/build/worker.sh) and runs
# crates/worker/tests/worker.test.mjs, which serves it with
# `wrangler dev` (local workerd, no network) next to a real mailsort-backend
# and compares its decisions with the native CLI's. Part of scripts/test.sh;
# needs scripts/setup.sh and scripts/test/wasm.sh's bundle.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
BUNDLE=out/wasm-test/b77.msb
[[ -f "$BUNDLE" ]] || { echo "$BUNDLE is missing: run scripts/test/wasm.sh first" >&2; exit 1; }
scripts/build/worker.sh "$BUNDLE"

OUT=out/worker
mkdir -p "$OUT"
"$MAILSORT_PYTHON" scripts/build/demo-inbox.py --datasets "$MAILSORT_DATASETS" --out "$OUT/inbox.json" --jsonl "$OUT/emails.jsonl"
$MAILSORT classify --bundle "$BUNDLE" "$OUT/emails.jsonl" > "$OUT/native.jsonl"
"$MAILSORT_PYTHON" - "$MAILSORT_DATASETS" "$OUT/raw.eml" <<'PY'
import gzip, json, sys
root, out = sys.argv[1:]
with gzip.open(f"{root}/20newsgroups/test.jsonl.gz", "rt") as f:
    open(out, "w").write(json.loads(next(f))["raw"])
PY

MAILSORT_TEST_BUNDLE="$BUNDLE" MAILSORT_TEST_EMAILS="$OUT/emails.jsonl" MAILSORT_TEST_NATIVE="$OUT/native.jsonl" \
  MAILSORT_TEST_RAW="$OUT/raw.eml" MAILSORT_TEST_BACKEND="$CARGO_TARGET_DIR/release/mailsort-backend" \
  MAILSORT_RERANKER_DIR="$PWD/models/reranker" \
  node --test crates/worker/tests/worker.test.mjs
