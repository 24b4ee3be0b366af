#!/usr/bin/env python3
"""Pairs per second of the reranker on ONNX Runtime CPU, by model-call size.

Isolates the model from the server: the same forwarded e-mails
(out/bench/backend/rerank-requests.jsonl, written by bench-backend.sh) are
scored one e-mail per call, then length-sorted and cut into calls of at most
1,024 / 4,096 / 16,384 padded tokens, as the backend's batcher does; then
fixed shapes (64 and 168 tokens, 1 to 60 pairs). Two rounds each.

Usage: .venv/bin/python scripts/bench/ort-batch-sizes.py [THREADS]
"""

import json
import sys
import time

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
tok = Tokenizer.from_file("models/reranker/tokenizer.json")
tok.enable_truncation(256)
so = ort.SessionOptions()
so.intra_op_num_threads = threads
session = ort.InferenceSession("models/reranker/model_fp32.onnx", so, providers=["CPUExecutionProvider"])


def run(batch):
    width = max(len(e.ids) for e in batch)
    ids = np.zeros((len(batch), width), np.int64)
    mask, types = np.zeros_like(ids), np.zeros_like(ids)
    for i, e in enumerate(batch):
        ids[i, : len(e.ids)], mask[i, : len(e.ids)], types[i, : len(e.ids)] = e.ids, 1, e.type_ids
    session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})


requests = [json.loads(line) for line in open("out/bench/backend/rerank-requests.jsonl")][:60]
jobs = [tok.encode_batch([(r["emails"][0]["text"], c["label"]) for c in r["emails"][0]["candidates"]]) for r in requests]
pairs = [p for job in jobs for p in job]
print(f"{len(pairs)} pairs, {np.mean([len(p.ids) for p in pairs]):.0f} tokens on average, {threads} threads")
for round_ in (1, 2):
    start = time.time()
    for job in jobs:
        run(job)
    line = [f"one e-mail per call {len(pairs) / (time.time() - start):.0f}"]
    for budget in (1024, 4096, 16384):
        chunks, current = [], []
        for p in sorted(pairs, key=lambda p: len(p.ids)):
            if current and len(p.ids) * (len(current) + 1) > budget:
                chunks.append(current)
                current = []
            current.append(p)
        chunks.append(current)
        start = time.time()
        for c in chunks:
            run(c)
        line.append(f"{budget} tokens {len(pairs) / (time.time() - start):.0f}")
    print(f"round {round_}, pairs/s: " + ", ".join(line))

for length in (64, 168):
    rates = []
    for batch in (1, 5, 10, 20, 60):
        dummy = type("E", (), {"ids": [101] + [1996] * (length - 2) + [102], "type_ids": [0] * length})
        run([dummy] * batch)
        n = max(1, 60 // batch)
        start = time.time()
        for _ in range(n):
            run([dummy] * batch)
        rates.append(f"{batch}: {batch * n / (time.time() - start):.0f}")
    print(f"{length} tokens, pairs/s by pairs per call: " + ", ".join(rates))
