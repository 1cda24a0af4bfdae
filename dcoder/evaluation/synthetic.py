"""Random checkpoints in Hugging Face layout, for tests and benchmarks (no torch needed).

Weights are drawn layer by layer and written as safetensors shards, so a checkpoint with
billions of parameters can be made without holding it in memory.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dcoder.engine.model_config import ModelConfig

SPECIAL_TOKENS = ("<|endoftext|>", "<|mask|>", "<|dlm_pad|>")
VARIABLE_LENGTH_TOKENS = ("<|expand|>", "<|delete|>")  # DreamOn's, ids 3 and 4 when asked for


def train_tokenizer(texts: list[str], vocab_size: int, out: Path, special_tokens: tuple[str, ...] = SPECIAL_TOKENS) -> Path:
    """A byte-level BPE over ``texts`` with ``special_tokens`` first; writes tokenizer.json."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    path = out / "tokenizer.json"
    tok.save(str(path))
    return path


def random_tensors(shapes: dict[str, tuple[int, ...]], rng: np.random.Generator, dtype) -> dict[str, np.ndarray]:
    """N(0, 0.02) weights; norms around 1 (spread, so that a wrong norm shows in the logits)."""
    def w(shape):
        return rng.standard_normal(shape, dtype=np.float32) * 0.02

    return {k: ((1 + w(v) * 5) if k.endswith("norm.weight") else w(v)).astype(dtype) for k, v in shapes.items()}


def write_random_checkpoint(
    out: str | Path,
    config: ModelConfig,
    tokenizer_json: Path,
    seed: int = 0,
    dtype: str = "float32",
    extra_config: dict | None = None,
    sharded: bool = False,
) -> Path:
    """Write config.json, tokenizer.json and random weights (one file, or one shard per layer), in
    the file layout of the config's family (its config keys and weight names)."""
    from safetensors.numpy import save_file

    from dcoder.engine.families import family_of, weight_shapes

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
    family = family_of(hf)
    shapes = weight_shapes(config)
    groups: dict[int, dict] = {}  # layer -> its shapes; the other weights go last
    for name, shape in shapes.items():
        layer = int(name.split(".")[2]) if name.startswith("model.layers.") else config.num_hidden_layers
        groups.setdefault(layer, {})[name] = shape
    if not sharded:
        groups = {0: shapes}
    weight_map = {}
    for k, (_, group) in enumerate(sorted(groups.items())):
        tensors = {family.checkpoint_name(n): t for n, t in random_tensors(group, rng, np_dtype).items()}
        name = f"model-{k + 1:05d}-of-{len(groups):05d}.safetensors" if sharded else "model.safetensors"
        save_file(tensors, str(out / name))
        weight_map.update(dict.fromkeys(tensors, name))
    if sharded:
        index = {"metadata": {}, "weight_map": weight_map}
        (out / "model.safetensors.index.json").write_text(json.dumps(index), encoding="utf-8")
    return out
