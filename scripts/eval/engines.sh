#!/usr/bin/env bash
# Edge-only accuracy of one bundle on every native edge engine: tract on the
# INT8-weight file (what the bundle is built and its gate calibrated with),
# tract on the W8A8 file and ONNX Runtime on its dynamic-INT8 file (both
# compute in INT8). Each set gets a bundle and a gate calibrated on its dev
# split (14% forwarded), then one test run per engine on the same split.
#
# Usage: scripts/eval/engines.sh [SET ...]    (default: banking77)
#        ENGINES="tract onnxruntime-int8" scripts/eval/engines.sh 20newsgroups
# Writes out/eval/engines/SET.ENGINE.json (`mailsort eval --json`) and prints
# one line per set and engine.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh

W=${OUT:-out/eval/engines}
SETS=("$@")
[ ${#SETS[@]} -eq 0 ] && SETS=(banking77)
read -r -a ENGINES <<< "${ENGINES:-tract tract-w8a8 onnxruntime-int8}"
mkdir -p "$W"

for s in "${SETS[@]}"; do
  d="$MAILSORT_DATASETS/$s"
  [ -d "$d" ] || { echo "no set $s in $MAILSORT_DATASETS" >&2; exit 1; }
  "$MAILSORT" split --input "$(file_of "$d" train)" --dev-fraction 0.1 \
    --train-out "$W/$s.train.jsonl" --dev-out "$W/$s.dev.jsonl" 2> /dev/null
  taxonomy=()
  [ -f "taxonomies/$s.yaml" ] && taxonomy=(--taxonomy "taxonomies/$s.yaml")
  echo "== $s: bundle and gate (tract)" >&2
  "$MAILSORT" build --train "$W/$s.train.jsonl" "${taxonomy[@]}" --out "$W/$s.msb" > "$W/$s.build.json"
  "$MAILSORT" calibrate --bundle "$W/$s.msb" --dev "$W/$s.dev.jsonl" --forward-rate 0.14 > /dev/null
  for engine in "${ENGINES[@]}"; do
    echo "== $s on $engine: test" >&2
    started=$(date +%s)
    "$MAILSORT" eval --engine "$engine" --bundle "$W/$s.msb" --test "$(file_of "$d" test)" --json > "$W/$s.$engine.json"
    "$MAILSORT_PYTHON" - "$W/$s.$engine.json" "$s" "$engine" "$(($(date +%s) - started))" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]} {sys.argv[3]}: " + ", ".join(f"{k} {v}" for k, v in r.items() if not isinstance(v, (dict, list))) + f" ({sys.argv[4]} s)")
PY
  done
done
