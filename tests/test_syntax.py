"""Syntax regions, syntax-valid fills, indentation fitting, training spans and the `regions` /
`infill --region` commands, on real code with real tree-sitter (issue 4)."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from regions_support import at, expansions

from dcoder import syntax
from dcoder.engine.sampler import SampleResult
from dcoder.engine.spans import Span, bucket, build_layout, default_budget
from dcoder.syntax.indent import fit, line_ending, reindent, trim_blank_tail

CODE = textwrap.dedent('''\
    import os
    from typing import (Any,
        Dict)


    def outer(x):
        def inner(y: int = 2, *rest, **kw):
            return [v * y for v in rest if v > 0]
        return inner


    @cache
    @wraps(f)
    async def fetch(url, /, *, timeout=None):
        """Fetch {url}."""
        async with session.get(url) as r:
            data = await r.json()
        key = lambda d, k=1: d[k]
        total += len(data)
        assert data, "empty"
        msg = f"{data['x']} of {{total}}"
        match data:
            case {"kind": kind}:
                pass
        while total > 10:
            total -= 1
        return key(data) if data else call()


    class Box(Base):
        """A box."""

        def größe(self, ä):
            return ä * 2
''')


def named(text: str, marker: str, name: str, offset: int = 0) -> str:
    r = syntax.region(text, at(text, marker, offset), name)
    assert r is not None, (marker, name, [x.name for x in syntax.regions_at(text, at(text, marker, offset))])
    return text[r.start:r.end]


@pytest.mark.parametrize("marker, name, expected", [
    ("v * y", "comprehension", "[v * y for v in rest if v > 0]"),
    ("v > 0", "condition", "v > 0"),
    ("v * y", "return.value", "[v * y for v in rest if v > 0]"),
    ("v * y", "function.inner", "return [v * y for v in rest if v > 0]"),
    ("= 2, *rest", "parameter", "y: int = 2"),
    ("= 2, *rest", "parameters", "y: int = 2, *rest, **kw"),
    ("url, /", "parameters", "url, /, *, timeout=None"),
    ("Fetch", "docstring", "Fetch {url}."),
    ("Fetch", "string", '"""Fetch {url}."""'),
    ("A box", "docstring", "A box."),
    ("k=1", "lambda", "lambda d, k=1: d[k]"),
    ("k=1", "parameter", "k=1"),
    ("k=1", "assignment.rhs", "lambda d, k=1: d[k]"),
    ("len(data)", "assignment.rhs", "len(data)"),
    ("data)\n    assert", "call.inner", "data"),
    ("len(data)", "call.outer", "len(data)"),
    ('data, "empty"', "condition", "data"),
    ("{data['x']}", "string", "f\"{data['x']} of {{total}}\""),
    ("{data['x']}", "assignment.rhs", "f\"{data['x']} of {{total}}\""),
    ('"kind"', "string", '"kind"'),
    ("pass", "statement", "pass"),
    ("total > 10", "condition", "total > 10"),
    ("total -= 1", "block", "total -= 1"),
    ("call()", "return.value", "key(data) if data else call()"),
    ("data else", "condition", "data"),
    ("Dict", "import", "from typing import (Any,\n    Dict)"),
    ("os", "import", "import os"),
    ("wraps", "decorator", "@wraps(f)"),
    ("ä * 2", "return.value", "ä * 2"),
    ("größe", "function.outer", "def größe(self, ä):\n        return ä * 2"),
    ("A box", "class.inner", CODE[CODE.index('"""A box') : CODE.index("ä * 2") + 5]),
])
def test_region_vocabulary_on_real_code(marker, name, expected):
    assert syntax.parse(CODE, "python").has_error is False
    assert named(CODE, marker, name) == expected


def test_regions_are_listed_innermost_first_through_nested_and_decorated_defs():
    pos = at(CODE, "v * y")
    found = syntax.regions_at(CODE, pos)
    spans = [(r.start, r.end) for r in found]
    assert all(a <= pos <= b for a, b in spans)
    # each next region contains the previous one
    assert all(a2 <= a1 and b1 <= b2 for (a1, b1), (a2, b2) in zip(spans, spans[1:]))
    outers = [CODE[r.start:r.end].split("(")[0] for r in found if r.name == "function.outer"]
    assert outers == ["def inner", "def outer"]
    deco = [CODE[r.start:r.end].split("(")[0].split("\n")[0] for r in syntax.regions_at(CODE, at(CODE, "url, /"))
            if r.name == "function.outer"]
    assert deco == ["async def fetch", "@cache"]  # without, then with its decorators


def test_empty_brackets_give_zero_width_insides():
    text = "def f():\n    return g()\n"
    params = syntax.region(text, at(text, "f()") + 2, "parameters")
    args = syntax.region(text, at(text, "g()") + 2, "call.inner")
    assert (params.start, params.end) == (at(text, "f()") + 2,) * 2
    assert (args.start, args.end) == (at(text, "g()") + 2,) * 2


def test_crlf_tabs_and_non_ascii_keep_character_offsets():
    text = "def größe(ä):\r\n\tif ä:\r\n\t\treturn 'ü' * ä\r\n\treturn None\r\n"
    assert named(text, "'ü' * ä", "return.value") == "'ü' * ä"
    assert named(text, "ä:", "condition") == "ä"
    assert named(text, "if ä", "function.inner") == "if ä:\r\n\t\treturn 'ü' * ä\r\n\treturn None"
    assert named(text, "ä)", "parameters") == "ä"


def test_expand_is_monotone_up_to_the_module():
    doc = syntax.parse(CODE, "python")
    chain = expansions(doc, CODE, "v * y")
    # the inner body is that one statement: expanding skips regions of the same range
    assert [r.name for r in chain][:3] == ["comprehension", "statement", "function.outer"]
    assert CODE[chain[-1].start:chain[-1].end].startswith("def outer")
    assert syntax.expand(CODE, (at(CODE, "y:"), at(CODE, "y:") + 1)).name == "parameter"


def test_one_capture_over_several_nodes_runs_from_first_to_last():
    from tree_sitter import Query

    py = syntax.grammar("python")
    g = syntax.Grammar("python", py.language, Query(py.language, "(argument_list (identifier) @names (identifier) @names)"), {})
    text = "f(1, a, b)\n"
    (r,) = syntax.Document(text, g).regions()
    assert text[r.start:r.end] == "a, b"


def test_incremental_reparse_matches_a_fresh_parse():
    doc = syntax.parse(CODE, "python")
    start = at(CODE, "v > 0")
    new_text = CODE[:start] + "v >= limit(0)" + CODE[start + 5:]
    edited = syntax.parse(new_text, "python", old=doc, edit=(start, start + 5, "v >= limit(0)"))
    fresh = syntax.parse(new_text, "python")
    assert str(edited.tree.root_node) == str(fresh.tree.root_node)
    assert edited.regions() == fresh.regions()
    assert named(new_text, "v >= limit", "condition") == "v >= limit(0)"
    with pytest.raises(ValueError):
        syntax.parse("something else", "python", old=doc, edit=(0, 1, "x"))


def test_language_from_extension_and_lsp_id():
    assert syntax.language_of("a/b.py") == "python" and syntax.language_of("x.PYI") == "python"
    assert syntax.language_of("main.rs") == "rust" and syntax.language_of("notes.txt") is None
    assert syntax.language_of(language_id="python") == "python"
    assert syntax.language_of("x.txt", language_id="typescriptreact") == "tsx"
    assert "function.inner" in syntax.region_names("python")


def test_unknown_language_falls_back_with_a_note():
    assert syntax.parse(CODE, None) is None and syntax.regions_at(CODE, 5, None) == []
    assert syntax.parse(CODE, "no-such-language") is None
    assert syntax.region_names("no-such-language") == []
    for lang in (None, "no-such-language"):
        line = syntax.note(lang)
        assert line and "\n" not in line and "plain character spans" in line
    assert syntax.note("python") is None


def test_introduced_problems_ignore_errors_the_file_already_had():
    before = syntax.parse("x = (1,\ny = 2\n", "python")
    assert before.has_error
    ok = before.edit(at(before.text, "2"), at(before.text, "2") + 1, "3")
    assert syntax.introduced_problems(before, ok, [(at(before.text, "2"), at(before.text, "2") + 1, "3")]) == []
    clean = syntax.parse("y = f(a)\n", "python")
    broken = clean.edit(6, 7, "a +")
    (p,) = syntax.introduced_problems(clean, broken, [(6, 7, "a +")])
    assert p.kind.startswith(("ERROR", "MISSING"))


# ---- syntax-valid fills ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def engine(dream_ckpt):
    from dcoder.engine.load import load_engine

    return load_engine(dream_ckpt)


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


@pytest.mark.parametrize("text, offset, want", [
    ('x = f"""ab cd"""\n', 10, '"""'),  # prefix letters are not part of the closing quotes
    ("x = r'a'\n", 7, "'"),  # just before the closing quote is still inside
    ('x = "\\n\\t"\n', 7, '"'),  # escape sequences are no delimiters
    ('x = "a"\n', 4, None),  # before the string
    ('x = "a"\n', 7, None),  # after it
    ("x = 1\n", 3, None),
])
def test_string_delimiter(text, offset, want):
    from dcoder import syntax

    assert syntax.parse(text, "python").string_delimiter(offset) == want


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


def test_grammar_keywords_come_from_the_grammar():
    from dcoder import syntax

    words = syntax.grammar("python").keywords
    assert {"in", "return", "lambda", "except", "not"} <= set(words)
    assert not {"(", ":", "identifier", ""} & set(words)


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


def test_a_query_file_with_an_unknown_capture_name_is_a_clear_error(tmp_path, monkeypatch):
    from dcoder.errors import DcoderError
    from dcoder.syntax import languages

    (tmp_path / "javascript").mkdir()
    (tmp_path / "javascript" / "regions.scm").write_text("(function_declaration body: (_) @function.body)\n")
    monkeypatch.setattr(languages, "GRAMMAR_DIRS", (tmp_path,))
    syntax.grammar.cache_clear()
    try:
        with pytest.raises(DcoderError, match=r"regions.scm: unknown capture name\(s\) function.body"):
            syntax.grammar("javascript")
    finally:
        syntax.grammar.cache_clear()


def test_every_query_file_uses_the_shared_vocabulary():
    names = {lang: set(syntax.region_names(lang)) for lang in ("python", "javascript", "typescript", "tsx", "rust", "go", "java", "c", "cpp", "ruby")}
    assert all(n and n <= syntax.CAPTURES for n in names.values()), names
    assert names["python"] == syntax.CAPTURES  # Python has every kind of region
    assert names["tsx"] == names["typescript"]  # tsx shares the TypeScript query


def test_a_parse_error_without_an_error_node_is_still_a_problem():
    """tree-sitter can recover without leaving an ERROR or MISSING node; the node it flags is blamed."""
    text = 'def check(name):\n    """Doc."""\n    try:\n        return registry.find(name).n "ascii"\n' \
           '    except KeyError:\n        return False\n'
    doc = syntax.parse(text, "python")
    assert doc.has_error
    (p,) = doc.problems()
    assert p.start <= at(text, ".n ") < p.end


def test_introduced_problems_count_leftovers_on_the_holes_line():
    """A cut ``name = getattr(default, "name", None)`` leaves a ``)`` that does not touch the hole."""
    before = syntax.parse('if x:\n    n|ault, "name", None)\ny = 1\n'.replace("|", ""), "python")
    hole = at(before.text, "nault") + 1
    assert syntax.introduced_problems(before, before, [(hole, hole, "")])
    fill = "ame = getattr(def"
    fixed = before.edit(hole, hole, fill)
    assert not fixed.has_error and syntax.introduced_problems(before, fixed, [(hole, hole, fill)]) == []


def test_introduced_problems_count_breakage_left_at_the_hole():
    before = syntax.parse("if :\n    pass\ny = 1\n", "python")
    hole = 3
    assert before.has_error
    assert syntax.introduced_problems(before, before, [(hole, hole, "")])  # an empty fill mends nothing
    fixed = before.edit(hole, hole, "x")
    assert syntax.introduced_problems(before, fixed, [(hole, hole, "x")]) == []
    elsewhere = syntax.parse("if :\n    pass\ny = 1\n", "python")
    far = at(elsewhere.text, "1")
    assert syntax.introduced_problems(elsewhere, elsewhere.edit(far, far + 1, "2"), [(far, far + 1, "2")]) == []


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


# ---- indentation and budgets -------------------------------------------------------------------

def test_multiline_fill_is_reindented_to_its_block():
    text = "def f():\n    pass\n"
    start = at(text, "pass")
    assert fit(text, start, start + 4, "x = 1\nif x:\n    y = 2\nreturn x") == \
        "x = 1\n    if x:\n        y = 2\n    return x"
    # already at the block's indentation: unchanged
    assert fit(text, start, start + 4, "x = 1\n    return x") == "x = 1\n    return x"
    # replacing code that starts there: leading blanks would double the indentation
    assert fit(text, start, start + 4, "    x = 1") == "x = 1"


def test_fit_keeps_tabs_and_crlf():
    text = "def f():\r\n\tpass\r\n"
    start = at(text, "pass")
    assert line_ending(text) == "\r\n" and line_ending("a\nb\nc\r\n") == "\n"
    assert fit(text, start, start + 4, "x = 1\nreturn x") == "x = 1\r\n\treturn x"
    assert reindent("a\n\n  b", "    ") == "a\n\n    b"  # blank lines stay blank


def test_fit_drops_the_blank_lines_a_fill_is_padded_with():
    text = "def f(a):\n    return \n\n\ndef g():\n    pass\n"
    hole = text.index("return ") + 7
    assert fit(text, hole, hole, "\n" * 32) == "\n"  # a hole the model could not fill
    assert fit(text, hole, hole, "a\n\n\n") == "a\n" and fit(text, hole, hole, "a") == "a"
    # blanks after the last line break indent what follows; blank lines' own blanks go
    assert trim_blank_tail("x\n  \n\t\n    ", "") == "x\n    "
    # a rewrite keeps as many trailing line breaks as the code it replaces had
    body = text.index("def f")
    assert fit(text, body, hole + 3, "def f(a):\n    return a\n\n\n\n\n") == "def f(a):\n    return a\n\n\n"
    crlf = text.replace("\n", "\r\n")
    hole = crlf.index("return ") + 7
    assert fit(crlf, hole, hole, "a\n\n\n") == "a\r\n"


def test_region_kind_sets_the_budget(engine):
    text = "def f():\n    return 1\n"
    r = syntax.region(text, at(text, "1"), "function.inner")
    body = default_budget(text, r.start, r.end, engine.tokenizer, "function.inner")
    plain = default_budget(text, r.start, r.end, engine.tokenizer)
    assert body == 128 and plain < body
    big = "x = 1\n    " * 80
    assert default_budget(big, 0, len(big), engine.tokenizer, "function.inner") == bucket(
        int(len(engine.tokenizer.encode(big)) * 1.5) + 8)


# ---- training spans ----------------------------------------------------------------------------

def test_training_spans_are_in_bounds_seeded_and_syntax_spans_are_regions():
    from dcoder.training.objective import MAX_CHAR_SPAN, SyntaxSpans, char_span, line_span

    regions = {(r.start, r.end) for r in syntax.parse(CODE, "python").regions()}
    spans = SyntaxSpans([CODE, "no python here (\n"], max_chars=2000)
    kinds = set()
    for seed in range(40):
        draw = [f(CODE, np.random.default_rng(seed)) for f in (char_span, line_span)]
        assert draw == [f(CODE, np.random.default_rng(seed)) for f in (char_span, line_span)]
        (a, b), (c, d) = draw
        assert 0 <= a < b <= len(CODE) and b - a <= MAX_CHAR_SPAN
        assert 0 <= c < d <= len(CODE) and CODE[c:d].strip() and (c == 0 or CODE[c - 1] in "\n \t")
        region = spans(0, np.random.default_rng(seed))
        assert region in regions
        kinds.add(next(r.name for r in syntax.parse(CODE, "python").regions() if (r.start, r.end) == region))
    assert len(kinds) > 3  # kind first, then a region of it: small regions do not crowd out the rest
    broken = spans(1, np.random.default_rng(0))
    assert broken is None or broken[1] <= len("no python here (\n")


# ---- command line ------------------------------------------------------------------------------

def dcoder(*args):
    return subprocess.run([sys.executable, "-m", "dcoder", *map(str, args)], capture_output=True,
                          text=True, timeout=300)


@pytest.fixture()
def code_file(tmp_path):
    p = tmp_path / "code.py"
    p.write_text(CODE, encoding="utf-8")
    return p


def test_cli_regions_lists_innermost_first(code_file):
    pos = at(CODE, "v > 0")
    line, col = CODE[:pos].count("\n") + 1, pos - CODE.rfind("\n", 0, pos)  # in "return [v * y ...]"
    r = dcoder("regions", code_file, "--at", f"{line}:{col}")
    assert r.returncode == 0, r.stderr
    rows = [ln.split() for ln in r.stdout.splitlines()]
    assert rows[0] == ["condition", f"{line}:{col}-{line}:{col + 5}", "comparison_operator"]
    assert [row[0] for row in rows[:3]] == ["condition", "comprehension", "return.value"]
    j = dcoder("regions", code_file, "--at", f"{line}:{col}", "--json")
    out = json.loads(j.stdout)
    assert out["language"] == "python" and out["position"] == {"line": line, "column": col}
    first = out["regions"][0]
    assert CODE[first["start_offset"]:first["end_offset"]] == "v > 0"
    assert [x["name"] for x in out["regions"]] == [row[0] for row in rows]


def test_cli_regions_unknown_language_is_a_note(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text(CODE, encoding="utf-8")
    r = dcoder("regions", f, "--at", "1:1")
    assert r.returncode == 0 and r.stdout == ""
    assert r.stderr.startswith("dcoder: note: ") and r.stderr.count("\n") == 1
    r = dcoder("regions", f, "--at", "1:3", "--language", "python")
    assert r.stdout.split()[0] == "import"


def test_cli_bad_region_is_a_one_line_error(code_file):
    for args, says in [(("--region", "function.body", "--at", "7:9"), "unknown region 'function.body'"),
                       (("--region", "function.inner"), "--region needs --at"),
                       (("--region", "decorator", "--at", "1:1"), "no decorator region at 1:1")]:
        r = dcoder("infill", code_file, *args, "--model", "/nonexistent")
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and says in r.stderr, r.stderr
        assert r.stderr.startswith("dcoder: error: ")


def test_cli_infill_region_end_to_end(dream_ckpt, tmp_path):
    f = tmp_path / "add.py"
    text = "def add(a, b):\n    total = a + b\n    return total\n\n\nprint(add(1, 2))\n"
    f.write_text(text, encoding="utf-8")
    r = dcoder("infill", f, "--region", "function.inner", "--at", "3:8", "--model", dream_ckpt, "--json",
               "--steps", "4", "--max-tokens", "8", "--candidates", "2", "--repair", "1")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    (edit,) = out["edits"]
    assert text[edit["start_offset"]:edit["end_offset"]] == "total = a + b\n    return total"
    assert out["parses"] in (True, False) and out["repairs"] in (0, 1) and out["searched"] in (True, False)
    assert ("dcoder: warning: the fill does not parse" in r.stderr) == (out["parses"] is False)


def test_cli_in_place_refuses_a_fill_that_breaks_the_file(dream_ckpt, tmp_path):
    f = tmp_path / "add.py"
    text = "def add(a, b):\n    return a + b\n"
    f.write_text(text, encoding="utf-8")
    args = ("infill", f, "--region", "function.inner", "--at", "2:5", "--model", dream_ckpt, "--steps", "4",
            "--max-tokens", "16", "--repair", "0", "--search-tokens", "0")
    r = dcoder(*args, "--in-place")  # the random checkpoint's fill here is not Python
    assert r.returncode == 2 and "left unchanged" in r.stderr and f.read_text() == text
    r = dcoder(*args, "--in-place", "--allow-broken")
    assert r.returncode == 0 and "dcoder: warning:" in r.stderr and f.read_text() != text


def test_lookups_near_a_position_agree_with_the_whole_file_query():
    """regions_at / expand / kind_of query only the top-level nodes around the position."""
    text = CODE + "\n\nimport os, sys\n\n\n@decorator(1)\nclass Tail:\n    x = [i for i in range(3)]\n"
    full = syntax.parse(text, "python").regions()
    for pos in range(0, len(text) + 1, 3):
        doc = syntax.parse(text, "python")
        assert doc.regions_at(pos) == [r for r in full if r.start <= pos <= r.end], pos
        grown = next((r for r in full if r.start <= pos and pos + 1 <= r.end and (r.start, r.end) != (pos, pos + 1)), None)
        assert syntax.parse(text, "python").expand(pos, min(pos + 1, len(text))) == grown or pos == len(text)
    for r in full[::7]:
        assert syntax.parse(text, "python").kind_of(r.start, r.end) == next(
            x.name for x in full if (x.start, x.end) == (r.start, r.end))


# ---- bounded work: an excerpt of a large file, cancellation and the deadline ----------------

FAR = "".join(f"def g{i}(x):\n    return x + {i}\n\n\n" for i in range(6000))  # 210 kB of valid code


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


def test_excerpt_is_a_run_of_whole_statements_around_each_range():
    text = FAR + "class C:\n    def m(self):\n        s = '''\n" + "text\n" * 5000 + "'''\n        return s\n" + FAR
    doc = syntax.parse(text, "python")
    first = text.index("def g3000(")
    (a, b), = doc.excerpt([(first, first + 3)], 4096)
    assert a <= first < b and b - a <= 4096
    assert text[a:].startswith("def g") and text[a - 1] == "\n" and text[b - 1] == "\n"
    assert not syntax.Document(text[a:b], doc.grammar).problems()
    # two ranges far apart: two excerpts; close together: one
    second = text.index("def g5000(")
    assert len(doc.excerpt([(first, first), (second, second)], 4096)) == 2
    assert len(doc.excerpt([(first, first), (first + 40, first + 40)], 4096)) == 1
    # inside a string longer than the window: the lines around the range
    inside = text.index("text\n" * 2500)
    (a, b), = doc.excerpt([(inside, inside)], 4096)
    assert a <= inside < b and b - a <= 4096 + 10 and set(text[a:b].split()) == {"text"}


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
