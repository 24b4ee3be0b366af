#!/usr/bin/env python3
"""Build mailsort's ONNX sentence encoders from a Hugging Face BERT checkpoint.

Why a hand-built graph instead of torch.onnx.export: exporting needs PyTorch
(about 3 GB of wheels), and the graph we want differs from a stock export in
ways that matter to tract:

* the attention mask is additive and computed once, which keeps every shape
  analysable with symbolic batch and sequence dimensions;
* mean pooling and L2 normalisation are inside the graph, so every runtime
  (tract native, tract in WebAssembly, ONNX Runtime) returns the same vector;
* the INT8 file is weight-only and per-output-channel: weights are stored as
  int8 with one float scale per channel and dequantised with Cast + Mul.
  Matrices are small enough for tract and ONNX Runtime to fold them to FP32
  at load time. The 30k x 384 word-embedding table is too large for tract to
  fold (its limit is 4 MiB), so it is gathered as int8 first and only the
  gathered rows are dequantised.
* the W8A8 file computes its matmuls in INT8: the same int8 weights, and
  each matmul's input quantised at run time to int8 with one scale per token
  (absmax / 127, symmetric), fed to MatMulInteger (int32 accumulators), then
  scaled back by token scale x channel scale. Per-token scales keep an
  e-mail's vector independent of the others in its batch (a per-tensor scale
  would not) and follow BERT's large per-token range. LayerNorm, softmax,
  GELU and the attention products stay FP32.
* the ORT INT8 file is ONNX Runtime's own dynamic quantisation of the FP32
  graph (`quantize_dynamic`, int8 weights per channel, uint8 activations
  with one scale per tensor, DynamicQuantizeLinear + MatMulInteger): what
  transformers.js ships as `q8` and what ONNX Runtime runs fastest on CPU.
  The native edge's `onnxruntime-int8` engine runs it; tract reads it too,
  slowly.

Usage: prepare_model.py [--cross-encoder] MODEL_DIR OUT_DIR
MODEL_DIR holds config.json, model.safetensors and tokenizer.json.
OUT_DIR receives model_fp32.onnx, model_int8.onnx, model_w8a8.onnx,
model_ort_int8.onnx and tokenizer.json (with
the checkpoint's fixed padding/truncation removed: mailsort pads each batch
to its longest member and truncates at its own token cap).

With --cross-encoder, OUT_DIR receives the reranker instead: a pair scorer
(input_ids, attention_mask, token_type_ids -> logits [batch, 1]) in
BertForSequenceClassification layout, as model_fp32.onnx and model_fp16.onnx
(FP16 weights and arithmetic, FP32 inputs and outputs, for CUDA), checked
against each other with ONNX Runtime. The last line of stdout is JSON:
{"trained": bool, "fp16_max_abs_diff": float}.
"""

import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load_file

OPSET = 13


class GraphBuilder:
    def __init__(self, int8: bool, int8_compute: bool = False):
        self.int8 = int8 or int8_compute
        self.int8_compute = int8_compute
        # Quantised copies of matmul inputs: Q, K and V share theirs.
        self.quantised = {}
        self.nodes = []
        self.inits = []
        self.counter = 0

    def name(self, prefix):
        self.counter += 1
        return f"{prefix}_{self.counter}"

    def const(self, array, prefix="c"):
        n = self.name(prefix)
        self.inits.append(numpy_helper.from_array(np.asarray(array), n))
        return n

    def op(self, op_type, inputs, prefix=None, **attrs):
        out = self.name(prefix or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    @staticmethod
    def quantise_columns(w_out_in):
        """int8 [in, out] and one FP32 scale per output channel."""
        wt = np.ascontiguousarray(w_out_in.T.astype(np.float32))
        scale = np.abs(wt).max(axis=0) / 127.0
        scale[scale == 0] = 1.0
        q = np.clip(np.round(wt / scale), -127, 127).astype(np.int8)
        return q, scale.astype(np.float32)

    def weight(self, w_out_in, prefix):
        """A [in, out] FP32 matrix from a torch Linear weight [out, in]."""
        if not self.int8:
            return self.const(np.ascontiguousarray(w_out_in.T.astype(np.float32)), prefix)
        q, scale = self.quantise_columns(w_out_in)
        qn = self.const(q, prefix + "_q")
        sn = self.const(scale, prefix + "_scale")
        f = self.op("Cast", [qn], to=TensorProto.FLOAT)
        return self.op("Mul", [f, sn], prefix)

    def quantise_rows(self, x):
        """x as int8 with one scale per token (its absmax / 127), and the scales."""
        if x not in self.quantised:
            absmax = self.op("ReduceMax", [self.op("Abs", [x])], axes=[-1], keepdims=1)
            scale = self.op("Max", [self.op("Mul", [absmax, self.const(np.float32(1.0 / 127.0))]), self.const(np.float32(1e-12))])
            q = self.op("Cast", [self.op("Round", [self.op("Div", [x, scale])])], to=TensorProto.INT8)
            self.quantised[x] = (q, scale)
        return self.quantised[x]

    def linear(self, x, w, b, prefix):
        if self.int8_compute:
            wq, w_scale = self.quantise_columns(w)
            xq, x_scale = self.quantise_rows(x)
            acc = self.op("MatMulInteger", [xq, self.const(wq, prefix + "_wq")])
            y = self.op("Mul", [self.op("Cast", [acc], to=TensorProto.FLOAT), x_scale])
            y = self.op("Mul", [y, self.const(w_scale, prefix + "_ws")])
        else:
            y = self.op("MatMul", [x, self.weight(w, prefix + "_w")])
        return self.op("Add", [y, self.const(b.astype(np.float32), prefix + "_b")])

    def layer_norm(self, x, gamma, beta, eps):
        mean = self.op("ReduceMean", [x], axes=[-1], keepdims=1)
        d = self.op("Sub", [x, mean])
        var = self.op("ReduceMean", [self.op("Mul", [d, d])], axes=[-1], keepdims=1)
        denom = self.op("Sqrt", [self.op("Add", [var, self.const(np.float32(eps))])])
        y = self.op("Div", [d, denom])
        y = self.op("Mul", [y, self.const(gamma.astype(np.float32))])
        return self.op("Add", [y, self.const(beta.astype(np.float32))])


def word_embeddings(g: GraphBuilder, table, ids):
    if not g.int8:
        return g.op("Gather", [g.const(table.astype(np.float32), "word_emb"), ids], axis=0)
    scale = np.abs(table).max(axis=1) / 127.0
    scale[scale == 0] = 1.0
    q = np.clip(np.round(table / scale[:, None]), -127, 127).astype(np.int8)
    rows = g.op("Gather", [g.const(q, "word_emb_q"), ids], axis=0)
    row_scale = g.op("Gather", [g.const(scale.astype(np.float32), "word_emb_scale"), ids], axis=0)
    row_scale = g.op("Unsqueeze", [row_scale, g.const(np.array([-1]))])
    return g.op("Mul", [g.op("Cast", [rows], to=TensorProto.FLOAT), row_scale])


def encoder(g: GraphBuilder, weights, config, token_types: bool):
    """The BERT encoder: hidden states [batch, seq, hidden] and the float mask."""
    hidden = config["hidden_size"]
    heads = config["num_attention_heads"]
    head_dim = hidden // heads
    eps = config.get("layer_norm_eps", 1e-12)
    if config.get("hidden_act", "gelu") != "gelu":
        raise SystemExit(f"unsupported hidden_act {config.get('hidden_act')}: only gelu (erf) is built")

    prefix = "bert." if "bert.embeddings.word_embeddings.weight" in weights else ""
    w = lambda k: weights[prefix + k]  # noqa: E731

    ids, mask = "input_ids", "attention_mask"
    x = word_embeddings(g, w("embeddings.word_embeddings.weight"), ids)
    type_table = w("embeddings.token_type_embeddings.weight")
    if token_types:
        pos = w("embeddings.position_embeddings.weight")
        x = g.op("Add", [x, g.op("Gather", [g.const(type_table.astype(np.float32), "type_emb"), "token_type_ids"], axis=0)])
    else:
        # Single sentences: token type is always 0, so its row is folded into
        # the position table.
        pos = w("embeddings.position_embeddings.weight") + type_table[0]
    seq_len = g.op("Slice", [g.op("Shape", [ids]), g.const(np.array([1])), g.const(np.array([2]))])
    pos = g.op("Slice", [g.const(pos.astype(np.float32), "pos_emb"), g.const(np.array([0])), seq_len, g.const(np.array([0]))])
    x = g.op("Add", [x, pos])
    x = g.layer_norm(x, w("embeddings.LayerNorm.weight"), w("embeddings.LayerNorm.bias"), eps)

    mask_f = g.op("Cast", [mask], to=TensorProto.FLOAT)
    # 0 where attended, -10000 where padded, shaped [batch, 1, 1, seq].
    additive = g.op("Mul", [g.op("Sub", [g.const(np.float32(1.0)), mask_f]), g.const(np.float32(-10000.0))])
    additive = g.op("Unsqueeze", [additive, g.const(np.array([1, 2]))])
    split_heads = g.const(np.array([0, 0, heads, head_dim], dtype=np.int64), "split_heads")
    merge_heads = g.const(np.array([0, 0, hidden], dtype=np.int64), "merge_heads")
    inv_sqrt = g.const(np.float32(1.0 / np.sqrt(head_dim)))

    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        q = g.linear(x, w(p + "attention.self.query.weight"), w(p + "attention.self.query.bias"), f"l{i}_q")
        k = g.linear(x, w(p + "attention.self.key.weight"), w(p + "attention.self.key.bias"), f"l{i}_k")
        v = g.linear(x, w(p + "attention.self.value.weight"), w(p + "attention.self.value.bias"), f"l{i}_v")
        q = g.op("Transpose", [g.op("Reshape", [q, split_heads])], perm=[0, 2, 1, 3])
        k = g.op("Transpose", [g.op("Reshape", [k, split_heads])], perm=[0, 2, 3, 1])
        v = g.op("Transpose", [g.op("Reshape", [v, split_heads])], perm=[0, 2, 1, 3])
        scores = g.op("Mul", [g.op("MatMul", [q, k]), inv_sqrt])
        probs = g.op("Softmax", [g.op("Add", [scores, additive])], axis=-1)
        ctx = g.op("Transpose", [g.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
        ctx = g.op("Reshape", [ctx, merge_heads])
        attn = g.linear(ctx, w(p + "attention.output.dense.weight"), w(p + "attention.output.dense.bias"), f"l{i}_o")
        x = g.layer_norm(
            g.op("Add", [attn, x]),
            w(p + "attention.output.LayerNorm.weight"),
            w(p + "attention.output.LayerNorm.bias"),
            eps,
        )
        h = g.linear(x, w(p + "intermediate.dense.weight"), w(p + "intermediate.dense.bias"), f"l{i}_ff1")
        # GELU, erf form (what BERT was trained with).
        erf = g.op("Erf", [g.op("Mul", [h, g.const(np.float32(1.0 / np.sqrt(2.0)))])])
        h = g.op("Mul", [g.op("Mul", [h, g.const(np.float32(0.5))]), g.op("Add", [erf, g.const(np.float32(1.0))])])
        h = g.linear(h, w(p + "output.dense.weight"), w(p + "output.dense.bias"), f"l{i}_ff2")
        x = g.layer_norm(g.op("Add", [h, x]), w(p + "output.LayerNorm.weight"), w(p + "output.LayerNorm.bias"), eps)
    return x, mask_f


def finish(g: GraphBuilder, name, inputs, output, width):
    graph = helper.make_graph(
        g.nodes,
        name,
        [helper.make_tensor_value_info(i, TensorProto.INT64, ["batch", "sequence"]) for i in inputs],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["batch", width])],
        g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="mailsort")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def mean_pool(g: GraphBuilder, x, weights_f):
    """Mean of hidden states x [batch, seq, hidden] under float weights
    [batch, seq], and its L2 norm [batch, 1] (floored at 1e-12)."""
    m = g.op("Unsqueeze", [weights_f, g.const(np.array([-1]))])
    summed = g.op("ReduceSum", [g.op("Mul", [x, m]), g.const(np.array([1]))], keepdims=0)
    count = g.op("Max", [g.op("ReduceSum", [m, g.const(np.array([1]))], keepdims=0), g.const(np.float32(1e-9))])
    pooled = g.op("Div", [summed, count])
    norm = g.op("Sqrt", [g.op("ReduceSum", [g.op("Mul", [pooled, pooled]), g.const(np.array([1]))], keepdims=1)])
    return pooled, g.op("Max", [norm, g.const(np.float32(1e-12))])


def build(weights, config, int8: bool, int8_compute: bool = False) -> onnx.ModelProto:
    """The sentence encoder: mean-pooled, L2-normalised embeddings."""
    g = GraphBuilder(int8, int8_compute)
    x, mask_f = encoder(g, weights, config, token_types=False)
    # Mean pooling over real tokens, then L2 normalisation (sentence-transformers' Normalize).
    pooled, norm = mean_pool(g, x, mask_f)
    g.nodes.append(helper.make_node("Div", [pooled, norm], ["sentence_embedding"]))
    name = "mailsort_minilm_w8a8" if int8_compute else "mailsort_minilm_int8" if int8 else "mailsort_minilm_fp32"
    return finish(g, name, ["input_ids", "attention_mask"], "sentence_embedding", config["hidden_size"])


def classifier_head(weights, config):
    """(pooler W, pooler b, classifier W, classifier b, trained) in torch layout.

    A checkpoint in BertForSequenceClassification layout brings its own
    classifier. A plain sentence-transformers checkpoint has none: then the
    head is a fixed-seed random projection (std 0.02, BERT's initialiser) so
    that the graph, its runtime and the serving path can be exercised before a
    trained reranker exists. Such a model's scores carry no meaning; the
    manifest records `trained: false`.
    """
    prefix = "bert." if "bert.embeddings.word_embeddings.weight" in weights else ""
    hidden = config["hidden_size"]
    pw = weights.get(prefix + "pooler.dense.weight")
    pb = weights.get(prefix + "pooler.dense.bias")
    if pw is None:
        pw, pb = np.eye(hidden, dtype=np.float32), np.zeros(hidden, dtype=np.float32)
    cw, cb = weights.get("classifier.weight"), weights.get("classifier.bias")
    if cw is not None:
        if cw.shape[0] != 1:
            raise SystemExit(f"the classifier has {cw.shape[0]} outputs; a cross-encoder scores with one")
        return pw, pb, cw, cb, True
    rng = np.random.default_rng(20261127)
    cw = rng.normal(0.0, 0.02, size=(1, hidden)).astype(np.float32)
    return pw, pb, cw, np.zeros(1, dtype=np.float32), False


def build_cross_encoder(weights, config):
    """A sequence-pair scorer over `[CLS] e-mail [SEP] label [SEP]`.

    A checkpoint from training/train_reranker.py has a segment-cosine head
    (`pair_head.scale`, `pair_head.bias`): the e-mail's tokens (type 0) and the
    label's (type 1) are mean-pooled from the joint encoding and the logit is
    scale · cos + bias. A BertForSequenceClassification checkpoint uses its
    own head: [CLS] → pooler (dense + tanh) → one logit.
    """
    g = GraphBuilder(int8=False)
    x, mask_f = encoder(g, weights, config, token_types=True)
    if "pair_head.scale" in weights:
        types_f = g.op("Cast", ["token_type_ids"], to=TensorProto.FLOAT)
        label_w = g.op("Mul", [mask_f, types_f])
        email_w = g.op("Sub", [mask_f, label_w])
        a, na = mean_pool(g, x, email_w)
        b, nb = mean_pool(g, x, label_w)
        dot = g.op("ReduceSum", [g.op("Mul", [a, b]), g.const(np.array([1]))], keepdims=1)
        cos = g.op("Div", [dot, g.op("Mul", [na, nb])])
        scale = weights["pair_head.scale"].astype(np.float32).reshape(1)
        bias = weights["pair_head.bias"].astype(np.float32).reshape(1)
        logits = g.op("Add", [g.op("Mul", [cos, g.const(scale)]), g.const(bias)])
        trained = True
    else:
        pw, pb, cw, cb, trained = classifier_head(weights, config)
        cls = g.op("Gather", [x, g.const(np.array(0, dtype=np.int64))], axis=1)
        pooled = g.op("Tanh", [g.linear(cls, pw, pb, "pooler")])
        logits = g.linear(pooled, cw, cb, "classifier")
    g.nodes.append(helper.make_node("Identity", [logits], ["logits"]))
    return finish(g, "mailsort_cross_encoder", ["input_ids", "attention_mask", "token_type_ids"], "logits", 1), trained


def check_fp16(fp32_path, fp16_path, tokenizer_path):
    """FP16 against FP32 on fixed pairs, with ONNX Runtime on CPU."""
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(tokenizer_path)
    pairs = [
        ("My card has not arrived yet, it has been two weeks.", "card arrival: the customer waits for a card"),
        ("My card has not arrived yet, it has been two weeks.", "lost or stolen card"),
        ("VPN disconnects every hour on Windows 11.", "IT support: network and VPN problems"),
        ("VPN disconnects every hour on Windows 11.", "billing: invoices and payments"),
        ("The invoice for April was charged twice.", "billing: invoices and payments"),
    ]
    enc = tok.encode_batch(pairs)
    width = max(len(e.ids) for e in enc)
    feed = {
        "input_ids": np.array([e.ids + [0] * (width - len(e.ids)) for e in enc], dtype=np.int64),
        "attention_mask": np.array([[1] * len(e.ids) + [0] * (width - len(e.ids)) for e in enc], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids + [0] * (width - len(e.ids)) for e in enc], dtype=np.int64),
    }
    run = lambda p: ort.InferenceSession(p, providers=["CPUExecutionProvider"]).run(["logits"], feed)[0][:, 0]  # noqa: E731
    a, b = run(fp32_path), run(fp16_path)
    diff = float(np.abs(a - b).max())
    same_order = bool((np.argsort(-a) == np.argsort(-b)).all())
    if diff > 1e-2 or not same_order:
        raise SystemExit(f"FP16 differs from FP32: max |diff| {diff}, same order {same_order}")
    # FP32 logits on the check pairs: a remote engine serving this
    # checkpoint must give them back (the backend checks at start-up).
    probe = [{"email": e, "label": l, "logit": float(z)} for (e, l), z in zip(pairs, a)]
    return diff, probe


def prepare_cross_encoder(src, out, weights, config):
    from onnxruntime.transformers import float16

    model, trained = build_cross_encoder(weights, config)
    fp32 = os.path.join(out, "model_fp32.onnx")
    fp16 = os.path.join(out, "model_fp16.onnx")
    onnx.save(model, fp32)
    half = float16.convert_float_to_float16(model, keep_io_types=True)
    onnx.save(half, fp16)
    for p in (fp32, fp16):
        print(f"wrote {os.path.basename(p)} ({os.path.getsize(p) / 1e6:.1f} MB)", file=sys.stderr)
    tokenizer = os.path.join(out, "tokenizer.json")
    with open(tokenizer, "w", encoding="utf-8") as f:
        json.dump(dynamic_tokenizer(os.path.join(src, "tokenizer.json")), f, ensure_ascii=False)
    diff, probe = check_fp16(fp32, fp16, tokenizer)
    # The caller (mailsort models reranker) reads this line.
    print(json.dumps({"trained": trained, "fp16_max_abs_diff": diff, "probe": probe}))


def dynamic_tokenizer(path):
    tok = json.load(open(path, encoding="utf-8"))
    tok["padding"] = None
    tok["truncation"] = None
    return tok


def main():
    args = sys.argv[1:]
    cross = bool(args) and args[0] == "--cross-encoder"
    if cross:
        args = args[1:]
    if len(args) != 2:
        raise SystemExit(__doc__)
    src, out = args
    for f in ("config.json", "model.safetensors", "tokenizer.json"):
        if not os.path.isfile(os.path.join(src, f)):
            raise SystemExit(f"{src} is not a Hugging Face model folder: {f} is missing")
    config = json.load(open(os.path.join(src, "config.json")))
    if config.get("model_type") != "bert":
        raise SystemExit(f"model_type {config.get('model_type')!r} is not supported: mailsort builds BERT encoders")
    # Checkpoints stored in FP16 (the committed generic reranker) are upcast:
    # every graph is built in FP32 and the FP16 file converted from it.
    weights = {k: (v.astype(np.float32) if v.dtype == np.float16 else v) for k, v in load_file(os.path.join(src, "model.safetensors")).items()}
    os.makedirs(out, exist_ok=True)
    if cross:
        prepare_cross_encoder(src, out, weights, config)
        return
    for int8, int8_compute, name in ((False, False, "model_fp32.onnx"), (True, False, "model_int8.onnx"), (True, True, "model_w8a8.onnx")):
        model = build(weights, config, int8, int8_compute)
        onnx.save(model, os.path.join(out, name))
        print(f"wrote {name} ({os.path.getsize(os.path.join(out, name)) / 1e6:.1f} MB)", file=sys.stderr)
    # Imported here: only the sentence encoder needs it, and only this step.
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(os.path.join(out, "model_fp32.onnx"), os.path.join(out, "model_ort_int8.onnx"), weight_type=QuantType.QInt8, per_channel=True)
    print(f"wrote model_ort_int8.onnx ({os.path.getsize(os.path.join(out, 'model_ort_int8.onnx')) / 1e6:.1f} MB)", file=sys.stderr)
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(dynamic_tokenizer(os.path.join(src, "tokenizer.json")), f, ensure_ascii=False)


if __name__ == "__main__":
    main()
