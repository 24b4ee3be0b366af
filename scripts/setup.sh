#!/usr/bin/env bash
# Everything mailsort needs on a fresh machine, idempotent: the Python tools
# (.venv), the release builds (mailsort, mailsort-backend), the verified
# encoder and the backend's reranker.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mailsort-target}"

if ! command -v cargo >/dev/null; then
  echo "cargo not found: install Rust with rustup first" >&2
  exit 1
fi
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  echo "installing python3-venv with apt…" >&2
  apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
fi
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r scripts/requirements.txt

echo "building mailsort and mailsort-backend (release)…" >&2
cargo build --release --locked -p mailsort-cli --bin mailsort -p mailsort-backend --bin mailsort-backend

export MAILSORT_PYTHON="$PWD/.venv/bin/python"
"$CARGO_TARGET_DIR/release/mailsort" models fetch
"$CARGO_TARGET_DIR/release/mailsort" models reranker
