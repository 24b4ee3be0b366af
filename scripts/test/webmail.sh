#!/usr/bin/env bash
# The extension in a real webmail, end to end: Dovecot (IMAP) and Roundcube
# 1.6 (Debian's package, PHP's built-in server, SQLite) on loopback, real
# 20 Newsgroups posts as raw MIME in the mailbox, Debian's Chromium with the
# unpacked extension (playwright-core), and a real mailsort-backend. Runs
# web/tests/webmail.test.mjs (see there for what it checks), then builds a
# bundle from the training posts plus the corrections the test exported.
# Part of scripts/test.sh; needs scripts/setup.sh. KEEP=1 keeps the scratch
# folder.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
W=$(mktemp -d /tmp/mailsort-webmail.XXXXXX)
chmod 755 "$W"
IMAP_PORT=${IMAP_PORT:-18591}
ROUNDCUBE_PORT=${ROUNDCUBE_PORT:-18592}
DOVECOT_PIDS=()
ROUNDCUBE_PID=
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*" >&2; }
cleanup() {
  [ -n "$ROUNDCUBE_PID" ] && kill "$ROUNDCUBE_PID" 2> /dev/null || true
  for p in "${DOVECOT_PIDS[@]}"; do kill "$p" 2> /dev/null || true; wait "$p" 2> /dev/null || true; done
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT
need_chromium
[ -d web/node_modules/playwright-core ] || (cd web && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error)
source scripts/test/dovecot.sh
source scripts/test/roundcube.sh

step "a labelled mailbox of real posts, its bundle, and the native CLI's decisions"
python3 scripts/build/sample-mail.py "$MAILSORT_DATASETS" "$W/sample" --train 60 --test 16 --message-ids
"$MAILSORT" build --train "$W/sample/train.jsonl" --out "$W/sample.msb" > /dev/null 2> "$W/build.txt" \
  || { cat "$W/build.txt" >&2; fail "build"; }
"$MAILSORT" classify --bundle "$W/sample.msb" "$W/sample/test.jsonl" \
  --forwarded-out "$W/forwarded.jsonl" > "$W/native.jsonl" 2> /dev/null
echo "native: $(wc -l < "$W/native.jsonl") decisions, $(wc -l < "$W/forwarded.jsonl") forwarded" >&2
scripts/build/extension.sh "$W/sample.msb"

step "Dovecot and Roundcube on loopback"
dovecot_conf main "$IMAP_PORT"
start_dovecot main "$IMAP_PORT"
python3 -c 'import json, sys; print("\n".join(sorted({json.loads(l)["label"] for l in open(sys.argv[1])})))' \
  "$W/sample/train.jsonl" | xargs python3 scripts/test/imap_mail.py --port "$IMAP_PORT" folders > /dev/null
roundcube_conf "$IMAP_PORT" 25
start_roundcube "$ROUNDCUBE_PORT"

step "the extension in Roundcube, in Chromium"
MAILSORT_TEST_BUNDLE="$W/sample.msb" \
  MAILSORT_TEST_MAIL="$W/sample/test.jsonl" \
  MAILSORT_TEST_NATIVE="$W/native.jsonl" \
  MAILSORT_TEST_FORWARDED="$W/forwarded.jsonl" \
  MAILSORT_TEST_ROUNDCUBE="http://127.0.0.1:$ROUNDCUBE_PORT/" \
  MAILSORT_TEST_IMAP_PORT="$IMAP_PORT" \
  MAILSORT_TEST_CORRECTIONS="$W/corrections.jsonl" \
  MAILSORT_TEST_BACKEND="$CARGO_TARGET_DIR/release/mailsort-backend" \
  MAILSORT_RERANKER_DIR="$PWD/models/reranker" \
  node --test web/tests/webmail.test.mjs

step "the user's corrections in their next bundle"
cat "$W/sample/train.jsonl" "$W/corrections.jsonl" > "$W/train+corrections.jsonl"
"$MAILSORT" build --train "$W/train+corrections.jsonl" --out "$W/corrected.msb" > "$W/build2.json" 2> "$W/build2.txt" \
  || { cat "$W/build2.txt" >&2; fail "mailsort build did not take the exported corrections"; }
python3 - "$W/build2.json" "$(wc -l < "$W/train+corrections.jsonl")" <<'PY' || fail "the build did not learn from every row"
import json, sys
examples = json.load(open(sys.argv[1]))["examples"]
assert examples == int(sys.argv[2]), f"{examples} examples from {sys.argv[2]} rows"
PY
echo "corrections: $(wc -l < "$W/corrections.jsonl") exported, built into a bundle with the training posts" >&2
