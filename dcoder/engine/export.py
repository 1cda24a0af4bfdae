"""Export a checkpoint to a self-contained ONNX model folder (``dcoder export``).

The graphs are written directly with ``onnx.helper`` from the checkpoint's config, and the
weights are streamed tensor by tensor from the safetensors files into one external-data file
that all graphs share. Nothing ever holds the whole model, so a 7B checkpoint exports in a few
GB of memory, and exporting needs no PyTorch. ``tests/test_export.py`` checks every graph
against the PyTorch model in ``dcoder/model.py``, which stays the reference.

Graphs (B batch, T tokens, W span tokens, R logit rows, C cached tokens):
- ``full``: ids, positions (B, T) -> logits (B, T, V);
- ``encode``: ids, positions (B, T), rows (R,), context (C,) -> log-probabilities of the
  ``rows`` (B, R, V) and, per layer, keys (after rotary) and values of the ``context`` tokens (B, kv, C, d).
  Every token attends to every other, so the context may be prefix and suffix together;
- ``step``: ids, positions (B, W) of the span, the cached keys/values and rows (R,) of the span
  -> log-probabilities of those rows (B, R, V): the sampler asks only for positions still
  masked, which saves most of the vocabulary projection in the later steps.
``encode`` and ``step`` end in LogSoftmax because onnxruntime's is several times faster than
numpy's exp over a large vocabulary, and the sampler runs it at every step.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dcoder import __version__
from dcoder.engine.checkpoint import Checkpoint, open_checkpoint
from dcoder.engine.families import family_of, parameter_count
from dcoder.engine.manifest import FORMAT, GRAPHS, MANIFEST_NAME, WEIGHTS_NAME, load_manifest, sha256_file
from dcoder.engine.model_config import ModelConfig
from dcoder.errors import DcoderError

OPSET = 23  # Attention and RotaryEmbedding (GQA, past keys/values) are standard ops from 23
DTYPES = ("fp32", "fp16", "int8")
ALIGN = 4096  # page-aligned tensors let onnxruntime memory-map the weights file


# ---- streaming safetensors reader ----------------------------------------------------------

_ST_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "F64": np.float64}


class SafetensorsFile:
    """Tensors of one .safetensors file, memory-mapped and read one at a time.

    numpy has no bfloat16, so bf16 tensors (how most real checkpoints ship) are widened to
    float32 from their raw bits.
    """

    def __init__(self, path: Path):
        self.path = path
        try:
            with path.open("rb") as fh:
                (n,) = struct.unpack("<Q", fh.read(8))
                header = json.loads(fh.read(n))
        except (OSError, struct.error, ValueError) as exc:
            raise DcoderError(f"corrupt safetensors file {path.name}: {exc.__class__.__name__}") from None
        header.pop("__metadata__", None)
        self.header = header
        self.base = 8 + n
        self.size = path.stat().st_size

    def keys(self):
        return self.header.keys()

    def get(self, name: str) -> np.ndarray:
        meta = self.header[name]
        kind = _ST_DTYPES.get(meta["dtype"])
        if kind is None:
            raise DcoderError(f"weight {name} has unsupported dtype {meta['dtype']}")
        start, end = meta["data_offsets"]
        if self.base + end > self.size:
            raise DcoderError(f"safetensors file {self.path.name} is truncated")
        count = int(np.prod(meta["shape"], dtype=np.int64))
        raw = np.memmap(self.path, dtype=kind, mode="r", offset=self.base + start, shape=(count,))
        if meta["dtype"] == "BF16":
            raw = (raw.astype(np.uint32) << 16).view(np.float32)
        return np.asarray(raw).reshape(meta["shape"])


class WeightSource:
    """Name -> tensor lookup over all of a checkpoint's shards, by dcoder's (Qwen2) weight names."""

    def __init__(self, ckpt: Checkpoint):
        self.family = ckpt.family
        self.where: dict[str, SafetensorsFile] = {}
        for f in ckpt.weight_files:
            st = SafetensorsFile(f)
            for k in st.keys():
                self.where[k] = st

    def __call__(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        name = self.family.checkpoint_name(name)
        if name not in self.where:
            raise DcoderError(f"checkpoint lacks weight {name}")
        t = self.where[name].get(name)
        if tuple(t.shape) != shape:
            raise DcoderError(f"weight {name} has shape {tuple(t.shape)}, config expects {shape}")
        return t.astype(np.float32)


# ---- weights file ---------------------------------------------------------------------------

class WeightsWriter:
    """Appends tensors to the shared external-data file and remembers where each one lies."""

    def __init__(self, path: Path):
        self.path = path
        self.fh = path.open("wb")
        self.hash = hashlib.sha256()
        self.entries: dict[str, tuple[int, tuple[int, ...], int, int]] = {}  # name -> onnx type, shape, offset, length

    def add(self, name: str, array: np.ndarray) -> str:
        from onnx import helper

        array = np.ascontiguousarray(array)
        pad = b"\0" * (-self.fh.tell() % ALIGN)
        data = array.tobytes()
        self.fh.write(pad)
        offset = self.fh.tell()
        self.fh.write(data)
        self.hash.update(pad)
        self.hash.update(data)
        elem = helper.np_dtype_to_tensor_dtype(array.dtype)
        self.entries[name] = (elem, tuple(array.shape), offset, array.nbytes)
        return name

    def close(self) -> None:
        self.fh.close()

    def initializer(self, name: str):
        from onnx import TensorProto

        elem, shape, offset, length = self.entries[name]
        t = TensorProto(name=name, data_type=elem, dims=shape, data_location=TensorProto.EXTERNAL)
        for key, value in (("location", self.path.name), ("offset", str(offset)), ("length", str(length))):
            entry = t.external_data.add()
            entry.key, entry.value = key, value
        return t


def quantize_columns(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-output-column int8 weights and their float scales, for (K, N) matrices."""
    scale = np.abs(w).max(axis=0) / 127.0
    scale = np.where(scale == 0, 1.0, scale).astype(np.float32)
    q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
    return q, scale


def write_weights(cfg: ModelConfig, source: WeightSource, writer: WeightsWriter, dtype: str) -> None:
    """Stream every weight into the file, layer by layer, in the layout the graphs use.

    Projection matrices are stored transposed (in, out) for MatMul; q/k/v and gate/up are
    concatenated so each takes one matrix product. int8 keeps norms, biases and the
    embedding in float32 and quantizes every matrix product's weight.
    """
    store = np.float16 if dtype == "fp16" else np.float32
    h, inter, v = cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size
    q_out, kv_out = cfg.num_attention_heads * cfg.head_dim, cfg.num_key_value_heads * cfg.head_dim

    def vector(name: str, array: np.ndarray) -> None:
        writer.add(name, array.astype(store))

    def matrix(name: str, array: np.ndarray) -> None:
        if dtype == "int8":
            q, scale = quantize_columns(array)
            writer.add(name + ".q", q)
            writer.add(name + ".scale", scale)
        else:
            writer.add(name, array.astype(store))

    head = source("model.embed_tokens.weight", (v, h))
    vector("embed", head)
    if not cfg.tie_word_embeddings:
        head = None  # free the embedding before reading the head
        head = source("lm_head.weight", (v, h))
    matrix("lm_head", head.T)
    del head
    vector("norm", source("model.norm.weight", (h,)))
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        vector(f"l{i}.ln1", source(p + "input_layernorm.weight", (h,)))
        vector(f"l{i}.ln2", source(p + "post_attention_layernorm.weight", (h,)))
        qkv = [source(p + f"self_attn.{n}_proj.weight", (o, h)) for n, o in (("q", q_out), ("k", kv_out), ("v", kv_out))]
        matrix(f"l{i}.qkv", np.concatenate(qkv, axis=0).T)
        del qkv
        if cfg.attention_bias:
            bias = [source(p + f"self_attn.{n}_proj.bias", (o,)) for n, o in (("q", q_out), ("k", kv_out), ("v", kv_out))]
            vector(f"l{i}.qkv_bias", np.concatenate(bias))
        if cfg.qk_norm:
            vector(f"l{i}.q_norm", source(p + "self_attn.q_norm.weight", (cfg.head_dim,)))
            vector(f"l{i}.k_norm", source(p + "self_attn.k_norm.weight", (cfg.head_dim,)))
        matrix(f"l{i}.o", source(p + "self_attn.o_proj.weight", (h, q_out)).T)
        gate_up = [source(p + f"mlp.{n}_proj.weight", (inter, h)) for n in ("gate", "up")]
        matrix(f"l{i}.gate_up", np.concatenate(gate_up, axis=0).T)
        del gate_up
        matrix(f"l{i}.down", source(p + "mlp.down_proj.weight", (h, inter)).T)


# ---- graph construction ---------------------------------------------------------------------

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
              keep: str | None, rows: str | None = None) -> tuple[str, tuple[str, str] | None]:
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
        y = g.op("Attention", q, k, v, "", *past, outputs=3, q_num_heads=nh, kv_num_heads=nkv)[0]
    else:
        y = g.op("MultiHeadAttention", q, repeat_kv(g, s, k), repeat_kv(g, s, v), domain="com.microsoft", num_heads=nh)
    return linear(g, s, y, f"l{i}.o"), cached


def mlp(g: Graph, s: Shapes, i: int, x: str) -> str:
    inter = s.cfg.intermediate_size
    gate, up = g.op("Split", linear(g, s, x, f"l{i}.gate_up"), g.const([inter, inter]), axis=-1, outputs=2)
    return linear(g, s, g.op("Mul", g.op("Mul", gate, g.op("Sigmoid", gate)), up), f"l{i}.down")


def transformer(g: Graph, s: Shapes, ids: str, positions: str, rows: str | None = None,
                past: list[tuple[str, str]] | None = None, keep: str | None = None, normalize: bool = False):
    """Logits (float32; log-probabilities if ``normalize``) for ``ids`` (only the ``rows`` if
    given) and the per-layer cache for ``keep``."""
    from onnx import TensorProto

    x = g.op("Gather", g.w("embed"), ids, axis=0)
    cos, sin = rotary_tables(g, s, positions)
    cache = []
    last = s.cfg.num_hidden_layers - 1
    for i in range(s.cfg.num_hidden_layers):
        # the last layer's output is read at ``rows`` only: its other queries and MLP rows are
        # skipped (1/6 of the built-in model's encode pass)
        only = rows if i == last else None
        a, kv = attention(g, s, i, rms_norm(g, s, x, f"l{i}.ln1"), cos, sin, past[i] if past else None, keep, only)
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
    return {"name": name, "dtype": {1: "float32", 7: "int64", 10: "float16"}[elem], "shape": shape}


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
        inputs.append(io("rows", TensorProto.INT64, ["rows"]))
        past = [(f"past_key_{i}", f"past_value_{i}") for i in layers]
        logits, _ = transformer(g, s, "ids", "positions", rows="rows", past=past, normalize=True)
        outputs = [io("logprobs", TensorProto.FLOAT, ["batch", "rows", s.cfg.vocab_size])]
        names = [logits]
    elem_of = {"float32": TensorProto.FLOAT, "float16": TensorProto.FLOAT16, "int64": TensorProto.INT64}
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


# ---- the command ----------------------------------------------------------------------------

def _import_onnx():
    try:
        import onnx
    except ImportError:
        raise DcoderError("exporting needs the onnx package: pip install 'dcoder-diffusion[export]'") from None
    return onnx


def _fresh(out: str | Path) -> Path:
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DcoderError(f"output folder {out} exists and is not empty")
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def _new_folder(out: str | Path) -> tuple[Path, Path]:
    """``out`` (absent or empty) and a temporary folder beside it, renamed to ``out`` when complete."""
    out = _fresh(out)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    tmp.chmod(0o755)
    return out, tmp


def _finish(tmp: Path, out: Path) -> Path:
    if out.exists():
        out.rmdir()
    tmp.rename(out)
    return out


def export(checkpoint: str | Path, out: str | Path, dtype: str = "fp32", progress=None,
           source: dict | None = None) -> Path:
    """Write the model folder; it appears complete under ``out`` or not at all.

    ``checkpoint`` may also be an fp32/fp16 model folder: its checkpoint is unpacked beside
    ``out`` and exported again (another dtype, or this dcoder's graphs), keeping its source record.
    ``source`` records where a checkpoint came from (a hub commit) instead of hashing its files.
    """
    if dtype not in DTYPES:
        raise DcoderError(f"unknown --dtype {dtype!r} (choose from {', '.join(DTYPES)})")
    say = progress or (lambda msg: None)
    source_path = Path(checkpoint)
    if (source_path / MANIFEST_NAME).is_file():
        with tempfile.TemporaryDirectory(prefix=".unpacked.", dir=_fresh(out).parent) as work:
            say(f"unpacking {source_path}")
            unpacked = unpack(source_path, Path(work) / "checkpoint")
            return _export(unpacked, out, dtype, say, load_manifest(source_path, any_version=True).source)
    return _export(source_path, out, dtype, say, source)


def _export(checkpoint: Path, out: str | Path, dtype: str, say, source: dict | None) -> Path:
    onnx = _import_onnx()
    ckpt = open_checkpoint(checkpoint)
    out, tmp = _new_folder(out)
    try:
        if source is None:
            say(f"hashing {ckpt.path}")
            source = {"path": str(ckpt.path.resolve()), "sha256": ckpt.content_hash()}
        say("streaming weights")
        writer = WeightsWriter(tmp / WEIGHTS_NAME)
        try:
            write_weights(ckpt.config, WeightSource(ckpt), writer, dtype)
        finally:
            writer.close()
        shapes = Shapes(ckpt.config, dtype)
        graphs = {}
        for kind in ("full", "encode", "step"):
            say(f"writing {kind}.onnx")
            model, described = build_graph(kind, shapes, writer)
            path = tmp / f"{kind}.onnx"
            onnx.save_model(model, str(path))
            onnx.checker.check_model(str(path))
            graphs[kind] = {"file": path.name, "sha256": sha256_file(path), **described}
        shutil.copyfile(ckpt.tokenizer_path, tmp / "tokenizer.json")
        manifest = _manifest(ckpt, dtype, graphs, writer, source)
        (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        return _finish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _manifest(ckpt: Checkpoint, dtype: str, graphs: dict, weights: WeightsWriter, source: dict) -> dict:
    cfg, tokens = ckpt.config, ckpt.tokens
    return {
        "format": FORMAT,
        "dcoder_version": __version__,
        "dtype": dtype,
        "opset": OPSET,
        "graphs": graphs,
        "external_data": [{"file": WEIGHTS_NAME, "bytes": weights.path.stat().st_size,
                           "sha256": weights.hash.hexdigest()}],
        "tokenizer": "tokenizer.json",
        "special_tokens": {"mask": tokens.mask, "span_pad": tokens.span_pad, "eos": tokens.eos, "bos": tokens.bos,
                           "expand": tokens.expand, "delete": tokens.delete},
        "shift_logits": cfg.shift_logits,
        "max_context": cfg.max_position_embeddings,
        "model": {"model_type": cfg.model_type, "vocab_size": cfg.vocab_size, "hidden_size": cfg.hidden_size,
                  "num_hidden_layers": cfg.num_hidden_layers, "num_attention_heads": cfg.num_attention_heads,
                  "num_key_value_heads": cfg.num_key_value_heads, "head_dim": cfg.head_dim,
                  "parameters": parameter_count(cfg)},
        "source": source,
        # the checkpoint's own config.json, so that ``unpack`` can give the checkpoint back (with
        # the head as read: a config may call it tied and ship it, see open_checkpoint)
        "config": {**ckpt.raw_config, ckpt.family.config_key("tie_word_embeddings"): cfg.tie_word_embeddings},
        **_training_record(ckpt.path),
    }


def _training_record(folder: Path) -> dict:
    """What ``dcoder train`` recorded with the checkpoint (corpus size and hash, step, recipe)."""
    path = folder / "training.json"
    if not path.is_file():
        return {}
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        keys = ("step", "tokens_seen", "metrics", "corpus", "train_config")
        return {"training": {k: record[k] for k in keys if k in record}}
    except (OSError, ValueError, TypeError):
        raise DcoderError(f"{path} is not a readable training record") from None


# ---- back to a checkpoint -------------------------------------------------------------------

def unpack(folder: str | Path, out: str | Path) -> Path:
    """Write the checkpoint an fp32 or fp16 model folder was exported from: config.json,
    tokenizer.json, one safetensors shard per layer (and one for the rest) and, when the folder
    records it, training.json. Exact: exporting only transposes and concatenates the weights
    (int8 folders cannot be unpacked: quantizing lost them). It appears complete or not at all.
    """
    from safetensors.numpy import save_file

    onnx = _import_onnx()
    # loading verifies the weights' checksum: the checkpoint handed back is the one exported, to the bit
    manifest = load_manifest(folder, any_version=True)
    if manifest.dtype not in ("fp32", "fp16"):
        raise DcoderError(f"{manifest.folder} holds {manifest.dtype} weights: only fp32 and fp16 model folders unpack")
    raw = manifest.raw.get("config")
    if not isinstance(raw, dict):
        raise DcoderError(f"{manifest.folder} does not record its checkpoint's config: export it from the checkpoint")
    cfg = ModelConfig.from_hf_dict(raw)
    tensors = _exported_tensors(onnx, manifest)
    try:
        shards = [_outer_tensors(cfg, tensors)] + [_layer_tensors(cfg, tensors, i) for i in range(cfg.num_hidden_layers)]
    except KeyError as exc:
        raise DcoderError(f"{manifest.folder} lacks weight {exc.args[0]}: not a folder dcoder export wrote") from None
    out, tmp = _new_folder(out)
    try:
        weight_map = {}
        family = family_of(raw)
        for k, shard in enumerate(shards):
            name = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
            shard = {family.checkpoint_name(n): np.ascontiguousarray(t) for n, t in shard.items()}
            save_file(shard, str(tmp / name), metadata={"format": "pt"})
            weight_map.update(dict.fromkeys(shard, name))
        index = {"metadata": {}, "weight_map": weight_map}
        (tmp / "model.safetensors.index.json").write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")
        tokens = manifest.tokens
        config = {**raw, "mask_token_id": tokens.mask, "span_pad_token_id": tokens.span_pad, "eos_token_id": tokens.eos,
                  **{f"{k}_token_id": v for k, v in (("expand", tokens.expand), ("delete", tokens.delete)) if v is not None}}
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        shutil.copyfile(manifest.folder / manifest.raw["tokenizer"], tmp / "tokenizer.json")
        if isinstance(manifest.raw.get("training"), dict):
            (tmp / "training.json").write_text(json.dumps(manifest.raw["training"], indent=2) + "\n", encoding="utf-8")
        return _finish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _exported_tensors(onnx, manifest) -> dict[str, np.ndarray]:
    """Every external-data initializer of the folder's graphs, memory-mapped (name -> array)."""
    from onnx import helper

    files = {d["file"]: np.memmap(manifest.folder / d["file"], mode="r") for d in manifest.raw["external_data"]}
    out = {}
    for kind in GRAPHS:
        graph = onnx.load(str(manifest.graph_path(kind)), load_external_data=False).graph
        for t in graph.initializer:
            if t.data_location != onnx.TensorProto.EXTERNAL:
                continue
            ext = {e.key: e.value for e in t.external_data}
            dtype = np.dtype(helper.tensor_dtype_to_np_dtype(t.data_type))
            count = int(np.prod(t.dims, dtype=np.int64))
            try:
                if int(ext.get("length", count * dtype.itemsize)) != count * dtype.itemsize:
                    raise ValueError
                data = files[ext["location"]]  # load_manifest checked every location is one of these
                out[t.name] = np.frombuffer(data, dtype, count, int(ext.get("offset", 0))).reshape(tuple(t.dims))
            except (KeyError, ValueError):
                raise DcoderError(f"weight {t.name} of {kind}.onnx does not lie within the weights file") from None
    return out


def _outer_tensors(cfg: ModelConfig, t: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {"model.embed_tokens.weight": t["embed"], "model.norm.weight": t["norm"]}
    if not cfg.tie_word_embeddings:
        out["lm_head.weight"] = t["lm_head"].T
    return out


def _layer_tensors(cfg: ModelConfig, t: dict[str, np.ndarray], i: int) -> dict[str, np.ndarray]:
    """Layer i under dcoder's weight names: the inverse of ``write_weights``."""
    q_out, kv_out = cfg.num_attention_heads * cfg.head_dim, cfg.num_key_value_heads * cfg.head_dim
    cuts = [q_out, q_out + kv_out]
    p = f"model.layers.{i}."
    q, k, v = np.split(t[f"l{i}.qkv"].T, cuts)
    gate, up = np.split(t[f"l{i}.gate_up"].T, [cfg.intermediate_size])
    out = {
        p + "input_layernorm.weight": t[f"l{i}.ln1"], p + "post_attention_layernorm.weight": t[f"l{i}.ln2"],
        p + "self_attn.q_proj.weight": q, p + "self_attn.k_proj.weight": k, p + "self_attn.v_proj.weight": v,
        p + "self_attn.o_proj.weight": t[f"l{i}.o"].T,
        p + "mlp.gate_proj.weight": gate, p + "mlp.up_proj.weight": up, p + "mlp.down_proj.weight": t[f"l{i}.down"].T,
    }
    if cfg.attention_bias:
        qb, kb, vb = np.split(t[f"l{i}.qkv_bias"], cuts)
        out |= {p + "self_attn.q_proj.bias": qb, p + "self_attn.k_proj.bias": kb, p + "self_attn.v_proj.bias": vb}
    if cfg.qk_norm:
        out |= {p + "self_attn.q_norm.weight": t[f"l{i}.q_norm"], p + "self_attn.k_norm.weight": t[f"l{i}.k_norm"]}
    return out
