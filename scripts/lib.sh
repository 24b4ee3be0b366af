# Sourced by the other scripts (after they cd to the repository root): the
# paths every mailsort command agrees on, and helpers to run a backend.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mailsort-target}"
export MAILSORT_PYTHON="${MAILSORT_PYTHON:-$PWD/.venv/bin/python}"
export MAILSORT_MODEL_DIR="${MAILSORT_MODEL_DIR:-$PWD/models/all-MiniLM-L6-v2}"
export MAILSORT_DATASETS="${MAILSORT_DATASETS:-$(cd .. && pwd)/shared/datasets}"
export ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-$(ls "$PWD"/.venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.* 2>/dev/null | head -1)}"
MAILSORT="${MAILSORT:-$CARGO_TARGET_DIR/release/mailsort}"
BACKEND="${BACKEND:-$CARGO_TARGET_DIR/release/mailsort-backend}"

# wait_ready PORT PID LOG: until the backend on PORT answers /ready (at most
# 120 s); if its process PID dies first, print its LOG and exit 1.
wait_ready() {
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$1/ready" > /dev/null && return 0
    kill -0 "$2" 2> /dev/null || { cat "$3" >&2; exit 1; }
    sleep 0.2
  done
  echo "server on port $1 not ready after 120 s" >&2; exit 1
}

# start_backend PORT KEY LOG [FLAGS…]: starts mailsort-backend on
# 127.0.0.1:PORT accepting the API key KEY, logging to LOG, and returns once
# it is ready. Its pid is in BACKEND_PID; every backend started this way is
# stopped when the script exits (stop_backend stops one earlier).
BACKEND_PIDS=()
start_backend() {
  local port=$1 key=$2 log=$3
  shift 3
  MAILSORT_API_KEYS=$key "$BACKEND" --bind "127.0.0.1:$port" "$@" > "$log" 2>&1 &
  BACKEND_PID=$!
  BACKEND_PIDS+=("$BACKEND_PID")
  trap stop_backends EXIT
  wait_ready "$port" "$BACKEND_PID" "$log"
}

# stop_backend PID: stops one backend and waits for it to drain.
stop_backend() {
  kill "$1" 2> /dev/null || true
  wait "$1" 2> /dev/null || true
}

stop_backends() {
  local pid
  for pid in "${BACKEND_PIDS[@]}"; do stop_backend "$pid"; done
}

# need_chromium: installs Debian's chromium with apt when it is missing.
need_chromium() {
  command -v chromium > /dev/null && return 0
  echo "installing Debian's chromium with apt…" >&2
  (apt-get install -y -qq chromium || (apt-get update -qq && apt-get install -y -qq chromium)) > /dev/null
}

# file_of DIR NAME: DIR/NAME.jsonl or DIR/NAME.jsonl.gz, whichever exists
# (a split of ../shared/datasets); nothing if neither does.
file_of() {
  if [ -f "$1/$2.jsonl" ]; then echo "$1/$2.jsonl"; elif [ -f "$1/$2.jsonl.gz" ]; then echo "$1/$2.jsonl.gz"; fi
}

# w8a8_model_dir DIR: makes DIR a model folder whose edge encoder
# (model_int8.onnx) is $MAILSORT_MODEL_DIR's W8A8 graph (INT8 compute), its
# manifest pinning that file, so that `mailsort build --model-dir DIR`
# makes bundles for it (bundles pin their encoder by SHA-256).
w8a8_model_dir() {
  local dir=$1 f
  [ -f "$MAILSORT_MODEL_DIR/model_w8a8.onnx" ] || { echo "$MAILSORT_MODEL_DIR/model_w8a8.onnx is missing: run \`mailsort models fetch --force\`" >&2; exit 1; }
  mkdir -p "$dir"
  for f in model_fp32.onnx tokenizer.json model_w8a8.onnx; do ln -sfn "$(realpath "$MAILSORT_MODEL_DIR/$f")" "$dir/$f"; done
  ln -sfn "$(realpath "$MAILSORT_MODEL_DIR/model_w8a8.onnx")" "$dir/model_int8.onnx"
  "$MAILSORT_PYTHON" - "$MAILSORT_MODEL_DIR/manifest.json" "$dir/manifest.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m["int8_sha256"] = m["w8a8_sha256"]
json.dump(m, open(sys.argv[2], "w"), indent=2)
PY
}
