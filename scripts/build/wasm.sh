#!/usr/bin/env bash
# Builds the edge core for WebAssembly (wasm32-unknown-unknown, SIMD128 and
# relaxed SIMD, see .cargo/config.toml):
#   web/pkg/       ES module for browsers (wasm-bindgen --target web)
#   web/pkg-node/  CommonJS module for Node.js tests (--target nodejs)
# stripping the .wasm with wasm-opt (npm's binaryen, one of web/'s packages),
# and prints raw and gzip sizes. wasm-bindgen-cli is pinned to the version of
# the wasm-bindgen crate in Cargo.lock and installed under ~/.cache on first use.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh

TOOLS="$HOME/.cache/mailsort-tools"
WBG_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)
WBG="$TOOLS/bin/wasm-bindgen"
if [[ ! -x "$WBG" ]] || [[ "$("$WBG" --version)" != "wasm-bindgen $WBG_VERSION" ]]; then
  echo "installing wasm-bindgen-cli $WBG_VERSION…" >&2
  cargo install wasm-bindgen-cli --version "$WBG_VERSION" --root "$TOOLS" >&2
fi
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true

echo "building mailsort-wasm (the edge core's JavaScript face) for wasm32 (profile wasm: opt-level z, fat LTO)…" >&2
cargo rustc --locked --lib --crate-type cdylib --target wasm32-unknown-unknown --profile wasm \
  -p mailsort-wasm
WASM="$CARGO_TARGET_DIR/wasm32-unknown-unknown/wasm/mailsort_wasm.wasm"

if [[ web/pkg/mailsort_edge_bg.wasm -nt "$WASM" && web/pkg-node/mailsort_edge_bg.wasm -nt "$WASM" ]]; then
  echo "web/pkg and web/pkg-node are up to date" >&2
  exit 0
fi

# wasm-opt (binaryen 132 from npm: Debian's 108 cannot read relaxed SIMD)
# only strips here, before wasm-bindgen. Its -Oz, -Os and even -O2 made the
# edge 1.4x slower in Chromium (80-87 ms per e-mail against 55-63) for 5%
# less gzip, and the stripped module is already under 3 MB gzip.
WASM_OPT=web/node_modules/.bin/wasm-opt
if [[ ! -x "$WASM_OPT" ]]; then
  (cd web && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error)
fi
"$WASM_OPT" --strip-debug --strip-producers --enable-simd --enable-relaxed-simd --enable-bulk-memory \
  --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals \
  --enable-reference-types --enable-multivalue "$WASM" -o "$CARGO_TARGET_DIR/mailsort_edge.opt.wasm"
WASM="$CARGO_TARGET_DIR/mailsort_edge.opt.wasm"
for target in web nodejs; do
  out=web/pkg; [[ $target == nodejs ]] && out=web/pkg-node
  rm -rf "$out"
  "$WBG" --target "$target" --out-dir "$out" --out-name mailsort_edge "$WASM"
done
raw=$(stat -c %s web/pkg/mailsort_edge_bg.wasm)
gz=$(gzip -9 -c web/pkg/mailsort_edge_bg.wasm | wc -c)
echo "web/pkg/mailsort_edge_bg.wasm: $((raw / 1024)) KiB, gzip -9 $((gz / 1024)) KiB"
