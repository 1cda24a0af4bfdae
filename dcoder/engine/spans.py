"""Turn a document plus character ranges into one token sequence with mask tokens, and back.

Each stretch of text between spans is tokenized on its own, so a token never straddles a
span edge: the fill can neither swallow nor duplicate the characters beside it. A span's true
length is unknown, so it gets a budget of mask tokens and the model ends it early by emitting
the span-padding token, which is stripped when the span is decoded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from dcoder.config import SpecialTokens
from dcoder.engine.tokenizer import Tokenizer
from dcoder.errors import DcoderError

HOLE = "<|mask|>"
BUDGET_BUCKETS = (32, 64, 128, 256, 512)
# Characters kept per token of context before tokenizing, so a 10 MB file is never tokenized whole.
CHARS_PER_TOKEN_BOUND = 8
MIN_CONTEXT_TOKENS = 16
# Share of the context a preamble (code from other files) may take when the file needs the rest.
PREAMBLE_SHARE = 0.25


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    budget: int
    fill: tuple[int, ...] | None = None  # tokens placed in the slot instead of masks (refine scoring)


@dataclass(frozen=True)
class Layout:
    ids: np.ndarray  # (T,) int64
    spans: tuple[Span, ...]
    slots: tuple[tuple[int, int], ...]  # token index range [a, b) of each span


def find_holes(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(re.escape(HOLE), text)]


def bucket(n: int) -> int:
    for b in BUDGET_BUCKETS:
        if n <= b:
            return b
    return BUDGET_BUCKETS[-1]


# Fewest mask tokens a syntax region of each kind gets, whatever its current size (see grammars/README.md).
REGION_FLOOR = {
    "function.outer": 128, "function.inner": 128, "class.outer": 256, "class.inner": 256,
    "block": 64, "statement": 32, "docstring": 64, "comprehension": 32, "lambda": 32,
}


def default_budget(text: str, start: int, end: int, tokenizer: Tokenizer, kind: str | None = None) -> int:
    """Mask tokens to reserve when the caller gives no length.

    A selection gets room to grow by a quarter; a cursor with code after it on the line gets a
    single-line budget; an empty line gets a few lines; after a block opener, a whole block.
    A syntax region (``kind`` names it) gets half again its current size, and never less than
    its kind's floor: a two-line function body may well be rewritten as ten.
    """
    if kind is not None:
        current = len(tokenizer.encode(text[start:end])) if end > start else 0
        return bucket(max(int(current * 1.5) + 8, REGION_FLOOR.get(kind, 0)))
    if end > start:
        return bucket(int(len(tokenizer.encode(text[start:end])) * 1.25) + 8)
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", start)
    before = text[line_start:start]
    after = text[start:line_end if line_end >= 0 else len(text)]
    if after.strip():
        return 32
    prev_line_end = line_start - 1
    prev = text[text.rfind("\n", 0, max(prev_line_end, 0)) + 1:max(prev_line_end, 0)]
    if before.rstrip().endswith(":") or (not before.strip() and prev.rstrip().endswith(":")):
        return 128
    return 64


def _allocate(lengths: list[int], available: int) -> list[int]:
    """Split ``available`` tokens among segments: short ones keep everything, the rest share equally."""
    quota = [0] * len(lengths)
    pending = sorted(range(len(lengths)), key=lambda i: lengths[i])
    left = available
    while pending:
        share = left // len(pending)
        i = pending.pop(0)
        quota[i] = min(lengths[i], share)
        left -= quota[i]
    return quota


def _trim_chars(segments: list[str], limit: int) -> list[str]:
    """Cut each segment to ``limit`` characters nearest the spans before tokenizing."""
    out = []
    last = len(segments) - 1
    for i, seg in enumerate(segments):
        if len(seg) <= limit:
            out.append(seg)
        elif i == 0:
            out.append(seg[-limit:])
        elif i == last:
            out.append(seg[:limit])
        else:
            out.append(seg[: limit // 2] + seg[-(limit // 2):])
    return out


def _keep(tokens: list[int], quota: int, index: int, last: int) -> list[int]:
    if len(tokens) <= quota:
        return tokens
    if quota == 0:
        return []
    if index == 0:
        return tokens[-quota:]
    if index == last:
        return tokens[:quota]
    head = quota // 2
    return tokens[:head] + tokens[len(tokens) - (quota - head):]


def check_spans(text: str, spans: list[Span]) -> None:
    prev_end = 0
    for s in sorted(spans, key=lambda s: s.start):
        if not 0 <= s.start <= s.end <= len(text):
            raise DcoderError(f"range {s.start}-{s.end} is outside the document (length {len(text)})")
        if s.start < prev_end:
            raise DcoderError("ranges overlap")
        if s.budget < 1 and s.fill is None:
            raise DcoderError("span budget must be at least 1 token")
        prev_end = s.end


def build_layout(
    text: str,
    spans: list[Span],
    tokenizer: Tokenizer,
    tokens: SpecialTokens,
    max_len: int,
    lead: int | None,
    preamble: str = "",
) -> Layout:
    """One token sequence: [lead] preamble ctx0 <span0> ctx1 <span1> ... ctxN, within ``max_len``
    tokens. The ``preamble`` (similar code from other files) takes what the file leaves of the
    context, and at least ``PREAMBLE_SHARE`` of it; it loses its end when cut."""
    spans = sorted(spans, key=lambda s: s.start)
    check_spans(text, spans)
    bounds = [0] + [p for s in spans for p in (s.start, s.end)] + [len(text)]
    segments = [text[bounds[2 * i]:bounds[2 * i + 1]] for i in range(len(spans) + 1)]
    slot_lens = [len(s.fill) if s.fill is not None else s.budget for s in spans]
    available = max_len - sum(slot_lens) - (lead is not None)
    if available < MIN_CONTEXT_TOKENS:
        raise DcoderError(
            f"spans need {sum(slot_lens)} tokens, too many for the model's context of {max_len}; "
            "use fewer or smaller spans (--max-tokens)"
        )
    segments = _trim_chars(segments, available * CHARS_PER_TOKEN_BOUND)
    seg_tokens = tokenizer.encode_batch(segments)
    before: list[int] = [] if lead is None else [lead]
    if preamble:
        pre = tokenizer.encode(preamble[:available * CHARS_PER_TOKEN_BOUND])
        room = max(int(available * PREAMBLE_SHARE), available - sum(len(t) for t in seg_tokens))
        before += pre[:room]
        available -= len(before) - (lead is not None)
    quota = _allocate([len(t) for t in seg_tokens], available)
    last = len(seg_tokens) - 1
    seg_tokens = [_keep(t, q, i, last) for i, (t, q) in enumerate(zip(seg_tokens, quota))]

    ids = before
    slots = []
    for i, span in enumerate(spans):
        ids.extend(seg_tokens[i])
        a = len(ids)
        ids.extend(span.fill if span.fill is not None else [tokens.mask] * span.budget)
        slots.append((a, len(ids)))
    ids.extend(seg_tokens[-1])
    return Layout(np.array(ids, dtype=np.int64), tuple(spans), tuple(slots))


# Fixed lengths tried when the model's own choice of length does not parse, as fractions of the
# slot, shortest first (a 32-token cursor budget: 2, 4, 8, 16 tokens): weak models often end a
# span at once, and most holes that break a file's syntax are a few tokens long.
_VARIANT_SHIFTS = (4, 3, 2, 1)


def variant_length(size: int, k: int) -> int:
    """The k-th (k >= 1) fixed length tried for a slot of ``size`` mask tokens."""
    return max(1, size >> _VARIANT_SHIFTS[(k - 1) % len(_VARIANT_SHIFTS)])


def fix_length(row: np.ndarray, slot: tuple[int, int], length: int, tokens: SpecialTokens) -> np.ndarray:
    """``row`` with ``slot`` masked again as exactly ``length`` tokens followed by span padding."""
    out = row.copy()
    a, b = slot
    out[a:a + length] = tokens.mask
    out[a + length:b] = tokens.span_pad
    return out


def span_text(row: np.ndarray, slot: tuple[int, int], tokenizer: Tokenizer, tokens: SpecialTokens) -> str:
    """The finished text of one span: padding and end-of-text tokens removed."""
    stripped = tokens.stripped
    return tokenizer.decode([int(t) for t in row[slot[0]:slot[1]] if int(t) not in stripped])


def preview_text(row: np.ndarray, slot: tuple[int, int], tokenizer: Tokenizer, tokens: SpecialTokens, mask_char: str = "\u2591") -> str:
    """A partially resolved span: runs of known tokens decoded, each mask drawn as ``mask_char``."""
    parts: list[str] = []
    run: list[int] = []
    for t in (int(t) for t in row[slot[0]:slot[1]]):
        if t == tokens.mask:
            if run:
                parts.append(tokenizer.decode(run))
                run = []
            parts.append(mask_char)
        elif t not in tokens.stripped:
            run.append(t)
    if run:
        parts.append(tokenizer.decode(run))
    return "".join(parts)
