"""``dcoder serve`` takes the scope bias and code from other files (the language server sends
them when it runs its model remotely); out-of-bounds values get a 4xx JSON body."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from test_serve import Running, free_port  # noqa: E402

from dcoder.engine.load import load_engine  # noqa: E402
from dcoder.serving.server import MAX_SNIPPETS, ServeConfig  # noqa: E402

TEXT = "class Box:\n    def __init__(self, size):\n        self.size = size\n\n    def grow(self):\n        return \n"
AT = TEXT.index("return ") + len("return ")


@pytest.fixture(scope="module")
def client(exported):
    running = Running(load_engine(exported("dream"), device="cpu"), ServeConfig(port=free_port(), timeout_s=30))
    with httpx.Client(base_url=running.url, timeout=60) as c:
        yield c
    running.stop()


def request(**over) -> dict:
    body = {"text": TEXT, "cursor": AT, "language": "python", "max_tokens": 4, "sampler": {"steps": 4}}
    body.update(over)
    return body


def test_a_fill_with_the_scope_bias_and_context_snippets(client):
    context = [{"path": "other.py", "text": "def grow(box):\n    return box.size * 2\n"}]
    r = client.post("/v1/infill", json=request(scope_bias=3.0, context=context))
    assert r.status_code == 200, r.text
    assert r.json()["edits"][0]["start_offset"] == AT


@pytest.mark.parametrize("over", [
    {"scope_bias": 10.5}, {"scope_bias": -1}, {"context": [{"path": "a.py"}]},
    {"context": [{"path": "a.py", "text": "x"}] * (MAX_SNIPPETS + 1)},
    {"context": [{"path": "a.py", "text": "x" * 10_000}]},
    {"context": [{"path": "a.py", "text": "\ud800"}]},
])
def test_bad_scope_bias_or_context_is_a_4xx_json_error(client, over):
    # json.dumps escapes a lone surrogate as JSON allows ("\\ud800"); httpx would refuse to send it
    r = client.post("/v1/infill", content=json.dumps(request(**over)), headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["error"]["message"] and "Traceback" not in r.text
