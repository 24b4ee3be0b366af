#!/usr/bin/env python3
"""A small real labelled mailbox: posts with their raw messages (headers
and MIME as sent) from 20 Newsgroups, a few newsgroups, N training and M
test posts each, in file order. Writes OUT/train.jsonl and OUT/test.jsonl;
`mailsort export` turns them into Maildir, mbox or Takeout.

Usage: sample-mail.py DATASETS OUT [--labels a,b,c] [--train N] [--test M] [--message-ids]

--message-ids puts a Message-ID header (made from the post's id) on posts
that have none, so that a message can be followed through a mail server.
"""

import argparse
import gzip
import json
import os
import re

ap = argparse.ArgumentParser()
ap.add_argument("datasets")
ap.add_argument("out")
ap.add_argument("--labels", default="comp.graphics,rec.autos,sci.space,talk.politics.guns")
ap.add_argument("--train", type=int, default=60)
ap.add_argument("--test", type=int, default=10)
ap.add_argument("--message-ids", action="store_true")
a = ap.parse_args()
labels = a.labels.split(",")
os.makedirs(a.out, exist_ok=True)
for split, n in (("train", a.train), ("test", a.test)):
    seen = {l: 0 for l in labels}
    with gzip.open(f"{a.datasets}/20newsgroups/{split}.jsonl.gz", "rt") as f, open(f"{a.out}/{split}.jsonl", "w") as out:
        for line in f:
            r = json.loads(line)
            if r["label"] in seen and seen[r["label"]] < n and r.get("raw"):
                seen[r["label"]] += 1
                # A dot in a newsgroup is a level, as a Maildir++ server shows it.
                raw = r["raw"]
                if a.message_ids and not re.search(r"(?im)^message-id:", raw.split("\n\n", 1)[0]):
                    raw = f"Message-ID: <{re.sub(r'[^A-Za-z0-9.]', '-', r['id'])}@sample.mailsort.invalid>\n{raw}"
                out.write(json.dumps({"id": r["id"], "label": r["label"].replace(".", "/"), "raw": raw}) + "\n")
