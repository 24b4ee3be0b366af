#!/usr/bin/env bash
# Soak: e-mails at a steady rate into a real mailsort-backend on loopback,
# a tenth whole to /v1/classify, the rest through edges that forward 15% to
# /v1/rerank (see soak.py). Fails on any error or a growing RSS.
#
#   scripts/hardening/soak.sh [--seconds N] [--rate R] [--classify-share S]
#                             [--forward-share F]   (default 600 s at 40/s)
#
# Writes out/hardening/soak/soak.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh

ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds|--rate|--classify-share|--forward-share) ARGS+=("$1" "$2"); shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
source scripts/hardening/common.sh
OUT=out/hardening/soak
rm -rf "$OUT" && mkdir -p "$OUT"
python3 scripts/hardening/soak.py "${ARGS[@]}" --out "$OUT" "${HARDENING_ARGS[@]}" > "$OUT/stdout.json"
python3 - "$OUT/soak.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
fmt = lambda v: "?" if v is None else f"{v:.0f}"
print(f"soak {s['seconds']:.0f} s at {s['rate']:g} e-mails/s (held {s['held_per_s']:.1f}/s): "
      f"errors {sum(s['errors'].values())}, RSS {fmt(s['rss_mb']['start'])} → {fmt(s['rss_mb']['end'])} MB "
      f"(peak {fmt(s['rss_mb']['peak'])})")
for e in ("/v1/classify", "/v1/rerank"):
    r = s[e]
    print(f"  {e}: {r['requests']} requests, p50 {fmt(r['p50_ms'])} ms, p99 {fmt(r['p99_ms'])} ms, max {fmt(r['max_ms'])} ms")
PY
