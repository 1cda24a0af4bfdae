"""Language server denoising previews (the dcoder/preview notification).

The real ``dcoder lsp`` process over JSON-RPC (pytest-lsp), running an ONNX export of a tiny
random checkpoint (what it writes is noise; where it goes, when, and what it leaves untouched is
checked)."""

from __future__ import annotations

from conftest import SAMPLE
from lsp_support import FAST, actions_at, aio, as_range, configure, inline, open_doc, previews_for, resolve
from lsprotocol import types as t
from pytest_lsp import LanguageClient

CODE = SAMPLE  # the engine tests' sample file


@aio
async def test_refine_streams_previews_of_the_selection(client: LanguageClient):
    configure(client, **FAST, preview=True)
    uri = open_doc(client, "preview.py", CODE)
    client.previews.clear()
    (action, _) = (await actions_at(client, uri, (7, 8), (7, 26)))[:2]
    await resolve(client, action)
    steps = [p for p in previews_for(client, uri) if not p["done"]]
    assert steps and steps[-1] is not None
    for p in steps:
        assert p["version"] == 1 and 1 <= p["step"] <= 8
        (span,) = p["spans"]
        assert as_range(span["range"]) == t.Range(t.Position(7, 8), t.Position(7, 26))
        assert isinstance(span["text"], str)
    assert any("\u2591" in p["spans"][0]["text"] for p in steps)  # still-masked tokens show as ░
    assert previews_for(client, uri)[-1]["done"] and not previews_for(client, uri)[-1]["cancelled"]


@aio
async def test_no_preview_for_inline_completion_unless_asked(client: LanguageClient):
    uri = open_doc(client, "quiet.py", CODE)
    configure(client, **FAST)
    await inline(client, uri, 11, 8)
    assert previews_for(client, uri) == []
    configure(client, **{**FAST, "inlinePreview": True})
    await inline(client, uri, 11, 8)
    assert [p for p in previews_for(client, uri) if not p["done"]]
    configure(client, **FAST)
