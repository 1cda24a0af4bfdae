"""Language server settings: checked against their declared bounds, applied, and the CPU fallback.

The real ``dcoder lsp`` process over JSON-RPC (pytest-lsp), running an ONNX export of a tiny
random checkpoint (what it writes is noise; where it goes, when, and what it leaves untouched is
checked)."""

from __future__ import annotations

import pytest
from conftest import SAMPLE
from lsp_support import FAST, actions_at, aio, configure, inline, open_doc, previews_for, resolve, titled, wait_for
from lsprotocol import types as t
from pytest_lsp import LanguageClient

from dcoder.engine.runtime import import_ort, nvidia_driver_present

CODE = SAMPLE  # the engine tests' sample file


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
