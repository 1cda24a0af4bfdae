"""The language server's decoding policy settings, through the real ``dcoder lsp`` process: a policy
the model cannot use is an error message and leaves every setting as it was."""

from __future__ import annotations

import asyncio
import sys

import pytest
import pytest_lsp
from conftest import SAMPLE
from lsprotocol import types as t
from pytest_lsp import ClientServerConfig, LanguageClient
from tools.record_preview import plain

from dcoder.cli import main

aio = pytest.mark.asyncio(loop_scope="module")
SERVER = [sys.executable, "-m", "dcoder", "lsp", "--stdio"]


@pytest.fixture(scope="module")
def dream_policy(tmp_path_factory, exported):
    out = tmp_path_factory.mktemp("lsp-policy") / "dream.json"
    root = tmp_path_factory.mktemp("lsp-corpus")
    (root / "a.py").write_text(SAMPLE * 6)
    assert main(["train-policy", "--model", str(exported("dream")), "--corpus", str(root), "--out", str(out),
                 "--holes", "5", "--provider", "cpu"]) == 0
    return str(out)


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER), scope="module")
async def client(lsp_client: LanguageClient, exported):
    lsp_client.statuses = []

    @lsp_client.feature("dcoder/status")
    def _status(params):
        lsp_client.statuses.append(plain(params))

    await lsp_client.initialize_session(t.InitializeParams(capabilities=t.ClientCapabilities(), initialization_options={
        "model": str(exported("dream")), "provider": "cpu", "inlineSteps": 8, "maxTokens": 8, "policy": "verify"}))
    yield
    await lsp_client.shutdown_session()


async def wait_for(condition, what: str):
    for _ in range(6000):  # hang guard only
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def ghost_text(client: LanguageClient, uri: str):
    params = t.InlineCompletionParams(context=t.InlineCompletionContext(trigger_kind=t.InlineCompletionTriggerKind.Invoked),
                                      text_document=t.TextDocumentIdentifier(uri), position=t.Position(2, 4))
    return await client.protocol.send_request_async(t.TEXT_DOCUMENT_INLINE_COMPLETION, params)


@aio
async def test_policies_apply_and_a_foreign_policy_file_keeps_the_settings(client: LanguageClient, exported,
                                                                          dream_policy):
    uri = "file:///policy.py"
    client.text_document_did_open(t.DidOpenTextDocumentParams(t.TextDocumentItem(uri, "python", 1, SAMPLE)))
    assert (await ghost_text(client, uri)) is not None  # policy verify, from initializationOptions
    dream = client.statuses[-1]["model"]
    settings = {"policy": "learned", "policyFile": dream_policy}
    client.workspace_did_change_configuration(t.DidChangeConfigurationParams(settings={"dcoder": settings}))
    assert (await ghost_text(client, uri)) is not None

    shown = len(client.messages)
    # the model changes, the learned policy stays: it was made for the old model, so nothing changes
    client.workspace_did_change_configuration(t.DidChangeConfigurationParams(
        settings={"dcoder": {"model": str(exported("llada")), "steps": 3}}))
    await wait_for(lambda: len(client.messages) > shown, "a message about the policy")
    message = client.messages[shown].message
    assert "not for this model" in message and "settings unchanged" in message
    assert client.messages[shown].type in (t.MessageType.Error, t.MessageType.Warning)
    assert (await ghost_text(client, uri)) is not None
    assert client.statuses[-1]["model"] == dream  # still the first model

    shown = len(client.messages)
    client.workspace_did_change_configuration(t.DidChangeConfigurationParams(settings={"dcoder": {"policy": "fastest"}}))
    await wait_for(lambda: len(client.messages) > shown, "a message about the unknown policy")
    assert "policy must be one of confidence, learned, verify" in client.messages[shown].message
