#!/usr/bin/env bash
# Builds the edge Worker (crates/worker) with worker-build into
# crates/worker/build/, and puts a bundle and the INT8 encoder into its
# static assets (crates/worker/assets/). Prints the compressed size
# wrangler would upload.
#   scripts/build/worker.sh BUNDLE.msb
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
BUNDLE=${1:?usage: scripts/build/worker.sh BUNDLE.msb (a bundle made by mailsort build)}
[[ -f "$BUNDLE" ]] || { echo "no bundle at $BUNDLE" >&2; exit 1; }
MODEL="$MAILSORT_MODEL_DIR/model_int8.onnx"
[[ -f "$MODEL" ]] || { echo "no encoder at $MODEL: run scripts/setup.sh" >&2; exit 1; }
ROOT=$PWD
WORKER=crates/worker
TOOLS="$HOME/.cache/mailsort-tools"

# The same wasm-bindgen CLI as the browser build (pinned to Cargo.lock).
WBG_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)
if [[ ! -x "$TOOLS/bin/wasm-bindgen" ]] || [[ "$("$TOOLS/bin/wasm-bindgen" --version)" != "wasm-bindgen $WBG_VERSION" ]]; then
  cargo install wasm-bindgen-cli --version "$WBG_VERSION" --root "$TOOLS" >&2
fi
WB_VERSION=$(awk '/^name = "worker-build"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)
WB_VERSION=${WB_VERSION:-0.8.7}
if [[ ! -x "$TOOLS/bin/worker-build" ]] || ! "$TOOLS/bin/worker-build" --version 2>/dev/null | grep -q "$WB_VERSION"; then
  echo "installing worker-build $WB_VERSION…" >&2
  cargo install worker-build --version "$WB_VERSION" --root "$TOOLS" >&2
fi
(cd "$WORKER" && npm ci --no-audit --no-fund --loglevel=error)
[[ -x web/node_modules/.bin/wasm-opt ]] || (cd web && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error)
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true

# worker-build would download wasm-bindgen, wasm-opt and esbuild from
# GitHub; point it at the pinned CLI, npm's binaryen and wrangler's esbuild. The
# profile is the browser's (opt-level z, tract-linalg at 3): the same speed
# and a script under the free plan's 3 MB.
echo "building the Worker (worker-build, profile wasm)…" >&2
(cd "$WORKER" && WASM_BINDGEN_BIN="$TOOLS/bin/wasm-bindgen" ESBUILD_BIN="$ROOT/$WORKER/node_modules/.bin/esbuild" \
  WASM_OPT_BIN="$ROOT/web/node_modules/.bin/wasm-opt" \
  "$TOOLS/bin/worker-build" --profile wasm)

mkdir -p "$WORKER/assets"
cp "$BUNDLE" "$WORKER/assets/bundle.msb"
cp "$MODEL" "$WORKER/assets/model_int8.onnx"
(cd "$WORKER" && WRANGLER_SEND_METRICS=false npx wrangler deploy --dry-run --outdir "$ROOT/$WORKER/build/dry-run" 2>&1 | grep -E "Total Upload|gzip" >&2) || true
