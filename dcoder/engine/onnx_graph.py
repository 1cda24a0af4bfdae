"""The ONNX graphs of an exported model folder, written node by node with ``onnx.helper`` from
the checkpoint's config; their weights are initializers in the shared weights file
(``weights_file.py``). ``tests/test_export.py`` checks every graph against the PyTorch model in
``dcoder/engine/model.py``, which stays the reference.

Graphs (B batch, T tokens, W span tokens, R logit rows, C cached tokens):
- ``full``: ids, positions (B, T) -> logits (B, T, V);
- ``encode``: ids, positions (B, T), rows (R,), context (C,) -> log-probabilities of the
  ``rows`` (B, R, V) and, per layer, keys (after rotary) and values of the ``context`` tokens (B, kv, C, d).
  Every token attends to every other, so the context may be prefix and suffix together;
- ``step``: ids, positions (B, W) of the span, the cached keys/values, rows (R,) of the span and
  mask (B, C + W), which cached and span tokens each row attends to, -> log-probabilities of those
  rows (B, R, V): the sampler asks only for positions still masked, which saves most of the
  vocabulary projection in the later steps. The mask lets spans of different requests, with
  contexts and spans of different lengths, share one padded pass (``merge.py``).
``encode`` and ``step`` end in LogSoftmax because onnxruntime's is several times faster than
numpy's exp over a large vocabulary, and the sampler runs it at every step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dcoder import __version__
from dcoder.engine.model_config import ModelConfig
from dcoder.engine.weights_file import WeightsWriter

OPSET = 23  # Attention and RotaryEmbedding (GQA, past keys/values) are standard ops from 23


class Graph:
    """A list of ONNX nodes with fresh output names; ``op`` returns the node's output(s)."""

    def __init__(self, weights: WeightsWriter):
        self.nodes = []
        self.consts = []
        self.used: set[str] = set()
        self.weights = weights
        self.n = 0

    def op(self, kind: str, *inputs: str, outputs: int = 1, domain: str = "", **attrs):
        from onnx import helper

        self.n += 1
        names = [f"{kind.lower()}_{self.n}" + (f"_{j}" if outputs > 1 else "") for j in range(outputs)]
        self.nodes.append(helper.make_node(kind, list(inputs), names, name=f"n{self.n}", domain=domain, **attrs))
        return names[0] if outputs == 1 else names

    def const(self, value, dtype=np.int64) -> str:
        from onnx import numpy_helper

        self.n += 1
        name = f"const_{self.n}"
        self.consts.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def w(self, name: str) -> str:
        self.used.add(name)
        return name


@dataclass(frozen=True)
class Shapes:
    cfg: ModelConfig
    dtype: str

    @property
    def elem(self) -> int:
        from onnx import TensorProto

        return TensorProto.FLOAT16 if self.dtype == "fp16" else TensorProto.FLOAT

    @property
    def groups(self) -> int:
        return self.cfg.num_attention_heads // self.cfg.num_key_value_heads


def rms_norm(g: Graph, s: Shapes, x: str, weight: str) -> str:
    """Normalise in float32 then scale in the model's dtype, as the PyTorch model does."""
    from onnx import TensorProto

    xf = g.op("Cast", x, to=TensorProto.FLOAT) if s.dtype == "fp16" else x
    var = g.op("ReduceMean", g.op("Pow", xf, g.const(2.0, np.float32)), g.const([-1]), keepdims=1)
    y = g.op("Div", xf, g.op("Sqrt", g.op("Add", var, g.const(s.cfg.rms_norm_eps, np.float32))))
    if s.dtype == "fp16":
        y = g.op("Cast", y, to=TensorProto.FLOAT16)
    return g.op("Mul", y, g.w(weight))


def linear(g: Graph, s: Shapes, x: str, weight: str, bias: str | None = None) -> str:
    """x @ W (+ b). int8: each token's activations are quantized with their own scale.

    Per-token scales (rather than DynamicQuantizeLinear's one scale per tensor) keep one
    large-valued token from costing every other token its precision: on the test models this
    cuts the logit error of int8 from about 13% to about 1%. Activations go in as uint8 around a
    zero point of 128 (the same values): uint8 x int8 is the product onnxruntime's CPU kernels
    make fast on AVX2; int8 x int8 made the built-in model's full pass 857 ms against 356 ms.
    """
    from onnx import TensorProto

    if s.dtype == "int8":
        scale = g.op("Div", g.op("ReduceMax", g.op("Abs", x), g.const([-1]), keepdims=1), g.const(127.0, np.float32))
        scale = g.op("Max", scale, g.const(1e-12, np.float32))
        levels = g.op("Add", g.op("Round", g.op("Div", x, scale)), g.const(128.0, np.float32))  # 1..255
        xq = g.op("Cast", levels, to=TensorProto.UINT8)
        acc = g.op("Cast", g.op("MatMulInteger", xq, g.w(weight + ".q"), g.const(128, np.uint8)), to=TensorProto.FLOAT)
        y = g.op("Mul", g.op("Mul", acc, scale), g.w(weight + ".scale"))
    else:
        y = g.op("MatMul", x, g.w(weight))
    return g.op("Add", y, g.w(bias)) if bias else y


def rotary_tables(g: Graph, s: Shapes, positions: str) -> tuple[str, str]:
    """cos/sin (B, T, head_dim / 2) of the true positions, computed in float32 as in model.rotary."""
    from onnx import TensorProto

    hd = s.cfg.head_dim
    inv_freq = (1.0 / (s.cfg.rope_theta ** (np.arange(0, hd, 2, dtype=np.float32) / hd))).astype(np.float32)
    angles = g.op("Mul", g.op("Unsqueeze", g.op("Cast", positions, to=TensorProto.FLOAT), g.const([2])),
                  g.const(inv_freq, np.float32))
    cos, sin = g.op("Cos", angles), g.op("Sin", angles)
    if s.dtype == "fp16":
        cos, sin = g.op("Cast", cos, to=TensorProto.FLOAT16), g.op("Cast", sin, to=TensorProto.FLOAT16)
    return cos, sin


def heads(g: Graph, x: str, n: int, hd: int) -> str:
    """(B, T, n*hd) -> (B, n, T, hd), the layout of cached keys/values."""
    return g.op("Transpose", g.op("Reshape", x, g.const([0, 0, n, hd])), perm=[0, 2, 1, 3])


def head_norm(g: Graph, s: Shapes, x: str, n: int, weight: str) -> str:
    """RMSNorm of each head's slice of (B, T, n*hd): Qwen3's query/key norm."""
    hd = s.cfg.head_dim
    y = rms_norm(g, s, g.op("Reshape", x, g.const([0, 0, n, hd])), weight)
    return g.op("Reshape", y, g.const([0, 0, n * hd]))


def repeat_kv(g: Graph, s: Shapes, x: str) -> str:
    """(B, T, kv*hd) -> (B, T, heads*hd), each key/value head repeated for its group of query heads."""
    if s.groups == 1:
        return x
    nkv, hd = s.cfg.num_key_value_heads, s.cfg.head_dim
    grouped = g.op("Expand", g.op("Reshape", x, g.const([0, 0, nkv, 1, hd])), g.const([1, 1, 1, s.groups, 1]))
    return g.op("Reshape", grouped, g.const([0, 0, nkv * s.groups * hd]))


def attention(g: Graph, s: Shapes, i: int, x: str, cos: str, sin: str, past: tuple[str, str] | None,
              keep: str | None, rows: str | None = None, mask: str = "") -> tuple[str, tuple[str, str] | None]:
    """Bidirectional attention of layer i; returns its output (at ``rows`` only, if given: every
    token still gives its key and value) and the keys/values to cache.

    One fused op per layer instead of a dozen MatMul/Softmax/Transpose nodes: each node costs a
    dispatch, which dominates a 32-token step on a small model. With a cache (``step``) it is the
    standard Attention op (grouped-query, past keys/values); without one (``full``, ``encode``)
    onnxruntime's MultiHeadAttention, whose CPU kernel ran the 2,080-token full pass of the
    built-in model 6% faster (keys/values repeated per query head first: it has no groups).
    """
    cfg = s.cfg
    nh, nkv, hd = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
    qkv = linear(g, s, x, f"l{i}.qkv", f"l{i}.qkv_bias" if cfg.attention_bias else None)
    q, k, v = g.op("Split", qkv, g.const([nh * hd, nkv * hd, nkv * hd]), axis=-1, outputs=3)
    if cfg.qk_norm:
        q, k = head_norm(g, s, q, nh, f"l{i}.q_norm"), head_norm(g, s, k, nkv, f"l{i}.k_norm")
    q = g.op("RotaryEmbedding", q, cos, sin, num_heads=nh)
    k = g.op("RotaryEmbedding", k, cos, sin, num_heads=nkv)
    if rows is not None:
        q = g.op("Gather", q, rows, axis=1)
    cached = None
    if keep is not None:
        cached = (g.op("Gather", heads(g, k, nkv, hd), keep, axis=2), g.op("Gather", heads(g, v, nkv, hd), keep, axis=2))
    if past is not None:
        if mask:  # onnxruntime's kernel wants the mask at every query: (B, 1, 1, C + W) -> (B, 1, Q, C + W)
            queries = g.op("Shape", q, start=1, end=2)
            mask = g.op("Expand", mask, g.op("Concat", g.const([1, 1]), queries, g.const([1]), axis=0))
        y = g.op("Attention", q, k, v, mask, *past, outputs=3, q_num_heads=nh, kv_num_heads=nkv)[0]
    else:
        y = g.op("MultiHeadAttention", q, repeat_kv(g, s, k), repeat_kv(g, s, v), domain="com.microsoft", num_heads=nh)
    return linear(g, s, y, f"l{i}.o"), cached


def mlp(g: Graph, s: Shapes, i: int, x: str) -> str:
    inter = s.cfg.intermediate_size
    gate, up = g.op("Split", linear(g, s, x, f"l{i}.gate_up"), g.const([inter, inter]), axis=-1, outputs=2)
    return linear(g, s, g.op("Mul", g.op("Mul", gate, g.op("Sigmoid", gate)), up), f"l{i}.down")


def transformer(g: Graph, s: Shapes, ids: str, positions: str, rows: str | None = None,
                past: list[tuple[str, str]] | None = None, keep: str | None = None, normalize: bool = False,
                mask: str | None = None):
    """Logits (float32; log-probabilities if ``normalize``) for ``ids`` (only the ``rows`` if
    given) and the per-layer cache for ``keep``; ``mask`` (B, C + W) limits what each row attends to."""
    from onnx import TensorProto

    x = g.op("Gather", g.w("embed"), ids, axis=0)
    cos, sin = rotary_tables(g, s, positions)
    attend = g.op("Unsqueeze", mask, g.const([1, 2])) if mask else ""  # (B, 1, 1, C + W): every head, every query
    cache = []
    last = s.cfg.num_hidden_layers - 1
    for i in range(s.cfg.num_hidden_layers):
        # the last layer's output is read at ``rows`` only: its other queries and MLP rows are
        # skipped (1/6 of the built-in model's encode pass)
        only = rows if i == last else None
        a, kv = attention(g, s, i, rms_norm(g, s, x, f"l{i}.ln1"), cos, sin, past[i] if past else None, keep, only,
                          attend)
        if only is not None:
            x = g.op("Gather", x, only, axis=1)
        x = g.op("Add", x, a)
        x = g.op("Add", x, mlp(g, s, i, rms_norm(g, s, x, f"l{i}.ln2")))
        cache.append(kv)
    x = rms_norm(g, s, x, "norm")
    logits = linear(g, s, x, "lm_head")
    if s.dtype == "fp16":
        logits = g.op("Cast", logits, to=TensorProto.FLOAT)
    if normalize:
        logits = g.op("LogSoftmax", logits, axis=-1)
    return logits, cache


def io(name: str, elem: int, shape: list) -> dict:
    return {"name": name, "dtype": {1: "float32", 7: "int64", 9: "bool", 10: "float16"}[elem], "shape": shape}


def build_graph(kind: str, s: Shapes, weights: WeightsWriter):
    """The ModelProto of graph ``kind`` and its manifest description."""
    from onnx import TensorProto, helper

    g = Graph(weights)
    seq = "span" if kind == "step" else "seq"
    inputs = [io("ids", TensorProto.INT64, ["batch", seq]), io("positions", TensorProto.INT64, ["batch", seq])]
    nkv, hd = s.cfg.num_key_value_heads, s.cfg.head_dim
    cache_shape = ["batch", nkv, "context", hd]
    layers = range(s.cfg.num_hidden_layers)
    if kind == "full":
        logits, _ = transformer(g, s, "ids", "positions")
        outputs = [io("logits", TensorProto.FLOAT, ["batch", seq, s.cfg.vocab_size])]
        names = [logits]
    elif kind == "encode":
        inputs += [io("rows", TensorProto.INT64, ["rows"]), io("context", TensorProto.INT64, ["context"])]
        logits, cache = transformer(g, s, "ids", "positions", rows="rows", keep="context", normalize=True)
        outputs = [io("logprobs", TensorProto.FLOAT, ["batch", "rows", s.cfg.vocab_size])]
        names = [logits]
        for i in layers:
            outputs += [io(f"key_{i}", s.elem, cache_shape), io(f"value_{i}", s.elem, cache_shape)]
            names += list(cache[i])
    else:
        for i in layers:
            inputs += [io(f"past_key_{i}", s.elem, cache_shape), io(f"past_value_{i}", s.elem, cache_shape)]
        inputs += [io("rows", TensorProto.INT64, ["rows"]), io("mask", TensorProto.BOOL, ["batch", "total"])]
        past = [(f"past_key_{i}", f"past_value_{i}") for i in layers]
        logits, _ = transformer(g, s, "ids", "positions", rows="rows", past=past, normalize=True, mask="mask")
        outputs = [io("logprobs", TensorProto.FLOAT, ["batch", "rows", s.cfg.vocab_size])]
        names = [logits]
    elem_of = {"float32": TensorProto.FLOAT, "float16": TensorProto.FLOAT16, "int64": TensorProto.INT64,
               "bool": TensorProto.BOOL}
    # rename the graph's final values to the public output names
    g.nodes += [helper.make_node("Identity", [n], [o["name"]]) for n, o in zip(names, outputs)]
    graph = helper.make_graph(
        g.nodes, f"dcoder_{kind}",
        [helper.make_tensor_value_info(i["name"], elem_of[i["dtype"]], i["shape"]) for i in inputs],
        [helper.make_tensor_value_info(o["name"], elem_of[o["dtype"]], o["shape"]) for o in outputs],
        initializer=g.consts + [weights.initializer(n) for n in sorted(g.used)],
    )
    opsets = [helper.make_opsetid("", OPSET), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="dcoder",
                              producer_version=__version__)
    model.ir_version = 10
    return model, {"inputs": inputs, "outputs": outputs}
