"""The VS Code extension declares the server's settings again (package.json: defaults, bounds,
choices) and forwards a list of them (settings.ts), and the docs' settings table gives each
default: all must agree with lsp/config.py. (The Neovim plugin: tests/test_settings_nvim.py.)"""

from __future__ import annotations

import json
import re
from dataclasses import fields
from pathlib import Path

import pytest

from dcoder.errors import DcoderError
from dcoder_lsp.config import Settings, _camel, _check

ROOT = Path(__file__).resolve().parents[1]
VSCODE = ROOT / "editors" / "vscode"
PROPERTIES = json.loads((VSCODE / "package.json").read_text(encoding="utf-8"))["contributes"]["configuration"]["properties"]
SETTINGS_TS = (VSCODE / "src" / "settings.ts").read_text(encoding="utf-8")
# server setting -> the extension's name for it: SERVER_SETTINGS keep theirs, RENAMED_SETTINGS map
FORWARDED = {key: key for key in re.findall(r'^  "(\w+)",$', SETTINGS_TS, re.M)}
RENAMED = dict(re.findall(r'^  (\w+): "([\w.]+)",$', SETTINGS_TS, re.M))
BY_CAMEL = {_camel(f.name): f.name for f in fields(Settings)}


def test_every_forwarded_setting_is_a_server_setting_declared_in_package_json():
    assert FORWARDED and RENAMED and not set(FORWARDED) & set(RENAMED)
    assert set(FORWARDED) | set(RENAMED) <= set(BY_CAMEL)
    assert all(f"dcoder.{name}" in PROPERTIES for name in [*FORWARDED.values(), *RENAMED.values()])


def test_the_remote_server_settings_are_forwarded_under_their_own_names():
    # dcoder.server.path/.args say how the extension starts the language server: the remote
    # server's URL and token take other names and must still reach the server's keys
    assert RENAMED == {"server": "remote.url", "serverToken": "remote.token"}
    assert not any(name.startswith("server.") for name in RENAMED.values())


@pytest.mark.parametrize("key", sorted({**FORWARDED, **RENAMED}))
def test_vscode_default_bounds_and_choices_are_the_servers(key):
    prop, name = PROPERTIES[f"dcoder.{({**FORWARDED, **RENAMED})[key]}"], BY_CAMEL[key]
    assert prop["default"] == getattr(Settings(), name)
    assert _check(name, prop["default"]) == prop["default"]
    for choice in prop.get("enum", ()):
        assert _check(name, choice) == choice
    if "minimum" in prop:
        assert _check(name, prop["minimum"]) == prop["minimum"]
        below = prop["minimum"] - (1 if prop["type"] in ("integer", ["integer", "null"]) else 1e-9)
        with pytest.raises(DcoderError):
            _check(name, below)
    if "maximum" in prop:
        assert _check(name, prop["maximum"]) == prop["maximum"]
        above = prop["maximum"] + (1 if prop["type"] in ("integer", ["integer", "null"]) else 1e-6)
        with pytest.raises(DcoderError):
            _check(name, above)
    if "pattern" in prop:  # what VS Code lets through, the server takes (empty goes as null), and the reverse
        for value, ok in [("http://gpu-box:8080", True), ("https://h", True), ("", True), ("gpu-box:8080", False),
                          ("ftp://h", False)]:
            assert bool(re.fullmatch(prop["pattern"], value)) == ok
            if ok:
                assert _check(name, value or None) == (value or None)
            else:
                with pytest.raises(DcoderError):
                    _check(name, value)


def test_the_docs_settings_table_gives_every_setting_with_the_servers_default():
    section = (ROOT / "docs" / "lsp.md").read_text(encoding="utf-8").split("## Settings", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| `(\w+)` \| ([^|]+) \|", section, re.M))
    assert set(rows) == set(BY_CAMEL)
    unset = {"built-in", "none", "from context", "$DCODER_TOKEN"}  # how the table says None
    for key, written in rows.items():
        written = written.strip().strip("`")
        value = None if written in unset else json.loads(written) if re.fullmatch(r"[\d.]+|true|false", written) else written
        assert value == getattr(Settings(), BY_CAMEL[key]), key
