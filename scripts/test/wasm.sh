#!/usr/bin/env bash
# Builds the WebAssembly edge and checks it against the native CLI in Node.js:
# same bundle, same model, 200 real e-mails (BANKING77 messages and raw
# 20 Newsgroups posts). Part of scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
command -v node > /dev/null || { echo "node (Node.js 20+) is needed for the WebAssembly test" >&2; exit 1; }
scripts/build/wasm.sh

OUT=out/wasm-test
mkdir -p "$OUT"
if [[ ! -f "$OUT/b77.msb" ]]; then
  awk 'NR % 8 == 1' "$MAILSORT_DATASETS/banking77/train.jsonl" > "$OUT/train.jsonl"
  $MAILSORT build --train "$OUT/train.jsonl" --out "$OUT/b77.msb" > /dev/null 2> "$OUT/build.log"
fi
# 150 BANKING77 test messages and 50 raw 20 Newsgroups posts.
"$MAILSORT_PYTHON" - "$MAILSORT_DATASETS" "$OUT/emails.jsonl" <<'PY'
import gzip, json, sys
root, out = sys.argv[1:]
rows = [json.loads(l) for l in open(f"{root}/banking77/test.jsonl")][::20][:150]
posts = [json.loads(l) for l in gzip.open(f"{root}/20newsgroups/test.jsonl.gz", "rt")][::150][:50]
with open(out, "w") as f:
    for r in rows:
        f.write(json.dumps({"id": r["id"], "subject": r["subject"], "body": r["body"]}) + "\n")
    for r in posts:
        f.write(json.dumps({"id": r["id"], "raw": r["raw"]}) + "\n")
PY
$MAILSORT classify --bundle "$OUT/b77.msb" "$OUT/emails.jsonl" > "$OUT/native.jsonl"
MAILSORT_TEST_BUNDLE="$OUT/b77.msb" MAILSORT_TEST_MODEL="$MAILSORT_MODEL_DIR/model_int8.onnx" \
  MAILSORT_TEST_EMAILS="$OUT/emails.jsonl" MAILSORT_TEST_NATIVE="$OUT/native.jsonl" \
  node $(scripts/build/node-wasm-flags.sh) --test web/tests/edge-parity.test.mjs
