"""Probe: would the second opinion gain from the edge's exemplar vote?

The edge mixes its logistic-regression head with a similarity-weighted vote
of the k nearest training e-mails, (1 - w) p_head + w p_knn. This measures
the same mix over all-mpnet-base-v2 embeddings on a held-out tenth of a
bundle's training e-mails, reading the vectors `mailsort second-opinion
--cache-embeddings` already wrote (nothing is embedded here). A measurement,
not served.

Usage (after `SECOND_OPINION=models/all-mpnet-base-v2 scripts/eval/sets.sh banking77`):
  .venv-train/bin/python training/probe_second_opinion_knn.py out/eval/sets/banking77.train.jsonl
"""

import argparse
import glob
import hashlib
import json
import os

import numpy as np
import torch

DIM = 768
K, TAU = 10, 0.05  # as the edge's knn_distribution


def cached_vectors(path):
    record = 32 + 4 * DIM
    data = open(path, "rb").read()
    return {
        data[i : i + 32]: np.frombuffer(data[i + 32 : i + record], dtype="<f4")
        for i in range(0, len(data) - len(data) % record, record)
    }


def cleaned(row):
    # What the edge's cleaner leaves of a plain-text row: subject and body,
    # whitespace collapsed (enough for the short sets this probe reads; a
    # row it gets wrong is a cache miss, and is counted).
    text = f"{row['subject']}\n\n{row['body']}" if row.get("subject") else row["body"]
    return " ".join(text.split())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("train", help="the bundle's training JSONL")
    ap.add_argument("--cache", help="the mpnet embedding cache file (default: the one under ~/.cache/mailsort)")
    ap.add_argument("--l2", type=float, default=6e-6, help="L2 on the mean loss (linfa's 0.05 on the summed loss, for ~8,000 e-mails)")
    ap.add_argument("--seed", type=int, default=13)
    a = ap.parse_args()
    torch.set_num_threads(1)
    cache_path = a.cache or glob.glob(os.path.expanduser("~/.cache/mailsort/embeddings/ort4eb57d52*-cap256-d768.bin"))[0]
    cache = cached_vectors(cache_path)
    rows = [json.loads(l) for l in open(a.train) if l.strip()]
    labels = sorted({r["label"] for r in rows})
    index = {l: i for i, l in enumerate(labels)}
    xs, ys = [], []
    for r in rows:
        v = cache.get(hashlib.sha256(cleaned(r).encode()).digest())
        if v is not None:
            xs.append(v)
            ys.append(index[r["label"]])
    print(f"{len(xs)} of {len(rows)} training e-mails found in {cache_path}")
    if len(xs) < 100:
        raise SystemExit("too few: this set's cleaned text is not what cleaned() rebuilds (long or HTML mail)")
    x, y = np.stack(xs), np.array(ys)

    order = np.random.default_rng(a.seed).permutation(len(x))
    held = len(x) // 10
    te, tr = order[:held], order[held:]
    w = torch.zeros(DIM, len(labels), requires_grad=True)
    b = torch.zeros(len(labels), requires_grad=True)
    xt, yt = torch.tensor(x[tr]), torch.tensor(y[tr])
    opt = torch.optim.LBFGS([w, b], max_iter=1000, line_search_fn="strong_wolfe")

    def loss():
        opt.zero_grad()
        l = torch.nn.functional.cross_entropy(xt @ w + b, yt) + a.l2 * (w**2).sum()
        l.backward()
        return l

    opt.step(loss)
    logits = (torch.tensor(x[te]) @ w + b).detach()

    sims = x[te] @ x[tr].T
    knn = np.zeros((held, len(labels)))
    for i, row in enumerate(sims):
        nearest = np.argsort(-row)[:K]
        for j in nearest:
            knn[i, y[tr][j]] += np.exp((row[j] - row[nearest[0]]) / TAU)
    knn /= knn.sum(1, keepdims=True)

    right = lambda p: 100 * (p.argmax(1) == y[te]).mean()
    print(f"held out {held}: head {right(logits.numpy()):.2f}%, nearest {K} {right(knn):.2f}%")
    for t in (0.5, 1.0, 2.0):
        head = torch.softmax(logits / t, 1).numpy()
        mixes = "  ".join(f"w {m}: {right((1 - m) * head + m * knn):.2f}%" for m in (0.25, 0.5, 0.75))
        print(f"  mix at T {t}: {mixes}")


if __name__ == "__main__":
    main()
