#!/usr/bin/env bash
# Edge-only accuracy of the W8A8 encoder (INT8 compute) against the edge's
# INT8-weight, FP32-compute encoder, on the same splits: each set gets a
# bundle, a gate calibrated on its dev split (14% forwarded) and a test run
# per encoder. The W8A8 file runs through a copy of the model folder whose
# model_int8.onnx is the W8A8 graph (bundles pin their encoder by SHA-256).
#
# Usage: scripts/eval/w8a8.sh [SET ...]    (default: banking77)
# Writes out/eval/w8a8/SET.{int8,w8a8}.json (`mailsort eval --json`) and
# prints one line per set and encoder.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh

W=${OUT:-out/eval/w8a8}
SETS=("$@")
[ ${#SETS[@]} -eq 0 ] && SETS=(banking77)
mkdir -p "$W"
SRC=$MAILSORT_MODEL_DIR
W8=$W/model-w8a8
w8a8_model_dir "$W8"

for s in "${SETS[@]}"; do
  d="$MAILSORT_DATASETS/$s"
  [ -d "$d" ] || { echo "no set $s in $MAILSORT_DATASETS" >&2; exit 1; }
  "$MAILSORT" split --input "$(file_of "$d" train)" --dev-fraction 0.1 \
    --train-out "$W/$s.train.jsonl" --dev-out "$W/$s.dev.jsonl" 2> /dev/null
  taxonomy=()
  [ -f "taxonomies/$s.yaml" ] && taxonomy=(--taxonomy "taxonomies/$s.yaml")
  for enc in int8 w8a8; do
    dir=$SRC
    [ "$enc" = w8a8 ] && dir=$W8
    echo "== $s, $enc encoder: bundle, gate, test" >&2
    started=$(date +%s)
    "$MAILSORT" build --model-dir "$dir" --train "$W/$s.train.jsonl" "${taxonomy[@]}" --out "$W/$s.$enc.msb" > "$W/$s.$enc.build.json"
    "$MAILSORT" calibrate --model-dir "$dir" --bundle "$W/$s.$enc.msb" --dev "$W/$s.dev.jsonl" --forward-rate 0.14 > /dev/null
    "$MAILSORT" eval --model-dir "$dir" --bundle "$W/$s.$enc.msb" --test "$(file_of "$d" test)" --json > "$W/$s.$enc.json"
    "$MAILSORT_PYTHON" - "$W/$s.$enc.json" "$s" "$enc" "$(($(date +%s) - started))" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]} {sys.argv[3]}: " + ", ".join(f"{k} {v}" for k, v in r.items() if not isinstance(v, (dict, list))) + f" ({sys.argv[4]} s)")
PY
  done
done
