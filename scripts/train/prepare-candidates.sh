#!/usr/bin/env bash
# The edge side of reranker training, for one labelled set:
#   PREFIX.train.jsonl / PREFIX.dev.jsonl  a stratified 90/10 split (seed 13)
#   PREFIX.msb                             the bundle, built on the 90%
#   PREFIX.cand-train.jsonl                each training e-mail's out-of-fold candidates
#   PREFIX.calibrate.json                  the gate calibrated on dev for FORWARD_RATE (0.14)
#   PREFIX.cand-dev.jsonl                  each dev e-mail's candidates under that gate
# Usage: scripts/train/prepare-candidates.sh LABELLED.jsonl[.gz] TAXONOMY.yaml|- PREFIX
#   (- : the labels are the data's own, described by their names)
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
[ $# -eq 3 ] || { sed -n 2,10p "$0" >&2; exit 2; }
input=$1 taxonomy=$2 w=$3
[ -f "$input" ] || { echo "no such file: $input" >&2; exit 2; }
tax=()
if [ "$taxonomy" != - ]; then
  [ -f "$taxonomy" ] || { echo "no such taxonomy: $taxonomy" >&2; exit 2; }
  tax=(--taxonomy "$taxonomy")
fi
mkdir -p "$(dirname "$w")"
"$MAILSORT" split --input "$input" --dev-fraction 0.1 --train-out "$w.train.jsonl" --dev-out "$w.dev.jsonl"
"$MAILSORT" build --train "$w.train.jsonl" "${tax[@]}" --out "$w.msb" \
  --candidates-out "$w.cand-train.jsonl" > "$w.build.json"
"$MAILSORT" calibrate --bundle "$w.msb" --dev "$w.dev.jsonl" --forward-rate "${FORWARD_RATE:-0.14}" > "$w.calibrate.json"
"$MAILSORT" eval --bundle "$w.msb" --test "$w.dev.jsonl" --json --candidates-out "$w.cand-dev.jsonl" > /dev/null
