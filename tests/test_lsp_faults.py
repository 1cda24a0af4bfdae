"""Language server bad input and faults: bad requests, huge or garbage documents, a broken model folder.

The real ``dcoder lsp`` process over JSON-RPC (pytest-lsp), running an ONNX export of a tiny
random checkpoint (what it writes is noise; where it goes, when, and what it leaves untouched is
checked)."""

from __future__ import annotations

import pytest
from conftest import SAMPLE
from lsp_support import (
    INVALID_PARAMS,
    actions_at,
    aio,
    configure,
    edits_of,
    error_code,
    inline,
    open_doc,
    resolve,
    titled,
    wait_for,
)
from lsprotocol import types as t
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

CODE = SAMPLE  # the engine tests' sample file


@aio
async def test_bad_requests_get_empty_results_or_errors(client: LanguageClient):
    uri = open_doc(client, "bad.py", CODE)
    nowhere = "file:///work/never-opened.py"
    assert list((await inline(client, nowhere, 0, 0)).items) == []
    assert list(await actions_at(client, nowhere, (0, 0), (0, 0))) == []
    assert list((await inline(client, uri, 500, 0)).items) == []
    assert list(await actions_at(client, uri, (500, 0), (501, 0))) == []
    forged = t.CodeAction(title="Refine selection", data={
        "op": "refine", "uri": uri, "version": 1, "ranges": [[0, 10**6]], "title": "Refine selection"})
    assert await error_code(resolve(client, forged)) == INVALID_PARAMS
    forged.data = {"op": "rm -rf", "uri": uri}
    assert await error_code(resolve(client, forged)) == INVALID_PARAMS
    forged.data = {"op": "refine", "uri": nowhere, "version": 1, "ranges": [[0, 1]], "title": "x"}
    assert await error_code(resolve(client, forged)) == INVALID_PARAMS
    for op, ranges in [("refine", [[0, 5], [10, 20]]), ("refineConfident", [[i, i + 1] for i in range(0, 2000, 2)]),
                       ("fill", [[0, 5], [10, 20]]), ("refine", [[5, 5]]), ("fillHoles", [[0, 8]])]:
        forged.data = {"op": op, "uri": uri, "version": 1, "ranges": ranges, "title": "x"}
        with pytest.raises(JsonRpcException) as info:
            await resolve(client, forged)
        assert info.value.code == INVALID_PARAMS and "internal error" not in info.value.message, (op, ranges)
    # a column past the end of a line means the end of the line
    result = await inline(client, uri, 3, 80)
    assert all(i.range.start == t.Position(3, 0) for i in result.items)


@aio
async def test_huge_garbage_and_unknown_language_documents(client: LanguageClient):
    huge = "def f(x):\n    return x + 1\n\n" * 380_000  # 10 MB
    uri = open_doc(client, "huge.py", huge)
    lines = huge.count("\n")
    result = await inline(client, uri, lines - 2, 16)
    assert all(i.range.start == t.Position(lines - 2, 16) for i in result.items)
    assert [a.title for a in await actions_at(client, uri, (lines - 2, 4), (lines - 2, 16))][:1] == ["Refine selection"]
    client.text_document_did_close(t.DidCloseTextDocumentParams(t.TextDocumentIdentifier(uri)))

    garbage = bytes(range(256)).decode("latin-1") * 64 + "\ud800 \x00\r\r\n\u2028"
    uri = open_doc(client, "garbage.bin", garbage, language="plaintext")
    await inline(client, uri, 1, 3)
    await actions_at(client, uri, (0, 0), (2, 0))

    uri = open_doc(client, "prog.cob", "IDENTIFICATION DIVISION.\nPROGRAM-ID. HELLO.\n", language="cobol")
    actions = await actions_at(client, uri, (1, 0), (1, 18))
    assert [a.title for a in actions] == ["Refine selection", "Refine selection (keep confident code)"]
    (edit,) = edits_of((await resolve(client, actions[0])).edit, uri, 1)
    assert edit.range == t.Range(t.Position(1, 0), t.Position(1, 18))

    # still serving
    uri = open_doc(client, "after.py", CODE)
    assert (await actions_at(client, uri, (10, 8), (11, 25)))[0].title == "Refine selection"


@aio
async def test_broken_model_folder_is_reported_once_and_the_server_keeps_serving(broken_client: LanguageClient, model):
    client = broken_client
    await wait_for(lambda: len(client.messages) >= 2, "the settings warnings")
    assert all(m.type == t.MessageType.Warning for m in client.messages[:2])
    uri = open_doc(client, "broken.py", CODE)
    for _ in range(3):
        assert list((await inline(client, uri, 11, 8)).items) == []
    action = titled(await actions_at(client, uri, (10, 8), (11, 25)), "Refine selection")
    assert await error_code(resolve(client, action)) != 0
    errors = [m for m in client.messages if m.type == t.MessageType.Error]
    assert len(errors) == 1 and client.broken in errors[0].message and "manifest" in errors[0].message
    assert client.statuses[-1]["state"] == "error"

    configure(client, model=str(client.broken) + "-missing")
    assert list((await inline(client, uri, 11, 8)).items) == []
    errors = [m for m in client.messages if m.type == t.MessageType.Error]
    assert len(errors) == 2 and "-missing" in errors[1].message

    configure(client, model=model, steps=8)
    assert (await resolve(client, action)).edit is not None
