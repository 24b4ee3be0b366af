#!/usr/bin/env bash
# Edge only against end to end on every labelled set in ../shared/datasets,
# with the default generic reranker (models/reranker), before and after
# fitting each bundle's fusion on its dev split (mailsort calibrate-fusion).
#
# Per set: a dev split (the set's val.jsonl where it has one, else 10% of
# train, stratified, seed 13; dev labels unknown to train are dropped), a
# bundle built on the rest (with taxonomies/SET.yaml where there is one), its
# gate calibrated on dev for FORWARD_RATE (0.14) forwarded. Then one backend
# serves every bundle: each test split is evaluated end to end with the
# reranker's own fusion, each bundle's fusion is fitted on its dev split,
# and a second backend (which loads those fusion files) evaluates again.
# The fit also sets which kinds of e-mail the edge keeps instead of
# forwarding (those whose fusion is edge only): it writes SET.kept.msb (and
# its head and fusion file), which the second backend serves and the second
# evaluation runs. KEEP_AT_EDGE=0 forwards every kind the gate picks.
#
# SECOND_OPINION=DIR (e.g. models/all-mpnet-base-v2, from
# scripts/models/second-opinion.sh) also trains each bundle's second-opinion
# head on its training e-mails (mailsort second-opinion) and serves it, so
# that the fit on dev can choose among the edge, the reranker, the second
# opinion and their fusions. Use another OUT for it.
#
# TOP_K=K has each bundle report and forward K candidates (default 5). Use
# another OUT for it: bundles already built are reused with the K they were
# calibrated with.
#
# RERANKER_DIR=DIR serves another reranker (ONNX folder from `mailsort models
# reranker`, e.g. a per-taxonomy or left-out one) instead of the default.
# PREPARE_ONLY=1 stops after the bundles and heads (to build them ahead of a
# run, e.g. beside other work).
# README=1 also writes the table into README.md, between its
# `<!-- results:begin -->` and `<!-- results:end -->` lines (an error where
# it has none).
#
# Usage: scripts/eval/sets.sh [SET ...]    (default: every set)
# Writes out/eval/sets/SET.{edge,default,fused}.json, the fusion file and
# summary.md (scripts/eval/summary.py; also printed). Bundles and heads
# already built are reused; each one built records its seconds
# (SET.prepare.seconds, SET.head.seconds), so the summary can say what a run
# from nothing costs.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
W=${OUT:-out/eval/sets}
PORT=${PORT:-18390}
mkdir -p "$W"
SETS=("$@")
if [ ${#SETS[@]} -eq 0 ]; then
  for d in "$MAILSORT_DATASETS"/*/; do
    s=$(basename "$d")
    { [ -f "$d/train.jsonl" ] || [ -f "$d/train.jsonl.gz" ]; } && SETS+=("$s")
  done
fi
started=$(date +%s)

prepare() {
  local s=$1 d="$MAILSORT_DATASETS/$1" w="$W/$1"
  [ -s "$w.edge.json" ] && return
  echo "== $s: dev split, bundle, gate" >&2
  local train val taxonomy=() t0
  t0=$(date +%s)
  train=$(file_of "$d" train)
  val=$(file_of "$d" val)
  if [ -n "$val" ]; then
    "$MAILSORT_PYTHON" - "$train" "$val" "$w.dev.jsonl" <<'PY'
import gzip, json, sys
train, val, out = sys.argv[1:]
op = lambda p: gzip.open(p, "rt") if p.endswith(".gz") else open(p)
known = {json.loads(l)["label"] for l in op(train) if l.strip()}
with open(out, "w") as f:
    for l in op(val):
        if l.strip() and json.loads(l)["label"] in known:
            f.write(l if l.endswith("\n") else l + "\n")
PY
  else
    "$MAILSORT" split --input "$train" --dev-fraction 0.1 --train-out "$w.train.jsonl" --dev-out "$w.dev.jsonl" 2> /dev/null
    train="$w.train.jsonl"
  fi
  [ -f "taxonomies/$s.yaml" ] && taxonomy=(--taxonomy "taxonomies/$s.yaml")
  "$MAILSORT" build --train "$train" "${taxonomy[@]}" --out "$w.msb" > "$w.build.json"
  "$MAILSORT" calibrate --bundle "$w.msb" --dev "$w.dev.jsonl" --forward-rate "${FORWARD_RATE:-0.14}" \
    ${TOP_K:+--top-k "$TOP_K"} > "$w.calibrate.json"
  rm -f "$w.fusion.json"
  "$MAILSORT" eval --cache-embeddings --bundle "$w.msb" --test "$(file_of "$d" test)" --json > "$w.edge.json"
  echo $(( $(date +%s) - t0 )) > "$w.prepare.seconds"
}

for s in "${SETS[@]}"; do prepare "$s"; done

serve=(--device cpu)
[ -n "${RERANKER_DIR:-}" ] && serve+=(--reranker-dir "$RERANKER_DIR")
[ "${TOP_K:-5}" -gt 20 ] && serve+=(--max-candidates "$TOP_K")
if [ -n "${SECOND_OPINION:-}" ]; then
  scripts/train/setup.sh
  scripts/models/second-opinion.sh "$SECOND_OPINION" > /dev/null
  for s in "${SETS[@]}"; do
    w="$W/$s"
    [ -s "$w.second-opinion.json" ] && continue
    echo "== $s: second-opinion head" >&2
    t0=$(date +%s)
    train="$w.train.jsonl"
    [ -f "$train" ] || train=$(file_of "$MAILSORT_DATASETS/$s" train)
    "$MAILSORT" second-opinion --cache-embeddings --bundle "$w.msb" --train "$train" \
      --model-dir "$SECOND_OPINION" > "$w.second-opinion.report.json"
    echo $(( $(date +%s) - t0 )) > "$w.head.seconds"
  done
  serve+=(--second-opinion-dir "$SECOND_OPINION")
fi

[ "${PREPARE_ONLY:-0}" = 1 ] && exit 0

bundles=() fused=()
keep=()
[ "${KEEP_AT_EDGE:-1}" = 1 ] && keep=(--keep-at-edge)
# fused_bundle SET: the bundle the fit leaves for the second backend.
fused_bundle() { if [ ${#keep[@]} -gt 0 ]; then echo "$W/$1.kept.msb"; else echo "$W/$1.msb"; fi; }
for s in "${SETS[@]}"; do
  bundles+=(--bundle "$W/$s.msb")
  fused+=(--bundle "$(fused_bundle "$s")")
  rm -f "$W/$s.fusion.json" "$W/$s.kept".*
done
KEY=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
export MAILSORT_API_KEY=$KEY

echo "== end to end with the reranker's own fusion; fitting each bundle's fusion on dev" >&2
start_backend "$PORT" "$KEY" "$W/backend.default.log" "${bundles[@]}" "${serve[@]}"
for s in "${SETS[@]}"; do
  "$MAILSORT" eval --cache-embeddings --bundle "$W/$s.msb" --test "$(file_of "$MAILSORT_DATASETS/$s" test)" --json \
    --backend "http://127.0.0.1:$PORT" > "$W/$s.default.json"
  "$MAILSORT" calibrate-fusion --cache-embeddings --bundle "$W/$s.msb" --dev "$W/$s.dev.jsonl" \
    --backend "http://127.0.0.1:$PORT" "${keep[@]}" ${keep:+--bundle-out "$(fused_bundle "$s")"} > /dev/null
done
stop_backend "$BACKEND_PID"

echo "== end to end with each bundle's own fusion" >&2
start_backend "$PORT" "$KEY" "$W/backend.fused.log" "${fused[@]}" "${serve[@]}"
for s in "${SETS[@]}"; do
  "$MAILSORT" eval --cache-embeddings --bundle "$(fused_bundle "$s")" --test "$(file_of "$MAILSORT_DATASETS/$s" test)" --json \
    --backend "http://127.0.0.1:$PORT" > "$W/$s.fused.json"
done
curl -sf -H "Authorization: Bearer $KEY" "http://127.0.0.1:$PORT/health" > "$W/health.json"
stop_backend "$BACKEND_PID"

readme=()
[ "${README:-0}" = 1 ] && readme=(--readme README.md)
"$MAILSORT_PYTHON" scripts/eval/summary.py "$W" "$(( $(date +%s) - started ))" "${RERANKER_DIR:-${MAILSORT_RERANKER_DIR:-models/reranker}}" \
  "${SETS[@]}" "${readme[@]}" | tee "$W/summary.md"
