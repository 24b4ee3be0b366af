#!/usr/bin/env bash
# Reproduces the README's results table. For each dataset: carve a 10% dev
# split from train (stratified, seed 13), build a bundle on the rest,
# calibrate the gate on the dev split for 15% forwarded, and evaluate on the
# untouched test split. Results land in out/results/<set>.json.
# Usage: scripts/eval-datasets.sh [banking77] [20newsgroups] [support-tickets]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
sets=("$@")
[ ${#sets[@]} -eq 0 ] && sets=(banking77 20newsgroups support-tickets)
mkdir -p out/results
for set in "${sets[@]}"; do
  d="$MAILSORT_DATASETS/$set"
  train="$d/train.jsonl"; test="$d/test.jsonl"
  [ -f "$train" ] || { train="$train.gz"; test="$test.gz"; }
  extra=()
  [ "$set" = support-tickets ] && extra=(--taxonomy examples/support-taxonomy.yaml)
  w="out/results/$set"
  echo "== $set" >&2
  "$MAILSORT" split --input "$train" --dev-fraction 0.1 --train-out "$w.train.jsonl" --dev-out "$w.dev.jsonl"
  "$MAILSORT" build --train "$w.train.jsonl" "${extra[@]}" --out "$w.msb" > "$w.build.json"
  "$MAILSORT" calibrate --bundle "$w.msb" --dev "$w.dev.jsonl" --forward-rate 0.15 > "$w.calibrate.json"
  "$MAILSORT" eval --bundle "$w.msb" --test "$test" --json > "$w.json"
  cat "$w.json"
done
echo
echo "| set | n | accuracy (edge only) | macro F1 | top-5 recall | forwarded | accuracy kept at edge | oracle edge+backend |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
for set in "${sets[@]}"; do
  python3 -c "
import json,sys
r=json.load(open('out/results/$set.json'))
p=lambda k: f'{100*r[k]:.2f}'
print(f\"| $set | {r['n']} | {p('accuracy')} | {p('macro_f1')} | {p('top5_recall')} | {p('forwarded_rate')} | {p('edge_accuracy')} | {p('oracle_end_to_end_accuracy')} |\")
"
done
