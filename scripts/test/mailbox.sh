#!/usr/bin/env bash
# mailsort on real mailboxes, end to end, with a real backend:
#   1. a local Maildir: import labelled folders, build, sort an INBOX of
#      real 20 Newsgroups posts (raw MIME); kill the sorter mid-run and
#      restart it; stop the backend and start it again; a 30 MB message.
#   2. Dovecot (Debian's dovecot-imapd, installed when missing, started on
#      loopback with a throwaway config): import over IMAP (plain text on
#      loopback, and TLS with a throwaway CA), wrong credentials, the same
#      kill and outage, a UIDVALIDITY change, IDLE, and a second server
#      that offers neither IDLE nor MOVE.
# Every check counts by Message-ID: each message ends in exactly one
# folder, the one the action log names, or in INBOX with $MailsortAbstain.
# Usage: scripts/test/mailbox.sh [maildir|dovecot]...   (default: both)
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
PARTS=("$@"); [ ${#PARTS[@]} -eq 0 ] && PARTS=(maildir dovecot)
W=$(mktemp -d /tmp/mailsort-mailbox.XXXXXX)
chmod 755 "$W"
PORT=${PORT:-18491}
IMAP_PORT=${IMAP_PORT:-18493}
IMAPS_PORT=${IMAPS_PORT:-18494}
BARE_PORT=${BARE_PORT:-18495}
KEY=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
export MAILSORT_API_KEY=$KEY
CHECK=(python3 scripts/test/mailbox_check.py)
DOVECOT_PIDS=()
cleanup() {
  stop_backends
  for p in "${DOVECOT_PIDS[@]}"; do kill "$p" 2> /dev/null || true; wait "$p" 2> /dev/null || true; done
  pkill -f "$W/dovecot-" 2> /dev/null || true
  [ -n "${SORT_PID:-}" ] && kill -9 "$SORT_PID" 2> /dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT
# start_backend traps EXIT for its own cleanup: keep ours, which calls it.
backend() { start_backend "$PORT" "$KEY" "$W/backend.log" --bundle "$W/sample.msb" --device cpu; trap cleanup EXIT; }
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*" >&2; }

# A small real labelled set: 4 newsgroups, 60 training and 16 test posts
# each, raw messages as posted.
python3 scripts/build/sample-mail.py "$MAILSORT_DATASETS" "$W/sample" --train 60 --test 16
head -n 48 "$W/sample/test.jsonl" > "$W/sample/inbox1.jsonl"
tail -n +49 "$W/sample/test.jsonl" > "$W/sample/inbox2.jsonl"
"$MAILSORT" export --input "$W/sample/train.jsonl" --format maildir --out "$W/labelled" 2> /dev/null
"$MAILSORT" import "$W/labelled" --out "$W/labelled.jsonl" 2> "$W/import.txt"
grep -q "read 240 messages in 4 labels" "$W/import.txt" || { cat "$W/import.txt"; fail "local import"; }

step "build from the Maildir, start the backend"
"$MAILSORT" build --train "$W/labelled" --out "$W/sample.msb" > /dev/null 2> "$W/build.txt"
backend
URL=http://127.0.0.1:$PORT

sort_args=(--bundle "$W/sample.msb" --backend "$URL" --sort-batch 4)

# wait_lines FILE N SECONDS: until FILE has N lines.
wait_lines() {
  for _ in $(seq 1 $(( $3 * 5 ))); do
    [ -f "$1" ] && [ "$(wc -l < "$1")" -ge "$2" ] && return 0
    sleep 0.2
  done
  fail "$1 has fewer than $2 lines after $3 s"
}

# settle LOG WHERE...: the sorter writes an action's line before it changes
# the mailbox (so that no change goes unrecorded), so a line count says the
# action is under way, not done. Waits (at most 30 s) until the mailbox
# agrees with LOG, so that stopping the sorter next does not cut an action
# short; the strict check afterwards says whether it did.
settle() {
  local log=$1; shift
  for _ in $(seq 1 30); do
    "${CHECK[@]}" --ids "$W/ids" --log "$log" "$@" > /dev/null 2>&1 && return 0
    sleep 1
  done
}

# kill_and_outage MAILBOX LOG CHECK... : one sorter killed mid-run, then a
# run through a backend outage, then the strict check.
kill_and_outage() {
  local mailbox=$1 log=$2; shift 2
  local extra=()
  [[ "$mailbox" == imap* ]] && extra=(--allow-plaintext --state "$W/state.json")
  "$MAILSORT" sort "$mailbox" "${sort_args[@]}" "${extra[@]}" --once --log "$log" 2> "$log.err" &
  SORT_PID=$!
  wait_lines "$log" 8 120
  kill -9 "$SORT_PID"; wait "$SORT_PID" 2> /dev/null || true; SORT_PID=
  "${CHECK[@]}" --ids "$W/ids" --log "$log" --allow-pending "$@" > "$W/check.json" \
    || { cat "$W/check.json"; fail "after the kill"; }
  echo "after a kill at $(wc -l < "$log") actions: $(cat "$W/check.json")" >&2
  stop_backend "$BACKEND_PID"; BACKEND_PID=
  "$MAILSORT" sort "$mailbox" "${sort_args[@]}" "${extra[@]}" --once --log "$log" 2> "$log.err2" &
  SORT_PID=$!
  # A message deferred twice means the first pass is over: all the edge
  # could decide alone is filed, and the retries change nothing, so the
  # mailbox holds still for the check.
  deferred_twice() { grep '"deferred"' "$log" | cut -d, -f1 | sort | uniq -d | grep -q .; }
  for _ in $(seq 1 300); do deferred_twice && break; sleep 0.2; done
  deferred_twice || fail "no message was deferred twice while the backend was down"
  kill -0 "$SORT_PID" || fail "the sorter gave up while the backend was down"
  "${CHECK[@]}" --ids "$W/ids" --log "$log" --allow-pending "$@" > /dev/null || fail "during the outage"
  backend
  wait "$SORT_PID" || { cat "$log.err2"; fail "the sorter failed after the backend came back"; }
  SORT_PID=
  "${CHECK[@]}" --ids "$W/ids" --log "$log" "$@" > "$W/check.json" || { cat "$W/check.json"; fail "final"; }
  grep -q '"decided_by":"backend"' "$log" || fail "no message was decided by the backend"
  echo "sorted: $(cat "$W/check.json")" >&2
}

if [[ " ${PARTS[*]} " == *" maildir "* ]]; then
  step "local Maildir: kill mid-run, backend outage, a 30 MB message"
  "$MAILSORT" export --input "$W/sample/test.jsonl" --format inbox --out "$W/local" --ids-out "$W/ids.tsv" 2> /dev/null
  python3 - "$W/local/new/huge-1.eml" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("Message-ID: <huge@mailsort.invalid>\nSubject: a huge attachment\n\n")
    f.write(("x" * 999 + "\n") * 30_000)
PY
  { cut -f1 "$W/ids.tsv"; echo huge@mailsort.invalid; } > "$W/ids"
  kill_and_outage "$W/local" "$W/local.log" maildir "$W/local"
  grep '"huge@mailsort.invalid"' "$W/local.log" | grep -q '"kept"' || fail "the 30 MB message was not kept in INBOX"
fi

if [[ " ${PARTS[*]} " == *" dovecot "* ]]; then
  source scripts/test/dovecot.sh
  # A throwaway CA and a server certificate for localhost.
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=mailsort-test-ca \
    -keyout "$W/ca.key" -out "$W/ca.pem" 2> /dev/null
  openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout "$W/server.key" -out "$W/server.csr" 2> /dev/null
  printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n' > "$W/ext.cnf"
  openssl x509 -req -in "$W/server.csr" -CA "$W/ca.pem" -CAkey "$W/ca.key" -CAcreateserial \
    -days 2 -extfile "$W/ext.cnf" -out "$W/server.pem" 2> /dev/null
  append() { # PORT JSONL : APPEND each exported message to INBOX
    local dir; dir=$(mktemp -d "$W/append.XXXX")
    "$MAILSORT" export --input "$2" --format inbox --out "$dir/md" --ids-out "$dir/ids.tsv" 2> /dev/null
    cut -f1 "$dir/ids.tsv" >> "$W/ids"
    python3 - "$1" "$dir/md/new" <<'PY'
import imaplib, os, sys
c = imaplib.IMAP4("127.0.0.1", int(sys.argv[1])); c.login("alice", "secret")
for f in sorted(os.listdir(sys.argv[2])):
    typ, _ = c.append("INBOX", None, None, open(os.path.join(sys.argv[2], f), "rb").read())
    assert typ == "OK", typ
c.logout()
PY
  }

  step "Dovecot: import over IMAP and IMAPS"
  dovecot_conf main "$IMAP_PORT" "$IMAPS_PORT"
  "$MAILSORT" export --input "$W/sample/train.jsonl" --format maildir --out "$W/dovecot-main/home/alice/Maildir" 2> /dev/null
  start_dovecot main "$IMAP_PORT"
  export MAILSORT_IMAP_PASSWORD=secret
  IMAP=imap://alice@127.0.0.1:$IMAP_PORT
  "$MAILSORT" import "$IMAP" --allow-plaintext --out "$W/imap.jsonl" 2> "$W/imap-import.txt" \
    || { cat "$W/imap-import.txt"; fail "IMAP import"; }
  python3 - "$W/labelled.jsonl" "$W/imap.jsonl" <<'PY'
import json, sys
a, b = ({(r["id"], r["label"]) for r in map(json.loads, open(p))} for p in sys.argv[1:])
assert a == b, f"local and IMAP imports differ: {len(a ^ b)} rows"
print(f"IMAP import = local import: {len(a)} messages", file=sys.stderr)
PY
  "$MAILSORT" import "imaps://alice@localhost:$IMAPS_PORT" --imap-ca-file "$W/ca.pem" 2> "$W/imaps.txt" \
    || { cat "$W/imaps.txt"; fail "IMAPS import"; }
  grep -q "read 240 messages" "$W/imaps.txt" || fail "IMAPS import read too little"
  "$MAILSORT" import "imap://alice@localhost:$IMAP_PORT" --imap-ca-file "$W/ca.pem" 2> "$W/starttls.txt" \
    || { cat "$W/starttls.txt"; fail "STARTTLS import"; }
  grep -q "read 240 messages" "$W/starttls.txt" || fail "STARTTLS import read too little"
  if "$MAILSORT" import "imaps://alice@localhost:$IMAPS_PORT" 2> "$W/err.txt"; then fail "an untrusted certificate was accepted"; fi
  grep -q "TLS with localhost failed" "$W/err.txt" || { cat "$W/err.txt"; fail "no TLS error"; }
  if MAILSORT_IMAP_PASSWORD=wrong "$MAILSORT" import "$IMAP" --allow-plaintext 2> "$W/err.txt"; then fail "a wrong password was accepted"; fi
  grep -q "rejected the login for alice" "$W/err.txt" || { cat "$W/err.txt"; fail "no login error"; }
  if "$MAILSORT" import imap://alice@example.com --allow-plaintext 2> "$W/err.txt"; then fail "plain text off loopback"; fi
  grep -q "refusing plain-text IMAP" "$W/err.txt" || { cat "$W/err.txt"; fail "no plain-text refusal"; }
  echo "IMAPS and STARTTLS with a trusted CA, an untrusted certificate, a wrong password, plain text off loopback: as expected" >&2

  step "Dovecot: sort with MOVE; kill mid-run, backend outage"
  : > "$W/ids"
  append "$IMAP_PORT" "$W/sample/inbox1.jsonl"
  kill_and_outage "$IMAP" "$W/imap.log" imap 127.0.0.1 "$IMAP_PORT" alice secret

  step "Dovecot: UIDVALIDITY changes under the sorter"
  stop_dovecot 0
  # Dovecot keeps UIDs in dovecot-uidlist and its indexes: without them it
  # renumbers INBOX under a new UIDVALIDITY, as after a server migration.
  rm -f "$W/dovecot-main/home/alice/Maildir"/dovecot-uidvalidity* "$W/dovecot-main/home/alice/Maildir"/dovecot-uidlist \
    "$W/dovecot-main/home/alice/Maildir"/dovecot.index*
  start_dovecot main "$IMAP_PORT"
  append "$IMAP_PORT" "$W/sample/inbox2.jsonl"
  "$MAILSORT" sort "$IMAP" "${sort_args[@]}" --allow-plaintext --state "$W/state.json" --once --log "$W/imap.log" 2> "$W/uidv.err"
  grep -q "UIDVALIDITY changed" "$W/uidv.err" || { cat "$W/uidv.err"; fail "the UIDVALIDITY change went unnoticed"; }
  "${CHECK[@]}" --ids "$W/ids" --log "$W/imap.log" imap 127.0.0.1 "$IMAP_PORT" alice secret > "$W/check.json" \
    || { cat "$W/check.json"; fail "after the UIDVALIDITY change"; }
  echo "after the UIDVALIDITY change: $(cat "$W/check.json")" >&2

  step "Dovecot: following INBOX with IDLE"
  "$MAILSORT" sort "$IMAP" "${sort_args[@]}" --allow-plaintext --state "$W/state.json" --poll-seconds 600 --log "$W/idle.log" 2> "$W/idle.err" &
  SORT_PID=$!
  sleep 2
  head -n 2 "$W/sample/inbox2.jsonl" | sed 's/"id": "/"id": "again-/' > "$W/sample/late.jsonl"
  append "$IMAP_PORT" "$W/sample/late.jsonl"
  wait_lines "$W/idle.log" 2 60
  cat "$W/imap.log" "$W/idle.log" > "$W/idle-so-far.log"
  settle "$W/idle-so-far.log" imap 127.0.0.1 "$IMAP_PORT" alice secret
  kill "$SORT_PID"; wait "$SORT_PID" 2> /dev/null || true; SORT_PID=
  cat "$W/idle.log" >> "$W/imap.log"
  "${CHECK[@]}" --ids "$W/ids" --log "$W/imap.log" imap 127.0.0.1 "$IMAP_PORT" alice secret > "$W/check.json" \
    || { cat "$W/check.json"; fail "with IDLE"; }
  echo "IDLE woke the sorter for 2 new messages: $(cat "$W/check.json")" >&2

  step "Dovecot without IDLE or MOVE: COPY + UID EXPUNGE, polling"
  dovecot_conf bare "$BARE_PORT" "" "IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE UIDPLUS"
  start_dovecot bare "$BARE_PORT"
  : > "$W/ids"
  append "$BARE_PORT" "$W/sample/inbox1.jsonl"
  BARE=imap://alice@127.0.0.1:$BARE_PORT
  "$MAILSORT" sort "$BARE" "${sort_args[@]}" --allow-plaintext --state "$W/bare.json" --poll-seconds 1 --log "$W/bare.log" 2> "$W/bare.err" &
  SORT_PID=$!
  wait_lines "$W/bare.log" 10 120
  kill -9 "$SORT_PID"; wait "$SORT_PID" 2> /dev/null || true
  "$MAILSORT" sort "$BARE" "${sort_args[@]}" --allow-plaintext --state "$W/bare.json" --poll-seconds 1 --log "$W/bare.log" 2> "$W/bare.err" &
  SORT_PID=$!
  wait_lines "$W/bare.log" 48 180
  append "$BARE_PORT" "$W/sample/late.jsonl"
  wait_lines "$W/bare.log" 50 60
  settle "$W/bare.log" imap 127.0.0.1 "$BARE_PORT" alice secret
  kill "$SORT_PID"; wait "$SORT_PID" 2> /dev/null || true; SORT_PID=
  grep -q "no MOVE" "$W/bare.err" && grep -q "no IDLE" "$W/bare.err" || { cat "$W/bare.err"; fail "the missing capabilities went unnoticed"; }
  "${CHECK[@]}" --ids "$W/ids" --log "$W/bare.log" imap 127.0.0.1 "$BARE_PORT" alice secret > "$W/check.json" \
    || { cat "$W/check.json"; fail "without MOVE"; }
  echo "without IDLE or MOVE, killed once: $(cat "$W/check.json")" >&2
fi
echo "mailbox tests passed" >&2
