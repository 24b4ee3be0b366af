#!/usr/bin/env python3
"""Seed corpora for the fuzz targets, from real messages.

The labelled sets hold subject and body; they are written back as the MIME
shapes mail arrives in (plain, quoted-printable, base64, multipart with an
HTML part, Latin-1), next to the repository's own .eml fixtures. Requests,
mbox files and Maildir trees are made of the same messages.

usage: fuzz_seeds.py OUT_DIR [--per-set N]
"""
import argparse
import base64
import gzip
import html
import json
import pathlib
import quopri
import random

SETS = ["20newsgroups/train.jsonl.gz", "banking77/train.jsonl.gz", "support-tickets/train.jsonl",
        "reuters-r52/train.jsonl.gz", "bbc-news/train.jsonl.gz", "snips/train.jsonl.gz"]


def rows(datasets: pathlib.Path, per_set: int):
    for name in SETS:
        path = datasets / name
        if not path.exists():
            alt = path.with_suffix("") if path.suffix == ".gz" else path.with_suffix(path.suffix + ".gz")
            if not alt.exists():
                continue
            path = alt
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as f:
            for i, line in enumerate(f):
                if i >= per_set:
                    break
                row = json.loads(line)
                subject = row.get("subject") or ""
                body = row.get("body") or row.get("text") or ""
                yield row.get("label", ""), subject, body[:20000]


def mime(subject: str, body: str, shape: int) -> bytes:
    head = f"From: a@example.com\r\nTo: b@example.com\r\nSubject: {subject}\r\nMessage-ID: <{random.getrandbits(48):x}@seed>\r\nMIME-Version: 1.0\r\n"
    if shape == 0:
        return (head + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body).encode()
    if shape == 1:
        qp = quopri.encodestring(body.encode()).decode()
        return (head + "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" + qp).encode()
    if shape == 2:
        b64 = base64.encodebytes(body.encode()).decode()
        return (head + "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64).encode()
    if shape == 3:
        paras = "".join(f"<p>{html.escape(p)}</p>" for p in body.split("\n\n"))
        return (head + 'Content-Type: multipart/alternative; boundary="b1"\r\n\r\n--b1\r\n'
                "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body + "\r\n--b1\r\n"
                "Content-Type: text/html; charset=utf-8\r\n\r\n<html><body><div>" + paras
                + "</div></body></html>\r\n--b1--\r\n").encode()
    return (head + "Content-Type: text/plain; charset=iso-8859-1\r\n\r\n").encode() + body.encode("latin-1", "replace")


def write(dir_: pathlib.Path, name: str, data: bytes):
    dir_.mkdir(parents=True, exist_ok=True)
    (dir_ / name).write_bytes(data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=pathlib.Path)
    ap.add_argument("--per-set", type=int, default=40)
    args = ap.parse_args()
    root = pathlib.Path(__file__).resolve().parents[2]
    datasets = root.parent / "shared" / "datasets"
    random.seed(7)
    messages = []
    for n, (label, subject, body) in enumerate(rows(datasets, args.per_set)):
        raw = mime(subject, body, n % 5)
        messages.append((label, subject, body, raw))
        write(args.out / "clean_mime", f"set-{n:04}.eml", raw)
        paras = "".join(f"<p>{html.escape(p)}</p>" for p in body.split("\n\n"))
        write(args.out / "clean_html", f"set-{n:04}.html",
              f"<html><body><table><tr><td><div>{paras}</div></td></tr></table></body></html>".encode())
    fixtures = list((root / "crates/shared/tests/fixtures").glob("*.eml")) + list((root / "examples/emails").glob("*.eml"))
    for p in fixtures:
        write(args.out / "clean_mime", p.name, p.read_bytes())
    for i in range(0, len(messages), 8):
        chunk = messages[i:i + 8]
        rerank = {"bundle": "support", "deadline_ms": 2000, "emails": [
            {"id": f"e{j}", "text": f"{s}\n{b[:2000]}", "candidates": [
                {"label": l or "other", "probability": 0.6}, {"label": "other-" + str(j), "probability": 0.4}]}
            for j, (l, s, b, _) in enumerate(chunk)]}
        write(args.out / "request", f"rerank-{i:04}.json", json.dumps(rerank).encode())
        classify = {"bundle": "support", "emails": [
            ({"id": f"e{j}", "raw": raw.decode("utf-8", "replace")} if j % 2 else {"id": f"e{j}", "subject": s, "body": b[:4000]})
            for j, (_, s, b, raw) in enumerate(chunk)]}
        write(args.out / "request", f"classify-{i:04}.json", json.dumps(classify).encode())
        mbox = b""
        for (l, _, _, raw) in chunk:
            body = raw.replace(b"\r\n", b"\n")
            body = b"\n".join(b">" + line if line.startswith(b"From ") else line for line in body.split(b"\n"))
            mbox += b"From seed@example.com Mon Jan  1 00:00:00 2024\nX-Gmail-Labels: Inbox," + (l or "Other").encode() + b"\n" + body + b"\n\n"
        write(args.out / "mbox", f"seed-{i:04}.mbox", mbox)
        maildir = b"\0".join(((b"" if j == 0 else (l or "Other").encode()) + b"\n" + raw[:8000])
                             for j, (l, _, _, raw) in enumerate(chunk))
        write(args.out / "maildir", f"seed-{i:04}.tree", maildir)
    counts = {d.name: len(list(d.iterdir())) for d in sorted(args.out.iterdir()) if d.is_dir()}
    print("seeds:", ", ".join(f"{k} {v}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
