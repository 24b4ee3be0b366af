#!/usr/bin/env bash
# The Python environment for reranker training (.venv-train): PyTorch and
# transformers pinned in training/requirements.txt. Idempotent. Only
# training needs it; serving and the edge never do.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -x .venv-train/bin/python ]; then
  python3 -m venv .venv-train
fi
if ! .venv-train/bin/python -c 'import torch, transformers' 2>/dev/null; then
  echo "installing PyTorch and transformers into .venv-train (about 3 GB, once)…" >&2
fi
.venv-train/bin/python -m pip install --quiet --disable-pip-version-check -r training/requirements.txt
