"""Language server positions: UTF-16, UTF-8 and UTF-32 encodings, non-ASCII text, CRLF.

The real ``dcoder lsp`` process over JSON-RPC (pytest-lsp), running an ONNX export of a tiny
random checkpoint (what it writes is noise; where it goes, when, and what it leaves untouched is
checked)."""

from __future__ import annotations

from conftest import SAMPLE
from lsp_support import (
    actions_at,
    aio,
    apply,
    command,
    edits_of,
    inline,
    offset_of,
    open_doc,
    previews_for,
    resolve,
    titled,
)
from lsprotocol import types as t
from pytest_lsp import LanguageClient

CODE = SAMPLE  # the engine tests' sample file


EMOJI = 'def greet(name):\n    msg = "hi 😀😀 " + name  # 😀\n    return msg\n'


@aio
async def test_utf16_positions_with_emoji(client: LanguageClient):
    uri = open_doc(client, "emoji.py", EMOJI)
    col = len('    msg = "hi 😀😀 " + '.encode("utf-16-le")) // 2  # before "name": two columns per emoji
    assert col == len('    msg = "hi 😀😀 " + ') + 2
    result = await inline(client, uri, 1, col)
    assert all(i.range.start == t.Position(1, col) for i in result.items)
    refine = titled(await actions_at(client, uri, (1, col), (1, col + 4)), "Refine selection")
    (edit,) = edits_of((await resolve(client, refine)).edit, uri, 1)
    assert edit.range == t.Range(t.Position(1, col), t.Position(1, col + 4))
    after = apply(EMOJI, [edit])
    assert after.startswith('def greet(name):\n    msg = "hi 😀😀 " + ') and after.endswith("  # 😀\n    return msg\n")


@aio
async def test_other_position_encodings(other_client: LanguageClient):
    client, encoding = other_client, other_client.encoding
    assert client.init_result.capabilities.position_encoding == encoding
    uri = open_doc(client, f"emoji-{encoding}.py", EMOJI)
    prefix = '    msg = "hi 😀😀 " + '
    col = len(prefix.encode("utf-8")) if encoding == "utf-8" else len(prefix)
    result = await inline(client, uri, 1, col)
    assert all(i.range.start == t.Position(1, col) for i in result.items)
    assert previews_for(client, uri) == []  # inline previews are off by default
    refine = titled(await actions_at(client, uri, (1, col), (1, col + 4)), "Refine selection")
    (edit,) = edits_of((await resolve(client, refine)).edit, uri, 1)
    assert edit.range == t.Range(t.Position(1, col), t.Position(1, col + 4))
    after = apply(EMOJI, [edit], encoding)
    assert after.startswith('def greet(name):\n' + prefix) and after.endswith("  # 😀\n    return msg\n")
    done = [p for p in previews_for(client, uri) if p["done"]]
    assert len(done) == 1  # previews are on by default for refine


@aio
async def test_crlf_documents_keep_their_line_endings(client: LanguageClient):
    text = CODE.replace("\n", "\r\n").replace("a + b", "<|mask|>")
    uri = open_doc(client, "crlf.py", text)
    client.applied.clear()
    await command(client, "dcoder.refineSelection", uri=uri,
                  range={"start": {"line": 9, "character": 4}, "end": {"line": 11, "character": 25}})
    await command(client, "dcoder.fillHoles", uri=uri)
    for applied in client.applied:
        for e in edits_of(applied.edit, uri, 1):
            assert "\n" not in e.new_text.replace("\r\n", "")
            after = apply(text, [e])
            assert "\n" not in after.replace("\r\n", "")
    (refined, filled) = [edits_of(a.edit, uri, 1) for a in client.applied]
    assert refined[0].range == t.Range(t.Position(9, 4), t.Position(11, 25))
    assert apply(text, refined).startswith(text[:offset_of(text, 9, 4)])
    assert filled[0].range == t.Range(t.Position(2, 11), t.Position(2, 19))
    result = await inline(client, uri, 11, 8)
    assert all(i.range.start == t.Position(11, 8) and "\n" not in i.insert_text.replace("\r\n", "")
               for i in result.items)
