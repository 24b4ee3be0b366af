#!/usr/bin/env python3
"""Writes the demo mail page's inbox: 200 real e-mails from the test splits
in ../shared/datasets (150 BANKING77 customer messages, 50 20 Newsgroups
posts as subject + body), interleaved, as web/demo/emails.json, and the
same e-mails as JSON Lines for `mailsort classify` (--jsonl)."""

import argparse
import email
import gzip
import json
import os
import sys


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", default=os.environ.get("MAILSORT_DATASETS", "../shared/datasets"))
    parser.add_argument("--out", default="web/demo/emails.json")
    parser.add_argument("--jsonl", help="also write the e-mails as JSON Lines here")
    args = parser.parse_args()

    with open(f"{args.datasets}/banking77/test.jsonl") as f:
        bank = [json.loads(line) for line in f][::20][:150]
    with gzip.open(f"{args.datasets}/20newsgroups/test.jsonl.gz", "rt") as f:
        posts = [json.loads(line) for line in f][::150][:50]
    if len(bank) != 150 or len(posts) != 50:
        sys.exit(f"expected 150 + 50 test rows, found {len(bank)} + {len(posts)}")

    inbox = []
    for i, row in enumerate(bank):
        inbox.append({"id": row["id"], "from": "Bank customer", "subject": row["subject"], "body": row["body"]})
        if i % 3 == 2:
            post = posts[i // 3]
            sender = email.message_from_string(post["raw"]).get("From", "Usenet")
            inbox.append({"id": post["id"], "from": sender, "subject": post["subject"], "body": post["body"]})

    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(inbox, f)
    if args.jsonl:
        with open(args.jsonl, "w") as f:
            for e in inbox:
                f.write(json.dumps({"id": e["id"], "subject": e["subject"], "body": e["body"]}) + "\n")
    print(f"{len(inbox)} e-mails -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
