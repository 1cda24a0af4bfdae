"""A fill spliced into the document and parsed: the checker, its candidates and their rank.

A candidate is a denoised row with its fills fitted to the document and the problems the file
has after them; the checker makes candidates, in the file or an excerpt of it (see
``validity.excerpt``). Both the choice among the model's fills (``validity``) and the
constrained search (``search``) judge fills this way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from dcoder import syntax
from dcoder.engine.engine import Engine
from dcoder.engine.spans import Layout, span_text
from dcoder.syntax.indent import fit

Stop = Callable[[], bool]  # True once the request must end


@dataclass(frozen=True)
class Candidate:
    row: np.ndarray
    logprobs: np.ndarray
    score: float
    raw: tuple[str, ...]  # decoded fills
    fills: tuple[str, ...]  # fitted to the document (line endings, indentation)
    problems: tuple[syntax.Problem, ...]  # introduced by the fills: these make it invalid
    remaining: tuple[syntax.Problem, ...]  # every problem of the file after the fills
    hides: bool  # a fill opens a comment that swallows code after it (see Document.comments_past)

    @property
    def left(self) -> int:
        """How much of the file is in error after the fills (+1 per problem): a hole's damage may
        reach past the lines it touches (a cut call's arguments), where it counts as the file's own."""
        return sum(_size(p) + 1 for p in self.remaining)


def rank(cand: Candidate) -> tuple[int, int, float]:
    """Smaller is better: introduced problems, then text left in error, then score."""
    return len(cand.problems), cand.left, -cand.score


def raw_fills(engine: Engine, layout: Layout, row: np.ndarray) -> tuple[str, ...]:
    return tuple(span_text(row, slot, engine.tokenizer, engine.tokens) for slot in layout.slots)


class Checker:
    """Candidates spliced into ``text`` (the file, or an excerpt of it: see ``validity.excerpt``) and parsed.
    ``artifacts`` are problems of an excerpt that the file does not have: no candidate is blamed for them."""

    def __init__(self, engine: Engine, text: str, layout: Layout, doc: syntax.Document,
                 stop: Stop = lambda: False, artifacts: tuple[syntax.Problem, ...] = ()):
        self.engine, self.text, self.layout, self.doc = engine, text, layout, doc
        self.stop, self.artifacts = stop, list(artifacts)

    def candidate(self, row: np.ndarray, logprobs: np.ndarray, score: float) -> Candidate:
        raw = raw_fills(self.engine, self.layout, row)
        fills = tuple(fit(self.text, s.start, s.end, f) for s, f in zip(self.layout.spans, raw))
        edits = [(s.start, s.end, f) for s, f in zip(self.layout.spans, fills)]
        after = self.doc.edits(edits)
        problems = tuple(syntax.introduced_problems(self.doc, after, edits))
        hides = any(after.comments_past(a, b) for a, b in self.ranges(fills))
        ignored = syntax.carried_problems(self.text, self.artifacts, edits) if self.artifacts else set()
        remaining = tuple(p for p in after.problems() if (p.kind, p.start, p.end) not in ignored)
        return Candidate(row, logprobs, float(score), raw, fills, problems, remaining, hides)

    def ranges(self, fills: tuple[str, ...]) -> list[tuple[int, int]]:
        """Where each fill lies in the new document."""
        out, shift = [], 0
        for span, fill in zip(self.layout.spans, fills):
            out.append((span.start + shift, span.start + shift + len(fill)))
            shift += len(fill) - (span.end - span.start)
        return out


def _size(p: syntax.Problem) -> int:
    return p.context[1] - p.context[0]


def broken_span(checker: Checker, cand: Candidate) -> tuple[int, syntax.Problem]:
    """The span to redo and the problem that condemns it: the smallest one touching a fill."""
    ranges = checker.ranges(cand.fills)
    touching = [(p, i) for p in cand.problems for i, (a, b) in enumerate(ranges)
                if p.context[0] <= b and p.context[1] >= a]
    if touching:
        problem, i = min(touching, key=lambda t: _size(t[0]))
        return i, problem
    # a fill broke something beyond itself (an unclosed bracket), or the file still has problems
    # away from every fill: redo the nearest fill
    problem = min(cand.problems or cand.remaining, key=_size)
    return min(range(len(ranges)), key=lambda j: abs(ranges[j][1] - problem.context[0])), problem
