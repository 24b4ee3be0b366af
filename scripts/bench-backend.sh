#!/usr/bin/env bash
# Load benchmark of mailsort-backend over real HTTP with oha.
#
# Requests are what edges send: one forwarded e-mail each (cleaned text and
# its top-5 candidates), taken from the support-tickets test split by
# `mailsort classify --forwarded-out`. For each server setting it runs
#   1. a fixed offered load (RATE e-mails/s, default 40) for DURATION s (60),
#      reporting p50/p99 latency, throughput and errors;
#   2. a closed loop (CONNECTIONS in flight, no rate limit) for SATURATE s
#      (30), reporting the most e-mails/s the server sustains.
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
cd "$(dirname "$0")/.."
source scripts/env.sh

RATE=${RATE:-40}
DURATION=${DURATION:-60}
SATURATE=${SATURATE:-30}
CONNECTIONS=${CONNECTIONS:-32}
PORT=${PORT:-18090}
DEVICE=${DEVICE:-cpu}
SETTINGS=${SETTINGS:-"batching-cap256:--token-cap 256|single-cap256:--token-cap 256 --no-batching|batching16k-cap256:--token-cap 256 --max-batch-tokens 16384|batching-cap128:--token-cap 128|batching-cap384:--token-cap 384"}
OHA_VERSION=1.16.0
OHA=${OHA:-$HOME/.cache/mailsort-tools/bin/oha}
OUT=${OUT:-out/bench/backend}
mkdir -p "$OUT"

if [[ ! -x "$OHA" ]]; then
  echo "installing oha $OHA_VERSION (load generator) from crates.io…" >&2
  cargo install oha --locked --version "$OHA_VERSION" --root "$HOME/.cache/mailsort-tools" >&2
fi
BACKEND="$CARGO_TARGET_DIR/release/mailsort-backend"
[[ -x "$BACKEND" ]] || cargo build --release --locked -p mailsort-gpu-backend >&2
[[ -f out/support.msb ]] || scripts/run.sh >&2

REQUESTS=${REQUESTS:-$OUT/rerank-requests.jsonl}
if [[ ! -s "$REQUESTS" ]]; then
  $MAILSORT classify --bundle out/support.msb "$MAILSORT_DATASETS/support-tickets/test.jsonl" \
    --forwarded-out "$REQUESTS" > /dev/null
fi
echo "$(wc -l < "$REQUESTS") forwarded e-mails as request bodies" >&2

KEY=bench-key-0123456789abcdef
SERVER_PID=
stop_server() {
  if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  SERVER_PID=
}
trap stop_server EXIT

start_server() {
  MAILSORT_API_KEYS=$KEY "$BACKEND" --bundle out/support.msb --bind "127.0.0.1:$PORT" \
    --device "$DEVICE" "$@" > "$OUT/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$PORT/ready" > /dev/null && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$OUT/server.log" >&2; exit 1; }
    sleep 0.2
  done
  echo "server not ready" >&2; exit 1
}

drain() { # wait until the server has no queued pairs left
  until curl -s "http://127.0.0.1:$PORT/health" | grep -q '"queue_pairs":0'; do sleep 0.5; done
}

load() { # name, extra oha args…
  local name=$1; shift
  "$OHA" --no-tui --output-format json -m POST -T application/json \
    -H "Authorization: Bearer $KEY" -Z "$REQUESTS" "$@" \
    "http://127.0.0.1:$PORT/v1/rerank" > "$OUT/$name.json"
}

run_setting() { # name, server flags…
  local name=$1; shift
  echo "== $name: server $*" >&2
  start_server "$@"
  load "$name-rate" -q "$RATE" -z "${DURATION}s" -c 256 --latency-correction -w
  drain
  load "$name-saturate" -c "$CONNECTIONS" -z "${SATURATE}s" -w
  curl -s "http://127.0.0.1:$PORT/metrics" > "$OUT/$name-metrics.txt"
  stop_server
}

NAMES=()
IFS='|' read -ra ENTRIES <<< "$SETTINGS"
for entry in "${ENTRIES[@]}"; do
  name=${entry%%:*}
  read -ra flags <<< "${entry#*:}"
  run_setting "$name" "${flags[@]}"
  NAMES+=("$name")
done
device=$(grep -o 'reranker .* on [a-z]* [a-z0-9]*' "$OUT/server.log" | head -1 || true)

"${MAILSORT_PYTHON}" - "$OUT" "$RATE" "$DURATION" "$SATURATE" "$CONNECTIONS" "$device" "${NAMES[@]}" <<'EOF' | tee "$OUT/summary.md"
import json, re, sys
out, rate, duration, saturate, conns, device, *names = sys.argv[1:]

def oha(name):
    d = json.load(open(f"{out}/{name}.json"))
    codes = d.get("statusCodeDistribution", {})
    ok = codes.get("200", 0)
    total = sum(codes.values()) + sum(d.get("errorDistribution", {}).values())
    secs = d["summary"]["total"]
    lat = d.get("latencyPercentiles", {})
    ms = lambda v: f"{v * 1000:.0f}" if v is not None else "-"
    return ok / secs, ms(lat.get("p50")), ms(lat.get("p99")), total - ok

def metric(name, key):
    text = open(f"{out}/{name}-metrics.txt").read()
    m = re.search(rf"^{re.escape(key)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0

rows = []
for name in names:
    r_ok, p50, p99, failed = oha(f"{name}-rate")
    s_ok, sp50, sp99, _ = oha(f"{name}-saturate")
    pairs = metric(name, "mailsort_batch_pairs_sum") / max(metric(name, "mailsort_batch_pairs_count"), 1)
    tokens = metric(name, "mailsort_batch_tokens_sum") / max(metric(name, "mailsort_batch_tokens_count"), 1)
    rows.append((name, r_ok, p50, p99, failed, s_ok, sp50, sp99, pairs, tokens))

print(f"{device}. Offered load {rate} e-mails/s x 5 candidates for {duration} s; saturation: {conns} connections for {saturate} s.\n")
print("| setting | at offered load: ok e-mails/s | p50 ms | p99 ms | failed | saturated: e-mails/s | p50 ms | p99 ms | pairs/model call | padded tokens/call |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for r in rows:
    print(f"| {r[0]} | {r[1]:.1f} | {r[2]} | {r[3]} | {r[4]} | {r[5]:.1f} | {r[6]} | {r[7]} | {r[8]:.1f} | {r[9]:.0f} |")
base = {r[0]: r for r in rows}
def ratio(a, b, what):
    if a in base and b in base and base[b][5] > 0:
        print(f"{what}: {base[a][5] / base[b][5]:.2f}x (saturated e-mails/s, {a} / {b})")
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
EOF
