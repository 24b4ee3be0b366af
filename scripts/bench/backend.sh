#!/usr/bin/env bash
# Load benchmark of mailsort-backend over real HTTP with oha.
#
# Requests are what edges send: one forwarded e-mail each (cleaned text and
# its top-5 candidates), taken from the support-tickets test split by
# `mailsort classify --forwarded-out`. For each server setting it runs
#   1. a fixed offered load of RATE e-mails/s (default 40) for DURATION s
#      (60), reporting throughput, p50/p99 latency of the answered requests,
#      and how many got 429 (refused at admission) or 504 (deadline);
#   2. the same at LOW_RATE e-mails/s (default 6: a 40 e-mails/s inbox peak
#      with 15% forwarded) for LOW_DURATION s (30);
#   3. a closed loop (CONNECTIONS in flight, no rate limit) for SATURATE s
#      (30), reporting the most e-mails/s the server sustains.
# With SWEEP (shares of the saturated rate, e.g. "0.25 0.5 0.75 0.9 1.1"),
# the first setting also gets a latency-against-load sweep after its
# saturation run: SWEEP_SECONDS (15) at each share of the e-mails/s it
# saturated at, the server's /metrics read before and after each step (its
# stage histograms: tokenize, queue, model).
# Then the headline ratio, batching against one e-mail per model call, is
# measured A/B: both servers up at once, closed-loop runs alternating
# between them for AB_ROUNDS rounds of AB_SECONDS s (default 4 x 15 s),
# so that the shared machine's noise hits both alike (skip: AB_ROUNDS=0).
# Settings (SETTINGS, `name:server flags` separated by `|`): by default
# dynamic batching (the device's default token budget, and the GPU budget
# of 16384) vs one e-mail per model call at token cap 256, then batching
# with token caps 128 and 384. DEVICE (cpu) picks the server's device;
# scripts/gpu-check.sh runs this on CUDA with FP16 and FP32 settings.
# All runs share one machine, one after another: compare ratios within a run.
#
# Output: out/bench/backend/*.json (oha) and a markdown table on stdout
# (also out/bench/backend/summary.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh

RATE=${RATE:-40}
DURATION=${DURATION:-60}
AB_ROUNDS=${AB_ROUNDS:-4}
AB_SECONDS=${AB_SECONDS:-15}
AB_FLAGS=${AB_FLAGS:-}
LOW_RATE=${LOW_RATE:-6}
LOW_DURATION=${LOW_DURATION:-30}
SATURATE=${SATURATE:-30}
SWEEP=${SWEEP:-}
SWEEP_SECONDS=${SWEEP_SECONDS:-15}
CONNECTIONS=${CONNECTIONS:-32}
PORT=${PORT:-18090}
DEVICE=${DEVICE:-cpu}
SETTINGS=${SETTINGS-"batching-cap256:--token-cap 256|single-cap256:--token-cap 256 --no-batching|batching16k-cap256:--token-cap 256 --max-batch-tokens 16384|batching-cap128:--token-cap 128|batching-cap384:--token-cap 384"}
OHA_VERSION=1.16.0
OHA=${OHA:-$HOME/.cache/mailsort-tools/bin/oha}
OUT=${OUT:-out/bench/backend}
mkdir -p "$OUT"

if [[ ! -x "$OHA" ]]; then
  echo "installing oha $OHA_VERSION (load generator) from crates.io…" >&2
  cargo install oha --locked --version "$OHA_VERSION" --root "$HOME/.cache/mailsort-tools" >&2
fi
[[ -x "$BACKEND" ]] || cargo build --release --locked -p mailsort-backend >&2
[[ -f out/support.msb ]] || scripts/run.sh >&2

REQUESTS=${REQUESTS:-$OUT/rerank-requests.jsonl}
if [[ ! -s "$REQUESTS" ]]; then
  $MAILSORT classify --bundle out/support.msb "$MAILSORT_DATASETS/support-tickets/test.jsonl" \
    --forwarded-out "$REQUESTS" > /dev/null
fi
echo "$(wc -l < "$REQUESTS") forwarded e-mails as request bodies" >&2

KEY=bench-key-0123456789abcdef
start_server() {
  start_backend "$PORT" "$KEY" "$OUT/server.log" --bundle out/support.msb --device "$DEVICE" "$@"
}

drain() { # wait until the server has no queued pairs left (at most 2 min)
  for _ in $(seq 1 240); do
    curl -s -H "Authorization: Bearer $KEY" "http://127.0.0.1:${1:-$PORT}/health" | grep -q '"queue_pairs":0' && return 0
    sleep 0.5
  done
  echo "the server on port ${1:-$PORT} still had queued pairs after 2 min" >&2
  exit 1
}

load() { # name, extra oha args…
  local name=$1; shift
  "$OHA" --no-tui --output-format json --stats-success-breakdown -m POST -T application/json \
    -H "Authorization: Bearer $KEY" -Z "$REQUESTS" "$@" \
    "http://127.0.0.1:${LOAD_PORT:-$PORT}/v1/rerank" > "$OUT/$name.json"
}

sweep() { # saturated e-mails/s: offered loads against latency, on the running server
  local rate answered share
  for share in $SWEEP; do
    rate=$("$MAILSORT_PYTHON" -c 'import sys; print(max(0.5, round(float(sys.argv[1]) * float(sys.argv[2]), 1)))' "$1" "$share")
    curl -s "http://127.0.0.1:$PORT/metrics" > "$OUT/sweep-$rate-before.txt"
    load "sweep-$rate" -q "$rate" -z "${SWEEP_SECONDS}s" -c 256 --latency-correction -w
    drain
    curl -s "http://127.0.0.1:$PORT/metrics" > "$OUT/sweep-$rate-after.txt"
    answered=$("$MAILSORT_PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d.get("statusCodeDistribution",{}).get("200",0)/d["summary"]["total"])' "$OUT/sweep-$rate.json")
    echo "   sweep: offered $rate/s, answered $answered/s" >&2
  done
}

run_setting() { # name, server flags…
  local name=$1; shift
  echo "== $name: server $*" >&2
  printf '{"name": "%s", "flags": "%s", "device": "%s"}\n' "$name" "$*" "$DEVICE" >> "$OUT/settings.jsonl"
  start_server "$@"
  load "$name-rate" -q "$RATE" -z "${DURATION}s" -c 256 --latency-correction -w
  drain
  load "$name-low" -q "$LOW_RATE" -z "${LOW_DURATION}s" -c 64 --latency-correction -w
  drain
  load "$name-saturate" -c "$CONNECTIONS" -z "${SATURATE}s" -w
  if [[ -n "$SWEEP" && ${#NAMES[@]} -eq 0 ]]; then
    drain
    sweep "$("$MAILSORT_PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d.get("statusCodeDistribution",{}).get("200",0)/d["summary"]["total"])' "$OUT/$name-saturate.json")"
  fi
  curl -s "http://127.0.0.1:$PORT/metrics" > "$OUT/$name-metrics.txt"
  stop_backend "$BACKEND_PID"
}

NAMES=()
rm -f "$OUT/settings.jsonl" "$OUT"/sweep-*
IFS='|' read -ra ENTRIES <<< "$SETTINGS"
for entry in "${ENTRIES[@]}"; do
  name=${entry%%:*}
  read -ra flags <<< "${entry#*:}"
  run_setting "$name" "${flags[@]}"
  NAMES+=("$name")
done
if (( AB_ROUNDS > 0 )); then
  echo "== A/B: batching vs one e-mail per model call, $AB_ROUNDS rounds" >&2
  read -ra ab_flags <<< "$AB_FLAGS"
  start_backend $((PORT + 1)) "$KEY" "$OUT/server-a.log" --bundle out/support.msb --device "$DEVICE" "${ab_flags[@]}"
  A_PID=$BACKEND_PID
  start_backend $((PORT + 2)) "$KEY" "$OUT/server-b.log" --bundle out/support.msb --device "$DEVICE" "${ab_flags[@]}" --no-batching
  B_PID=$BACKEND_PID
  for r in $(seq 1 "$AB_ROUNDS"); do
    LOAD_PORT=$((PORT + 1)) load "ab-batching-$r" -c "$CONNECTIONS" -z "${AB_SECONDS}s" -w
    drain $((PORT + 1))
    LOAD_PORT=$((PORT + 2)) load "ab-single-$r" -c "$CONNECTIONS" -z "${AB_SECONDS}s" -w
    drain $((PORT + 2))
  done
  stop_backend "$A_PID"; stop_backend "$B_PID"
fi

device=$(cat "$OUT"/server*.log 2>/dev/null | grep -o 'reranker .* on [a-z]* [a-z0-9]*' | head -1 || true)

"${MAILSORT_PYTHON}" - "$OUT" "$RATE" "$DURATION" "$LOW_RATE" "$LOW_DURATION" "$SATURATE" "$CONNECTIONS" "$device" "$AB_ROUNDS" "${NAMES[@]}" <<'EOF' | tee "$OUT/summary.md"
import json, re, statistics, sys
out, rate, duration, low_rate, low_duration, saturate, conns, device, ab_rounds, *names = sys.argv[1:]

def oha(name):
    """(ok/s, p50 ms, p99 ms of answered requests, 429s, 504s, other failures)."""
    d = json.load(open(f"{out}/{name}.json"))
    codes = d.get("statusCodeDistribution", {})
    ok = codes.get("200", 0)
    refused, late = codes.get("429", 0), codes.get("504", 0)
    other = sum(codes.values()) - ok - refused - late + sum(d.get("errorDistribution", {}).values())
    lat = d.get("latencyPercentilesSuccessful") or d.get("latencyPercentiles", {})
    ms = lambda v: f"{v * 1000:.0f}" if v is not None else "-"
    return ok / d["summary"]["total"], ms(lat.get("p50")), ms(lat.get("p99")), refused, late, other

def metric(name, key):
    text = open(f"{out}/{name}-metrics.txt").read()
    m = re.search(rf"^{re.escape(key)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0

rows = []
for name in names:
    rate_ok, p50, p99, refused, late, other = oha(f"{name}-rate")
    _, low_p50, low_p99, low_refused, low_late, low_other = oha(f"{name}-low")
    sat_ok = oha(f"{name}-saturate")[0]
    pairs = metric(name, "mailsort_batch_pairs_sum") / max(metric(name, "mailsort_batch_pairs_count"), 1)
    tokens = metric(name, "mailsort_batch_tokens_sum") / max(metric(name, "mailsort_batch_tokens_count"), 1)
    rows.append((name, low_p50, low_p99, low_refused + low_late + low_other, rate_ok, p50, p99,
                 refused, late + other, sat_ok, pairs, tokens))

print(f"{device}; one e-mail x 5 candidates per request. {low_rate}/s for {low_duration} s, {rate}/s for {duration} s, "
      f"saturation: {conns} connections for {saturate} s. Latencies of answered requests.\n")
print(f"| setting | {low_rate}/s p50 ms | p99 ms | failed | {rate}/s answered/s | p50 ms | p99 ms | 429 | 504 and other | saturated e-mails/s | pairs/call | padded tokens/call |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for r in rows:
    print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]:.1f} | {r[5]} | {r[6]} | {r[7]} | {r[8]} | {r[9]:.1f} | {r[10]:.1f} | {r[11]:.0f} |")
base = {r[0]: r for r in rows}
def ratio(a, b, what):
    if a in base and b in base and base[b][9] > 0:
        print(f"{what}: {base[a][9] / base[b][9]:.2f}x (saturated e-mails/s, {a} / {b})")
print()
for name in names:
    if name.startswith("batching") and "single-cap256" in base and name.endswith("cap256"):
        ratio(name, "single-cap256", "Dynamic batching vs one e-mail per model call")
ratio("batching-cap128", "batching-cap256", "Token cap 128 vs 256")
ratio("batching-cap384", "batching-cap256", "Token cap 384 vs 256")
ratio("fp16-batching", "fp16-single", "Dynamic batching vs one e-mail per model call (FP16)")
ratio("fp32-batching", "fp32-single", "Dynamic batching vs one e-mail per model call (FP32)")
ratio("fp16-batching", "fp32-batching", "FP16 vs FP32 (batching)")
ratio("fp16-single", "fp32-single", "FP16 vs FP32 (one e-mail per call)")
if int(ab_rounds) > 0:
    pairs = [(oha(f"ab-batching-{r}")[0], oha(f"ab-single-{r}")[0]) for r in range(1, int(ab_rounds) + 1)]
    ratios = [a / b for a, b in pairs]
    print(f"\nA/B, alternating rounds ({conns} connections): batching " +
          ", ".join(f"{a:.1f}" for a, _ in pairs) + " e-mails/s; one e-mail per call " +
          ", ".join(f"{b:.1f}" for _, b in pairs) + " e-mails/s; ratio per round " +
          ", ".join(f"{x:.2f}" for x in ratios) + f"; median {statistics.median(ratios):.2f}x")
EOF
