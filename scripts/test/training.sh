#!/usr/bin/env bash
# Smoke test of the reranker pipeline, end to end (not quality): a small
# BANKING77 bundle writing out-of-fold candidates → two dozen training steps
# of training/train_reranker.py → `mailsort models reranker` (FP32 and FP16
# ONNX, checked against each other, checksummed, calibration carried over)
# → a real mailsort-backend serving it → `mailsort eval --backend` over
# real HTTP, every forwarded e-mail answered by the trained reranker.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
scripts/train/setup.sh
T="${TMPDIR:-/tmp}/mailsort-training-smoke"
rm -rf "$T" && mkdir -p "$T"
D="$MAILSORT_DATASETS/banking77"
PORT=${PORT:-18290}

"$MAILSORT" split --input "$D/train.jsonl" --dev-fraction 0.1 --train-out "$T/train.jsonl" --dev-out "$T/dev.jsonl" 2> /dev/null
"$MAILSORT" build --train "$T/train.jsonl" --taxonomy taxonomies/banking77.yaml --limit 1500 \
  --out "$T/smoke.msb" --candidates-out "$T/cand-train.jsonl" > /dev/null
"$MAILSORT" eval --bundle "$T/smoke.msb" --test "$T/dev.jsonl" --limit 300 --json \
  --candidates-out "$T/cand-dev.jsonl" > /dev/null
.venv-train/bin/python training/train_reranker.py --train "$T/cand-train.jsonl" --dev "$T/cand-dev.jsonl" \
  --base "$MAILSORT_MODEL_DIR/source" --out "$T/reranker" --name mailsort-reranker-smoke \
  --max-steps 24 --batch 4 --save-fp16 > "$T/train.json"
"$MAILSORT" models reranker --from "$T/reranker" --dir "$T/onnx"

KEY=mailsort-training-smoke-$$
start_backend "$PORT" "$KEY" "$T/backend.log" --bundle "$T/smoke.msb" --reranker-dir "$T/onnx" --device cpu
MAILSORT_API_KEY=$KEY "$MAILSORT" eval --bundle "$T/smoke.msb" --test "$D/test.jsonl" --limit 200 --json \
  --backend "http://127.0.0.1:$PORT" > "$T/eval.json"

python3 - "$T" <<'PY'
import json, sys
t = sys.argv[1]
train = json.load(open(f"{t}/train.json"))
manifest = json.load(open(f"{t}/onnx/manifest.json"))
r = json.load(open(f"{t}/eval.json"))
cands = [json.loads(l) for l in open(f"{t}/cand-train.jsonl")]
backend_log = open(f"{t}/backend.log").read()
e = r["end_to_end"]
forwarded = round(r["n"] * r["forwarded_rate"])
checks = {
    "24 training steps ran": train["steps"] == 24,
    "manifest marks the reranker trained": manifest["trained"] is True,
    "calibration carried into the manifest": abs(manifest["temperature"] - train["temperature"]) < 1e-6
        and abs(manifest["edge_weight"] - train["edge_weight"]) < 1e-6,
    "FP16 within 1e-2 of FP32": manifest["fp16_max_abs_diff"] <= 1e-2,
    "the bundle's label examples reach training and the backend": any(c["examples"] for x in cands for c in x["candidates"])
        and manifest["label_examples"] == train["label_examples"] == 3
        and "up to 3 examples" in backend_log,
    "the backend serves the trained reranker": "mailsort-reranker-smoke (trained true" in e["reranker"],
    "every forwarded e-mail was reranked": forwarded > 0 and e["reranked"] == forwarded,
    "end-to-end accuracy is a share": 0.0 <= e["accuracy"] <= 1.0,
}
for name, ok in checks.items():
    print(("ok   " if ok else "FAIL ") + name)
print(f"smoke: {r['n']} e-mails, {forwarded} forwarded, edge {r['accuracy']:.3f}, end to end {e['accuracy']:.3f} "
      f"(24 steps: no quality expected)")
sys.exit(0 if all(checks.values()) else 1)
PY
