#!/usr/bin/env bash
# One command for a per-taxonomy reranker: from the user's labelled e-mails
# and taxonomy to a bundle, a trained cross-encoder and its ONNX files.
#   OUT/edge.msb        the bundle (built on 90%, gate calibrated on the 10% dev split)
#   OUT/checkpoint/     the trained cross-encoder (Hugging Face folder, model card)
#   OUT/onnx/           FP32 + FP16 ONNX and manifest: serve with
#                       mailsort-backend --bundle OUT/edge.msb --reranker-dir OUT/onnx
# By default training starts from the committed generic reranker
# (INIT=models/reranker-generic; INIT= starts from the encoder's weights).
# Extra arguments go to training/train_reranker.py (e.g. --epochs 2 --seed 7).
# Usage: scripts/train/train-reranker.sh LABELLED.jsonl[.gz] TAXONOMY.yaml OUT [TRAINER ARGS…]
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
[ $# -ge 3 ] || { sed -n 2,11p "$0" >&2; exit 2; }
input=$1 taxonomy=$2 out=$3; shift 3
scripts/train/setup.sh
scripts/train/prepare-candidates.sh "$input" "$taxonomy" "$out/edge"
init=()
INIT=${INIT-models/reranker-generic}
[ -n "$INIT" ] && init=(--init "$INIT")
.venv-train/bin/python training/train_reranker.py --train "$out/edge.cand-train.jsonl" \
  --dev "$out/edge.cand-dev.jsonl" --base "$MAILSORT_MODEL_DIR/source" "${init[@]}" \
  --out "$out/checkpoint" --name "mailsort-reranker-$(basename "$out")" "$@" > "$out/train.json"
"$MAILSORT" models reranker --from "$out/checkpoint" --dir "$out/onnx" --force
echo "serve with: mailsort-backend --bundle $out/edge.msb --reranker-dir $out/onnx" >&2
