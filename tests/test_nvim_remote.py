"""The Neovim plugin with a shared model server: real headless Neovim runs editors/nvim with
setup({ server = URL, server_token = TOKEN }) and refines a line; the language server must load
no model and send the run to the real ``dcoder serve`` app (a tiny exported model) started here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
NVIM = shutil.which("nvim")
pytestmark = pytest.mark.skipif(NVIM is None, reason="nvim is not installed (apt-get install neovim; .ci/run installs it)")

from serve_support import Running, free_port  # noqa: E402

from dcoder.engine.load import load_engine  # noqa: E402
from dcoder.serving.server import ServeConfig  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "editors" / "nvim" / "tests" / "remote.lua"
TOKEN = "nvim-remote-token-0123456789"


def test_server_and_token_settings_send_the_runs_to_the_server(exported, tmp_path):
    running = Running(load_engine(exported("dream"), device="cpu"), ServeConfig(port=free_port(), token=TOKEN))
    # the token must come from the plugin's setting, not from the environment
    env = {k: v for k, v in os.environ.items() if k != "DCODER_TOKEN"}
    env.update(DCODER_PYTHON=sys.executable, DCODER_TEST_DIR=str(tmp_path), DCODER_TEST_SERVER=running.url,
               DCODER_TEST_TOKEN=TOKEN)
    try:
        proc = subprocess.run([NVIM, "--headless", "-u", "NONE", "-i", "NONE", "-n", "-c", f"luafile {SCRIPT}",
                               "-c", "cquit 3"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
        runs = running.server.config.app.state.inference.stats.runs
    finally:
        running.stop()
    found = tmp_path / "results.json"
    assert found.exists(), f"nvim exited {proc.returncode} without results:\n{proc.stdout}\n{proc.stderr}"
    r = json.loads(found.read_text(encoding="utf-8"))
    assert r["ok"], r["error"]
    assert r["status"]["model"] == f"dcoder server {running.url}"  # the server setting arrived
    assert runs >= 1  # the run went to the server, with the token (else 401, and no edit)
    assert r["after"] != r["before"] and r["after"][:2] == r["before"][:2] and r["after"][3:] == r["before"][3:]
    assert r["frames"] >= 1  # previews stream from the server too
