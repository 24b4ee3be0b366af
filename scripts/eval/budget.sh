#!/usr/bin/env bash
# The forwarded share on new mail: each set's test split through its bundle
# with the gate's calibrated thresholds, and with a forward budget holding
# the same target (a running quantile over the last WINDOW e-mails, test
# mail fed in a shuffled order). Edge only: no backend is needed.
#
# Bundles are those of scripts/eval/sets.sh (OUT/SET.msb, calibrated on a
# dev split for 14% forwarded); run that first. Sets without one are skipped.
# Usage: scripts/eval/budget.sh [SET ...]   (default: every set)
# Writes OUT/SET.budget.json and OUT/budget.md (also printed).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
W=${OUT:-out/eval/sets}
TARGET=${TARGET:-0.14}
WINDOW=${WINDOW:-500}
SETS=("$@")
if [ ${#SETS[@]} -eq 0 ]; then
  for d in "$MAILSORT_DATASETS"/*/; do SETS+=("$(basename "$d")"); done
fi
done_sets=()
for s in "${SETS[@]}"; do
  [ -f "$W/$s.msb" ] || { echo "no $W/$s.msb: run scripts/eval/sets.sh $s first" >&2; continue; }
  test="$MAILSORT_DATASETS/$s/test.jsonl"; [ -f "$test" ] || test="$test.gz"
  echo "== $s" >&2
  [ -s "$W/$s.edge.json" ] || "$MAILSORT" eval --cache-embeddings --bundle "$W/$s.msb" --test "$test" --json > "$W/$s.edge.json"
  "$MAILSORT" eval --cache-embeddings --bundle "$W/$s.msb" --test "$test" --json \
    --forward-budget "$TARGET" --budget-window "$WINDOW" > "$W/$s.budget.json"
  done_sets+=("$s")
done
python3 - "$W" "$TARGET" "$WINDOW" "${done_sets[@]}" <<'PY' | tee "$W/budget.md"
import json, sys
w, target, window, sets = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4:]
pct = lambda x: f"{100 * x:.2f}"
print(f"| set | test e-mails | forwarded, fixed thresholds | forwarded, budget {100 * target:.0f}% over {window} | kept-at-edge accuracy, fixed / budget | oracle edge+backend, fixed / budget |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
worst = [0.0, 0.0]
for s in sets:
    e, b = (json.load(open(f"{w}/{s}.{k}.json")) for k in ("edge", "budget"))
    for i, r in enumerate((e, b)):
        worst[i] = max(worst[i], abs(r["forwarded_rate"] - target))
    print(f"| {s} | {e['n']} | {pct(e['forwarded_rate'])}% | {pct(b['forwarded_rate'])}% | {pct(e['edge_accuracy'])} / {pct(b['edge_accuracy'])} | {pct(e['oracle_end_to_end_accuracy'])} / {pct(b['oracle_end_to_end_accuracy'])} |")
print(f"\nLargest distance from the {100 * target:.0f}% target: fixed {100 * worst[0]:.2f} points, budget {100 * worst[1]:.2f} points.")
PY
