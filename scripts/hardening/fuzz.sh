#!/usr/bin/env bash
# Fuzzes what mailsort reads from outside, with cargo-fuzz (libFuzzer and
# AddressSanitizer, nightly): MIME and HTML cleaning, bundle files, API
# request bodies, mbox files and Maildir trees.
#
#   scripts/hardening/fuzz.sh [--seconds N] [--jobs J] [--max-len B]
#                             [--sanitizer address|none] [TARGET…]
#
# Each target runs N seconds (default 60) from seeds made of real messages
# (fuzz_seeds.py) and a corpus kept under ~/.cache/mailsort-fuzz between
# runs; J targets run at once (default: the number of cores). A unit slower
# than 1 s counts as a failure, as a crash does. Inputs that once failed
# live in fuzz/regressions/TARGET and are replayed first. The executions
# per target go to out/fuzz/summary.json (or $FUZZ_OUT) and a table on
# stdout; a crash leaves its input under fuzz/artifacts/TARGET and the
# script fails. --sanitizer none runs 3-10x faster: all the code fuzzed is
# safe Rust, so CI and long runs for execution counts go without ASan.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh

SECONDS_EACH=60
JOBS=$(nproc)
MAX_LEN=65536
SANITIZER=address
TARGETS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_EACH=$2; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    --max-len) MAX_LEN=$2; shift 2 ;;
    --sanitizer) SANITIZER=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    -*) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    *) TARGETS+=("$1"); shift ;;
  esac
done
ALL=(clean_mime clean_html bundle request mbox maildir)
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL[@]}")
for t in "${TARGETS[@]}"; do
  [[ " ${ALL[*]} " == *" $t "* ]] || { echo "unknown target $t (targets: ${ALL[*]})" >&2; exit 2; }
done

if ! rustup toolchain list | grep -q '^nightly'; then
  echo "installing the nightly toolchain (cargo fuzz needs it)…" >&2
  rustup toolchain install nightly --profile minimal > /dev/null
fi
if ! cargo fuzz --version > /dev/null 2>&1; then
  echo "installing cargo-fuzz from crates.io…" >&2
  cargo install cargo-fuzz --version 0.13.2 --locked > /dev/null
fi
FUZZ_TARGET_DIR="$HOME/.cache/mailsort-fuzz-target/$SANITIZER"
FUZZ=(cargo +nightly fuzz)
BUILD_FLAGS=(--release --debug-assertions --sanitizer "$SANITIZER" --target-dir "$FUZZ_TARGET_DIR")
echo "building the fuzz targets (nightly, sanitizer: $SANITIZER; minutes the first time)…" >&2
(cd fuzz && "${FUZZ[@]}" build "${BUILD_FLAGS[@]}" > /dev/null 2> "${TMPDIR:-/tmp}/mailsort-fuzz-build.log") \
  || { tail -30 "${TMPDIR:-/tmp}/mailsort-fuzz-build.log" >&2; exit 1; }
BIN_DIR="$FUZZ_TARGET_DIR/x86_64-unknown-linux-gnu/release"

OUT=${FUZZ_OUT:-out/fuzz}
SEEDS=$OUT/seeds
CORPUS="$HOME/.cache/mailsort-fuzz/corpus"
rm -rf "$SEEDS" && mkdir -p "$SEEDS" "$OUT"
python3 scripts/hardening/fuzz_seeds.py "$SEEDS" >&2
# A real bundle to start the bundle target from: the main job's, when built.
mkdir -p "$SEEDS/bundle"
if [ -x "$MAILSORT" ] && [ -f "$MAILSORT_MODEL_DIR/manifest.json" ]; then
  head -120 "$MAILSORT_DATASETS/support-tickets/train.jsonl" > "$OUT/bundle-train.jsonl"
  "$MAILSORT" build --train "$OUT/bundle-train.jsonl" --taxonomy examples/support-taxonomy.yaml \
    --out "$SEEDS/bundle/support.msb" > /dev/null 2>&1 \
    || echo "warning: no bundle seed (mailsort build failed); the bundle target starts from nothing" >&2
fi
# The flag byte that makes the target fix the header up, then the payload.
if [ -f "$SEEDS/bundle/support.msb" ]; then
  { printf '\x01'; tail -c +45 "$SEEDS/bundle/support.msb"; } > "$SEEDS/bundle/support.payload"
fi

# run_target T: replays T's regressions, then fuzzes it for SECONDS_EACH.
run_target() {
  local t=$1 log=$OUT/$t.log
  mkdir -p "$CORPUS/$t" "fuzz/artifacts/$t"
  local args=(-timeout=1 -rss_limit_mb=2048 -max_len=$MAX_LEN -print_final_stats=1
              "-artifact_prefix=fuzz/artifacts/$t/")
  if [ -d "fuzz/regressions/$t" ] && [ -n "$(ls -A "fuzz/regressions/$t")" ]; then
    "$BIN_DIR/$t" "${args[@]}" fuzz/regressions/"$t"/* > "$OUT/$t.regressions.log" 2>&1 \
      || { echo "FAIL $t: a regression input fails again ($OUT/$t.regressions.log)"; return 1; }
  fi
  "$BIN_DIR/$t" "${args[@]}" "-max_total_time=$SECONDS_EACH" "$CORPUS/$t" "$SEEDS/$t" > "$log" 2>&1
}

echo "fuzzing ${TARGETS[*]}: ${SECONDS_EACH} s each, $JOBS at a time, inputs up to $MAX_LEN bytes" >&2
declare -A PIDS
failed=0
for t in "${TARGETS[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
  run_target "$t" &
  PIDS[$t]=$!
done
declare -A RC
for t in "${TARGETS[@]}"; do
  if wait "${PIDS[$t]}"; then RC[$t]=0; else RC[$t]=$?; failed=1; fi
done

python3 - "$OUT" "$SECONDS_EACH" "$SANITIZER" "$MAX_LEN" "${TARGETS[@]}" <<'PY'
import json, pathlib, re, sys
out, seconds, sanitizer, max_len, targets = pathlib.Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5:]
rows = []
for t in targets:
    log = (out / f"{t}.log").read_text(errors="replace") if (out / f"{t}.log").exists() else ""
    stat = lambda k: int(m.group(1)) if (m := re.search(rf"stat::{k}:\s+(\d+)", log)) else None
    crash = re.search(r"ERROR: libFuzzer: (\S+)|ERROR: AddressSanitizer: (\S+)|panicked at ([^\n]+)", log)
    artifact = re.search(r"Test unit written to (\S+)", log)
    slowest = re.search(r"Slowest unit: (\d+) s", log)
    rows.append({
        "target": t,
        "executions": stat("number_of_executed_units"),
        "execs_per_second": stat("average_exec_per_sec"),
        "peak_rss_mb": stat("peak_rss_mb"),
        "corpus_units": (len(list((pathlib.Path.home() / ".cache/mailsort-fuzz/corpus" / t).iterdir()))),
        "failure": next((g for g in crash.groups() if g), None) if crash else None,
        "artifact": artifact.group(1) if artifact else None,
        "slowest_unit_s": int(slowest.group(1)) if slowest else None,
    })
(out / "summary.json").write_text(json.dumps({"seconds_each": seconds, "sanitizer": sanitizer, "max_len": max_len, "targets": rows}, indent=2) + "\n")
print(f"{'target':<12} {'executions':>12} {'exec/s':>8} {'peak MB':>8} {'corpus':>7}  result")
for r in rows:
    result = "ok" if not r["failure"] else f"FAIL {r['failure']} → {r['artifact']}"
    fmt = lambda v: "?" if v is None else f"{v:,}"
    print(f"{r['target']:<12} {fmt(r['executions']):>12} {fmt(r['execs_per_second']):>8} {fmt(r['peak_rss_mb']):>8} {r['corpus_units']:>7}  {result}")
PY
if [ $failed -ne 0 ]; then
  for t in "${TARGETS[@]}"; do
    [ "${RC[$t]}" = 0 ] || echo "FAIL $t (rc ${RC[$t]}): see $OUT/$t.log; reproduce with: $BIN_DIR/$t fuzz/artifacts/$t/<file>" >&2
  done
  exit 1
fi
echo "fuzzing: no crash and no unit over 1 s" >&2
