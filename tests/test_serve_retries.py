"""Retried requests on dcoder serve: the same Idempotency-Key gets the first attempt's run, never a
second one; the real app under uvicorn, a tiny exported model, real HTTP."""

from __future__ import annotations

import re
import threading
import time

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from serve_support import Running, free_port  # noqa: E402

from dcoder.engine.load import load_engine  # noqa: E402
from dcoder.serving.server import ServeConfig  # noqa: E402

TEXT = "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n"
FIM = {"prompt": "def add(a, b):\n    return ", "suffix": "\n", "max_tokens": 8}


@pytest.fixture(scope="module")
def server(exported):
    running = Running(load_engine(exported("dream"), device="cpu"), ServeConfig(port=free_port(), timeout_s=60))
    yield running
    running.stop()


def counters(url: str) -> tuple[int, int]:
    text = httpx.get(url + "/metrics").text
    return tuple(int(re.search(rf"^{name} (\d+)$", text, re.M)[1]) for name in ("dcoder_runs_total", "dcoder_replayed_total"))


def test_a_retry_with_the_same_key_is_answered_from_the_first_run(server):
    runs, replayed = counters(server.url)
    first = httpx.post(server.url + "/v1/completions", json=FIM, headers={"idempotency-key": "k-1"}, timeout=60)
    again = httpx.post(server.url + "/v1/completions", json=FIM, headers={"idempotency-key": "k-1"}, timeout=60)
    assert first.status_code == again.status_code == 200
    assert first.json()["choices"] == again.json()["choices"]
    assert counters(server.url) == (runs + 1, replayed + 1)
    other = httpx.post(server.url + "/v1/completions", json=FIM, headers={"idempotency-key": "k-2"}, timeout=60)
    assert other.status_code == 200 and counters(server.url) == (runs + 2, replayed + 1)
    reused = httpx.post(server.url + "/v1/completions", json={**FIM, "max_tokens": 4}, headers={"idempotency-key": "k-1"})
    assert reused.status_code == 422 and reused.json()["error"]["code"] == "idempotency_key_reused"
    assert httpx.post(server.url + "/v1/completions", json=FIM, headers={"idempotency-key": "k" * 256}).status_code == 400


def test_concurrent_attempts_share_one_run_and_one_leaving_does_not_cancel_it(server):
    runs, replayed = counters(server.url)
    body = {"text": TEXT, "cursor": TEXT.index("a * b"), "max_tokens": 256, "exact_length": 256,
            "sampler": {"steps": 256}, "candidates": 8, "deadline": 60}  # seconds of work
    headers = {"idempotency-key": "shared"}
    answers = []

    def attempt():
        answers.append(httpx.post(server.url + "/v1/infill", json=body, headers=headers, timeout=60))

    first = threading.Thread(target=attempt)
    first.start()
    replays = server.server.config.app.state.replays
    for _ in range(200):  # bounded: 10 s for the first attempt to arrive
        if "shared" in replays.attempts:
            break
        time.sleep(0.05)
    with pytest.raises(httpx.TimeoutException):  # an attempt that gives up while the run goes on
        httpx.post(server.url + "/v1/infill", json=body, headers=headers, timeout=0.3)
    first.join(timeout=60)
    (answer,) = answers
    assert answer.status_code == 200, answer.text
    assert not answer.json()["timed_out"] and answer.json()["forward_passes"] >= 256
    assert counters(server.url) == (runs + 1, replayed + 1)
