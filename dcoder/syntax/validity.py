"""Choose the fill to return so that the file keeps parsing.

After a batch of candidates is denoised, each is spliced into the document and reparsed
(incrementally); the best-scoring one that adds no ERROR or MISSING node wins (see
``syntax.introduced_problems``: breakage at the hole itself must be mended). When none does,
the tokens of the smallest broken node of the best candidate are masked again and denoised with
everything else fixed, for a few rounds; a broken fill with no tokens to re-mask there (often
an empty one) is redone whole at a fixed length instead. Last comes a constrained search: short
fills of the broken span, built left to right from the model's likeliest tokens, punctuation and
the grammar's keywords, partial fills pruned and ranked by reparsing (see ``search``). If still
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
import re
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from dcoder import syntax
from dcoder.engine.engine import Engine
from dcoder.engine.sampler import SampleResult
from dcoder.engine.spans import Layout, fix_length, span_text, variant_length
from dcoder.syntax.indent import fit

Resample = Callable[[np.ndarray, np.ndarray], SampleResult]  # rows, which rows have fixed lengths
Stop = Callable[[], bool]  # True once the request must end
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


@dataclass(frozen=True)
class _Candidate:
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


def scores(logprobs: np.ndarray, generated: np.ndarray) -> np.ndarray:
    """Mean log-probability of each row's generated tokens."""
    counts = np.maximum(generated.sum(axis=1), 1)
    return (logprobs * generated).sum(axis=1) / counts


def raw_fills(engine: Engine, layout: Layout, row: np.ndarray) -> tuple[str, ...]:
    return tuple(span_text(row, slot, engine.tokenizer, engine.tokens) for slot in layout.slots)


class _Checker:
    """Candidates spliced into ``text`` (the file, or an excerpt of it: see ``excerpt``) and parsed.
    ``artifacts`` are problems of an excerpt that the file does not have: no candidate is blamed for them."""

    def __init__(self, engine: Engine, text: str, layout: Layout, doc: syntax.Document,
                 stop: Stop = lambda: False, artifacts: tuple[syntax.Problem, ...] = ()):
        self.engine, self.text, self.layout, self.doc = engine, text, layout, doc
        self.stop, self.artifacts = stop, list(artifacts)

    def candidate(self, row: np.ndarray, logprobs: np.ndarray, score: float) -> _Candidate:
        raw = raw_fills(self.engine, self.layout, row)
        fills = tuple(fit(self.text, s.start, s.end, f) for s, f in zip(self.layout.spans, raw))
        edits = [(s.start, s.end, f) for s, f in zip(self.layout.spans, fills)]
        after = self.doc.edits(edits)
        problems = tuple(syntax.introduced_problems(self.doc, after, edits))
        hides = any(after.comments_past(a, b) for a, b in self.ranges(fills))
        ignored = syntax.carried_problems(self.text, self.artifacts, edits) if self.artifacts else set()
        remaining = tuple(p for p in after.problems() if (p.kind, p.start, p.end) not in ignored)
        return _Candidate(row, logprobs, float(score), raw, fills, problems, remaining, hides)

    def ranges(self, fills: tuple[str, ...]) -> list[tuple[int, int]]:
        """Where each fill lies in the new document."""
        out, shift = [], 0
        for span, fill in zip(self.layout.spans, fills):
            out.append((span.start + shift, span.start + shift + len(fill)))
            shift += len(fill) - (span.end - span.start)
        return out


def excerpt(engine: Engine, text: str, layout: Layout, doc: syntax.Document, stop: Stop) -> _Checker:
    """The checker for a file: over the file itself when it is at most ``WINDOW`` bytes, else over
    the excerpts ``Document.excerpt`` cuts around the spans, one after another (each ending a line)."""
    if len(doc.data) <= WINDOW:
        return _Checker(engine, text, layout, doc, stop)
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
    return _Checker(engine, part.text, replace(layout, spans=spans), part, stop, artifacts)


def _lead(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _size(p: syntax.Problem) -> int:
    return p.context[1] - p.context[0]


def _raw_offset(raw: str, fitted: str, offset: int) -> int:
    """Map an offset in a fitted fill back to the decoded fill: fitting only changes line starts and ends."""
    line = fitted.count("\n", 0, offset)
    col = offset - (fitted.rfind("\n", 0, offset) + 1)
    raw_lines, fit_lines = raw.split("\n"), fitted.split("\n")
    if line >= len(raw_lines):
        return len(raw)
    col = min(max(0, col - (_lead(fit_lines[line]) - _lead(raw_lines[line]))), len(raw_lines[line]))
    return sum(len(x) + 1 for x in raw_lines[:line]) + col


def broken_span(checker: _Checker, cand: _Candidate) -> tuple[int, syntax.Problem]:
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


def broken_tokens(engine: Engine, layout: Layout, checker: _Checker, cand: _Candidate) -> tuple[int, np.ndarray | None]:
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


def repair_row(engine: Engine, layout: Layout, checker: _Checker, cand: _Candidate,
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


SEARCH_BEAM = 4  # partial fills grown further because they are the likeliest
SEARCH_MILD = 4  # and because they leave the least of the file broken
SEARCH_WORDS = 4  # and because their last token finishes a cut word or string (see _Words)
SEARCH_TOP = 16  # the model's likeliest tokens tried after each partial fill, then as many of
# its likeliest punctuation/blank tokens and of the grammar's keywords (every one of those for the
# first token): a weak model may rank neither a closing ``"""`` nor ``in`` among its favourites


def _likeliest(logp: np.ndarray, banned: np.ndarray, k: int) -> np.ndarray:
    logp = logp.copy()
    logp[banned] = -np.inf
    k = min(k, len(logp) - 1)
    top = np.argpartition(-logp, k)[:k]
    top = top[np.argsort(-logp[top], kind="stable")]
    return top[np.isfinite(logp[top])]  # never a token the model rules out


def _tried(logp: np.ndarray, banned: np.ndarray, classes: list[np.ndarray], per_class: int) -> list[int]:
    """The tokens to try next: the likeliest ones, then the likeliest of each class not yet in."""
    out = [int(t) for t in _likeliest(logp, banned, SEARCH_TOP)]
    seen = set(out)
    for ids in classes:
        ranked = ids[np.argsort(-logp[ids], kind="stable")]
        extra = [int(t) for t in ranked if int(t) not in seen and np.isfinite(logp[t])][:per_class]
        out += extra
        seen.update(extra)
    return out


def _keyword_ids(engine: Engine, grammar: syntax.Grammar) -> np.ndarray:
    """Single tokens spelling one of the grammar's keywords, with or without a space before."""
    words = grammar.keywords
    encoded = engine.tokenizer.encode_batch([w for k in words for w in (k, " " + k)])
    return np.array(sorted({ids[0] for ids in encoded if len(ids) == 1}), dtype=np.int64)


_WORD_END = re.compile(r"\w+$")
_WORD_START = re.compile(r"\w+")  # matched at the hole's end
_NAME = re.compile(r"[^\W\d]\w+")


class _Words:
    """Tokens that finish something the hole cut: a word (text before the fill's end that ends
    inside a word continues into one of the file's names or the grammar's keywords, ``exc`` +
    ``ept``; a word the text after the hole starts inside is completed from before, ``retu`` +
    ``rn None``) or the string the hole starts in (its closing quotes). Random spans, and cursors
    inside a word, cut words and strings."""

    def __init__(self, engine: Engine, checker: _Checker, span: int):
        self.engine = engine
        layout = checker.layout.spans[span]
        self.before = checker.text[max(0, layout.start - 80):layout.start]
        head = _WORD_START.match(checker.text, layout.end)
        self.after = head.group() if head else ""
        self.words = sorted(set(_NAME.findall(checker.text)) | set(checker.doc.grammar.keywords))
        closer = checker.doc.string_delimiter(layout.start)
        self.closer = engine.tokenizer.encode(closer)[:1] if closer else []
        self.cache: dict[str, np.ndarray] = {}

    def cut(self, toks: tuple[int, ...]) -> str:
        """The word the text before the hole and ``toks`` end inside ("" at a word boundary)."""
        tail = _WORD_END.search(self.before + self.engine.tokenizer.decode(list(toks)))
        return tail.group() if tail else ""

    def ids(self, toks: tuple[int, ...]) -> np.ndarray:
        cut = self.cut(toks)
        if cut not in self.cache:
            self.cache[cut] = np.union1d(self._first_tokens(cut), np.array(self.closer, dtype=np.int64))
        return self.cache[cut]

    def progress(self, toks: tuple[int, ...], cut: str, mends: bool) -> tuple[bool, bool, int]:
        """Sort key of a partial fill whose last token finishes something (smaller is further
        along; ``cut`` is ``self.cut(toks)``): mending its span first, then closing the string,
        then the longest word."""
        return (not mends, toks[-1:] != tuple(self.closer), -len(cut))

    def _first_tokens(self, cut: str) -> np.ndarray:
        pieces = set()
        for w in self.words:
            if cut and w.startswith(cut) and len(w) > len(cut):
                pieces.add(w[len(cut):])  # the rest of the word
            if self.after and w.endswith(self.after) and w.startswith(cut) and len(w) > len(cut) + len(self.after):
                middle = w[len(cut):len(w) - len(self.after)]
                pieces.update((middle, " " + middle) if not cut else (middle,))
        encoded = self.engine.tokenizer.encode_batch(sorted(pieces)) if pieces else []
        return np.array(sorted({ids[0] for ids in encoded if ids}), dtype=np.int64)


def _mends(checker: _Checker, before: _Candidate, after: _Candidate, i: int) -> bool:
    """``after`` leaves span ``i`` clear of problems, and the file with fewer introduced problems
    than ``before`` or, as many, less of it in error."""
    a, b = checker.ranges(after.fills)[i]
    clear = all(p.context[0] > b or p.context[1] < a for p in after.problems)
    return clear and _rank(after)[:2] < _rank(before)[:2]


def _rank(cand: _Candidate) -> tuple[int, int, float]:
    """Smaller is better: introduced problems, then text left in error, then score."""
    return len(cand.problems), cand.left, -cand.score


def _viable(checker: _Checker, cand: _Candidate, i: int) -> bool:
    """Whether span ``i`` may still grow into a fill that parses: no error ends within it (text
    added after it cannot undo those), no missing token is wanted before its end."""
    a, b = checker.ranges(cand.fills)[i]
    return not any(a <= p.end < b or (p.end == b and p.kind == "ERROR") for p in cand.problems)


def _damage(cand: _Candidate) -> int:
    """How broken the file is, coarsely (the text broken, to within a factor of two): partial fills
    that leave less of the file in error are likelier to grow into one that parses."""
    return cand.left.bit_length()


def search(engine: Engine, layout: Layout, checker: _Checker, cand: _Candidate, i: int,
           longest: int) -> tuple[_Candidate | None, int]:
    """The best fill of 1..``longest`` tokens for span ``i`` that mends it (see ``_mends``; other
    spans as in ``cand``), and the forward passes spent.

    Fills are decoded left to right. Each partial fill tried is also checked as a whole fill;
    of those parsing has not ruled out (a fill that mends its span but breaks the file further
    on included; one ending inside a word that would run into the word after the hole is judged
    with a blank after it), the ``SEARCH_BEAM`` likeliest, the ``SEARCH_MILD`` least damaging and the
    ``SEARCH_WORDS`` furthest along among those whose last token finished a cut word or string
    (``_Words.progress``) are grown further. Tokens tried come from the model's likeliest and, so
    that structure stays in reach, its likeliest punctuation/blanks, keywords and tokens finishing
    a cut word or string (all of them for the first token). A fill that turns code after it into a
    comment never counts (a comment block the hole cut may be rejoined). Fills of every
    length compete by ``_rank`` (errors added, text left in error, mean log-probability).
    """
    a, b = layout.slots[i]
    n = min(longest, b - a)
    banned = np.array(sorted({engine.tokens.mask, *engine.tokens.stripped}))
    classes = [np.setdiff1d(ids, banned) for ids in
               (engine.tokenizer.symbol_ids, _keyword_ids(engine, checker.doc.grammar))]
    words = _Words(engine, checker, i)
    blank = engine.tokenizer.encode(" ")
    space = blank[0] if len(blank) == 1 else None
    base = fix_length(cand.row, (a, b), n, engine.tokens)
    beams: list[tuple[tuple[int, ...], tuple[float, ...]]] = [((), ())]  # tokens, their log-probs
    best, passes = None, 0
    for k in range(n):
        rows = []
        for toks, _ in beams:
            row = base.copy()
            row[a:a + k] = toks
            rows.append(row)
        width = SEARCH_BEAM + SEARCH_MILD + SEARCH_WORDS
        batch = np.stack(rows + rows[:1] * (width - len(rows)))  # one batch size: the cache holds
        logp = engine.backend.predict(batch, a, b, 1, np.array([k]))[:len(rows), 0]
        passes += 1
        grown = []
        for (toks, got), lp in zip(beams, logp):
            finishing = np.setdiff1d(words.ids(toks), banned)
            tried = _tried(lp, banned, classes + [finishing], SEARCH_TOP if k else len(lp))
            grown += [(toks + (t,), got + (float(lp[t]),), int(t) in finishing) for t in tried]
        kept = []
        for toks, got, worded in grown:
            if checker.stop():
                return best, passes
            row = fix_length(cand.row, (a, b), k + 1, engine.tokens)
            row[a:a + k + 1] = toks
            logprobs = cand.logprobs.copy()
            logprobs[a:b] = 0.0
            logprobs[a:a + k + 1] = got
            found = checker.candidate(row, logprobs, float(np.mean(got)))
            if found.hides:
                continue
            mends = _mends(checker, cand, found, i)
            if mends and (best is None or _rank(found) < _rank(best)):
                best = found
            # a fill that mends its span but still breaks the file further on may grow into one that does not
            if found.problems or not mends:
                cut = words.cut(toks)
                # a partial fill ending inside a word runs into a word after the hole (` in` + `x):`
                # reads `inx`): judge it as the next token may leave it, a word apart
                probe = found
                if space is not None and words.after and cut and k + 2 <= b - a:
                    spaced = fix_length(cand.row, (a, b), k + 2, engine.tokens)
                    spaced[a:a + k + 1] = toks
                    spaced[a + k + 1] = space
                    probe = checker.candidate(spaced, logprobs, found.score)
                if _viable(checker, probe, i):
                    kept.append((toks, got, _damage(probe), words.progress(toks, cut, mends) if worded else None))
        likeliest = sorted(kept, key=lambda t: -sum(t[1]))[:SEARCH_BEAM]
        mildest = sorted(kept, key=lambda t: (t[2], -sum(t[1])))
        # the furthest along first: a likely token before a word's first piece is no progress
        wording = sorted((t for t in kept if t[3] is not None), key=lambda t: (t[3], -sum(t[1])))
        beams = [(toks, got) for toks, got, _, _ in likeliest]
        beams += [(toks, got) for toks, got, _, _ in mildest if (toks, got) not in beams][:SEARCH_MILD]
        beams += [(toks, got) for toks, got, _, _ in wording if (toks, got) not in beams][:SEARCH_WORDS]
        if not beams:
            break
    return best, passes


def constrained(engine: Engine, layout: Layout, checker: _Checker, cand: _Candidate,
                longest: int) -> tuple[_Candidate | None, int]:
    """``search`` on each broken span in turn until the file parses; None if one cannot be mended.

    Only a hole or a selection of at most ``longest`` tokens is searched: a short fill standing in
    for a longer selection (a function body rewritten as ``x``) would parse but lose the code.
    A span is searched with one token fewer first, and whole only if that leaves it broken: the
    model sees as many mask tokens as the search may fill, so the shorter search is no part of
    the longer one (each finds fills the other misses), and it is cheaper.
    """
    passes = 0
    for _ in layout.slots:
        i, _problem = broken_span(checker, cand)
        span = layout.spans[i]
        if len(engine.tokenizer.encode(checker.text[span.start:span.end])) > longest:
            return None, passes
        found = None
        for depth in sorted({max(1, longest - 1), longest}):
            got, spent = search(engine, layout, checker, cand, i, depth)
            passes += spent
            if got is not None and (found is None or _rank(got) < _rank(found)):
                found = got
            if (found is not None and not found.problems) or checker.stop():
                break
        if found is None or not found.problems:
            return found, passes
        if checker.stop():
            return None, passes
        cand = found
    return None, passes


def _best(cands: list[_Candidate]) -> _Candidate:
    return min(cands, key=_rank)


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
    tried: list[_Candidate] = []
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
        batch: list[_Candidate] = []
        for r in np.argsort(-round_scores, kind="stable"):
            if batch and stop():
                break
            batch.append(checker.candidate(res.ids[r], logprobs[r], round_scores[r]))
        tried.extend(batch)
        valid, current = [c for c in batch if not c.problems], batch[0]
    kept = min(valid, key=_rank) if valid else None
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
            pick = _Checker(engine, text, layout, doc).candidate(pick.row, pick.logprobs, pick.score)
            parses = parses and not pick.problems
    return Choice(pick.fills, pick.score, parses, rounds, passes, steps, searched)
