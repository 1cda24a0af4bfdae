"""A loaded model ready to infill: tokenizer, special tokens and a backend that computes logits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dcoder.config import SpecialTokens
from dcoder.errors import DcoderError
from dcoder.sampler import Backend
from dcoder.tokenizer import Tokenizer

BUILTIN_MODEL = Path(__file__).parent / "weights"  # shipped as package data


@dataclass
class Engine:
    tokenizer: Tokenizer
    tokens: SpecialTokens
    backend: Backend
    shift: bool
    max_context: int
    vocab_size: int
    description: str

    @property
    def lead(self) -> int | None:
        """Token put before the document: BOS when declared; a shifted model needs one anyway."""
        if self.tokens.bos is not None:
            return self.tokens.bos
        return self.tokens.eos if self.shift else None


def load_engine(path: str | Path, device: str | None = None, dtype: str = "fp32", cache_refresh: int = 0) -> Engine:
    """Load an exported folder (manifest.json) with onnxruntime, or a raw checkpoint with PyTorch;
    ``path`` may also be a pulled hub model's name, ORG/NAME[@REVISION].

    ``device``: auto (default), cpu, cuda, or tensorrt (exported folders only). ``dtype``
    applies to raw checkpoints (an exported folder has its own); ``cache_refresh`` to
    exported folders (see dcoder.runtime.RuntimeOptions).
    """
    from dcoder.hub import resolve

    folder = resolve(str(path))
    if (folder / "manifest.json").exists():
        from dcoder.runtime import RuntimeOptions, load_exported

        return load_exported(folder, RuntimeOptions(provider=device or "auto", cache_refresh=cache_refresh))
    if device == "tensorrt":
        raise DcoderError("provider tensorrt needs an exported model folder (dcoder export)")
    device = "cpu" if device in (None, "auto") else device
    from dcoder.checkpoint import open_checkpoint
    from dcoder.torch_backend import TorchBackend, load_model, require_torch

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
    )
