"""The Neovim plugin repeats defaults in two places: its help file lists every server setting with
the server's default (and its choices), and the plugin's own options (cmd, inline, keymaps) are
written both in lua/dcoder/init.lua and in the help file and docs/editors.md. All must agree with
lsp/config.py and with the Lua code; the example in the help file must be valid settings."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import fields
from pathlib import Path

import pytest

from dcoder.config import LENGTH_MODES, POLICIES
from dcoder.errors import DcoderError
from dcoder_lsp.config import PROVIDERS, Settings, _camel, _check

ROOT = Path(__file__).resolve().parents[1]
NVIM_DIR = ROOT / "editors" / "nvim"
HELP = (NVIM_DIR / "doc" / "dcoder.txt").read_text(encoding="utf-8")
EDITORS_PAGE = (ROOT / "docs" / "editors.md").read_text(encoding="utf-8")
BY_CAMEL = {_camel(f.name): f.name for f in fields(Settings)}
CHOICES = {"provider": PROVIDERS, "length": LENGTH_MODES, "policy": POLICIES}
LUA_WORDS = {"nil": None, "true": True, "false": False}


def lua_value(text: str):
    """A Lua literal as the help file writes one: nil, true/false, a number, a string, or a flat
    table of them (a list, or key = value pairs)."""
    text = text.strip()
    if text.startswith("{"):
        items = [i.strip() for i in re.findall(r'(?:[^,"]|"[^"]*")+', text[1:-1]) if i.strip()]
        pairs = [re.fullmatch(r"(\w+)\s*=\s*(.+)", i) for i in items]
        if items and all(pairs):
            return {m.group(1): lua_value(m.group(2)) for m in pairs}
        return [lua_value(i) for i in items]
    if text.startswith('"'):
        return text[1:-1]
    if text in LUA_WORDS:
        return LUA_WORDS[text]
    return json.loads(text)  # a number


def help_settings() -> dict[str, tuple[str, str]]:
    """The help file's settings list: key -> (default as written, description)."""
    block = HELP.split("  settings   ", 1)[1].split("\n  filetypes", 1)[0]
    return {m.group(1): (m.group(2), m.group(3)) for m in re.finditer(r"^ {15}(\w+) +(\S+) +(.+)$", block, re.M)}


@pytest.fixture(scope="module")
def lua_defaults() -> dict:
    """``require("dcoder").defaults``, as headless Neovim reads the plugin."""
    nvim = shutil.which("nvim")
    if nvim is None:
        pytest.skip("nvim is not installed (apt-get install neovim; .ci/run installs it)")
    lua = "io.stdout:write(vim.fn.json_encode(require('dcoder').defaults))"
    proc = subprocess.run([nvim, "--headless", "-u", "NONE", "-i", "NONE", "-n", "--cmd", f"set rtp+={NVIM_DIR}",
                           "-c", f"lua {lua}", "-c", "qa!"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_the_help_file_lists_every_server_setting_with_the_servers_default():
    listed = help_settings()
    # the model has an option of its own (``model``), documented above the list
    assert set(listed) == set(BY_CAMEL) - {"model"}
    defaults = Settings()
    for key, (written, _) in listed.items():
        assert lua_value(written) == getattr(defaults, BY_CAMEL[key]), key


@pytest.mark.parametrize("key", sorted(CHOICES))
def test_the_help_files_choices_are_the_servers(key):
    _, description = help_settings()[key]
    choices = re.findall(r'"([^"]+)"', description)
    assert choices == list(CHOICES[key])
    for choice in choices:
        assert _check(BY_CAMEL[key], choice) == choice
    with pytest.raises(DcoderError):
        _check(BY_CAMEL[key], "none of these")


def test_the_help_files_example_settings_are_valid():
    example = re.search(r"^ +settings = (\{.*\}),$", HELP, re.M)
    settings = lua_value(example.group(1))
    assert settings
    for key, value in settings.items():
        assert _check(BY_CAMEL[key], value) == value


def test_the_plugin_sends_only_the_settings_it_is_given(lua_defaults):
    # with no settings (and no model) configured, every server default applies
    assert lua_defaults["settings"] in ([], {}) and "model" not in lua_defaults
    assert Settings().model is None


def test_the_plugins_own_defaults_are_documented_as_they_are(lua_defaults):
    cmd = re.search(r"Default: `(\{[^`]*\})`", HELP).group(1)
    assert lua_value(cmd) == lua_defaults["cmd"]
    assert lua_value(re.search(r"`cmd` \| command starting the server; default `(\{[^`]*\})`", EDITORS_PAGE).group(1)) \
        == lua_defaults["cmd"]
    inline = re.search(r"^  inline     `(\{[^`]*\})`", HELP, re.M).group(1)
    assert lua_value(inline) == lua_defaults["inline"]
    assert lua_value(re.search(r"^\| `inline` \| `(\{[^`]*\})`", EDITORS_PAGE, re.M).group(1)) == lua_defaults["inline"]
    help_keys = HELP.split("  keymaps    ", 1)[1].split("  on_preview", 1)[0]
    page_keys = re.search(r"^\| `keymaps` \|(.*)$", EDITORS_PAGE, re.M).group(1)
    for text in (help_keys, page_keys):
        assert dict(re.findall(r'`(\w+) = "([^"]*)"`', text)) == lua_defaults["keymaps"]
