#!/usr/bin/env bash
# Faults injected into a real mailsort-backend under load from real clients
# (mailsort eval --backend, mailsort sort on a Maildir, an edge client on
# /v1/rerank, a client on /v1/classify); see faults.py for the schedule and
# the checks. Nothing may be lost: every e-mail ends with exactly one final
# decision in every client.
#
#   scripts/hardening/faults.sh [--seconds N]   (default 60)
#
# Writes out/hardening/faults/faults.json; exits 1 on any loss.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh

SECONDS_RUN=60
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_RUN=$2; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
source scripts/hardening/common.sh
OUT=out/hardening/faults
rm -rf "$OUT" && mkdir -p "$OUT"
python3 scripts/hardening/faults.py --seconds "$SECONDS_RUN" --out "$OUT" "${HARDENING_ARGS[@]}" \
  > "$OUT/stdout.json"
python3 - "$OUT/faults.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print(f"faults over {s['seconds']:.0f} s: " + "; ".join(s["faults"]))
print("final decisions: " + ", ".join(f"{k} {v}" for k, v in sorted(s["final_decisions"].items())))
print(f"eval runs: {len(s['eval_runs'])}, sorter: {s['sorter'].get('filed')} filed of {s['sorter']['delivered']}, lost: {s['lost']}")
PY
