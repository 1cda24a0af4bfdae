"""The language-server tests' small client-side model of the editor: positions, edits,
recorded notifications and requests, over pytest-lsp (the servers are fixtures in conftest.py)."""

from __future__ import annotations

import asyncio
import re
import sys

import pytest
from lsprotocol import types as t
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient
from tools.record_preview import plain

aio = pytest.mark.asyncio(loop_scope="module")  # every async test shares its module's servers

SERVER = [sys.executable, "-m", "dcoder", "lsp", "--stdio"]
SLOW = {"steps": 256, "inlineSteps": 256, "maxTokens": 256, "inlinePreview": True}  # 256 forward passes: long enough to interrupt
FAST = {"steps": 8, "inlineSteps": 8, "maxTokens": None, "inlinePreview": False}
CONTENT_MODIFIED, REQUEST_CANCELLED, SERVER_CANCELLED, INVALID_PARAMS = -32801, -32800, -32802, -32602


def offset_of(text: str, line: int, col: int, encoding: str = "utf-16") -> int:
    """Independent of dcoder_lsp.positions: lines split at \\r\\n, \\r, \\n; columns in code units."""
    starts = [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", text)]
    start = starts[line]
    end = re.compile(r"\r\n|\r|\n").search(text, start)
    content = text[start:end.start() if end else len(text)]
    if encoding == "utf-32":
        return start + col
    codec, width = ("utf-16-le", 2) if encoding == "utf-16" else ("utf-8", 1)
    return start + len(content.encode(codec)[: col * width].decode(codec))


def apply(text: str, edits, encoding: str = "utf-16") -> str:
    spans = [(offset_of(text, e.range.start.line, e.range.start.character, encoding),
              offset_of(text, e.range.end.line, e.range.end.character, encoding), e.new_text) for e in edits]
    for a, b, new in sorted(spans, reverse=True):
        text = text[:a] + new + text[b:]
    return text


def edits_of(edit: t.WorkspaceEdit, uri: str, version: int):
    (change,) = edit.document_changes
    assert change.text_document.uri == uri and change.text_document.version == version
    return change.edits


def capabilities(encodings: list[str] | None = None) -> t.ClientCapabilities:
    return t.ClientCapabilities(
        general=t.GeneralClientCapabilities(position_encodings=encodings),
        window=t.WindowClientCapabilities(work_done_progress=True),
        workspace=t.WorkspaceClientCapabilities(
            apply_edit=True, configuration=True,
            workspace_edit=t.WorkspaceEditClientCapabilities(document_changes=True)),
        text_document=t.TextDocumentClientCapabilities(
            inline_completion=t.InlineCompletionClientCapabilities(),
            completion=t.CompletionClientCapabilities(completion_item=t.ClientCompletionItemOptions(
                documentation_format=[t.MarkupKind.PlainText])),
            code_action=t.CodeActionClientCapabilities(
                data_support=True, resolve_support=t.ClientCodeActionResolveOptions(properties=["edit"]))),
    )


def record(client: LanguageClient) -> None:
    client.previews, client.statuses, client.applied = [], [], []

    @client.feature("dcoder/preview")
    def _preview(params):
        client.previews.append(plain(params))

    @client.feature("dcoder/status")
    def _status(params):
        client.statuses.append(plain(params))

    @client.feature(t.WORKSPACE_APPLY_EDIT)
    def _apply(params: t.ApplyWorkspaceEditParams):
        client.applied.append(params)
        return t.ApplyWorkspaceEditResult(applied=True)


async def wait_for(condition, what: str):
    """Hang guard only: the condition is what the test checks."""
    for _ in range(6000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


_version = {}


def open_doc(client: LanguageClient, name: str, text: str, language: str = "python") -> str:
    uri = f"file:///work/{name}"
    _version[uri] = 1
    client.text_document_did_open(t.DidOpenTextDocumentParams(t.TextDocumentItem(uri, language, 1, text)))
    return uri


def change_doc(client: LanguageClient, uri: str, text: str) -> int:
    _version[uri] += 1
    client.text_document_did_change(t.DidChangeTextDocumentParams(
        t.VersionedTextDocumentIdentifier(_version[uri], uri), [t.TextDocumentContentChangeWholeDocument(text)]))
    return _version[uri]


def configure(client: LanguageClient, **settings) -> None:
    client.workspace_did_change_configuration(t.DidChangeConfigurationParams(settings={"dcoder": settings}))


def inline(client: LanguageClient, uri: str, line: int, col: int, msg_id=None):
    params = t.InlineCompletionParams(
        context=t.InlineCompletionContext(trigger_kind=t.InlineCompletionTriggerKind.Invoked),
        text_document=t.TextDocumentIdentifier(uri), position=t.Position(line, col))
    return asyncio.ensure_future(client.protocol.send_request_async(t.TEXT_DOCUMENT_INLINE_COMPLETION, params, msg_id=msg_id))


async def actions_at(client: LanguageClient, uri: str, start: tuple[int, int], end: tuple[int, int], only=None):
    return await client.text_document_code_action_async(t.CodeActionParams(
        t.TextDocumentIdentifier(uri), t.Range(t.Position(*start), t.Position(*end)),
        t.CodeActionContext(diagnostics=[], only=only)))


def resolve(client: LanguageClient, action: t.CodeAction, msg_id=None):
    return asyncio.ensure_future(client.protocol.send_request_async(t.CODE_ACTION_RESOLVE, action, msg_id=msg_id))


def command(client: LanguageClient, name: str, **arg):
    return client.workspace_execute_command_async(t.ExecuteCommandParams(command=name, arguments=[arg]))


def titled(actions, title: str) -> t.CodeAction:
    return next(a for a in actions if a.title == title)


def previews_for(client: LanguageClient, uri: str):
    return [p for p in client.previews if p["uri"] == uri]


async def error_code(awaitable) -> int:
    with pytest.raises(JsonRpcException) as info:
        await awaitable
    return info.value.code


def as_range(r: dict) -> t.Range:
    return t.Range(t.Position(r["start"]["line"], r["start"]["character"]),
                   t.Position(r["end"]["line"], r["end"]["character"]))
