"""Fitting a fill to its place (dcoder/syntax/indent.py): indentation, tabs, CRLF, blank lines."""

from regions_support import at

from dcoder.syntax.indent import fit, line_ending, reindent, trim_blank_tail


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
