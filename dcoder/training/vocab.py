"""The built-in model's tokenizer: a byte-level BPE trained on the corpus with ``tokenizers``.

Pre-tokenization decides which characters a token may join. Python's layout is made cheap by
keeping a newline together with the indentation after it (``"\\n        "`` becomes one token
once BPE has seen it often), and by keeping runs of punctuation together (``"):"``, ``"()"``,
``" =="``, triple quotes) while words take at most one leading space. Byte-level encoding after
that makes every string round-trip exactly, tabs, CRLF and non-ASCII included.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

EOS = "<|endoftext|>"
MASK = "<|mask|>"
SPAN_PAD = "<|dlm_pad|>"
EXPAND = "<|expand|>"  # variable-length infilling (DreamOn): a mask that becomes two masks
DELETE = "<|delete|>"  # and a mask that is removed
SPECIAL_TOKENS = (EOS, MASK, SPAN_PAD, EXPAND, DELETE)  # ids 0-4 (expand and delete came last: 0-2 kept)

PIECES = "|".join((
    r"\r?\n[ \t]*",  # line break plus the next line's indentation
    r" ?[^\W\d]\w*",  # identifier or keyword, with at most one leading space
    r" ?\d+",  # number
    r" ?[^\w\s]+",  # punctuation run
    r"[ \t]+",  # other blank runs
    r"\s",  # any other whitespace character
))


def pre_tokenizer():
    from tokenizers import Regex, pre_tokenizers

    return pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PIECES), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])


def train_bpe(texts: Iterable[str], vocab_size: int, out: Path) -> Path:
    """Train on ``texts`` and write ``out`` (a tokenizer.json) with the special tokens first."""
    from tokenizers import Tokenizer, decoders, models, trainers
    from tokenizers.pre_tokenizers import ByteLevel

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizer()
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    out.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(out))
    return out
