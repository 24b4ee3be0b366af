#!/usr/bin/env python3
"""Checks a sorted mailbox: every seeded message is in exactly one place,
filed where the action log says, or still in INBOX with the abstain
keyword (or, with --allow-pending, not yet handled). Reads a local
Maildir++ or an IMAP account (read-only, Python's imaplib).

Usage:
  mailbox_check.py --ids IDS.txt --log ACTIONS.jsonl maildir PATH
  mailbox_check.py --ids IDS.txt --log ACTIONS.jsonl imap HOST PORT USER PASSWORD
Prints a JSON summary; exits 1 on any message lost, duplicated or misfiled.
"""

import argparse
import email
import email.policy
import imaplib
import json
import os
import re
import sys

ABSTAIN = "$MailsortAbstain"


def mid_of(raw: bytes):
    m = email.message_from_bytes(raw, policy=email.policy.compat32)
    v = m.get("Message-ID")
    return v.strip().strip("<>").strip() if v else None


def maildir_places(root):
    """(message-id, label or 'INBOX', keywords) for every message."""
    kw_names = {}
    kw_file = os.path.join(root, "dovecot-keywords")
    if os.path.exists(kw_file):
        for line in open(kw_file):
            n, name = line.rstrip("\n").split(" ", 1)
            kw_names[chr(ord("a") + int(n))] = name
    out = []
    folders = [("INBOX", root)] + [
        (d[1:].replace(".", "/"), os.path.join(root, d))
        for d in sorted(os.listdir(root))
        if d.startswith(".") and os.path.isdir(os.path.join(root, d, "cur"))
    ]
    for label, path in folders:
        for sub in ("new", "cur"):
            for f in sorted(os.listdir(os.path.join(path, sub))):
                raw = open(os.path.join(path, sub, f), "rb").read()
                flags = f.split(":2,", 1)[1] if ":2," in f else ""
                kws = {kw_names[c] for c in flags if c in kw_names}
                out.append((mid_of(raw), label, kws))
    return out


def imap_places(host, port, user, password):
    c = imaplib.IMAP4(host, int(port))
    c.login(user, password)
    typ, names = c.list()
    out = []
    for n in names:
        m = re.match(rb'\((?P<attrs>[^)]*)\) "(?P<d>[^"]*)" (?P<name>.*)', n)
        if b"\\Noselect" in m.group("attrs"):
            continue
        name = m.group("name").decode().strip('"')
        d = m.group("d").decode()
        c.select(f'"{name}"', readonly=True)
        typ, data = c.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        label = "INBOX" if name == "INBOX" else name.replace(d, "/")
        for item in data:
            if not isinstance(item, tuple):
                continue
            meta, hdr = item
            flags = set(re.search(rb"FLAGS \(([^)]*)\)", meta).group(1).decode().split())
            if "\\Deleted" in flags:
                continue
            out.append((mid_of(hdr), label, flags))
    c.logout()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ids", required=True, help="seeded Message-IDs, one per line")
    ap.add_argument("--log", required=True, help="mailsort sort action logs (JSON lines), all runs")
    ap.add_argument("--allow-pending", action="store_true")
    ap.add_argument("kind", choices=["maildir", "imap"])
    ap.add_argument("where", nargs="+")
    a = ap.parse_args()
    ids = [l.strip() for l in open(a.ids) if l.strip()]
    places = maildir_places(*a.where) if a.kind == "maildir" else imap_places(*a.where)
    last = {}
    for line in open(a.log):
        r = json.loads(line)
        last[r["message_id"]] = r
    by_id = {}
    for mid, label, kws in places:
        by_id.setdefault(mid, []).append((label, kws))
    problems, counts = [], {"filed": 0, "abstained": 0, "pending": 0}
    for mid in ids:
        where = by_id.get(mid, [])
        if len(where) != 1:
            problems.append(f"{mid}: in {len(where)} places {[w[0] for w in where]}")
            continue
        label, kws = where[0]
        act = last.get(mid)
        if label == "INBOX":
            if ABSTAIN in kws:
                counts["abstained"] += 1
            elif a.allow_pending:
                counts["pending"] += 1
            else:
                problems.append(f"{mid}: still in INBOX without {ABSTAIN}")
        else:
            counts["filed"] += 1
            if act is None or act.get("folder") != label:
                problems.append(f"{mid}: in {label}, but the log says {act and act.get('folder')}")
    counts["problems"] = problems[:20]
    counts["n_problems"] = len(problems)
    print(json.dumps(counts))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
