"""Load a model by folder or hub name: onnxruntime for an exported folder, PyTorch for a checkpoint."""

from __future__ import annotations

from pathlib import Path

from dcoder.engine.engine import Engine
from dcoder.engine.hub import resolve
from dcoder.engine.runtime import RuntimeOptions, load_exported
from dcoder.errors import DcoderError


def load_engine(path: str | Path, device: str | None = None, dtype: str = "fp32", cache_refresh: int = 0) -> Engine:
    """Load an exported folder (manifest.json) with onnxruntime, or a raw checkpoint with PyTorch;
    ``path`` may also be a pulled hub model's name, ORG/NAME[@REVISION].

    ``device``: auto (default), cpu, cuda, or tensorrt (exported folders only). ``dtype``
    applies to raw checkpoints (an exported folder has its own); ``cache_refresh`` to
    exported folders (see dcoder.engine.runtime.RuntimeOptions).
    """
    folder = resolve(str(path))
    if (folder / "manifest.json").exists():
        return load_exported(folder, RuntimeOptions(provider=device or "auto", cache_refresh=cache_refresh))
    if device == "tensorrt":
        raise DcoderError("provider tensorrt needs an exported model folder (dcoder export)")
    device = "cpu" if device in (None, "auto") else device
    from dcoder.engine.checkpoint import open_checkpoint
    from dcoder.engine.torch_backend import TorchBackend, load_model, require_torch

    require_torch()
    ckpt = open_checkpoint(folder)
    model = load_model(ckpt, dtype)
    cfg = ckpt.config
    return Engine(
        tokenizer=ckpt.tokenizer(),
        tokens=ckpt.tokens,
        backend=TorchBackend(model, cfg.shift_logits, device),
        shift=cfg.shift_logits,
        max_context=cfg.max_position_embeddings,
        vocab_size=cfg.vocab_size,
        description=f"{folder.name} ({cfg.model_type}, torch/{device})",
        folder=folder,
    )
