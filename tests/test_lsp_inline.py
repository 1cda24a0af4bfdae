"""Language server inline completion and completion, and the ghost-text tidying behind them.

The real ``dcoder lsp`` process over JSON-RPC (pytest-lsp), running an ONNX export of a tiny
random checkpoint (what it writes is noise; where it goes, when, and what it leaves untouched is
checked)."""

from __future__ import annotations

from conftest import SAMPLE
from lsp_support import aio, inline, open_doc
from lsprotocol import types as t
from pytest_lsp import LanguageClient

from dcoder_lsp.completion import balance, drop_repeated_suffix, tidy
from dcoder_lsp.documents import Document
from dcoder_lsp.operations import single_line

CODE = SAMPLE  # the engine tests' sample file


@aio
async def test_inline_completion_goes_at_the_cursor(client: LanguageClient):
    uri = open_doc(client, "inline.py", CODE)
    found = []
    for line, col in [(2, 4), (11, 8), (4, 0), (6, 13)]:
        result = await inline(client, uri, line, col)
        for item in result.items:
            assert item.range.start == item.range.end == t.Position(line, col)
            assert item.insert_text.strip()
            found.append(item.insert_text)
    assert found, "the tiny model offered nothing anywhere"


@aio
async def test_inline_completion_mid_line_is_one_line(client: LanguageClient):
    uri = open_doc(client, "midline.py", CODE)
    for line, col in [(2, 11), (7, 21), (10, 19), (0, 8)]:
        result = await inline(client, uri, line, col)
        assert all("\n" not in item.insert_text for item in result.items)


@aio
async def test_completion_item_carries_the_same_text(client: LanguageClient):
    uri = open_doc(client, "complete.py", CODE)
    inline_result = await inline(client, uri, 11, 8)
    result = await client.text_document_completion_async(t.CompletionParams(t.TextDocumentIdentifier(uri), t.Position(11, 8)))
    assert result.is_incomplete
    assert [i.text_edit.new_text for i in result.items] == [i.insert_text for i in inline_result.items]
    for item in result.items:
        assert item.text_edit.range == t.Range(t.Position(11, 8), t.Position(11, 8))


def test_ghost_text_never_repeats_the_suffix():
    assert drop_repeated_suffix("a + b)", ")") == "a + b"
    assert tidy("x, y):\n    pass", "def f(", "):\n", single_line=True) == "x, y"
    assert drop_repeated_suffix("total = 0\n    return total", "\n    return total\n") == "total = 0"
    assert tidy("len(items)]", "first = [", "]\n", single_line=True) == "len(items)"


def test_ghost_text_keeps_brackets_balanced():
    assert balance("foo(a, [b", "x = ", "\n") == "foo"  # opens and never closes: cut
    assert balance("a)) + 1", "f(", "\n") == "a)"  # closes f( then a stray ")": cut there
    assert balance("a)", "f(", ")\n") == "a"  # the suffix already closes f(
    assert balance("d[k] + {1: (2)}", "y = ", "") == "d[k] + {1: (2)}"
    assert balance("s = ')' + x", "", "") == "s = ')' + x"  # brackets in strings do not count


def test_single_line_or_block_from_the_syntax_context():
    text = "def f(a, b):\n    \n    return g(a, )\n"
    doc = Document("file:///x.py", "python", 1, text)
    assert not single_line(doc, text.index("\n    \n") + 5)  # empty line in a body: a block
    assert single_line(doc, text.index(", )") + 2)  # inside the arguments, code follows: one line
    assert tidy("x = 1\n    y = 2\nz = 3", "def f():\n    ", "\n", single_line=False) == "x = 1\n    y = 2"
    assert tidy("x = 1\n    y = 2", "f(", ")\n", single_line=True) == "x = 1"
