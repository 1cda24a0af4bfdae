"""Issue 21's "done when", per family: a tiny random checkpoint in the family's released layout is
served by the loopback hub (tests/hub_server.py), `dcoder pull`ed (export included), then used by
its hub name in `dcoder infill`, `dcoder refine` and the real language server (inline completion
and the refine action). Logits parity per family is tests/test_families.py. No network."""

from __future__ import annotations

import asyncio
import json

import pytest

pytest.importorskip("huggingface_hub")
pytest.importorskip("torch")  # the family layouts are written with it

from conftest import SAMPLE  # noqa: E402
from lsprotocol import types as t  # noqa: E402
from pytest_lsp import ClientServerConfig  # noqa: E402
from lsp_support import SERVER, actions_at, capabilities, edits_of, inline, open_doc, record, resolve, wait_for  # noqa: E402
from test_pull import dcoder, env, hub  # noqa: E402,F401  (fixtures)

# family -> its released repository (the name is only a hub name here)
REPOS = {"llada": "GSAI-ML/LLaDA-8B-Base", "open-dcoder": "fredzzp/open-dcoder-0.5B",
         "coda": "Salesforce/CoDA-v0-Instruct", "dreamon": "Dream-org/DreamOn-v0-7B"}
TINY = ["--steps", "2", "--max-tokens", "4", "--json", "--repair", "0", "--search-tokens", "0"]
SETTINGS = {"provider": "cpu", "steps": 2, "inlineSteps": 2, "maxTokens": 4, "inlinePreview": False}


@pytest.mark.asyncio
@pytest.mark.parametrize("family", REPOS)
async def test_each_family_from_pull_to_the_editor(family, hub, env, family_ckpt, sample_file):
    repo = REPOS[family]
    folder_name = repo.replace("/", "--") + "--main"
    hub.add(repo, family_ckpt(family))
    r = await asyncio.to_thread(dcoder, env, "pull", repo, "--dtype", "fp32")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith(folder_name)

    # the CLI, by hub name
    r = await asyncio.to_thread(dcoder, env, "infill", sample_file, "--at", "3:12", "--model", repo, *TINY)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["model"].startswith(folder_name)
    r = await asyncio.to_thread(dcoder, env, "refine", sample_file, "--range", "11:9-12:26", "--model", repo, *TINY)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["model"].startswith(folder_name)
    lines = SAMPLE.splitlines(keepends=True)
    start, end = sum(map(len, lines[:10])) + 8, sum(map(len, lines[:11])) + 25
    assert out["edits"] and all(start <= e["start_offset"] <= e["end_offset"] <= end for e in out["edits"]), out["edits"]

    # the language server, by hub name, in the test's cache
    client = await ClientServerConfig(server_command=SERVER, server_env=env).start()
    try:
        record(client)
        await asyncio.wait_for(client.initialize_session(t.InitializeParams(
            capabilities=capabilities(), initialization_options={"model": repo, **SETTINGS})), 120)
        uri = open_doc(client, f"{family}.py", SAMPLE)

        result = await asyncio.wait_for(inline(client, uri, 2, 16), 120)  # after "return a + b"
        assert isinstance(result, t.InlineCompletionList) and result.items  # noise, but something
        for item in result.items:
            assert item.range.start == item.range.end == t.Position(2, 16) and item.insert_text.strip()

        actions = await asyncio.wait_for(actions_at(client, uri, (10, 8), (11, 25)), 120)
        refine = next(a for a in actions if a.title == "Refine selection")
        resolved = await asyncio.wait_for(resolve(client, refine), 120)
        edits = edits_of(resolved.edit, uri, 1)  # an edit for version 1 of the document
        assert edits
        for e in edits:
            assert (10, 8) <= (e.range.start.line, e.range.start.character)
            assert (e.range.end.line, e.range.end.character) <= (11, 25)

        await wait_for(lambda: client.statuses and client.statuses[-1]["state"] == "idle", "idle after the requests")
        status = client.statuses[-1]
        assert status["model"].startswith(folder_name) and status["message"] is None, status
        loads = [m.message for m in client.log_messages if "loading model" in m.message]
        assert len(loads) == 1 and folder_name in loads[0], loads
        assert not [m.message for m in client.log_messages if m.type == t.MessageType.Error]
        await asyncio.wait_for(client.shutdown_session(), 60)
    finally:
        await client.stop()
