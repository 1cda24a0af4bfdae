"""Random checkpoints in Hugging Face layout, for tests and benchmarks (no torch needed).

Weights are drawn layer by layer and written as safetensors shards, so a checkpoint with
billions of parameters can be made without holding it in memory.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dcoder.config import ModelConfig

SPECIAL_TOKENS = ("<|endoftext|>", "<|mask|>", "<|dlm_pad|>")
VARIABLE_LENGTH_TOKENS = ("<|expand|>", "<|delete|>")  # DreamOn's, ids 3 and 4 when asked for


def train_tokenizer(texts: list[str], vocab_size: int, out: Path, variable_length: bool = False) -> Path:
    """A byte-level BPE over ``texts`` with the engine's special tokens (and expand/delete with
    ``variable_length``); writes tokenizer.json."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS + (VARIABLE_LENGTH_TOKENS if variable_length else ())),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    path = out / "tokenizer.json"
    tok.save(str(path))
    return path


def layer_tensors(config: ModelConfig, layer: int, rng: np.random.Generator, dtype) -> dict[str, np.ndarray]:
    h, i = config.hidden_size, config.intermediate_size
    hd, nh, nkv = config.head_dim, config.num_attention_heads, config.num_key_value_heads
    p = f"model.layers.{layer}."

    def w(*shape):
        return (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(dtype)

    return {
        p + "input_layernorm.weight": (1 + w(h) * 5).astype(dtype),
        p + "post_attention_layernorm.weight": (1 + w(h) * 5).astype(dtype),
        p + "self_attn.q_proj.weight": w(nh * hd, h),
        p + "self_attn.q_proj.bias": w(nh * hd),
        p + "self_attn.k_proj.weight": w(nkv * hd, h),
        p + "self_attn.k_proj.bias": w(nkv * hd),
        p + "self_attn.v_proj.weight": w(nkv * hd, h),
        p + "self_attn.v_proj.bias": w(nkv * hd),
        p + "self_attn.o_proj.weight": w(h, nh * hd),
        p + "mlp.gate_proj.weight": w(i, h),
        p + "mlp.up_proj.weight": w(i, h),
        p + "mlp.down_proj.weight": w(h, i),
    }


def write_random_checkpoint(
    out: str | Path,
    config: ModelConfig,
    tokenizer_json: Path,
    seed: int = 0,
    dtype: str = "float32",
    extra_config: dict | None = None,
    sharded: bool = False,
) -> Path:
    """Write config.json, tokenizer.json and random weights (one file, or one shard per layer)."""
    from safetensors.numpy import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    np_dtype = np.dtype(dtype)
    tok_json = json.loads(Path(tokenizer_json).read_text(encoding="utf-8"))
    (out / "tokenizer.json").write_text(json.dumps(tok_json), encoding="utf-8")
    hf = config.to_hf_dict()
    hf["torch_dtype"] = {"float32": "float32", "float16": "float16"}[dtype]
    hf.update(extra_config or {})
    (out / "config.json").write_text(json.dumps(hf, indent=2), encoding="utf-8")

    def w(*shape):
        return (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np_dtype)

    outer = {
        "model.embed_tokens.weight": w(config.vocab_size, config.hidden_size),
        "model.norm.weight": np.ones(config.hidden_size, dtype=np_dtype),
    }
    if not config.tie_word_embeddings:
        outer["lm_head.weight"] = w(config.vocab_size, config.hidden_size)
    if not sharded:
        tensors = dict(outer)
        for layer in range(config.num_hidden_layers):
            tensors.update(layer_tensors(config, layer, rng, np_dtype))
        save_file(tensors, str(out / "model.safetensors"))
        return out
    n = config.num_hidden_layers + 1
    weight_map = {}
    for k in range(n):
        name = f"model-{k + 1:05d}-of-{n:05d}.safetensors"
        tensors = outer if k == config.num_hidden_layers else layer_tensors(config, k, rng, np_dtype)
        save_file(tensors, str(out / name))
        weight_map.update({t: name for t in tensors})
    (out / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}), encoding="utf-8")
    return out
