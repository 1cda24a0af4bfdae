"""The checkpoint's tokenizer (``tokenizer.json`` through the ``tokenizers`` library)."""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path

import numpy as np

from dcoder.errors import DcoderError

# Names checkpoints use for the tokens the engine needs, in order of preference.
MASK_NAMES = ("<|mask|>", "<mask>", "[MASK]")
SPAN_PAD_NAMES = ("<|dlm_pad|>", "<|pad|>", "<pad>")
EOS_NAMES = ("<|endoftext|>", "</s>", "<|end_of_text|>")
EXPAND_NAMES = ("<|expand|>",)  # DreamOn's variable-length tokens
DELETE_NAMES = ("<|delete|>",)
_SYMBOL = re.compile(r"(?:[^\w\s\x00-\x1f\x7f\ufffd]|[ \t\r\n])+")  # punctuation and blanks


class Tokenizer:
    def __init__(self, path: Path):
        from tokenizers import Tokenizer as HFTokenizer

        try:
            self._tok = HFTokenizer.from_file(str(path))
        except FileNotFoundError:
            raise DcoderError(f"tokenizer.json not found: {path}") from None
        except Exception as exc:  # the Rust library raises plain Exceptions for bad files
            raise DcoderError(f"tokenizer.json could not be read: {path} ({str(exc).splitlines()[0][:120]})") from None
        self.path = path

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` with no special tokens added; decode() gives the text back."""
        return self._tok.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self._tok.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: list[int]) -> str:
        return self._tok.decode(list(ids), skip_special_tokens=False)

    @cached_property
    def texts(self) -> tuple[str, ...]:
        """Each token's text on its own (special tokens as empty strings)."""
        return tuple(self._tok.decode_batch([[i] for i in range(self.vocab_size)], skip_special_tokens=True))

    @cached_property
    def symbol_ids(self) -> np.ndarray:
        """Tokens made only of punctuation and blanks (brackets, colons, quotes, a line break with
        its indentation): the structure a fill may need when the model prefers words."""
        return np.array([i for i, t in enumerate(self.texts) if _SYMBOL.fullmatch(t)], dtype=np.int64)

    def token_id(self, name: str) -> int | None:
        return self._tok.token_to_id(name)

    def first_token_id(self, names: tuple[str, ...]) -> int | None:
        for name in names:
            tid = self.token_id(name)
            if tid is not None:
                return tid
        return None

    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size(with_added_tokens=True)
