#!/usr/bin/env bash
# The main job on the default model and data: set up, build a bundle for the
# sample support taxonomy (examples/support-taxonomy.yaml) from the
# support-tickets train split, evaluate it on the test split, and classify
# the sample e-mails in examples/emails.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/lib.sh
mkdir -p out
D="$MAILSORT_DATASETS/support-tickets"
"$MAILSORT" build --train "$D/train.jsonl" --taxonomy examples/support-taxonomy.yaml --out out/support.msb >/dev/null
echo "== evaluation on the support-tickets test split"
"$MAILSORT" eval --bundle out/support.msb --test "$D/test.jsonl"
echo "== decisions for examples/emails/*.eml"
"$MAILSORT" classify --bundle out/support.msb examples/emails/*.eml | tee out/decisions.jsonl
