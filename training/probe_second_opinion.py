"""Measures a second opinion for the backend: a frozen sentence encoder
(all-mpnet-base-v2 by default) with a per-bundle linear head trained on the
bundle's training e-mails, fused with the edge's probabilities on the
e-mails the edge forwards.

Reads the candidate files that scripts/train/eval-datasets.sh writes
(SET.cand-{train,dev,test}.jsonl: the edge's cleaned text, gold label,
forward flag and top-k candidates with probabilities). The head's L2 and the
fusion weight are chosen on dev; test is only reported.

Embeddings are cached under ~/.cache/mailsort/second-opinion/ by model and
text hash, so a second run only fits heads.

Usage: .venv-train/bin/python training/probe_second_opinion.py --model DIR SET...
Prints one JSON object per set on stdout; progress on stderr.
"""

import argparse
import hashlib
import json
import math
import os
import sys
import time

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def read_rows(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


class Embedder:
    def __init__(self, model_dir, max_len, cache_dir, batch):
        self.tok = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModel.from_pretrained(model_dir).eval()
        self.max_len = max_len
        self.batch = batch
        tag = hashlib.sha256(f"{os.path.abspath(model_dir)}|{max_len}".encode()).hexdigest()[:16]
        self.cache_dir = os.path.join(cache_dir, tag)
        os.makedirs(self.cache_dir, exist_ok=True)

    def embed(self, texts, name):
        key = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
        path = os.path.join(self.cache_dir, f"{name}-{key}.npy")
        if os.path.exists(path):
            return np.load(path)
        # Longest first, so each batch pads little.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        t0 = time.time()
        with torch.inference_mode():
            for b in range(0, len(order), self.batch):
                idx = order[b : b + self.batch]
                enc = self.tok([texts[i] for i in idx], padding=True, truncation=True,
                               max_length=self.max_len, return_tensors="pt")
                h = self.model(**enc).last_hidden_state
                m = enc["attention_mask"].unsqueeze(-1).float()
                e = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
                e = torch.nn.functional.normalize(e, dim=-1)
                out[idx] = e.numpy()
                done = b + len(idx)
                if (b // self.batch) % 20 == 0:
                    rate = done / max(time.time() - t0, 1e-6)
                    log(f"  {name}: {done}/{len(texts)} embedded, {rate:.1f}/s, "
                        f"eta {(len(texts) - done) / rate / 60:.1f} min")
        np.save(path, out)
        return out


def fit_head(x, y, n_labels, l2, epochs=300):
    """Multinomial logistic regression, full batch L-BFGS."""
    torch.manual_seed(13)
    X = torch.from_numpy(x)
    Y = torch.from_numpy(y)
    w = torch.zeros(x.shape[1], n_labels, requires_grad=True)
    b = torch.zeros(n_labels, requires_grad=True)
    scale = 20.0  # unit vectors: let the logits spread
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=epochs, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(scale * X @ w + b, Y) + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return lambda z: torch.log_softmax(scale * torch.from_numpy(z) @ w + b, -1).detach().numpy()


def fused_pick(rows, logp, labels_ix, a):
    """For each row, the candidate maximising (1-a) log p_edge + a log p_head
    over the edge's top-k (the head renormalised over those k)."""
    picks = []
    for r, lp in zip(rows, logp):
        cands = r["candidates"]
        le = np.array([math.log(max(c["probability"], 1e-12)) for c in cands])
        lh = np.array([lp[labels_ix[c["label"]]] if c["label"] in labels_ix else -30.0 for c in cands])
        lh = lh - np.logaddexp.reduce(lh)
        picks.append(cands[int(np.argmax((1 - a) * le + a * lh))]["label"])
    return picks


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--results", default="out/results")
    ap.add_argument("--max-len", type=int, default=256)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--max-train", type=int, default=0, help="0: all training e-mails")
    ap.add_argument("--cache", default=os.path.expanduser("~/.cache/mailsort/second-opinion"))
    ap.add_argument("sets", nargs="+")
    args = ap.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    emb = Embedder(args.model, args.max_len, args.cache, args.batch)
    for s in args.sets:
        split = {k: read_rows(os.path.join(args.results, f"{s}.cand-{k}.jsonl"))
                 for k in ("train", "dev", "test")}
        if args.max_train and len(split["train"]) > args.max_train:
            rng = np.random.default_rng(13)
            keep = sorted(rng.choice(len(split["train"]), args.max_train, replace=False))
            split["train"] = [split["train"][i] for i in keep]
        labels = sorted({r["label"] for r in split["train"]})
        ix = {l: i for i, l in enumerate(labels)}
        t0 = time.time()
        x = {k: emb.embed([r["text"] for r in v], f"{s}-{k}") for k, v in split.items()}
        embed_s = time.time() - t0
        ytr = np.array([ix[r["label"]] for r in split["train"]])
        # L2 chosen on dev accuracy of the head alone.
        best = None
        for l2 in (1e-5, 1e-4, 1e-3, 1e-2):
            head = fit_head(x["train"], ytr, len(labels), l2)
            lp = head(x["dev"])
            acc = np.mean([labels[int(np.argmax(p))] == r["label"] for p, r in zip(lp, split["dev"])])
            if best is None or acc > best[0]:
                best = (acc, l2, head)
        head_dev_acc, l2, head = best
        lp = {k: head(x[k]) for k in ("dev", "test")}
        fwd = {k: [i for i, r in enumerate(split[k]) if r["forwarded"]] for k in ("dev", "test")}

        def fwd_acc(k, a):
            rows = [split[k][i] for i in fwd[k]]
            picks = fused_pick(rows, lp[k][fwd[k]], ix, a)
            return sum(p == r["label"] for p, r in zip(picks, rows)), len(rows)

        grid = [round(0.1 * i, 1) for i in range(11)]
        dev_scores = {a: fwd_acc("dev", a)[0] for a in grid}
        a_best = max(grid, key=lambda a: (dev_scores[a], -abs(a - 0.5)))
        res = {"set": s, "l2": l2, "head_dev_accuracy": round(float(head_dev_acc), 4),
               "embed_seconds": round(embed_s, 1), "fusion_weight": a_best,
               "dev_forwarded": {"n": len(fwd["dev"]), "edge": dev_scores[0.0],
                                 "head": dev_scores[1.0], "fused": dev_scores[a_best]}}
        test = split["test"]
        edge_right = sum(r["candidates"][0]["label"] == r["label"] for r in test)
        ok_f, n_f = fwd_acc("test", a_best)
        edge_f, _ = fwd_acc("test", 0.0)
        head_f, _ = fwd_acc("test", 1.0)
        head_all = np.mean([labels[int(np.argmax(p))] == r["label"] for p, r in zip(lp["test"], test)])
        res["test"] = {"n": len(test), "forwarded": n_f,
                       "edge_only": round(100 * edge_right / len(test), 2),
                       "end_to_end": round(100 * (edge_right - edge_f + ok_f) / len(test), 2),
                       "gain": round(100 * (ok_f - edge_f) / len(test), 2),
                       "forwarded_edge": edge_f, "forwarded_head": head_f, "forwarded_fused": ok_f,
                       "head_alone_all": round(100 * float(head_all), 2)}
        print(json.dumps(res), flush=True)
        log(json.dumps(res))


if __name__ == "__main__":
    main()
