#!/usr/bin/env bash
# The main job on the default model and data, on a fresh machine:
#  1. the whole hybrid on a real mailbox: a labelled Maildir made from real
#     20 Newsgroups posts (raw messages as posted), a bundle built from its
#     folders, a local backend, and `mailsort sort` filing a sample INBOX
#     (a local Maildir: no mail server needed); then what the edge kept,
#     what the backend reranked, and edge-only against end-to-end accuracy;
#  2. the sample support taxonomy (examples/support-taxonomy.yaml) built
#     from the support-tickets train split, evaluated on its test split, and
#     the sample e-mails in examples/emails classified.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/lib.sh
D=out/demo
rm -rf "$D"
mkdir -p "$D"
PORT=${PORT:-18180}
KEY=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
export MAILSORT_API_KEY=$KEY

echo "== a labelled mailbox and an INBOX from 20 Newsgroups (6 newsgroups)"
python3 scripts/build/sample-mail.py "$MAILSORT_DATASETS" "$D/sample" --train 150 --test 40 \
  --labels comp.graphics,comp.sys.mac.hardware,rec.autos,rec.sport.hockey,sci.med,sci.space
"$MAILSORT" export --input "$D/sample/train.jsonl" --format maildir --out "$D/labelled"
"$MAILSORT" export --input "$D/sample/test.jsonl" --format inbox --out "$D/Maildir" --ids-out "$D/gold.tsv"
echo "== build a bundle from the labelled Maildir's folders"
"$MAILSORT" build --train "$D/labelled" --out "$D/mail.msb" > "$D/build.json"
echo "== start a local backend (the default reranker, CPU)"
start_backend "$PORT" "$KEY" "$D/backend.log" --bundle "$D/mail.msb" --device cpu
echo "== sort $D/Maildir (INBOX) into label folders"
"$MAILSORT" sort "$D/Maildir" --bundle "$D/mail.msb" --backend "http://127.0.0.1:$PORT" --once \
  --log "$D/actions.jsonl" 2> "$D/sort.log"
stop_backend "$BACKEND_PID"
python3 - "$D" <<'PY'
import json, os, sys
d = sys.argv[1]
gold = dict(l.rstrip("\n").split("\t") for l in open(f"{d}/gold.tsv"))
acts = [json.loads(l) for l in open(f"{d}/actions.jsonl")]
n = len(acts)
filed = [a for a in acts if a["action"] == "filed"]
by_backend = [a for a in filed if a.get("decided_by") == "backend"]
provisional = [a for a in acts if a.get("provisional")]
edge_right = sum((a.get("edge_label") or a["label"]) == gold[a["message_id"]] for a in filed)
e2e_right = sum(a["label"] == gold[a["message_id"]] for a in filed)
changed = sum(1 for a in by_backend if a.get("edge_label"))
pct = lambda x: f"{100 * x / max(n, 1):.1f}%"
print(f"sorted {n} messages: {len(filed) - len(by_backend)} kept at the edge, "
      f"{len(by_backend)} forwarded and reranked ({pct(len(by_backend))}; the backend changed {changed} labels), "
      f"{n - len(filed)} left in INBOX, {len(provisional)} provisional")
print(f"edge-only accuracy {pct(edge_right)}, end to end {pct(e2e_right)}")
folders = sorted(x[1:].replace(".", "/") for x in os.listdir(f"{d}/Maildir") if x.startswith("."))
print(f"decisions: {d}/actions.jsonl; sorted mailbox: {d}/Maildir (folders {', '.join(folders)})")
assert not provisional, "a decision stayed provisional with the backend up"
PY

echo "== the sample support taxonomy on support-tickets"
S="$MAILSORT_DATASETS/support-tickets"
"$MAILSORT" build --train "$S/train.jsonl" --taxonomy examples/support-taxonomy.yaml --out out/support.msb >/dev/null
"$MAILSORT" eval --bundle out/support.msb --test "$S/test.jsonl"
echo "== decisions for examples/emails/*.eml"
"$MAILSORT" classify --bundle out/support.msb examples/emails/*.eml | tee out/decisions.jsonl
