"""Syntax-valid fills (dcoder/syntax/validity.py, through dcoder/infill.py): choosing among
candidates, repair rounds, the constrained search, bounded work in large files, cancellation
and the deadline; a tiny random checkpoint with scripted scores, real tree-sitter."""

import numpy as np
import pytest
from regions_support import FAR, at

from dcoder import syntax
from dcoder.engine.sampler import SampleResult
from dcoder.engine.spans import Span, build_layout


def _rows(engine, layout, fills: list[str]) -> np.ndarray:
    """Batch rows whose single slot holds each fill's tokens, padded with the span-padding token."""
    a, b = layout.slots[0]
    rows = np.repeat(layout.ids[None], len(fills), axis=0)
    for i, fill in enumerate(fills):
        toks = engine.tokenizer.encode(fill)
        assert len(toks) <= b - a
        rows[i, a:b] = engine.tokens.span_pad
        rows[i, a:a + len(toks)] = toks
    return rows


def _setup(engine, text, start, end, budget=16):
    layout = build_layout(text, [Span(start, end, budget)], engine.tokenizer, engine.tokens, 512, engine.lead)
    generated = np.repeat((layout.ids == engine.tokens.mask)[None], 1, axis=0)
    return layout, generated


def _result(rows, scores):
    logprobs = np.zeros(rows.shape, dtype=np.float32)
    logprobs[:] = np.asarray(scores, dtype=np.float32)[:, None]
    return SampleResult(rows, logprobs, 1, 1, False)


def _no_resample(rows, fixed):
    raise AssertionError("no repair round expected")


def test_the_best_scoring_parsing_candidate_wins(engine):
    from dcoder.syntax.validity import choose

    text = "y = f(a, )\n"
    layout, generated = _setup(engine, text, 9, 9)
    rows = _rows(engine, layout, ["b +", "b", "c"])
    pick = choose(engine, text, syntax.parse(text, "python"), layout, _result(rows, [-0.1, -2.0, -1.0]),
                  np.repeat(generated, 3, 0), "python", 3, 0, _no_resample)
    assert pick.parses is True and pick.fills == ("c",) and pick.repairs == 0


def test_nothing_parses_returns_the_least_broken_flagged(engine):
    from dcoder.syntax.validity import choose

    text = "y = f(a, )\n"
    layout, generated = _setup(engine, text, 9, 9)
    rows = _rows(engine, layout, ["b +", "((("])
    pick = choose(engine, text, syntax.parse(text, "python"), layout, _result(rows, [-3.0, -0.5]),
                  np.repeat(generated, 2, 0), "python", 2, 0, _no_resample)
    assert pick.parses is False and pick.fills in {("b +",), ("(((",)}
    unchecked = choose(engine, text, None, layout, _result(rows, [-3.0, -0.5]), np.repeat(generated, 2, 0),
                       None, 2, 0, _no_resample)
    assert unchecked.parses is None and unchecked.fills == ("(((",)  # no language: best score only


def test_repair_remasks_only_the_broken_node(engine):
    """A planted broken fill: the re-mask round sees masks on its broken tail, not on the good head."""
    from dcoder.syntax.validity import choose

    text = "values = [\n    first,\n]\nz = 1\n"
    start = at(text, "first")
    layout, generated = _setup(engine, text, start, start + 5, budget=32)
    rows = _rows(engine, layout, ["alpha, beta, gamma, delta, )"])
    seen = []

    def resample(batch, fixed):  # resolves every mask to span padding: the masked tokens are dropped
        assert not fixed.any()
        seen.append(batch.copy())
        out = np.where(batch == engine.tokens.mask, engine.tokens.span_pad, batch)
        return SampleResult(out, np.zeros(out.shape, dtype=np.float32), 2, 2, False)

    pick = choose(engine, text, syntax.parse(text, "python"), layout, _result(rows, [-0.5]), generated, "python", 1, 2,
                  resample)
    assert pick.parses is True and pick.repairs == 1 and pick.forward_passes == 2
    assert pick.fills[0].startswith("alpha, beta, gamma") and ")" not in pick.fills[0]
    a, b = layout.slots[0]
    masked = seen[0][0, a:b] == engine.tokens.mask
    assert 0 < masked.sum() < (rows[0, a:b] != engine.tokens.span_pad).sum()


def test_an_empty_fill_that_leaves_the_hole_broken_is_redone_at_a_fixed_length(engine):
    """``if <hole>:`` does not parse; an empty fill leaves it so and must not pass for valid."""
    from dcoder.syntax.validity import choose

    text = "def f(x):\n    if :\n        return 1\n"
    hole = at(text, "if ") + 3
    layout, generated = _setup(engine, text, hole, hole, budget=16)
    rows = _rows(engine, layout, [""])
    seen = []

    def resample(batch, fixed):  # writes "x" into the masked positions
        seen.append((batch.copy(), fixed.copy()))
        x = engine.tokenizer.encode("x")[0]
        out = np.where(batch == engine.tokens.mask, x, batch)
        return SampleResult(out, np.zeros(out.shape, dtype=np.float32), 3, 3, False)

    pick = choose(engine, text, syntax.parse(text, "python"), layout, _result(rows, [-0.1]), generated, "python", 1, 2, resample)
    a, b = layout.slots[0]
    batch, fixed = seen[0]
    length = (batch[0, a:b] == engine.tokens.mask).sum()
    assert fixed.all() and length == 1  # a sixteenth of the 16-token slot, then padding
    assert (batch[0, a + length:b] == engine.tokens.span_pad).all()
    assert pick.parses is True and pick.repairs == 1 and pick.fills == ("x",)


class _Ranked:
    """A backend that ranks the same few tokens first at every position."""

    def __init__(self, vocab_size: int, preferred: dict[int, float]):
        self.logp = np.full(vocab_size, -20.0, dtype=np.float32)
        for token, logp in preferred.items():
            self.logp[token] = logp
        self.calls = []

    def predict(self, ids, lo, hi, step, cols=None):
        self.calls.append(ids.shape[0])
        n = hi - lo if cols is None else len(cols)
        return np.broadcast_to(self.logp, (ids.shape[0], n, len(self.logp))).copy()


def test_constrained_search_takes_the_likeliest_token_that_parses(engine):
    """The model's favourites ``)`` and ``.`` break ``if <hole>:``; the search passes them over."""
    from dataclasses import replace

    from dcoder.syntax.validity import choose

    text = "def f(x):\n    if :\n        return 1\n"
    hole = at(text, "if ") + 3
    layout, generated = _setup(engine, text, hole, hole, budget=16)
    tok = {s: engine.tokenizer.encode(s) for s in (")", ".", "x")}
    assert all(len(t) == 1 for t in tok.values())
    ranked = _Ranked(engine.vocab_size, {tok[")"][0]: -0.1, tok["."][0]: -0.2, tok["x"][0]: -1.0})
    guided = replace(engine, backend=ranked)
    empty = _rows(engine, layout, [""])
    pick = choose(guided, text, syntax.parse(text, "python"), layout, _result(empty, [-0.1]), generated, "python", 1, 0, _no_resample,
                  search_tokens=2)
    assert pick.parses is True and pick.searched and pick.repairs == 0 and pick.fills == ("x",)
    assert pick.score == pytest.approx(-1.0)
    assert pick.forward_passes == 1 == len(ranked.calls)  # the 1-token search runs first: one pass per position
    assert set(ranked.calls) == {12}  # one batch size throughout, so the context cache is reused
    off = choose(guided, text, syntax.parse(text, "python"), layout, _result(empty, [-0.1]), generated, "python", 1, 0, _no_resample)
    assert off.parses is False and not off.searched and off.fills == ("",)


@pytest.mark.parametrize("text, before, want, depth", [
    ("x = [1, 2\ny = 3\n", "2", r"\]", 2),  # a bracket the model ranks nowhere
    ("for a  b:\n    pass\n", "a ", "in", 2),  # a keyword it ranks nowhere
    ("try:\n    go()\nexc ValueError as e:\n    pass\n", "exc", "ept", 3),  # a keyword cut before the hole
    ("def f(x):\n    \n    rn x\n", "    \n    ", "retu", 4),  # and one cut after it
    ("for a b:\n    pass\n", "for a ", r"in \S*", 3),  # `in` runs into `b` until a blank follows
])
def test_constrained_search_reaches_structure_the_model_does_not_rank(engine, text, before, want, depth):
    """``want``: a regular expression the whole fill (blanks around it aside) matches."""
    import re
    from dataclasses import replace

    from dcoder.syntax.validity import choose

    hole = at(text, before) + len(before)
    layout, generated = _setup(engine, text, hole, hole, budget=16)
    tok = {s: engine.tokenizer.encode(s)[0] for s in (")", ".", "x")}
    ranked = _Ranked(engine.vocab_size, {tok[")"]: -0.1, tok["."]: -0.2, tok["x"]: -0.3})
    pick = choose(replace(engine, backend=ranked), text, syntax.parse(text, "python"), layout, _result(_rows(engine, layout, [""]), [-0.1]),
                  generated, "python", 1, 0, _no_resample, search_tokens=depth)
    assert pick.parses is True and pick.searched and re.fullmatch(want, pick.fills[0].strip())


def test_constrained_search_closes_the_string_the_hole_was_cut_in(engine):
    """Cut in a docstring, the whole file after the hole is in error whatever the first token:
    the string's closing quotes must stay in the search though the model ranks them nowhere."""
    from dataclasses import replace

    from dcoder.syntax.validity import choose

    text = ('class A:\n    def f(self):\n        """Doc    if x:\n            return 1\n\n'
            '    def g(self):\n        """Other."""\n')
    hole = at(text, "Doc") + 3
    layout, generated = _setup(engine, text, hole, hole, budget=16)
    tok = {s: engine.tokenizer.encode(s)[0] for s in (")", ".", "x", "\n")}
    ranked = _Ranked(engine.vocab_size, {tok[")"]: -0.1, tok["."]: -0.2, tok["x"]: -0.3, tok["\n"]: -0.4})
    pick = choose(replace(engine, backend=ranked), text, syntax.parse(text, "python"), layout, _result(_rows(engine, layout, [""]), [-0.1]),
                  generated, "python", 1, 0, _no_resample, search_tokens=2)
    assert pick.parses is True and pick.searched and pick.fills[0].startswith('"""')


def test_constrained_search_never_comments_out_the_code_after_the_hole(engine):
    """``get#`` parses by hiding ``, None)``: the search must not pass that off as a fill."""
    from dataclasses import replace

    from dcoder import syntax
    from dcoder.syntax.validity import choose

    text = "name = get, None)\nz = 1\n"
    hole = at(text, "get") + 3
    assert syntax.parse(text[:hole] + "#" + text[hole:], "python").comments_past(hole, hole + 1)
    assert not syntax.parse(text[:hole] + "  # ok\n" + text[hole:], "python").comments_past(hole, hole + 7)
    layout, generated = _setup(engine, text, hole, hole, budget=16)
    ranked = _Ranked(engine.vocab_size, {engine.tokenizer.encode("#")[0]: -0.1})
    pick = choose(replace(engine, backend=ranked), text, syntax.parse(text, "python"), layout, _result(_rows(engine, layout, [""]), [-0.1]),
                  generated, "python", 1, 0, _no_resample, search_tokens=2)
    assert "#" not in pick.fills[0]


def test_constrained_search_may_rejoin_a_comment_block_the_hole_cut():
    """A hole cut across a block of comments leaves prose on its last line: a fill that opens
    a comment there rejoins the block (the next line is a comment too) and hides no code."""
    from dcoder import syntax

    text = "def f():\n    # the value comes\n    back as is.\n    # and is cached\n    return 1\n"
    hole = at(text, "back")
    assert not syntax.parse(text[:hole] + "#" + text[hole:], "python").comments_past(hole, hole + 1)
    prose = "cmd = get_ If we find none\n# we give up\nz = 1\n"  # the comment's first line cut mid-way
    cut = at(prose, "get_") + 4
    assert not syntax.parse(prose[:cut] + "#" + prose[cut:], "python").comments_past(cut, cut + 1)
    code = "name = get, None)\n# a comment below\nz = 1\n"  # code before a comment stays code
    cut = at(code, "get") + 3
    assert syntax.parse(code[:cut] + "#" + code[cut:], "python").comments_past(cut, cut + 1)


@pytest.mark.parametrize("text, after, liked, want", [
    # a cut call: the empty fill adds no error on its own lines, but the arguments below break
    ("rv = cf(\n    [\n        make\n            i,\n            key=False,\n        )\n"
     "        for i in val\n    ]\n)\n", "make", (".",), "("),
    ("def f(x):\n    y = \n    return y\n", "y = ", (".", "x"), "x"),  # the error lands on the next line
])
def test_a_fill_that_leaves_the_file_broken_past_its_lines_is_searched(engine, text, after, liked, want):
    from dataclasses import replace

    from dcoder import syntax
    from dcoder.syntax.validity import choose

    hole = at(text, after) + len(after)
    doc = syntax.parse(text, "python")
    assert doc.problems() and not syntax.introduced_problems(doc, doc, [(hole, hole, "")])
    layout, generated = _setup(engine, text, hole, hole, budget=16)
    ranked = _Ranked(engine.vocab_size, {engine.tokenizer.encode(s)[0]: -0.1 * (k + 1) for k, s in enumerate(liked)})
    empty = _result(_rows(engine, layout, [""]), [-0.1])
    pick = choose(replace(engine, backend=ranked), text, syntax.parse(text, "python"), layout, empty, generated, "python", 1, 2,
                  _no_resample, search_tokens=2)
    assert pick.parses is True and pick.searched and pick.repairs == 0 and pick.fills == (want,)
    assert not syntax.parse(text[:hole] + want + text[hole:], "python").problems()
    off = choose(engine, text, syntax.parse(text, "python"), layout, empty, generated, "python", 1, 2, _no_resample)
    assert off.parses is True and not off.searched and off.fills == ("",)  # no search: kept as valid


def test_a_valid_fill_in_a_file_broken_elsewhere_is_kept(engine):
    """No fill here can close the list below: the search must not swap the model's fill for a
    short one that only shrinks the error."""
    from dataclasses import replace

    from dcoder.syntax.validity import choose

    text = "def f(x):\n    y = \n    return y\n\n\nz = [1, 2\n"
    hole = at(text, "y = ") + 4
    layout, generated = _setup(engine, text, hole, hole, budget=16)
    ranked = _Ranked(engine.vocab_size, {engine.tokenizer.encode("[")[0]: -0.1})
    pick = choose(replace(engine, backend=ranked), text, syntax.parse(text, "python"), layout, _result(_rows(engine, layout, ["x * 2"]), [-1.0]),
                  generated, "python", 1, 2, _no_resample, search_tokens=2)
    assert pick.parses is True and pick.searched and pick.fills == ("x * 2",) and pick.score == pytest.approx(-1.0)


def test_symbol_tokens_are_punctuation_and_blanks_only(engine):
    tok = engine.tokenizer
    texts = {tok.decode([int(i)]) for i in tok.symbol_ids}
    assert {"(", ")", ":", "\n"} <= texts
    assert all(t and not any(c.isalnum() or c == "_" or c == "\ufffd" for c in t) for t in texts)
    assert not {engine.tokens.mask, engine.tokens.span_pad} & {int(i) for i in tok.symbol_ids}


def test_exact_length_turns_the_constrained_search_off(engine):
    """``--exact-length N`` promises N tokens: the search's 1..3-token fills would break it."""
    from dataclasses import replace

    from dcoder.config import SamplerConfig
    from dcoder.infill import InfillOptions, infill

    text = "def f(x):\n    if :\n        return 1\n"
    hole = at(text, "if ") + 3
    ranked = _Ranked(engine.vocab_size, {engine.tokenizer.encode(")")[0]: -0.1, engine.tokenizer.encode("x")[0]: -1.0})
    opts = InfillOptions(sampler=SamplerConfig(steps=2), exact_length=2, language="python", repair_rounds=0)
    result = infill(replace(engine, backend=ranked), text, [(hole, hole)], opts)
    assert result.parses is False and not result.searched and result.edits[0].text == "))"
    searched = infill(replace(engine, backend=ranked), text, [(hole, hole)], replace(opts, exact_length=None, max_tokens=2))
    assert searched.parses is True and searched.searched and searched.edits[0].text == "x"


def test_constrained_search_gives_up_flagged_when_nothing_parses(engine):
    from dataclasses import replace

    from dcoder.syntax.validity import choose

    text = "def f(x):\n    if :\n        return 1\n"
    hole = at(text, "if ") + 3
    layout, generated = _setup(engine, text, hole, hole, budget=16)
    only = _Ranked(engine.vocab_size, {engine.tokenizer.encode(")")[0]: -0.1})
    only.logp[:] = np.where(only.logp == -20.0, -np.inf, only.logp)  # nothing else is possible
    pick = choose(replace(engine, backend=only), text, syntax.parse(text, "python"), layout, _result(_rows(engine, layout, [""]), [-0.1]),
                  generated, "python", 1, 0, _no_resample, search_tokens=1)
    assert pick.parses is False and pick.searched and pick.fills == ("",)


def test_constrained_search_leaves_a_long_selection_alone(engine):
    """A broken rewrite of a whole body is not swapped for a short fill that happens to parse."""
    from dataclasses import replace

    from dcoder.syntax.validity import choose

    text = "def f(x):\n    y = x * 2 + 1\n    return y\n"
    start, end = at(text, "y = x"), at(text, "return y") + len("return y")
    layout, generated = _setup(engine, text, start, end, budget=16)
    ranked = _Ranked(engine.vocab_size, {engine.tokenizer.encode("x")[0]: -0.1})
    pick = choose(replace(engine, backend=ranked), text, syntax.parse(text, "python"), layout, _result(_rows(engine, layout, ["(("]), [-0.1]),
                  generated, "python", 1, 0, _no_resample, search_tokens=3)
    assert pick.parses is False and not pick.searched and pick.fills == ("((",) and ranked.calls == []


@pytest.mark.parametrize("temperature, repair_batch", [(0.0, 1), (0.7, 3)])
def test_greedy_repair_rounds_denoise_identical_rows_once(engine, temperature, repair_batch):
    """A repair round repeats one row per candidate: greedy decoding would resolve them all alike."""
    from dataclasses import replace

    from dcoder.config import SamplerConfig
    from dcoder.infill import InfillOptions, infill

    text = "def f(x):\n    if :\n        return 1\n"
    hole = at(text, "if ") + 3
    ranked = _Ranked(engine.vocab_size, {engine.tokenizer.encode(")")[0]: -0.1})  # never parses
    opts = InfillOptions(sampler=SamplerConfig(steps=2, temperature=temperature), max_tokens=8, language="python",
                         candidates=3, repair_rounds=1, search_tokens=0)
    result = infill(replace(engine, backend=ranked), text, [(hole, hole)], opts)
    assert result.parses is False and result.repairs == 1
    assert ranked.calls[:2] == [3, 3] and set(ranked.calls[2:]) == {repair_batch}


def test_extra_candidates_get_fixed_lengths(engine):
    from dcoder.infill import InfillOptions, _candidates

    text = "x = 1\n\ny = 2\n"
    layout, _ = _setup(engine, text, 6, 6, budget=16)
    batch, fixed = _candidates(engine, layout, layout.ids, InfillOptions(candidates=4))
    a, b = layout.slots[0]
    lengths = [(row[a:b] == engine.tokens.mask).sum() for row in batch]
    assert lengths == [16, 1, 2, 4] and fixed.tolist() == [False, True, True, True]
    assert all((row[a + n:b] == engine.tokens.span_pad).all() for row, n in zip(batch[1:], lengths[1:]))


def test_infill_flag_matches_whether_the_result_parses(engine):
    from dcoder.config import SamplerConfig
    from dcoder.infill import InfillOptions, infill

    text = "def add(a, b):\n    return a + b\n\n\nx = add(1, 2)\n"
    r = syntax.region(text, at(text, "a + b"), "function.inner")
    opts = InfillOptions(sampler=SamplerConfig(steps=4), max_tokens=8, language="python", candidates=2,
                         repair_rounds=1)
    result = infill(engine, text, [(r.start, r.end)], opts)
    assert result.parses is not None
    assert result.parses == (not syntax.parse(result.text, "python").has_error)
    plain = infill(engine, text, [(r.start, r.end)], InfillOptions(sampler=SamplerConfig(steps=4), max_tokens=8))
    assert plain.parses is None and plain.repairs == 0


def _parsed_sizes(monkeypatch) -> list[int]:
    """The length of every text tree-sitter parses from now on."""
    sizes, init = [], syntax.Document.__init__

    def spy(self, text, grammar, old_tree=None):
        sizes.append(len(text))
        init(self, text, grammar, old_tree)

    monkeypatch.setattr(syntax.Document, "__init__", spy)
    return sizes


@pytest.mark.parametrize("where", ["middle", "end"])
def test_candidates_in_a_large_file_are_parsed_in_an_excerpt(engine, monkeypatch, where):
    """What a candidate costs does not grow with the file: the search parses its fills in an
    excerpt around the hole, and only the fill chosen in the whole file."""
    from dataclasses import replace

    from dcoder.syntax.validity import WINDOW, choose

    small = "for a  b:\n    pass\n"
    text = FAR + small + (FAR if where == "middle" else "")
    hole = at(text, "for a ") + len("for a ")
    layout, generated = _setup(engine, text, hole, hole, budget=16)
    tok = {s: engine.tokenizer.encode(s)[0] for s in (")", ".", "x")}
    ranked = _Ranked(engine.vocab_size, {tok[")"]: -0.1, tok["."]: -0.2, tok["x"]: -0.3})
    sizes = _parsed_sizes(monkeypatch)
    pick = choose(replace(engine, backend=ranked), text, syntax.parse(text, "python"), layout, _result(_rows(engine, layout, [""]), [-0.1]),
                  generated, "python", 1, 0, _no_resample, search_tokens=2)
    assert pick.parses is True and pick.searched and pick.fills[0].strip() == "in"
    assert len(sizes) > 50 and all(n <= WINDOW + 100 for n in sizes if n < len(text) - 100)  # + the fill
    assert sum(n > WINDOW + 100 for n in sizes) == 2  # the file, and the file with the fill chosen


def test_a_fill_valid_in_its_excerpt_that_breaks_the_file_is_flagged(engine, monkeypatch):
    """The whole file has the last word: here an excerpt cut inside a list takes ``x = 3`` for a
    statement, which it is not in the list."""
    from dcoder.syntax.validity import choose

    text = FAR + "y = [\n    1,\n    \n]\n" + FAR
    hole = at(text, "1,\n    ") + len("1,\n    ")
    cut = (at(text, "    1,"), hole + 1)
    monkeypatch.setattr(syntax.Document, "excerpt", lambda self, ranges, size: [cut])
    layout, generated = _setup(engine, text, hole, hole, budget=16)
    pick = choose(engine, text, syntax.parse(text, "python"), layout, _result(_rows(engine, layout, ["x = 3"]), [-0.1]), generated, "python", 1, 0,
                  _no_resample)
    assert pick.fills == ("x = 3",) and pick.parses is False


def test_a_search_that_must_stop_stops_at_once(engine, monkeypatch):
    """Cancellation and the deadline reach the constrained search: no candidate is parsed after
    ``stop`` says so, and the best fill found by then comes back."""
    from dataclasses import replace

    from dcoder.syntax import validity

    text = "def f(x):\n    \n    rn x\n"
    hole = at(text, "    \n    ") + len("    \n    ")
    layout, generated = _setup(engine, text, hole, hole, budget=16)
    tok = {s: engine.tokenizer.encode(s)[0] for s in (")", ".", "x")}
    ranked = _Ranked(engine.vocab_size, {tok[")"]: -0.1, tok["."]: -0.2, tok["x"]: -0.3})
    checked, candidate = [], validity.Checker.candidate

    def counted(self, *args):
        checked.append(1)
        return candidate(self, *args)

    monkeypatch.setattr(validity.Checker, "candidate", counted)
    run = lambda stop: validity.choose(replace(engine, backend=ranked), text, syntax.parse(text, "python"), layout,  # noqa: E731
                                       _result(_rows(engine, layout, [""]), [-0.1]), generated, "python", 1, 0,
                                       _no_resample, search_tokens=4, stop=stop)
    whole = run(lambda: False)
    assert whole.parses is True and len(checked) > 100
    checked.clear()
    stopped = run(lambda: len(checked) >= 20)
    # (the candidate being checked may be judged once more, a blank after it)
    assert len(checked) <= 21 and stopped.searched and stopped.parses is False and stopped.fills == ("",)


def test_infill_returns_the_best_fill_so_far_at_the_deadline(engine, monkeypatch):
    """The clock jumps past the deadline when the constrained search starts: the search ends at
    once and the fill of the repair rounds comes back, marked; a deadline that passes while the
    model is still denoising leaves no fill: one clear error."""
    from dataclasses import replace

    from dcoder import infill as infill_module
    from dcoder.config import SamplerConfig
    from dcoder.infill import DeadlinePassed, InfillOptions, infill
    from dcoder.syntax import search as searching

    now = [0.0]
    monkeypatch.setattr(infill_module.time, "monotonic", lambda: now[0])
    search = searching.search

    def late(*args):
        now[0] += 100
        return search(*args)

    monkeypatch.setattr(searching, "search", late)
    text = "def f(x):\n    if :\n        return 1\n"
    hole = at(text, "if ") + 3
    ranked = _Ranked(engine.vocab_size, {engine.tokenizer.encode(")")[0]: -0.1, engine.tokenizer.encode("x")[0]: -1.0})
    opts = InfillOptions(sampler=SamplerConfig(steps=2), max_tokens=2, language="python", repair_rounds=1, deadline=10)
    result = infill(replace(engine, backend=ranked), text, [(hole, hole)], opts)
    assert result.timed_out and not result.cancelled and result.parses is False and result.searched
    assert len(ranked.calls) == 2 + 2 + 1  # first pass, the repair round, one search pass

    def slow(step):
        now[0] += 1  # a second per denoising step
    with pytest.raises(DeadlinePassed, match=r"^no fill within the deadline of 10 s"):
        infill(replace(engine, backend=ranked), text, [(hole, hole)], replace(opts, max_tokens=16, sampler=SamplerConfig(steps=32)),
               on_progress=slow)
    # cancelled when the search starts (the caller is asked before the clock)
    start = now[0]
    cancelled = infill(replace(engine, backend=ranked), text, [(hole, hole)], opts, cancelled=lambda: now[0] > start)
    assert cancelled.cancelled and not cancelled.timed_out and cancelled.searched
