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
FORWARDED = re.findall(r'^  "(\w+)",$', (VSCODE / "src" / "settings.ts").read_text(encoding="utf-8"), re.M)
BY_CAMEL = {_camel(f.name): f.name for f in fields(Settings)}


def test_every_forwarded_setting_is_a_server_setting_declared_in_package_json():
    assert FORWARDED and set(FORWARDED) <= set(BY_CAMEL)
    assert all(f"dcoder.{key}" in PROPERTIES for key in FORWARDED)


@pytest.mark.parametrize("key", FORWARDED)
def test_vscode_default_bounds_and_choices_are_the_servers(key):
    prop, name = PROPERTIES[f"dcoder.{key}"], BY_CAMEL[key]
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


def test_the_docs_settings_table_gives_every_setting_with_the_servers_default():
    section = (ROOT / "docs" / "lsp.md").read_text(encoding="utf-8").split("## Settings", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| `(\w+)` \| ([^|]+) \|", section, re.M))
    assert set(rows) == set(BY_CAMEL)
    unset = {"built-in", "none", "from context", "$DCODER_TOKEN"}  # how the table says None
    for key, written in rows.items():
        written = written.strip().strip("`")
        value = None if written in unset else json.loads(written) if re.fullmatch(r"[\d.]+|true|false", written) else written
        assert value == getattr(Settings(), BY_CAMEL[key]), key
