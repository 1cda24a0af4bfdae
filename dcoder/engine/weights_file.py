"""The weights file of an exported model folder: tensors streamed from a checkpoint's
safetensors shards into one external-data file that all graphs share, and read back out.

Nothing ever holds the whole model: each tensor is memory-mapped, converted and appended on its
own, so a 7B checkpoint exports in a few GB of memory, and no PyTorch is needed.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import numpy as np

from dcoder.engine.checkpoint import Checkpoint
from dcoder.engine.model_config import ModelConfig
from dcoder.errors import DcoderError

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


# ---- the weights file -------------------------------------------------------------------------

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


def checkpoint_shards(cfg: ModelConfig, t: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    """The weights file's tensors (name -> array) under dcoder's checkpoint weight names, one
    shard per layer and one for the rest: the inverse of ``write_weights`` (fp32/fp16 only).
    A KeyError names a tensor the file lacks."""
    return [_outer_tensors(cfg, t)] + [_layer_tensors(cfg, t, i) for i in range(cfg.num_hidden_layers)]


def _outer_tensors(cfg: ModelConfig, t: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {"model.embed_tokens.weight": t["embed"], "model.norm.weight": t["norm"]}
    if not cfg.tie_word_embeddings:
        out["lm_head.weight"] = t["lm_head"].T
    return out


def _layer_tensors(cfg: ModelConfig, t: dict[str, np.ndarray], i: int) -> dict[str, np.ndarray]:
    """Layer i under dcoder's weight names."""
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
