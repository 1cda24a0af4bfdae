"""The language server end to end: the real ``dcoder lsp`` process over JSON-RPC (pytest-lsp),
running an ONNX export of a tiny random checkpoint (what it writes is noise; where it goes,
when, and what it leaves untouched is checked)."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
import sys
import textwrap

import pytest
import pytest_lsp
from conftest import SAMPLE
from lsprotocol import types as t
from pygls.exceptions import JsonRpcException
from pytest_lsp import ClientServerConfig, LanguageClient
from tools.record_preview import plain

from dcoder.engine.runtime import import_ort, nvidia_driver_present
from dcoder_lsp.completion import balance, drop_repeated_suffix, tidy
from dcoder_lsp.documents import Document
from dcoder_lsp.operations import single_line

aio = pytest.mark.asyncio(loop_scope="module")  # every async test shares the module's servers

SERVER = [sys.executable, "-m", "dcoder", "lsp", "--stdio"]
CODE = SAMPLE  # the engine tests' sample file
SLOW = {"steps": 256, "inlineSteps": 256, "maxTokens": 256, "inlinePreview": True}  # 256 forward passes: long enough to interrupt
FAST = {"steps": 8, "inlineSteps": 8, "maxTokens": None, "inlinePreview": False}
CONTENT_MODIFIED, REQUEST_CANCELLED, SERVER_CANCELLED, INVALID_PARAMS = -32801, -32800, -32802, -32602


# ---- a small client-side model of the editor -----------------------------------------------

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


# ---- servers -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def model(exported):
    return str(exported("dream", "fp32"))


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER), scope="module")
async def client(lsp_client: LanguageClient, model):
    record(lsp_client)
    lsp_client.init_result = await lsp_client.initialize_session(t.InitializeParams(
        capabilities=capabilities(), initialization_options={"model": model, "provider": "cpu", **FAST}))
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER), scope="module", params=["utf-8", "utf-32"])
async def other_client(lsp_client: LanguageClient, request, model):
    """A client that prefers another position encoding; settings nested under "dcoder"."""
    record(lsp_client)
    lsp_client.encoding = request.param
    lsp_client.init_result = await lsp_client.initialize_session(t.InitializeParams(
        capabilities=capabilities([request.param, "utf-16"]),
        initialization_options={"dcoder": {"model": model, "steps": 8}}))
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER), scope="module")
async def broken_client(lsp_client: LanguageClient, tmp_path_factory):
    folder = tmp_path_factory.mktemp("broken")
    (folder / "manifest.json").write_text("{not json", encoding="utf-8")
    record(lsp_client)
    lsp_client.broken = str(folder)
    await lsp_client.initialize_session(t.InitializeParams(
        capabilities=capabilities(), initialization_options={"model": str(folder), "steps": "many", "colour": 1}))
    yield
    await lsp_client.shutdown_session()


# ---- start-up, status, lazy loading --------------------------------------------------------

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


# ---- inline completion and completion ------------------------------------------------------

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


# ---- code actions ------------------------------------------------------------------------

@aio
async def test_code_actions_are_resolved_lazily_innermost_first(client: LanguageClient):
    uri = open_doc(client, "actions.py", CODE)
    actions = await actions_at(client, uri, (2, 11), (2, 11))  # the "a" of "return a + b"
    titles = [a.title for a in actions]
    assert "Refine selection" not in titles  # nothing selected
    fills = [a for a in actions if a.title.startswith("Fill ")]
    assert [a.title for a in fills][:2] == ["Fill return value", "Fill statement"]
    assert "Fill function body" in titles and all(a.edit is None for a in actions)
    spans = [tuple(a.data["ranges"][0]) for a in fills]
    assert all(o[0] <= i[0] and i[1] <= o[1] and o != i for i, o in zip(spans, spans[1:])), spans

    body = await resolve(client, titled(fills, "Fill function body"))
    (edit,) = edits_of(body.edit, uri, 1)
    assert edit.range == t.Range(t.Position(1, 4), t.Position(2, 16))
    after = apply(CODE, [edit])
    assert after.startswith("def add(a, b):\n    ") and after.endswith(CODE[CODE.index("\n\n\nclass"):])


@aio
async def test_fill_region_actions_in_another_language(client: LanguageClient):
    """A Rust document (language id ``rust``) gets its regions from grammars/rust/regions.scm."""
    text = "fn add(a: i32, b: i32) -> i32 {\n    let s = a + b;\n    s\n}\n\nfn main() {\n    add(1, 2);\n}\n"
    uri = open_doc(client, "lib.rs", text, language="rust")
    actions = await actions_at(client, uri, (1, 12), (1, 12))  # the "a" of "a + b"
    fills = [a.title for a in actions if a.title.startswith("Fill ")]
    assert fills[:2] == ["Fill assigned value", "Fill statement"] and "Fill function body" in fills
    body = await resolve(client, titled(actions, "Fill function body"))
    (edit,) = edits_of(body.edit, uri, 1)
    assert edit.range == t.Range(t.Position(0, 31), t.Position(3, 0))  # between the braces
    after = apply(text, [edit])
    assert after.startswith(text[:31]) and after.endswith(text[text.index("}\n\nfn main"):])


@aio
async def test_refine_selection_changes_only_the_selection(client: LanguageClient):
    uri = open_doc(client, "refine.py", CODE)
    actions = await actions_at(client, uri, (10, 8), (11, 25))
    assert [a.title for a in actions[:2]] == ["Refine selection", "Refine selection (keep confident code)"]
    start, end = offset_of(CODE, 10, 8), offset_of(CODE, 11, 25)
    for action in actions[:2]:
        client.previews.clear()
        resolved = await resolve(client, action)
        after = apply(CODE, edits_of(resolved.edit, uri, 1))
        assert after.startswith(CODE[:start]) and after.endswith(CODE[end:])
    only = await actions_at(client, uri, (10, 8), (11, 25), only=["refactor.rewrite.dcoder.refine"])
    assert {a.title for a in only} == {"Refine selection", "Refine selection (keep confident code)"}


@aio
async def test_fill_holes_fills_every_marker(client: LanguageClient):
    text = CODE.replace("a + b", "<|mask|>").replace("self.value += by", "<|mask|>")
    uri = open_doc(client, "holes.py", text)
    actions = await actions_at(client, uri, (0, 0), (0, 0), only=["refactor.rewrite.dcoder.fillHoles"])
    assert [a.title for a in actions] == ["Fill 2 holes"]
    edits = edits_of((await resolve(client, actions[0])).edit, uri, 1)
    hole = len("<|mask|>")
    assert sorted((e.range.start.line, e.range.start.character, e.range.end.character) for e in edits) == [
        (2, 11, 11 + hole), (10, 8, 8 + hole)]
    assert "<|mask|>" not in apply(text, edits)


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


# ---- commands ------------------------------------------------------------------------------

@aio
async def test_commands_report_progress_then_apply_the_edit(client: LanguageClient):
    configure(client, **FAST)
    text = CODE.replace("a + b", "<|mask|>")
    uri = open_doc(client, "commands.py", text)
    client.applied.clear()
    client.progress_reports.clear()
    results = [
        await command(client, "dcoder.refineSelection", uri=uri, range={"start": {"line": 7, "character": 8},
                                                                        "end": {"line": 7, "character": 26}}),
        await command(client, "dcoder.refineSelection", uri=uri, version=1, keepConfident=True,
                      range={"start": {"line": 7, "character": 8}, "end": {"line": 7, "character": 26}}),
        await command(client, "dcoder.fillRegion", uri=uri, position={"line": 11, "character": 10}, region="function.inner"),
        await command(client, "dcoder.fillHoles", uri=uri),
    ]
    assert [plain(r)["applied"] for r in results] == [True] * 4
    assert [p.label for p in client.applied] == [
        "dcoder: Refine selection", "dcoder: Refine selection (keep confident code)", "dcoder: Fill function body",
        "dcoder: Fill hole"]
    for p in client.applied:
        for e in edits_of(p.edit, uri, 1):
            assert e.range.start.line in (2, 7, 10, 11)
    assert len(client.progress_reports) == 4
    for reports in client.progress_reports.values():
        assert reports[0].kind == "begin" and reports[0].title.startswith("dcoder: ")
        assert reports[-1].kind == "end" and {r.kind for r in reports[1:-1]} == {"report"}


@aio
async def test_commands_reject_bad_arguments(client: LanguageClient):
    uri = open_doc(client, "badargs.py", CODE)
    bad = [
        ("dcoder.refineSelection", {"uri": uri}),
        ("dcoder.refineSelection", {"uri": uri, "range": {"start": {"line": 2, "character": 0},
                                                          "end": {"line": 99, "character": 0}}}),
        ("dcoder.refineSelection", {"uri": uri, "range": {"start": {"line": 3, "character": 0},
                                                          "end": {"line": 3, "character": 0}}}),
        ("dcoder.fillRegion", {"uri": uri, "position": {"line": 4, "character": 0}, "region": "no.such"}),
        ("dcoder.fillRegion", {"uri": uri, "position": "here"}),
        ("dcoder.fillHoles", {"uri": uri}),
        ("dcoder.fillHoles", {"uri": "file:///nowhere.py"}),
    ]
    for name, arg in bad:
        assert await error_code(command(client, name, **arg)) == INVALID_PARAMS, (name, arg)
    assert await error_code(command(client, "dcoder.fillHoles", uri=uri, version=7)) == CONTENT_MODIFIED


# ---- never damage text: stale versions and cancellation -----------------------------------

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
    configure(client, steps=1, maxTokens=64, searchTokens=16, candidates=8, deadline=3600.0, preview=True)
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


# ---- positions: encodings, non-ASCII, CRLF -------------------------------------------------

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


# ---- configuration -------------------------------------------------------------------------

def test_search_tokens_setting_reaches_refine_and_fill_not_inline():
    from dcoder_lsp.config import Settings

    settings, problems = Settings().updated({"dcoder": {"searchTokens": 5}})
    assert problems == [] and settings.options("python").search_tokens == 5
    assert settings.options("python", inline=True).search_tokens == 0  # ghost text must come fast
    _, problems = Settings().updated({"searchTokens": -1})
    assert len(problems) == 1 and "searchTokens" in problems[0]


def test_deadline_setting_has_the_command_lines_bounds():
    from dcoder_lsp.config import Settings

    settings, problems = Settings().updated({"deadline": 42})
    assert problems == [] and settings.options("python").deadline == 42.0
    assert settings.options("python", inline=True).deadline == 42.0
    for bad in (0, 1e9, "soon"):
        _, problems = Settings().updated({"deadline": bad})
        assert len(problems) == 1 and "deadline must be a float in [0.1, 3600.0]" in problems[0]


@aio
async def test_configuration_is_checked_and_applied(client: LanguageClient):
    uri = open_doc(client, "config.py", CODE)
    shown = len(client.messages)
    configure(client, steps=0, provider="tpu", temperature="hot", colour="blue")
    await wait_for(lambda: len(client.messages) >= shown + 4, "a warning per bad setting")
    warnings = [m for m in client.messages[shown:]]
    assert all(m.type == t.MessageType.Warning for m in warnings)
    text = " ".join(m.message for m in warnings)
    assert "steps" in text and "provider" in text and "temperature" in text and "'colour'" in text

    configure(client, steps=3, preview=True, maxTokens=16, candidates=2, threshold=None, temperature=0.0)
    client.previews.clear()
    await resolve(client, titled(await actions_at(client, uri, (7, 8), (7, 26)), "Refine selection"))
    steps = [p for p in previews_for(client, uri) if not p["done"]]
    assert steps and max(p["step"] for p in steps) <= 3
    assert steps[0]["spans"][0]["text"].count("\u2591") <= 16

    configure(client, preview=False)
    client.previews.clear()
    await resolve(client, titled(await actions_at(client, uri, (7, 8), (7, 26)), "Refine selection"))
    assert previews_for(client, uri) == []

    # empty settings: the server asks for the "dcoder" section (workspace/configuration)
    client.set_configuration({"steps": 2, "preview": True}, section="dcoder")
    seen = len(client.statuses)
    client.workspace_did_change_configuration(t.DidChangeConfigurationParams(settings=None))
    await wait_for(lambda: len(client.statuses) > seen, "the status sent once the settings are read")
    client.previews.clear()
    await resolve(client, titled(await actions_at(client, uri, (7, 8), (7, 26)), "Refine selection"))
    steps = [p for p in previews_for(client, uri) if not p["done"]]
    assert steps and max(p["step"] for p in steps) <= 2
    configure(client, **FAST, candidates=1, preview=True)


@aio
@pytest.mark.skipif("CUDAExecutionProvider" in import_ort().get_available_providers() and nvidia_driver_present(),
                    reason="CUDA works here: nothing to fall back from")
@aio
async def test_a_failing_provider_falls_back_to_the_cpu(client: LanguageClient):
    uri = open_doc(client, "provider.py", CODE)
    shown = len(client.messages)
    configure(client, provider="cuda")
    await inline(client, uri, 11, 8)
    warnings = [m.message for m in client.messages[shown:]]
    assert len(warnings) == 1 and "provider cuda failed to start" in warnings[0] and "CPU" in warnings[0]
    await wait_for(lambda: client.statuses[-1]["state"] == "idle", "idle")
    assert client.statuses[-1]["provider"] == "cpu"
    refined = await resolve(client, titled(await actions_at(client, uri, (7, 8), (7, 26)), "Refine selection"))
    assert refined.edit is not None
    configure(client, provider="cpu")


# ---- bad input and faults --------------------------------------------------------------

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


# ---- transports and the runtime path -----------------------------------------------------

def _rpc(sock: socket.socket, message: dict) -> None:
    body = json.dumps(message).encode()
    sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)


def _read(stream) -> dict:
    length = 0
    while (line := stream.readline().strip()):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return json.loads(stream.read(length))


def test_tcp_transport():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "dcoder", "lsp", "--tcp", f"127.0.0.1:{port}"],
                              stderr=subprocess.PIPE)
    try:
        for _ in range(1000):
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=60)
                break
            except ConnectionRefusedError:
                assert server.poll() is None, server.stderr.read().decode()
                subprocess.run(["sleep", "0.05"])
        with sock, sock.makefile("rb") as stream:
            _rpc(sock, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}})
            reply = _read(stream)
            assert reply["id"] == 1 and reply["result"]["serverInfo"]["name"] == "dcoder"
            _rpc(sock, {"jsonrpc": "2.0", "id": 2, "method": "shutdown"})
            while _read(stream).get("id") != 2:
                pass
            _rpc(sock, {"jsonrpc": "2.0", "method": "exit"})
            assert stream.read() == b""  # exit ends this connection's session, not the server
        assert server.poll() is None
    finally:
        server.kill()
        server.stderr.close()
    bad = subprocess.run([sys.executable, "-m", "dcoder", "lsp", "--tcp", "nowhere"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("dcoder: error: bad --tcp")


def test_server_path_never_imports_torch(model):
    script = textwrap.dedent(f"""
        import sys
        from dcoder_lsp.server import create_server
        from dcoder_lsp.loader import Loader
        from dcoder_lsp.config import Settings
        from dcoder_lsp.documents import Document
        from dcoder_lsp import operations
        create_server()
        engine = Loader(lambda level, message: None).engine({model!r}, "cpu")
        doc = Document("file:///x.py", "python", 1, {CODE!r})
        operations.complete(engine, doc, 40, Settings(steps=4), lambda step: False, lambda: False)
        assert "torch" not in sys.modules, "torch was imported"
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
