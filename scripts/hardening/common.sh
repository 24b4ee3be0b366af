# Sourced by faults.sh and soak.sh after scripts/lib.sh: checks that set-up
# has run, and builds the support-tickets bundle they serve
# (HARDENING_BUNDLE) from the first 1,500 training rows, again when the CLI
# is newer than it.
for bin in "$MAILSORT" "$BACKEND"; do
  [ -x "$bin" ] || { echo "missing $bin: run scripts/setup.sh first" >&2; exit 1; }
done
[ -n "$ORT_DYLIB_PATH" ] || { echo "no libonnxruntime.so (run scripts/setup.sh)" >&2; exit 1; }
HARDENING_BUNDLE=out/hardening/support.msb
if [ ! -f "$HARDENING_BUNDLE" ] || [ "$MAILSORT" -nt "$HARDENING_BUNDLE" ]; then
  mkdir -p out/hardening
  head -1500 "$MAILSORT_DATASETS/support-tickets/train.jsonl" > out/hardening/train.jsonl
  echo "building the support bundle the hardening runs serve…" >&2
  "$MAILSORT" build --train out/hardening/train.jsonl --taxonomy examples/support-taxonomy.yaml \
    --out "$HARDENING_BUNDLE" > /dev/null
fi
# The paths both Python drivers take.
HARDENING_ARGS=(--mailsort "$MAILSORT" --backend-bin "$BACKEND" --bundle "$HARDENING_BUNDLE"
  --test "$MAILSORT_DATASETS/support-tickets/test.jsonl" --ort-lib "$ORT_DYLIB_PATH"
  --reranker-dir models/reranker --model-dir "$MAILSORT_MODEL_DIR")
