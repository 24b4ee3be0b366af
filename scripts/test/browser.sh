#!/usr/bin/env bash
# The browser edge, end to end: builds the extension with the wasm edge and
# runs web/tests/extension.test.mjs, which loads it unpacked in Debian's
# Chromium (headless, fresh profile) through playwright-core, labels the demo
# mail page, and talks to a real mailsort-backend on loopback. Part of
# scripts/test.sh; needs scripts/setup.sh and scripts/test/wasm.sh's bundle.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
need_chromium
(cd web && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error)

OUT=out/browser
mkdir -p "$OUT"
BUNDLE=out/wasm-test/b77.msb
[[ -f "$BUNDLE" ]] || { echo "$BUNDLE is missing: run scripts/test/wasm.sh first" >&2; exit 1; }
scripts/build/extension.sh "$BUNDLE"
"$MAILSORT_PYTHON" scripts/build/demo-inbox.py --datasets "$MAILSORT_DATASETS" --jsonl "$OUT/emails.jsonl"
$MAILSORT classify --bundle "$BUNDLE" "$OUT/emails.jsonl" > "$OUT/native.jsonl"

MAILSORT_TEST_BUNDLE="$BUNDLE" MAILSORT_TEST_NATIVE="$OUT/native.jsonl" \
  MAILSORT_TEST_BACKEND="$CARGO_TARGET_DIR/release/mailsort-backend" \
  MAILSORT_RERANKER_DIR="$PWD/models/reranker" \
  node --test web/tests/extension.test.mjs
