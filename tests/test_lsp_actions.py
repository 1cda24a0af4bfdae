"""Language server code actions (fill a region, refine a selection, fill holes) and the commands behind them.

The real ``dcoder lsp`` process over JSON-RPC (pytest-lsp), running an ONNX export of a tiny
random checkpoint (what it writes is noise; where it goes, when, and what it leaves untouched is
checked)."""

from __future__ import annotations

from conftest import SAMPLE
from lsp_support import (
    CONTENT_MODIFIED,
    FAST,
    INVALID_PARAMS,
    actions_at,
    aio,
    apply,
    command,
    configure,
    edits_of,
    error_code,
    offset_of,
    open_doc,
    resolve,
    titled,
)
from lsprotocol import types as t
from pytest_lsp import LanguageClient
from tools.record_preview import plain

CODE = SAMPLE  # the engine tests' sample file


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
