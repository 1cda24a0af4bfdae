"""A loaded model ready to infill: tokenizer, special tokens and a backend that computes logits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dcoder.config import SpecialTokens
from dcoder.engine.sampler import Backend
from dcoder.engine.tokenizer import Tokenizer

BUILTIN_MODEL = Path(__file__).parent.parent / "weights"  # shipped as package data (dcoder/weights)


@dataclass
class Engine:
    tokenizer: Tokenizer
    tokens: SpecialTokens
    backend: Backend
    shift: bool
    max_context: int
    vocab_size: int
    description: str
    folder: Path | None = None  # where it was loaded from: what a learned policy file is checked against

    @property
    def lead(self) -> int | None:
        """Token put before the document: BOS when declared; a shifted model needs one anyway."""
        if self.tokens.bos is not None:
            return self.tokens.bos
        return self.tokens.eos if self.shift else None
