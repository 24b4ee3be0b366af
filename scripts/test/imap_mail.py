#!/usr/bin/env python3
"""The IMAP side of the webmail test, against the throwaway Dovecot (user
alice, password secret) on loopback. Prints JSON.

  imap_mail.py --port P folders LABEL...          create and subscribe the
                                                   label folders (levels by
                                                   the server's delimiter)
  imap_mail.py --port P append FILE.jsonl ID...   APPEND those rows' raw
                                                   messages to INBOX, in order;
                                                   prints {id: uid}
  imap_mail.py --port P state                      every folder's messages:
                                                   {folder: {uid: Message-ID}}
"""

import argparse
import email.parser
import imaplib
import json
import re
import sys


def connect(port):
    c = imaplib.IMAP4("127.0.0.1", port)
    c.login("alice", "secret")
    return c


def delimiter(c):
    typ, data = c.list('""', '""')
    m = re.match(rb'\(.*?\) "(.)"', data[0] or b"")
    return m.group(1).decode() if m else "/"


def folders(c, labels):
    d = delimiter(c)
    for label in labels:
        name = label.replace("/", d) if d != "/" else label
        typ, data = c.create(name)
        if typ != "OK" and b"exists" not in (data[0] or b"").lower():
            sys.exit(f"CREATE {name}: {typ} {data}")
        c.subscribe(name)
    return {"delimiter": d}


def append(c, path, ids):
    rows = {}
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            rows[r["id"]] = r
    out = {}
    for i in ids:
        typ, data = c.append("INBOX", None, None, rows[i]["raw"].encode())
        m = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
        if typ != "OK" or not m:
            sys.exit(f"APPEND {i}: {typ} {data}")
        out[i] = int(m.group(1))
    return out


def state(c):
    out = {}
    typ, listing = c.list()
    for line in listing:
        m = re.match(rb'\((.*?)\) "(.)" "?(.*?)"?$', line)
        flags, name = m.group(1), m.group(3).decode()
        if b"\\Noselect" in flags:
            continue
        c.select(f'"{name}"', readonly=True)
        typ, data = c.uid("FETCH", "1:*", "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        messages = {}
        for item in data:
            if not isinstance(item, tuple):
                continue
            uid = int(re.search(rb"UID (\d+)", item[0]).group(1))
            header = email.parser.BytesHeaderParser().parsebytes(item[1])
            messages[uid] = (header.get("Message-ID") or "").strip()
        out[name] = messages
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("command", choices=["folders", "append", "state"])
    ap.add_argument("args", nargs="*")
    a = ap.parse_args()
    c = connect(a.port)
    if a.command == "folders":
        result = folders(c, a.args)
    elif a.command == "append":
        result = append(c, a.args[0], a.args[1:])
    else:
        result = state(c)
    c.logout()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
