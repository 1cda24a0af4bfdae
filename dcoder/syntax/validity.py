"""Choose the fill to return so that the file keeps parsing.

After a batch of candidates is denoised, each is spliced into the document and reparsed
(incrementally); the best-scoring one that adds no ERROR or MISSING node wins (see
``syntax.introduced_problems``: breakage at the hole itself must be mended). When none does,
the tokens of the smallest broken node of the best candidate are masked again and denoised with
everything else fixed, for a few rounds; a broken fill with no tokens to re-mask there (often
an empty one) is redone whole at a fixed length instead. Last comes a constrained search: short
fills of the broken span, built left to right from the model's likeliest tokens, punctuation and
the grammar's keywords, partial fills pruned and ranked by reparsing (``search.py``). If still
nothing parses, the least broken candidate is returned with ``parses=False``: the caller decides.

A valid fill that leaves the file broken past its lines (where ``introduced_problems`` counts the
errors as the file's own, though a hole's damage often lands there) goes to the search too, and is
replaced only by a fill that leaves the whole file parsing.

In a large file, candidates are parsed in an excerpt of about ``WINDOW`` bytes around the spans
(see ``Document.excerpt``), so what one costs does not grow with the file; the fill chosen is then
checked, once, in the whole file. The work stops when the request must (``stop``: cancelled, or
its deadline passed), and the best fill found by then is returned.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from dcoder import syntax
from dcoder.engine.engine import Engine
from dcoder.engine.sampler import SampleResult
from dcoder.engine.spans import Layout, fix_length, variant_length
from dcoder.syntax.candidates import Candidate, Checker, Stop, broken_span, rank, raw_fills
from dcoder.syntax.indent import fit
from dcoder.syntax.search import constrained

Resample = Callable[[np.ndarray, np.ndarray], SampleResult]  # rows, which rows have fixed lengths
WINDOW = 4096  # bytes of a large file around the spans that candidates are parsed in


@dataclass(frozen=True)
class Choice:
    fills: tuple[str, ...]  # text of each span, in layout order
    score: float
    parses: bool | None  # None: not checked (no language, no parser, or cancelled)
    repairs: int  # re-mask rounds run
    forward_passes: int  # spent on those rounds and the search
    steps: int
    searched: bool = False  # the constrained search ran (spent forward passes)


def scores(logprobs: np.ndarray, generated: np.ndarray) -> np.ndarray:
    """Mean log-probability of each row's generated tokens."""
    counts = np.maximum(generated.sum(axis=1), 1)
    return (logprobs * generated).sum(axis=1) / counts


def excerpt(engine: Engine, text: str, layout: Layout, doc: syntax.Document, stop: Stop) -> Checker:
    """The checker for a file: over the file itself when it is at most ``WINDOW`` bytes, else over
    the excerpts ``Document.excerpt`` cuts around the spans, one after another (each ending a line)."""
    if len(doc.data) <= WINDOW:
        return Checker(engine, text, layout, doc, stop)
    pieces = doc.excerpt([(s.start, s.end) for s in layout.spans], WINDOW)
    firsts = [a for a, _ in pieces]
    parts, starts = [], []
    for a, b in pieces:
        starts.append(sum(map(len, parts)))
        parts.append(text[a:b] if text[a:b].endswith("\n") else text[a:b] + "\n")

    def local(pos: int) -> int:
        k = bisect.bisect_right(firsts, pos) - 1
        return starts[k] + pos - pieces[k][0]

    part = syntax.Document("".join(parts), doc.grammar)
    spans = tuple(replace(s, start=local(s.start), end=local(s.end)) for s in layout.spans)
    own = {(p.kind, local(p.start), local(p.end)) for p in doc.problems()
           if any(a <= p.start and p.end <= b for a, b in pieces)}
    artifacts = tuple(p for p in part.problems() if (p.kind, p.start, p.end) not in own)
    return Checker(engine, part.text, replace(layout, spans=spans), part, stop, artifacts)


def _lead(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _raw_offset(raw: str, fitted: str, offset: int) -> int:
    """Map an offset in a fitted fill back to the decoded fill: fitting only changes line starts and ends."""
    line = fitted.count("\n", 0, offset)
    col = offset - (fitted.rfind("\n", 0, offset) + 1)
    raw_lines, fit_lines = raw.split("\n"), fitted.split("\n")
    if line >= len(raw_lines):
        return len(raw)
    col = min(max(0, col - (_lead(fit_lines[line]) - _lead(raw_lines[line]))), len(raw_lines[line]))
    return sum(len(x) + 1 for x in raw_lines[:line]) + col


def broken_tokens(engine: Engine, layout: Layout, checker: Checker, cand: Candidate) -> tuple[int, np.ndarray | None]:
    """The span to redo, and the positions of ``cand.row`` to mask again: the tokens of its
    smallest broken node, one more each side (None when no token of the span lies there)."""
    i, problem = broken_span(checker, cand)
    fs, fe = checker.ranges(cand.fills)[i]
    raw, fitted = cand.raw[i], cand.fills[i]
    lo = _raw_offset(raw, fitted, max(problem.context[0], fs) - fs)
    hi = _raw_offset(raw, fitted, min(problem.context[1], fe) - fs)

    a, b = layout.slots[i]
    stripped = engine.tokens.stripped
    kept = [p for p in range(a, b) if int(cand.row[p]) not in stripped]
    tokens = [int(cand.row[p]) for p in kept]
    bounds = [len(engine.tokenizer.decode(tokens[:k])) for k in range(len(tokens) + 1)]
    hit = [k for k in range(len(tokens)) if bounds[k] <= hi and bounds[k + 1] >= lo]
    if not hit or lo > hi:
        return i, None
    remask = np.zeros(len(cand.row), dtype=bool)
    first, last = max(0, hit[0] - 1), min(len(tokens) - 1, hit[-1] + 1)
    remask[[kept[k] for k in range(first, last + 1)]] = True
    if last == len(tokens) - 1:  # the broken node runs to the fill's end: let it grow into the padding
        remask[kept[last]:b] = True
    return i, remask


def repair_row(engine: Engine, layout: Layout, checker: Checker, cand: Candidate,
               variant: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """The row to denoise again, the positions it re-masks, and whether its length is fixed."""
    i, remask = broken_tokens(engine, layout, checker, cand)
    if remask is not None:
        ids = cand.row.copy()
        ids[remask] = engine.tokens.mask
        return ids, remask, False
    a, b = layout.slots[i]
    ids = fix_length(cand.row, (a, b), variant_length(b - a, variant), engine.tokens)
    remask = np.zeros(len(ids), dtype=bool)
    remask[a:b] = True
    return ids, remask, True


def _best(cands: list[Candidate]) -> Candidate:
    return min(cands, key=rank)


def choose(engine: Engine, text: str, doc: syntax.Document | None, layout: Layout, result: SampleResult, generated: np.ndarray,
           language: str | None, candidates: int, repair_rounds: int, resample: Resample,
           search_tokens: int = 0, stop: Stop = lambda: False, cancelled: Stop = lambda: False) -> Choice:
    """The fill to return from a denoised batch (see the module docstring); ``doc`` is ``text``
    parsed (None: no parser, nothing to check); ``cancelled`` says the request was cancelled, so
    its result is not wanted: only its end."""
    row_scores = scores(result.logprobs, generated)
    order = np.argsort(-row_scores, kind="stable")
    if result.cancelled:
        doc = None
    if doc is None:
        best = int(order[0])
        fills = raw_fills(engine, layout, result.ids[best])
        if language is not None:
            fills = tuple(fit(text, s.start, s.end, f) for s, f in zip(layout.spans, fills))
        return Choice(fills, float(row_scores[best]), None, 0, 0, 0)

    checker = excerpt(engine, text, layout, doc, stop)
    tried: list[Candidate] = []
    for r in order:  # the best-scoring one always; the others while there is time
        if tried and stop():
            break
        tried.append(checker.candidate(result.ids[r], result.logprobs[r], row_scores[r]))
    valid = [c for c in tried if not c.problems]
    current, passes, steps, rounds = tried[0], 0, 0, 0
    while not valid and rounds < repair_rounds and not stop():
        rounds += 1
        # fixed lengths the first pass did not try (its rows 1.. had variants 1..candidates-1)
        ids, remask, fixed = repair_row(engine, layout, checker, current, candidates - 1 + rounds)
        res = resample(np.repeat(ids[None], candidates, axis=0), np.full(candidates, fixed))
        passes, steps = passes + res.forward_passes, steps + res.steps
        if res.cancelled:  # stopped midway: its rows still hold masks
            break
        logprobs = np.where(remask[None], res.logprobs, current.logprobs[None])
        # given padding is not generated: it must not lift the mean log-probability
        counted = generated[:1] & ~(remask & (ids != engine.tokens.mask))[None]
        round_scores = scores(logprobs, counted)
        batch: list[Candidate] = []
        for r in np.argsort(-round_scores, kind="stable"):
            if batch and stop():
                break
            batch.append(checker.candidate(res.ids[r], logprobs[r], round_scores[r]))
        tried.extend(batch)
        valid, current = [c for c in batch if not c.problems], batch[0]
    kept = min(valid, key=rank) if valid else None
    searched = False
    # a valid fill may still leave the file broken past its lines (a cut call's arguments): only a
    # fill that leaves the whole file parsing may replace it
    if search_tokens and (kept is None or kept.left) and not stop():
        found, spent = constrained(engine, layout, checker, kept or _best(tried), search_tokens)
        passes, steps, searched = passes + spent, steps + spent, spent > 0
        if found is not None and (kept is None or not found.left):
            kept = found
    pick, parses = (kept, True) if kept is not None else (_best(tried), False)
    if checker.doc is not doc:  # checked in an excerpt: the whole file has the last word (and fits the fills)
        if cancelled():
            parses = parses and None  # not known, and not worth parsing the file for
        else:
            pick = Checker(engine, text, layout, doc).candidate(pick.row, pick.logprobs, pick.score)
            parses = parses and not pick.problems
    return Choice(pick.fills, pick.score, parses, rounds, passes, steps, searched)
