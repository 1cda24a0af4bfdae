"""The VS Code extension declares the server's settings again (package.json: defaults, bounds,
choices) and forwards a list of them (settings.ts): both must agree with lsp/config.py."""

from __future__ import annotations

import json
import re
from dataclasses import fields
from pathlib import Path

import pytest

from dcoder.errors import DcoderError
from dcoder_lsp.config import Settings, _camel, _check

VSCODE = Path(__file__).resolve().parents[1] / "editors" / "vscode"
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
