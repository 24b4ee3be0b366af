#!/usr/bin/env bash
# Fuzzes the running backend from its own /openapi.json with schemathesis
# (property-based requests, valid and invalid) and fails on any 5xx but a
# 504 for a deadline the request itself set (scripts/test/schemathesis.toml).
# Bounded: MAX_TIME seconds (default 60). Part of scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh

MAX_TIME=${MAX_TIME:-60}
PORT=${PORT:-18097}
OUT=out/schemathesis
mkdir -p "$OUT"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r scripts/requirements-test.txt

# A small real bundle: the first 1,000 support tickets, head only.
BUNDLE="$OUT/fuzz.msb"
if [[ ! -f "$BUNDLE" ]]; then
  $MAILSORT build --train "$MAILSORT_DATASETS/support-tickets/train.jsonl" --limit 1000 \
    --no-exemplars --out "$BUNDLE" 2> "$OUT/build.log"
fi

KEY=fuzz-key-0123456789abcdef
start_backend "$PORT" "$KEY" "$OUT/server.log" --bundle "$BUNDLE" --device cpu --threads 1

# One worker: with two, CPython 3.11's compile() (which schemathesis calls
# while generating) is not thread-safe and failed a run with "SystemError:
# AST constructor recursion depth mismatch" (python/cpython#106905).
# The document asked for with the key lists this server's bundles and
# labels; without one it is the generic document.
curl -sf -H "Authorization: Bearer $KEY" "http://127.0.0.1:$PORT/openapi.json" > "$OUT/openapi.json"
.venv/bin/schemathesis --config-file scripts/test/schemathesis.toml run "$OUT/openapi.json" --url "http://127.0.0.1:$PORT" \
  --checks not_a_server_error -H "Authorization: Bearer $KEY" \
  --max-examples 30 --seed 1 --max-time "$MAX_TIME" --workers 1 --no-color
# /openapi.json lists the loaded bundles and labels as enums so that drawn
# requests get past those checks; without reranked answers this run would
# have fuzzed only the front door.
curl -sf "http://127.0.0.1:$PORT/metrics" > "$OUT/metrics.txt"
reranked=$(awk '/^mailsort_requests_total\{.*endpoint="\/v1\/rerank".*status="200"/ {n += $2} END {print n + 0}' "$OUT/metrics.txt")
echo "fuzzed /v1/rerank requests answered 200 (reranked): $reranked"
if (( reranked < 20 )); then
  echo "too few fuzzed /v1/rerank requests reached the reranker ($reranked)" >&2
  exit 1
fi
if grep -qE "panicked|ERROR" "$OUT/server.log"; then
  echo "the server logged a panic or an error during fuzzing:" >&2
  grep -E -A5 "panicked|ERROR" "$OUT/server.log" >&2
  exit 1
fi
