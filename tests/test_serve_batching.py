"""dcoder serve with requests denoised together (--batch): real HTTP, real onnxruntime, the built-in model."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from serve_support import Running, free_port

from dcoder.engine.engine import BUILTIN_MODEL
from dcoder.engine.load import load_engine
from dcoder.serving.batching import InferenceQueue
from dcoder.serving.server import ServeConfig

SOURCE = (
    "import os\n\n\ndef read(path):\n    with open(path) as f:\n        return f.read()\n\n\n"
    "def write(path, text):\n    with open(path, 'w') as f:\n        f.write(text)\n\n\n"
    "class Store:\n    def __init__(self, root):\n        self.root = root\n\n"
    "    def get(self, name):\n        return read(os.path.join(self.root, name))\n"
)
CUTS = [SOURCE.index(s) for s in ("return f.read", "f.write(text)", "self.root = root", "return read(")]


def completion(cut: int, tokens: int = 12) -> dict:
    return {"prompt": SOURCE[:cut], "suffix": SOURCE[cut:], "max_tokens": tokens}


@pytest.fixture(scope="module")
def engine():
    return load_engine(str(BUILTIN_MODEL), device="cpu")


def answers(url: str, bodies: list[dict]) -> list[str]:
    def send(body):
        r = httpx.post(url + "/v1/completions", json=body, timeout=120)
        assert r.status_code == 200, r.text
        return r.json()["choices"][0]["text"]

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(send, bodies))


def test_concurrent_requests_denoised_together_get_their_own_fills(engine):
    bodies = [completion(c) for c in CUTS]
    turns = Running(engine, ServeConfig(port=free_port(), batch=1))
    try:
        alone = answers(turns.url, bodies)
    finally:
        turns.stop()
    merged = Running(engine, ServeConfig(port=free_port(), batch=4, batch_wait_ms=50))
    try:
        together = answers(merged.url, bodies)
        stats = merged.server.config.app.state.inference.merger.stats
        metrics = httpx.get(merged.url + "/metrics").text
    finally:
        merged.stop()
    assert together == alone
    assert stats.step_runs > stats.step_passes  # step passes carried several requests
    assert "dcoder_batch_requests " in metrics and "dcoder_running_requests 0" in metrics


def test_a_client_that_leaves_cancels_only_its_own_run(engine):
    running = Running(engine, ServeConfig(port=free_port(), batch=4, timeout_s=60))
    try:
        inference = running.server.config.app.state.inference
        want = answers(running.url, [completion(CUTS[1])])
        long = {"prompt": SOURCE[:CUTS[0]], "suffix": SOURCE[CUTS[0]:], "max_tokens": 256}
        left = []

        def leave():
            try:
                httpx.post(running.url + "/v1/completions", json=long, timeout=0.5)
            except httpx.TimeoutException:
                left.append(True)

        leaving = threading.Thread(target=leave)
        leaving.start()
        time.sleep(0.2)
        assert answers(running.url, [completion(CUTS[1]), completion(CUTS[1])]) == want * 2
        leaving.join()
        assert left == [True]
        for _ in range(200):  # bounded: the left run notices within a step
            if inference.stats.runs >= 4 and inference.running == 0:
                break
            time.sleep(0.05)
        assert inference.stats.runs == 4 and inference.stats.forward_passes < 3 * 12 + 256
    finally:
        running.stop()


def test_models_that_cannot_merge_take_turns(dream_ckpt, exported):
    torch_engine = load_engine(dream_ckpt, device="cpu")  # a raw checkpoint runs on PyTorch
    queue = InferenceQueue(torch_engine, 4, batch=8)
    try:
        assert queue.merger is None and queue.workers == 1 and "PyTorch" in queue.not_merged
    finally:
        queue.close()
    onnx = InferenceQueue(load_engine(exported("dream"), device="cpu"), 4, batch=8)
    try:
        assert onnx.merger is not None and onnx.workers == 8 and onnx.not_merged is None
    finally:
        onnx.close()
