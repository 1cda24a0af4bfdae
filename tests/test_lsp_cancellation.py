"""Language server requests never damage text: cancellation, newer requests, stale versions.

The real ``dcoder lsp`` process over JSON-RPC (pytest-lsp), running an ONNX export of a tiny
random checkpoint (what it writes is noise; where it goes, when, and what it leaves untouched is
checked)."""

from __future__ import annotations

import asyncio

from conftest import SAMPLE
from lsp_support import (
    CONTENT_MODIFIED,
    FAST,
    REQUEST_CANCELLED,
    SLOW,
    actions_at,
    aio,
    change_doc,
    configure,
    error_code,
    inline,
    open_doc,
    previews_for,
    resolve,
    titled,
    wait_for,
)
from lsprotocol import types as t
from pytest_lsp import LanguageClient

CODE = SAMPLE  # the engine tests' sample file


@aio
async def test_cancel_request_stops_denoising(client: LanguageClient):
    configure(client, **SLOW)
    uri = open_doc(client, "cancel.py", CODE)
    pending = inline(client, uri, 11, 8, msg_id="slow-inline")
    await wait_for(lambda: previews_for(client, uri), "a first preview")
    # the event loop still answers while the model runs
    assert await actions_at(client, uri, (10, 8), (11, 25))
    client.protocol.notify(t.CANCEL_REQUEST, t.CancelParams(id="slow-inline"))
    assert await error_code(pending) == REQUEST_CANCELLED
    await wait_for(lambda: previews_for(client, uri)[-1]["done"], "the closing preview")
    last = previews_for(client, uri)[-1]
    assert last["cancelled"] and len(previews_for(client, uri)) < 256

    action = titled(await actions_at(client, uri, (10, 8), (11, 25)), "Refine selection")
    client.previews.clear()
    pending = resolve(client, action, msg_id="slow-resolve")
    await wait_for(lambda: previews_for(client, uri), "a first refine preview")
    client.protocol.notify(t.CANCEL_REQUEST, t.CancelParams(id="slow-resolve"))
    assert await error_code(pending) == REQUEST_CANCELLED
    await wait_for(lambda: previews_for(client, uri)[-1]["done"], "the closing preview")
    assert previews_for(client, uri)[-1]["cancelled"] and len(previews_for(client, uri)) < 256
    configure(client, **FAST)


@aio
async def test_cancel_frees_the_worker_during_the_syntax_checks(client: LanguageClient):
    """``$/cancelRequest`` reaches the repair rounds and the constrained search, not only the
    denoising steps: the request after it is answered at once (a guard, not a timing: left to
    run, this search of a binary-ish document takes the worker for some 45 s)."""
    import random

    noise = bytes(random.Random(0).randrange(256) for _ in range(6000)).decode("latin-1")
    uri = open_doc(client, "noise.py", noise[:2000] + "<|mask|>" + noise[2000:4000] + "<|mask|>" + noise[4000:])
    # no scope bias: with it, this tiny model's fill of the noise happens to parse at once, and there
    # is no long search left to cancel
    configure(client, steps=1, maxTokens=64, searchTokens=16, candidates=8, deadline=3600.0, preview=True, scopeBias=0.0)
    params = t.ExecuteCommandParams(command="dcoder.fillHoles", arguments=[{"uri": uri}])
    pending = asyncio.ensure_future(client.protocol.send_request_async(
        t.WORKSPACE_EXECUTE_COMMAND, params, msg_id="slow-search"))
    await wait_for(lambda: previews_for(client, uri), "a first preview")
    await asyncio.sleep(2)  # past the denoising (one step) into the syntax checks
    client.protocol.notify(t.CANCEL_REQUEST, t.CancelParams(id="slow-search"))
    assert await error_code(pending) == REQUEST_CANCELLED
    configure(client, **FAST, searchTokens=4, candidates=1, deadline=10.0)
    small = open_doc(client, "after-cancel.py", CODE)
    result = await asyncio.wait_for(inline(client, small, 2, 4), 20)
    assert all(i.range.start == t.Position(2, 4) for i in result.items)
    await wait_for(lambda: previews_for(client, uri)[-1]["done"], "the closing preview")
    assert previews_for(client, uri)[-1]["cancelled"]


@aio
async def test_newer_request_for_the_document_replaces_the_older(client: LanguageClient):
    configure(client, **SLOW)
    uri = open_doc(client, "supersede.py", CODE)
    first = inline(client, uri, 11, 8)
    await wait_for(lambda: previews_for(client, uri), "a first preview")
    configure(client, **FAST)
    second = await inline(client, uri, 2, 4)
    assert list((await first).items) == []
    assert all(i.range.start == t.Position(2, 4) for i in second.items)
    cancelled = [p for p in previews_for(client, uri) if p["done"] and p["cancelled"]]
    assert len(cancelled) == 1


@aio
async def test_edits_for_an_old_version_are_dropped(client: LanguageClient):
    uri = open_doc(client, "stale.py", CODE)
    action = titled(await actions_at(client, uri, (10, 8), (11, 25)), "Refine selection")
    change_doc(client, uri, CODE + "\n# edited\n")
    assert await error_code(resolve(client, action)) == CONTENT_MODIFIED

    configure(client, **SLOW)
    for request in ("resolve", "inline"):
        client.previews.clear()
        action = titled(await actions_at(client, uri, (10, 8), (11, 25)), "Refine selection")
        pending = resolve(client, action) if request == "resolve" else inline(client, uri, 11, 8)
        await wait_for(lambda: previews_for(client, uri), "a first preview")
        change_doc(client, uri, CODE + f"\n# edited during {request}\n")
        if request == "resolve":
            assert await error_code(pending) == CONTENT_MODIFIED
        else:
            assert list((await pending).items) == []
    configure(client, **FAST)
