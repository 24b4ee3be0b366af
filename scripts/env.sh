# Sourced by the other scripts: paths every mailsort command agrees on.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mailsort-target}"
export MAILSORT_PYTHON="${MAILSORT_PYTHON:-$PWD/.venv/bin/python}"
export MAILSORT_MODEL_DIR="${MAILSORT_MODEL_DIR:-$PWD/models/all-MiniLM-L6-v2}"
export MAILSORT_DATASETS="${MAILSORT_DATASETS:-$(cd .. && pwd)/shared/datasets}"
export ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-$(ls "$PWD"/.venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.* 2>/dev/null | head -1)}"
MAILSORT="$CARGO_TARGET_DIR/release/mailsort"

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
