"""dcoder serve: the real app under uvicorn on 127.0.0.1, a tiny exported model, real HTTP."""

from __future__ import annotations

import json
import random
import threading
import time

import pytest

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from serve_support import Running, free_port

from dcoder.engine.load import load_engine
from dcoder.errors import DcoderError
from dcoder.serving.server import ServeConfig

TOKEN = "test-token-0123456789"
TEXT = "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n"


@pytest.fixture(scope="module")
def engine(exported):
    return load_engine(exported("dream"), device="cpu")


@pytest.fixture(scope="module")
def server(engine):
    running = Running(engine, ServeConfig(port=free_port(), token=TOKEN, max_body_bytes=64 << 10,
                                          max_document_chars=20_000, queue_size=4, timeout_s=30))
    yield running
    running.stop()


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {TOKEN}"}, timeout=60) as c:
        yield c


def fill_request(**over) -> dict:
    body = {"text": TEXT, "cursor": TEXT.index("a + b"), "language": "python", "max_tokens": 4,
            "sampler": {"steps": 4}}
    body.update(over)
    return body


def assert_error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert "Traceback" not in response.text
    return body


def test_infill_returns_edits_with_positions(client):
    r = client.post("/v1/infill", json=fill_request())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "tiny" and body["forward_passes"] >= 1
    (edit,) = body["edits"]
    at = TEXT.index("a + b")
    assert edit["start_offset"] == edit["end_offset"] == at
    assert edit["start"] == {"line": 2, "column": at - TEXT.index("\n") }
    assert body["text"] == TEXT[:at] + edit["text"] + TEXT[at:]
    assert body["parses"] in (True, False)


def test_holes_ranges_and_refine(client):
    holed = TEXT.replace("a * b", "<|mask|>")
    r = client.post("/v1/infill", json={"text": holed, "max_tokens": 3, "sampler": {"steps": 3}})
    assert r.status_code == 200 and "<|mask|>" not in r.json()["text"]
    a = TEXT.index("a * b")
    r = client.post("/v1/infill", json=fill_request(cursor=None, ranges=[[a, a + 5]], refine=True, min_confidence=0.5))
    assert r.status_code == 200, r.text
    for e in r.json()["edits"]:
        assert a <= e["start_offset"] <= e["end_offset"] <= a + 5


def test_streamed_infill_sends_steps_then_result(client):
    with client.stream("POST", "/v1/infill", json=fill_request(stream=True)) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        frames = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")]
    steps, final = frames[:-1], frames[-1]
    assert steps and all("\u2591" in f["spans"][0]["text"] or f["masked_left"] == 0 for f in steps)
    assert steps[0]["step"] == 1  # repair rounds, if any, count their steps from 1 again
    assert "result" in final and final["result"]["edits"]


def test_openai_fim_request_like_continue_and_minuet(client):
    """Continue and minuet-ai.nvim send prompt + suffix + max_tokens + stop to /v1/completions."""
    body = {"model": "tiny", "prompt": "def add(a, b):\n    return ", "suffix": "\n\nprint(add(1, 2))\n",
            "max_tokens": 8, "temperature": 0, "stop": ["\n\n", "\ndef "], "n": 1, "echo": False}
    r = client.post("/v1/completions", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["object"] == "text_completion" and out["model"] == "tiny"
    (choice,) = out["choices"]
    assert choice["finish_reason"] in ("stop", "length") and "\n\n" not in choice["text"]
    with client.stream("POST", "/v1/completions", json={**body, "stream": True}) as r:
        lines = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    assert json.loads(lines[0])["choices"][0]["text"] == choice["text"]
    models = client.get("/v1/models").json()
    assert [m["id"] for m in models["data"]] == ["tiny"]


def test_health_and_metrics(client, server):
    assert httpx.get(server.url + "/health").json()["status"] == "ok"  # no token needed
    client.post("/v1/infill", json=fill_request())
    text = client.get("/metrics").text
    for name in ("dcoder_request_seconds_bucket", "dcoder_queue_depth", "dcoder_forward_passes_total",
                 "dcoder_tokens_per_second", "dcoder_batch_requests"):
        assert name in text


@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer wrong"}, {"authorization": TOKEN}])
def test_token_is_required(server, headers):
    r = httpx.post(server.url + "/v1/infill", json=fill_request(), headers=headers)
    assert_error(r, 401)
    assert_error(httpx.get(server.url + "/metrics", headers=headers), 401)


BAD = [
    (b"{not json", 400),
    (b"[1, 2]", 400),
    (json.dumps({"text": 5}).encode(), 400),
    (json.dumps(fill_request(cursor="3")).encode(), 400),
    (json.dumps(fill_request(cursor=10_000)).encode(), 400),
    (json.dumps(fill_request(cursor=None, ranges=[[5, 10_000]])).encode(), 400),
    (json.dumps(fill_request(cursor=None, ranges=[[9, 5]])).encode(), 400),
    (json.dumps(fill_request(cursor=None, ranges=[[1, 2, 3]])).encode(), 400),
    (json.dumps(fill_request(sampler={"steps": 10**9})).encode(), 400),
    (json.dumps(fill_request(sampler={"alg": "nope"})).encode(), 400),
    (json.dumps(fill_request(model="gpt-4")).encode(), 404),
    (json.dumps(fill_request(region="function.inner", language=None)).encode(), 400),
    (json.dumps(fill_request(unknown_field=1)).encode(), 400),
    (json.dumps({"text": "x" * 30_000, "cursor": 0}).encode(), 413),
    (json.dumps({"prompt": 3}).encode(), 400),
]


@pytest.mark.parametrize("raw,status", BAD)
def test_bad_input_gets_a_json_error(client, raw, status):
    path = "/v1/completions" if b"prompt" in raw else "/v1/infill"
    r = client.post(path, content=raw, headers={"content-type": "application/json"})
    assert_error(r, status)


def test_oversized_body_unknown_endpoint_wrong_method(client):
    assert_error(client.post("/v1/infill", content=b"x" * (65 << 10)), 413)
    chunks = (b"y" * 4096 for _ in range(40))  # chunked, no content-length
    assert_error(client.post("/v1/infill", content=chunks), 413)
    assert_error(client.post("/v1/nowhere", json={}), 404)
    assert_error(client.get("/v1/infill"), 405)
    assert_error(client.post("/v1/completions", json={"prompt": "a", "model": "other"}), 404)


def test_flood_gets_503_and_others_still_served(engine):
    """More requests than queue places: the rest get 503 at once; every answer is JSON, the server stays up."""
    # room for three: two running together, one waiting
    running = Running(engine, ServeConfig(port=free_port(), queue_size=1, batch=2, timeout_s=30))
    try:
        slow = fill_request(max_tokens=32, sampler={"steps": 32}, candidates=4)
        results = []

        def send():
            with httpx.Client(timeout=60) as c:
                results.append(c.post(running.url + "/v1/infill", json=slow))

        threads = [threading.Thread(target=send) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        codes = sorted(r.status_code for r in results)
        assert len(codes) == 8 and 200 in codes and 503 in codes and set(codes) <= {200, 503}
        for r in results:
            assert "error" in r.json() or "edits" in r.json()
        assert httpx.post(running.url + "/v1/infill", json=fill_request(), timeout=60).status_code == 200
    finally:
        running.stop()


def test_time_limit_stops_the_run(engine):
    running = Running(engine, ServeConfig(port=free_port(), timeout_s=0.001))
    try:
        r = httpx.post(running.url + "/v1/infill", json=fill_request(max_tokens=64, sampler={"steps": 64}), timeout=60)
        assert_error(r, 504)
    finally:
        running.stop()


LONG = {"max_tokens": 256, "exact_length": 256, "sampler": {"steps": 256}, "candidates": 8}  # seconds of work


def test_the_request_deadline_applies(client):
    # past it the best fill so far comes back; with no fill yet (the first denoising unfinished), a 504
    started = time.monotonic()
    body = assert_error(client.post("/v1/infill", json=fill_request(**LONG, deadline=0.3)), 504)
    assert "deadline of 0.3 s" in body["error"]["message"] and time.monotonic() - started < 5
    assert not client.post("/v1/infill", json=fill_request()).json()["timed_out"]
    assert_error(client.post("/v1/infill", json=fill_request(deadline=0.01)), 400)


def test_client_that_leaves_cancels_its_run(engine):
    running = Running(engine, ServeConfig(port=free_port(), timeout_s=30))
    try:
        long = fill_request(**LONG)
        with pytest.raises(httpx.TimeoutException):
            httpx.post(running.url + "/v1/infill", json=long, timeout=0.5)
        inference = running.server.config.app.state.inference
        for _ in range(200):  # bounded: the run notices within a step
            if inference.stats.runs >= 1:
                break
            time.sleep(0.05)
        assert inference.stats.forward_passes < 256
    finally:
        running.stop()


def test_non_loopback_without_token_is_refused():
    with pytest.raises(DcoderError, match="without a token"):
        ServeConfig(host="0.0.0.0")
    ServeConfig(host="0.0.0.0", token=TOKEN)
    ServeConfig(host="::1")


def test_fuzz_then_a_good_request(client):
    """Seeded and bounded: random damage to good requests never takes the server down."""
    rng = random.Random(22)
    good = json.dumps(fill_request()).encode()
    for _ in range(60):
        raw = bytearray(good)
        for _ in range(rng.randint(1, 6)):
            i = rng.randrange(len(raw))
            choice = rng.random()
            if choice < 0.4:
                raw[i] = rng.randrange(256)
            elif choice < 0.7:
                del raw[i:i + rng.randint(1, 8)]
            else:
                raw[i:i] = rng.choice([b'"', b"-1", b"1e308", b"null", b"[", b"}", b'"\\ud800"', b"9" * 30])
        path = rng.choice(["/v1/infill", "/v1/completions"])
        r = client.post(path, content=bytes(raw), headers={"content-type": "application/json"})
        assert r.status_code < 500, r.text
        assert "error" in r.json() or r.status_code == 200
    assert client.post("/v1/infill", json=fill_request()).status_code == 200


def test_cli_refuses_an_open_address_without_a_token(capsys, monkeypatch):
    from dcoder.cli import main

    monkeypatch.delenv("DCODER_TOKEN", raising=False)
    assert main(["serve", "--host", "0.0.0.0", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "without a token" in err


def test_language_server_sends_its_runs_to_the_server(engine, server):
    """With the ``server`` setting, operations run on the dcoder server: same edits as the local
    model (greedy), previews arrive, and a stopped run comes back cancelled."""
    from dcoder_lsp import operations
    from dcoder_lsp.config import Settings
    from dcoder_lsp.documents import Document
    from dcoder_lsp.remote import RemoteEngine

    settings, problems = Settings(steps=4, max_tokens=4).updated({"server": server.url, "serverToken": TOKEN})
    assert not problems and settings.server == server.url
    remote = RemoteEngine(settings.server, settings.server_token)
    doc = Document("file:///x.py", "python", 1, TEXT.replace("\n", "\r\n"))
    a = doc.text.index("a * b")

    def never() -> bool:  # the job is not cancelled from outside here
        return False

    steps = []
    here = operations.fill(engine, doc, [(a, a + 5)], settings, lambda step: False, never)
    there = operations.fill(remote, doc, [(a, a + 5)], settings, lambda step: steps.append(step) is not None, never)
    assert there == here and steps and steps[0].ranges == ((a, a + 5),)
    assert operations.complete(remote, doc, a, settings, lambda step: False, never) == \
        operations.complete(engine, doc, a, settings, lambda step: False, never)
    stopped = operations.refine(remote, doc, a, a + 5, settings, False, lambda step: True, never)
    assert stopped.cancelled and stopped.edits == ()
    # the language server's deadline goes with each run: the server stops there and says so
    hurried, _ = Settings(steps=256, max_tokens=256, candidates=8, deadline=0.3).updated({"server": server.url})
    with pytest.raises(DcoderError, match="deadline of 0.3 s"):
        operations.fill(RemoteEngine(server.url, TOKEN), doc, [(a, a + 5)], hurried, lambda step: False, never)
    with pytest.raises(DcoderError, match="bearer token"):
        operations.fill(RemoteEngine(server.url), doc, [(a, a + 5)], settings, lambda step: False, never)
    _, problems = Settings().updated({"server": "file:///etc/passwd"})
    assert problems


def test_odd_text_and_too_much_work_are_refused(client):
    assert_error(client.post("/v1/infill", json=fill_request(candidates=64)), 400)
    assert_error(client.post("/v1/infill", json=fill_request(cursor=None, ranges=[[0, 0]] * 17)), 400)
    for path, raw in (("/v1/infill", b'{"text": "x = \\ud800", "cursor": 0}'), ("/v1/completions", b'{"prompt": "\\udc00"}')):
        assert_error(client.post(path, content=raw, headers={"content-type": "application/json"}), 400)
    assert client.get("/health").status_code == 200


def test_bench_serve_prints_figures(server, monkeypatch, capsys):
    from dcoder.cli import main

    monkeypatch.setenv("DCODER_TOKEN", TOKEN)
    assert main(["bench", "--serve", server.url, "--clients", "2", "--requests", "4", "--span", "4"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["status"] == {"200": 4} and figures["latency_ms"]["p50"] > 0 and figures["requests_per_s"] > 0
    assert main(["bench", "--serve", server.url, "--clients", "0"]) == 2


def test_bench_serve_local_compares_batch_settings(capsys):
    from dcoder.cli import main

    assert main(["bench", "--serve", "local", "--batches", "1,2", "--clients", "1,2", "--requests", "2",
                 "--span", "4"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(r["batch"], r["clients"]) for r in out["rows"]] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    assert all(r["status"] == {"200": 2} and r["throughput_vs_batch_1"] > 0 for r in out["rows"])
    assert main(["bench", "--serve", "local", "--batches", "1,x"]) == 2
