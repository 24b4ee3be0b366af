#!/usr/bin/env bash
# Assembles the unpacked Manifest V3 extension in web/extension/: the
# WebAssembly edge (scripts/build/wasm.sh), a bundle and the INT8 encoder it
# was built with. Load the folder in chrome://extensions ("Load unpacked").
#   scripts/build/extension.sh BUNDLE.msb
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
BUNDLE=${1:?usage: scripts/build/extension.sh BUNDLE.msb (a bundle made by mailsort build)}
[[ -f "$BUNDLE" ]] || { echo "no bundle at $BUNDLE" >&2; exit 1; }
MODEL="$MAILSORT_MODEL_DIR/model_int8.onnx"
[[ -f "$MODEL" ]] || { echo "no encoder at $MODEL: run scripts/setup.sh" >&2; exit 1; }

scripts/build/wasm.sh
EXT=web/extension
mkdir -p "$EXT/pkg" "$EXT/model"
cp web/pkg/mailsort_edge.js web/pkg/mailsort_edge_bg.wasm "$EXT/pkg/"
cp "$BUNDLE" "$EXT/model/bundle.msb"
cp "$MODEL" "$EXT/model/model_int8.onnx"
size() { echo "$(($(stat -c %s "$1") / 1024)) KiB"; }
echo "extension in $EXT: wasm $(size "$EXT/pkg/mailsort_edge_bg.wasm") (gzip $(($(gzip -9 -c "$EXT/pkg/mailsort_edge_bg.wasm" | wc -c) / 1024)) KiB), model $(size "$EXT/model/model_int8.onnx"), bundle $(size "$EXT/model/bundle.msb")" >&2
