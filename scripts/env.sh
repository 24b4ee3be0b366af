# Sourced by the other scripts: paths every mailsort command agrees on.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mailsort-target}"
export MAILSORT_PYTHON="${MAILSORT_PYTHON:-$PWD/.venv/bin/python}"
export MAILSORT_MODEL_DIR="${MAILSORT_MODEL_DIR:-$PWD/models/all-MiniLM-L6-v2}"
export MAILSORT_DATASETS="${MAILSORT_DATASETS:-$(cd .. && pwd)/shared/datasets}"
export ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-$(ls "$PWD"/.venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.* 2>/dev/null | head -1)}"
MAILSORT="$CARGO_TARGET_DIR/release/mailsort"
