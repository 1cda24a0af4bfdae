"""The constrained search: short fills of a broken span, decoded left to right, kept only while
reparsing says they may still parse. docs/fills.md ("Stage 4: constrained search") numbers its
rules; each is done here:

- 1 (when it runs) and 8 (depth): ``constrained``;
- the loop over tokens, one forward pass each (9, cost): ``search`` and ``_Span.predict``;
- 2 (tokens tried) and 3 (the first token): ``_Span.extend``, with ``_tried``, ``_keyword_ids``
  and ``_Words``;
- 4 (pruning) and 6 (comments): ``_Span.judge``, with ``_viable`` and ``_mends``;
- 5 (the beam): ``_next_beams``, with ``_damage`` and ``_Words.progress``;
- 7 (ranking): ``rank`` in ``candidates.py``.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import numpy as np

from dcoder import syntax
from dcoder.engine.engine import Engine
from dcoder.engine.spans import Layout, fix_length
from dcoder.syntax.candidates import Candidate, Checker, broken_span, rank

SEARCH_BEAM = 4  # partial fills grown further because they are the likeliest
SEARCH_MILD = 4  # and because they leave the least of the file broken
SEARCH_WORDS = 4  # and because their last token finishes a cut word or string (see _Words)
SEARCH_TOP = 16  # the model's likeliest tokens tried after each partial fill, then as many of
# its likeliest punctuation/blank tokens and of the grammar's keywords (every one of those for the
# first token): a weak model may rank neither a closing ``"""`` nor ``in`` among its favourites

Tokens = tuple[int, ...]
Beam = tuple[Tokens, tuple[float, ...]]  # a partial fill's tokens and their log-probabilities


def constrained(engine: Engine, layout: Layout, checker: Checker, cand: Candidate,
                longest: int) -> tuple[Candidate | None, int]:
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
            if got is not None and (found is None or rank(got) < rank(found)):
                found = got
            if (found is not None and not found.problems) or checker.stop():
                break
        if found is None or not found.problems:
            return found, passes
        if checker.stop():
            return None, passes
        cand = found
    return None, passes


def search(engine: Engine, layout: Layout, checker: Checker, cand: Candidate, i: int,
           longest: int) -> tuple[Candidate | None, int]:
    """The best fill of 1..``longest`` tokens for span ``i`` that mends it (see ``_mends``; other
    spans as in ``cand``), and the forward passes spent.

    Fills are decoded left to right, a token per forward pass, and each partial fill tried is
    also checked as a whole fill (``_Span.judge``). Fills of every length compete by ``rank``
    (errors added, text left in error, mean log-probability).
    """
    span = _Span(engine, layout, checker, cand, i, longest)
    beams: list[Beam] = [((), ())]
    best, passes = None, 0
    for k in range(span.n):
        logp = span.predict(beams, k)
        passes += 1
        kept = []
        for toks, got, worded in span.extend(beams, logp, k):
            if checker.stop():
                return best, passes
            found, grows = span.judge(toks, got, worded)
            if found is not None and (best is None or rank(found) < rank(best)):
                best = found
            if grows is not None:
                kept.append(grows)
        beams = _next_beams(kept)
        if not beams:
            break
    return best, passes


class _Kept(NamedTuple):
    """A partial fill that may still grow into one that parses, and how it ranks for the beam."""
    toks: Tokens
    got: tuple[float, ...]  # the tokens' log-probabilities
    damage: int  # see _damage
    progress: tuple | None  # see _Words.progress; None: its last token finishes nothing the hole cut


class _Span:
    """What stays fixed while the fills of span ``i`` grow: its slots and the most tokens it may
    take (``n``), the tokens never tried and the classes always tried, what the hole cut."""

    def __init__(self, engine: Engine, layout: Layout, checker: Checker, cand: Candidate, i: int, longest: int):
        self.engine, self.checker, self.cand, self.i = engine, checker, cand, i
        self.a, self.b = layout.slots[i]
        self.n = min(longest, self.b - self.a)
        self.banned = np.array(sorted({engine.tokens.mask, *engine.tokens.stripped}))
        self.classes = [np.setdiff1d(ids, self.banned) for ids in
                        (engine.tokenizer.symbol_ids, _keyword_ids(engine, checker.doc.grammar))]
        self.words = _Words(engine, checker, i)
        blank = engine.tokenizer.encode(" ")
        self.space = blank[0] if len(blank) == 1 else None

    def row(self, toks: Tokens, length: int) -> np.ndarray:
        """``cand``'s row with the span ``length`` tokens long, starting with ``toks``."""
        row = fix_length(self.cand.row, (self.a, self.b), length, self.engine.tokens)
        row[self.a:self.a + len(toks)] = toks
        return row

    def predict(self, beams: list[Beam], k: int) -> np.ndarray:
        """Log-probabilities (beams, V) of token ``k`` after each partial fill: one forward pass,
        the span ``n`` tokens long (the model sees as many mask tokens as the search may fill)."""
        rows = [self.row(toks, self.n) for toks, _ in beams]
        width = SEARCH_BEAM + SEARCH_MILD + SEARCH_WORDS
        batch = np.stack(rows + rows[:1] * (width - len(rows)))  # one batch size: the cache holds
        return self.engine.backend.predict(batch, self.a, self.b, 1, np.array([k]))[:len(rows), 0]

    def extend(self, beams: list[Beam], logp: np.ndarray, k: int) -> list[tuple[Tokens, tuple[float, ...], bool]]:
        """Each partial fill grown by each token tried after it (``_tried``; every token of the
        classes for the first), and whether that token finishes a cut word or string."""
        grown = []
        for (toks, got), lp in zip(beams, logp):
            finishing = np.setdiff1d(self.words.ids(toks), self.banned)
            tried = _tried(lp, self.banned, self.classes + [finishing], SEARCH_TOP if k else len(lp))
            grown += [(toks + (t,), got + (float(lp[t]),), int(t) in finishing) for t in tried]
        return grown

    def judge(self, toks: Tokens, got: tuple[float, ...], worded: bool) -> tuple[Candidate | None, _Kept | None]:
        """The partial fill as a whole fill if it mends its span (``_mends``), and its place in the
        beam if it may still grow into one that parses (``_viable``). A fill that turns code after
        it into a comment never counts (a comment block the hole cut may be rejoined)."""
        logprobs = self.cand.logprobs.copy()
        logprobs[self.a:self.b] = 0.0
        logprobs[self.a:self.a + len(toks)] = got
        found = self.checker.candidate(self.row(toks, len(toks)), logprobs, float(np.mean(got)))
        if found.hides:
            return None, None
        mends = _mends(self.checker, self.cand, found, self.i)
        # done once it mends its span and adds no problem; one that still breaks the file further
        # on may grow into one that does not
        if not found.problems and mends:
            return found, None
        cut = self.words.cut(toks)
        # a partial fill ending inside a word runs into a word after the hole (` in` + `x):`
        # reads `inx`): judge it as the next token may leave it, a word apart
        probe = found
        if self.space is not None and self.words.after and cut and len(toks) + 1 <= self.b - self.a:
            probe = self.checker.candidate(self.row(toks + (self.space,), len(toks) + 1), logprobs, found.score)
        if not _viable(self.checker, probe, self.i):
            return (found if mends else None), None
        progress = self.words.progress(toks, cut, mends) if worded else None
        return (found if mends else None), _Kept(toks, got, _damage(probe), progress)


def _next_beams(kept: list[_Kept]) -> list[Beam]:
    """The partial fills grown further: the ``SEARCH_BEAM`` likeliest, the ``SEARCH_MILD`` least
    damaging and the ``SEARCH_WORDS`` furthest along something the hole cut."""
    likeliest = sorted(kept, key=lambda t: -sum(t.got))[:SEARCH_BEAM]
    mildest = sorted(kept, key=lambda t: (t.damage, -sum(t.got)))
    # the furthest along first: a likely token before a word's first piece is no progress
    wording = sorted((t for t in kept if t.progress is not None), key=lambda t: (t.progress, -sum(t.got)))
    beams = [(t.toks, t.got) for t in likeliest]
    beams += [(t.toks, t.got) for t in mildest if (t.toks, t.got) not in beams][:SEARCH_MILD]
    beams += [(t.toks, t.got) for t in wording if (t.toks, t.got) not in beams][:SEARCH_WORDS]
    return beams


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

    def __init__(self, engine: Engine, checker: Checker, span: int):
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


def _mends(checker: Checker, before: Candidate, after: Candidate, i: int) -> bool:
    """``after`` leaves span ``i`` clear of problems, and the file with fewer introduced problems
    than ``before`` or, as many, less of it in error."""
    a, b = checker.ranges(after.fills)[i]
    clear = all(p.context[0] > b or p.context[1] < a for p in after.problems)
    return clear and rank(after)[:2] < rank(before)[:2]


def _viable(checker: Checker, cand: Candidate, i: int) -> bool:
    """Whether span ``i`` may still grow into a fill that parses: no error ends within it (text
    added after it cannot undo those), no missing token is wanted before its end."""
    a, b = checker.ranges(cand.fills)[i]
    return not any(a <= p.end < b or (p.end == b and p.kind == "ERROR") for p in cand.problems)


def _damage(cand: Candidate) -> int:
    """How broken the file is, coarsely (the text broken, to within a factor of two): partial fills
    that leave less of the file in error are likelier to grow into one that parses."""
    return cand.left.bit_length()
