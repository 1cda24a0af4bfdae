"""Which spans of a training file to hide: syntax regions mixed with random lines and characters.

Syntax-aligned spans teach the model the edits users ask for (a function body, a condition, the
arguments of a call); random line and character spans keep it good at arbitrary cursors and
selections. A kind of region is drawn first and then one region of that kind, so the many
small regions (parameters, strings) do not crowd out the few large ones (function bodies).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dcoder import syntax


@dataclass(frozen=True)
class SpanMix:
    syntax: float = 0.5  # share of spans taken from syntax regions (when the language has them)
    line: float = 0.3  # share of whole-line runs; the rest are random character spans
    max_chars: int = 2000  # longest span; longer regions are not drawn
    max_lines: int = 8
    max_span_chars: int = 64  # longest random character span


def _syntax_span(regions: list[syntax.Region], rng: np.random.Generator) -> tuple[int, int]:
    kinds = sorted({r.name for r in regions})
    kind = kinds[rng.integers(len(kinds))]
    of_kind = [r for r in regions if r.name == kind]
    r = of_kind[rng.integers(len(of_kind))]
    return r.start, r.end


def _line_span(text: str, starts: list[int], rng: np.random.Generator, mix: SpanMix) -> tuple[int, int]:
    first = int(rng.integers(len(starts)))
    last = min(len(starts) - 1, first + int(rng.integers(mix.max_lines)))
    end = starts[last + 1] - 1 if last + 1 < len(starts) else len(text)
    if end > starts[first] and text[end - 1] == "\r":
        end -= 1
    return starts[first], max(end, starts[first])


def _char_span(text: str, rng: np.random.Generator, mix: SpanMix) -> tuple[int, int]:
    start = int(rng.integers(len(text) + 1))
    return start, min(len(text), start + int(rng.integers(1, mix.max_span_chars + 1)))


def sample_spans(text: str, rng: np.random.Generator, language: str | None = "python", count: int = 1,
                 mix: SpanMix = SpanMix()) -> list[tuple[int, int]]:
    """Up to ``count`` non-overlapping character spans [start, end) of ``text``, sorted.

    ``language`` is a grammar name (``syntax.language_of``); without a parser or a query file
    for it, the syntax share goes to line and character spans. Fewer than ``count`` spans come
    back only when the file is too small to hold them apart.
    """
    doc = syntax.parse(text, language)
    regions = [r for r in doc.regions() if r.end - r.start <= mix.max_chars] if doc is not None else []
    p_syntax = mix.syntax if regions else 0.0
    p_line = mix.line / (1 - mix.syntax) * (1 - p_syntax) if mix.syntax < 1 else 1 - p_syntax
    starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
    chosen: list[tuple[int, int]] = []
    for _ in range(count * 8):
        if len(chosen) == count:
            break
        u = rng.random()
        if u < p_syntax:
            span = _syntax_span(regions, rng)
        elif u < p_syntax + p_line:
            span = _line_span(text, starts, rng, mix)
        else:
            span = _char_span(text, rng, mix)
        if all(span[1] <= a or span[0] >= b for a, b in chosen) and span not in chosen:
            chosen.append(span)
    return sorted(chosen)
