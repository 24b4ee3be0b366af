#!/usr/bin/env bash
# Reproduces the README's results table: edge only and end to end, on the
# test splits of ../shared/datasets. Everything is trained on train splits.
#
# 1. Edge, per set: carve a 10% dev split from train (stratified, seed 13),
#    build a bundle on the rest (writing each training e-mail's out-of-fold
#    candidates), calibrate the gate on the dev split for 14% forwarded (a
#    point of headroom under the 15% budget for sampling noise), and write
#    the dev split's candidates.
# 2. Rerankers (training/train_reranker.py; each is skipped when its folder
#    in out/rerankers exists): per-taxonomy ones on one set (banking77,
#    20newsgroups), and the generic one trained on all sets but the one it
#    is evaluated on (leave one group out: four groups, each mixing short
#    intents with longer mail, so every left-out reranker still trained on
#    both kinds); and the default generic one on every set, which is
#    committed as models/reranker-generic.
# 3. For each reranker, a real mailsort-backend on loopback serving the
#    bundles, and `mailsort eval --backend` on each set's test split.
#
# Usage: scripts/train/eval-datasets.sh [SET ...]   (default: every set)
# STAGES (default "edge train eval") picks the stages to run; PER_TAXONOMY=0
# skips the per-taxonomy rerankers.
# Results land in out/results/<set>.<reranker>.json and a markdown table on
# stdout. About 6 hours on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
ALL=(banking77 20newsgroups support-tickets snips atis ag-news bbc-news reuters-r52)
SETS=("$@")
[ ${#SETS[@]} -eq 0 ] && SETS=("${ALL[@]}")
STAGES=" ${STAGES:-edge train eval} "
PER_TAXONOMY=${PER_TAXONOMY:-1}
PORT=${PORT:-18190}
W=out/results
R=out/rerankers
mkdir -p "$W" "$R"
TRAIN_PY=${TRAIN_PY:-.venv-train/bin/python}

taxonomy_of() {
  case "$1" in
    support-tickets) echo examples/support-taxonomy.yaml ;;
    *) if [ -f "taxonomies/$1.yaml" ]; then echo "taxonomies/$1.yaml"; else echo -; fi ;;
  esac
}

# The leave-out groups: a generic reranker "generic-no-GROUP" never sees
# any set of its group.
group_of() {
  case "$1" in
    banking77|atis) echo intents-a ;;
    snips|reuters-r52) echo intents-b ;;
    20newsgroups|bbc-news) echo news ;;
    support-tickets|ag-news) echo mixed ;;
    *) echo "no group for set $1" >&2; exit 2 ;;
  esac
}

prepare_set() {
  local set=$1 d="$MAILSORT_DATASETS/$1" w="$W/$1"
  local train="$d/train.jsonl" test="$d/test.jsonl"
  [ -f "$train" ] || { train="$train.gz"; test="$test.gz"; }
  if [ -s "$w.edge.json" ]; then return; fi
  echo "== $set: edge (bundle, calibration, candidates)" >&2
  scripts/train/prepare-candidates.sh "$train" "$(taxonomy_of "$set")" "$w"
  # The test split's candidates too: what training/probe_second_opinion.py
  # reports on (never trained or tuned on).
  "$MAILSORT" eval --cache-embeddings --bundle "$w.msb" --test "$test" --json \
    --candidates-out "$w.cand-test.jsonl" > "$w.edge.json"
}

# train NAME SET... : a reranker on these sets' training candidates,
# calibrated on their dev candidates.
train() {
  local name=$1; shift
  [ -f "$R/$name/model.safetensors" ] && return
  local tr=() dv=()
  for s in "$@"; do tr+=("$W/$s.cand-train.jsonl"); dv+=("$W/$s.cand-dev.jsonl"); done
  echo "== reranker $name on $*" >&2
  "$TRAIN_PY" training/train_reranker.py --train "${tr[@]}" --dev "${dv[@]}" \
    --base "$MAILSORT_MODEL_DIR/source" --out "$R/$name" --name "mailsort-reranker-$name" \
    $(train_flags "$name") > "$R/$name.train.json"
}

# Training is CPU-bound here (2 cores, ~35 pairs/s): generic rerankers
# take at most 800 e-mails per set; the committed one is stored in FP16.
train_flags() {
  case "$1" in
    banking77) echo "--epochs 2 --edge-prior 0 --keep-sample 0.3" ;;
    # 20 Newsgroups posts are long and its picked examples are noise: the
    # e-mail gets the tokens instead. Data is what moves it: 2 epochs over
    # all 10,182 training e-mails (about 2 hours, +2.55) beat 3 epochs over
    # forwarded + 30% of kept (+1.99), which beat 2 over + 10% (+0.78).
    20newsgroups) echo "--epochs 2 --edge-prior 0 --keep-sample 1 --label-examples 0" ;;
    # Then one more epoch from that checkpoint at a lower learning rate (and
    # another shuffle): about 1 hour, +2.55 -> +2.75.
    20newsgroups-e3) echo "--init $R/20newsgroups --epochs 1 --lr 2e-5 --seed 14 --edge-prior 0 --keep-sample 1 --label-examples 0" ;;
    generic) echo "--epochs 1 --max-rows-per-file ${GENERIC_ROWS:-800} --save-fp16" ;;
    generic-no-*) echo "--epochs 1 --max-rows-per-file ${GENERIC_ROWS:-800}" ;;
    *) echo "--epochs 1" ;;
  esac
}

# evaluate RERANKER_DIR NAME SET... : one backend with that reranker, every
# set's test split through it.
evaluate() {
  local src=$1 name=$2; shift 2
  local onnx="$R/$name.onnx" key
  "$MAILSORT" models reranker --from "$src" --dir "$onnx" >&2
  key=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
  local bundles=()
  for s in "$@"; do bundles+=(--bundle "$W/$s.msb"); done
  start_backend "$PORT" "$key" "$W/backend.$name.log" "${bundles[@]}" --reranker-dir "$onnx" --device cpu
  for s in "$@"; do
    local d="$MAILSORT_DATASETS/$s" test
    test="$d/test.jsonl"; [ -f "$test" ] || test="$test.gz"
    echo "== $s end to end with $name" >&2
    MAILSORT_API_KEY=$key "$MAILSORT" eval --cache-embeddings --bundle "$W/$s.msb" --test "$test" --json \
      --backend "http://127.0.0.1:$PORT" > "$W/$s.$name.json"
  done
  stop_backend "$BACKEND_PID"
}

groups_of() { # SET...: their groups, each once
  local g seen=" "
  for s in "$@"; do g=$(group_of "$s"); [[ "$seen" == *" $g "* ]] || { seen+="$g "; echo "$g"; }; done
}
outside() { # GROUP: every set not in it
  for o in "${ALL[@]}"; do [ "$(group_of "$o")" = "$1" ] || echo "$o"; done
}

if [[ "$STAGES" == *" edge "* ]]; then
  for s in "${ALL[@]}"; do prepare_set "$s"; done
fi
if [[ "$STAGES" == *" train "* ]]; then
  [ "$TRAIN_PY" = .venv-train/bin/python ] && scripts/train/setup.sh
  # The default generic reranker (committed as models/reranker-generic: copy
  # out/rerankers/generic there to refresh it), then the leave-one-group-out
  # and the per-taxonomy ones.
  train generic "${ALL[@]}"
  for g in $(groups_of "${SETS[@]}"); do
    mapfile -t others < <(outside "$g")
    train "generic-no-$g" "${others[@]}"
  done
  if [ "$PER_TAXONOMY" = 1 ]; then
    train banking77 banking77
    train 20newsgroups 20newsgroups
    train 20newsgroups-e3 20newsgroups
  fi
fi
if [[ "$STAGES" == *" eval "* ]]; then
  # The generic reranker trained here; the committed copy is the same model.
  generic=$R/generic
  [ -f "$generic/model.safetensors" ] || generic=models/reranker-generic
  evaluate "$generic" generic "${SETS[@]}"
  for g in $(groups_of "${SETS[@]}"); do
    mine=(); for s in "${SETS[@]}"; do [ "$(group_of "$s")" = "$g" ] && mine+=("$s"); done
    evaluate "$R/generic-no-$g" "generic-no-$g" "${mine[@]}"
  done
  # Each reranker is served at the length it was trained at (the backend's
  # default, from its manifest).
  if [ "$PER_TAXONOMY" = 1 ]; then
    if [[ " ${SETS[*]} " == *" banking77 "* ]]; then evaluate "$R/banking77" banking77 banking77; fi
    if [[ " ${SETS[*]} " == *" 20newsgroups "* ]]; then evaluate "$R/20newsgroups-e3" 20newsgroups-e3 20newsgroups; fi
  fi
fi

echo
echo "| set | reranker | n | edge only | end to end | gain | forwarded | edge-kept accuracy | backend on forwarded (edge) |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for f in "$W"/*.*.json; do
  case "$f" in *.edge.json|*.build.json|*.calibrate.json) continue ;; esac
  python3 - "$f" <<'EOF'
import json, os, sys
f = sys.argv[1]
set_, name = os.path.basename(f)[: -len(".json")].split(".", 1)
r = json.load(open(f))
e = r["end_to_end"]
p = lambda x: f"{100 * x:.2f}"
print(f"| {set_} | {name} | {r['n']} | {p(r['accuracy'])} | {p(e['accuracy'])} | {100 * (e['accuracy'] - r['accuracy']):+.2f} | "
      f"{p(r['forwarded_rate'])} | {p(r['edge_accuracy'])} | {p(e['forwarded_accuracy'])} ({p(r['forwarded_accuracy'])}) |")
EOF
done
