"""Language server start-up: capabilities, the status notification, lazy model loading.

The real ``dcoder lsp`` process over JSON-RPC (pytest-lsp), running an ONNX export of a tiny
random checkpoint (what it writes is noise; where it goes, when, and what it leaves untouched is
checked)."""

from __future__ import annotations

from conftest import SAMPLE
from lsp_support import aio, inline, open_doc, wait_for
from lsprotocol import types as t
from pytest_lsp import LanguageClient

CODE = SAMPLE  # the engine tests' sample file


@aio
async def test_capabilities(client: LanguageClient):
    caps = client.init_result.capabilities
    assert caps.position_encoding == "utf-16"
    assert caps.inline_completion_provider is not None and caps.completion_provider is not None
    assert caps.code_action_provider.resolve_provider
    assert "refactor.rewrite.dcoder.refine" in caps.code_action_provider.code_action_kinds
    assert set(caps.execute_command_provider.commands) == {"dcoder.refineSelection", "dcoder.fillRegion", "dcoder.fillHoles"}
    assert caps.text_document_sync.change == t.TextDocumentSyncKind.Incremental


@aio
async def test_model_loads_lazily_once_and_status_says_so(client: LanguageClient):
    await wait_for(lambda: client.statuses, "a status after initialized")
    assert client.statuses[0]["state"] == "idle" and client.statuses[0]["busy"] is False
    assert not any("loading model" in m.message for m in client.log_messages), "loaded before it was needed"
    uri = open_doc(client, "lazy.py", CODE)
    for line, col in [(2, 4), (11, 8), (4, 0)]:
        await inline(client, uri, line, col)
    loads = [m.message for m in client.log_messages if "loading model" in m.message]
    assert len(loads) == 1 and "provider cpu" in loads[0]
    assert any(m.message.startswith("dcoder: model ready") for m in client.log_messages)
    assert any(s["busy"] and s["state"] == "busy" for s in client.statuses)
    await wait_for(lambda: client.statuses[-1]["state"] == "idle", "idle after the requests")
    last = client.statuses[-1]
    assert "onnx" in last["model"] and last["provider"] == "cpu" and last["busy"] is False
