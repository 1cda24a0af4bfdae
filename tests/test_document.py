"""Parsed documents (dcoder/syntax/document.py): regions on real Python code, expansion,
incremental reparsing, parse problems, lookups near a position and excerpts, with real tree-sitter."""

import pytest
from regions_support import CODE, FAR, at, expansions

from dcoder import syntax


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


def test_introduced_problems_ignore_errors_the_file_already_had():
    before = syntax.parse("x = (1,\ny = 2\n", "python")
    assert before.has_error
    ok = before.edit(at(before.text, "2"), at(before.text, "2") + 1, "3")
    assert syntax.introduced_problems(before, ok, [(at(before.text, "2"), at(before.text, "2") + 1, "3")]) == []
    clean = syntax.parse("y = f(a)\n", "python")
    broken = clean.edit(6, 7, "a +")
    (p,) = syntax.introduced_problems(clean, broken, [(6, 7, "a +")])
    assert p.kind.startswith(("ERROR", "MISSING"))


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
