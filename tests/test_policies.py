"""Decoding policies: verify gives the one-token-per-step greedy output in fewer passes, the learned
policy trains on a model's own traces and is refused for another model, bad input is one line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import SAMPLE
from dcoder.cli import main
from dcoder.config import VERIFY_ROWS, SamplerConfig
from dcoder.engine.load import load_engine
from dcoder.engine.policy import load_policy, model_identity
from dcoder.engine.sampler import denoise
from dcoder.errors import DcoderError
from dcoder.infill import InfillOptions, infill

MASK, V = 9, 10


class Constant:
    """Position i predicts answer[i] with probability conf[i], whatever the other tokens are."""

    def __init__(self, answer, conf):
        self.answer, self.conf = np.asarray(answer), np.asarray(conf, dtype=np.float64)
        self.calls = 0

    def predict(self, ids, lo, hi, step, cols=None):
        self.calls += 1
        probs = np.tile(((1 - self.conf) / (V - 1))[:, None], (1, V))
        probs[np.arange(len(self.answer)), self.answer] = self.conf
        rows = np.arange(lo, hi) if cols is None else lo + np.asarray(cols)
        return np.broadcast_to(np.log(probs)[rows], (ids.shape[0], len(rows), V)).astype(np.float32)


class Chained:
    """Each masked position's prediction depends on what is revealed so far (their sum), so a
    draft made from an earlier state is often wrong: verification has to catch it."""

    def __init__(self):
        self.calls = 0

    def predict(self, ids, lo, hi, step, cols=None):
        self.calls += 1
        rows = np.arange(lo, hi) if cols is None else lo + np.asarray(cols)
        out = np.zeros((ids.shape[0], len(rows), V))
        for b, row in enumerate(ids):
            known = int(row[row != MASK].sum())
            for j, p in enumerate(rows):
                logits = np.cos(np.arange(V) * (1 + known % 3) + p) * (1 + 0.3 * p)
                out[b, j] = logits - np.log(np.exp(logits).sum())
        return out.astype(np.float32)


def row(n: int) -> np.ndarray:
    return np.array([[0, 0] + [MASK] * n])


@pytest.mark.parametrize("alg", ["maskgit_plus", "entropy", "topk_margin"])
def test_verify_is_the_one_token_per_step_decode_in_fewer_passes(alg):
    n = 8
    conf = [0.3, 0.9, 0.5, 0.95, 0.2, 0.6, 0.8, 0.4]
    slow = denoise(row(n), Constant([0, 0] + list(range(1, 9)), [0.99, 0.99] + conf), SamplerConfig(steps=n, alg=alg), MASK)
    backend = Constant([0, 0] + list(range(1, 9)), [0.99, 0.99] + conf)
    fast = denoise(row(n), backend, SamplerConfig(policy="verify", alg=alg), MASK)
    assert fast.ids.tolist() == slow.ids.tolist()
    np.testing.assert_allclose(fast.logprobs, slow.logprobs, rtol=1e-6)
    # a model that never changes its mind: every draft holds, VERIFY_ROWS tokens a pass after the first
    assert fast.forward_passes == backend.calls == 1 + int(np.ceil((n - 1) / VERIFY_ROWS)) < slow.forward_passes == n


@pytest.mark.parametrize("n", [1, 2, 5, 11])
def test_verify_catches_drafts_the_model_takes_back(n):
    slow = denoise(row(n), Chained(), SamplerConfig(steps=n, alg="maskgit_plus"), MASK)
    fast = denoise(row(n), Chained(), SamplerConfig(policy="verify", alg="maskgit_plus"), MASK)
    assert fast.ids.tolist() == slow.ids.tolist()
    np.testing.assert_allclose(fast.logprobs, slow.logprobs, rtol=1e-6)
    assert fast.forward_passes <= slow.forward_passes == n


def test_verify_with_a_threshold_drafts_only_confident_tokens():
    conf = [0.3, 0.9, 0.5, 0.95, 0.2, 0.6, 0.8, 0.4]
    backend = Constant([0, 0] + list(range(1, 9)), [0.99, 0.99] + conf)
    slow = denoise(row(8), Constant([0, 0] + list(range(1, 9)), [0.99, 0.99] + conf), SamplerConfig(steps=8), MASK)
    fast = denoise(row(8), backend, SamplerConfig(policy="verify", threshold=0.99), MASK)
    assert fast.ids.tolist() == slow.ids.tolist()
    assert fast.forward_passes == 8  # nothing passes 0.99: one token a pass, as without drafts


def test_verify_needs_greedy_decoding():
    for bad in (dict(temperature=0.5), dict(alg="origin"), dict(alg_temp=1.0)):
        with pytest.raises(DcoderError, match="--policy verify"):
            SamplerConfig(policy="verify", **bad)


@pytest.fixture(scope="module")
def dream(exported):
    return load_engine(exported("dream"), device="cpu")


def test_verify_matches_the_slow_decode_through_onnxruntime(dream):
    at = SAMPLE.index("return a + b")
    base = InfillOptions(max_tokens=12, repair_rounds=0, search_tokens=0, deadline=600.0)
    slow = infill(dream, SAMPLE, [(at, at)], InfillOptions(**{**base.__dict__, "sampler": SamplerConfig(steps=4096)}))
    fast = infill(dream, SAMPLE, [(at, at)], InfillOptions(**{**base.__dict__, "sampler": SamplerConfig(policy="verify")}))
    assert fast.edits == slow.edits
    assert fast.score == pytest.approx(slow.score, abs=1e-4)
    assert fast.forward_passes <= slow.forward_passes == 12


# ---- the learned policy -------------------------------------------------------------------

@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    import argparse
    import difflib
    import inspect

    root = tmp_path_factory.mktemp("corpus")
    (root / "pkg").mkdir()
    (root / "pkg" / "a.py").write_text(inspect.getsource(argparse))
    (root / "pkg" / "b.py").write_text(inspect.getsource(difflib))
    (root / "pkg" / "c.py").write_text(SAMPLE * 4)
    (root / "click").mkdir()  # a benchmark project: never traced
    (root / "click" / "core.py").write_text("raise SystemExit('traced a held-out project')\n" * 50)
    return root


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory, exported, corpus):
    out = tmp_path_factory.mktemp("policy") / "policy.json"
    code = main(["train-policy", "--model", str(exported("dream")), "--corpus", str(corpus), "--out", str(out),
                 "--holes", "6", "--provider", "cpu"])
    assert code == 0
    return out


def test_training_skips_the_benchmark_projects(corpus):
    from dcoder.training.policy import corpus_files

    files = corpus_files(corpus)
    assert len(files) == 3 and not any("click" in f.parts for f in files)


def test_learned_policy_trains_loads_and_decodes(policy_file, exported, dream):
    data = json.loads(policy_file.read_text())
    assert data["model"] == model_identity(exported("dream"))
    assert data["trained_on"]["samples"] > 0 and 0 < data["threshold"] <= 1
    n_params = sum(np.size(data[k]) for k in ("w1", "b1", "w2")) + 1
    assert 50 < n_params < 1000
    policy = load_policy(policy_file, dream.folder)
    at = SAMPLE.index("return a + b")
    options = InfillOptions(sampler=SamplerConfig(policy="learned", learned=policy), max_tokens=12, repair_rounds=0,
                            search_tokens=0, deadline=600.0)
    result = infill(dream, SAMPLE, [(at, at)], options)
    assert 1 <= result.forward_passes <= 12 and result.generated_tokens == 12


def test_policy_of_another_model_is_refused(policy_file, exported):
    with pytest.raises(DcoderError, match="not for this model"):
        load_policy(policy_file, exported("llada"))


def refused(code, err, needle):
    assert code == 2 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dcoder: error:") and needle in lines[0], err


@pytest.mark.parametrize("args, needle", [
    (["--policy", "nope"], "unknown --policy 'nope'"),
    (["--threshold", "0"], "--threshold must be from 0.001 to 1"),
    (["--threshold", "1.5"], "--threshold must be from 0.001 to 1"),
    (["--policy", "learned"], "needs --policy-file"),
    (["--policy", "verify", "--temperature", "0.5"], "--policy verify"),
])
def test_bad_policy_flags_are_one_line(capsys, exported, sample_file, args, needle):
    code = main(["infill", str(sample_file), "--at", "3:12", "--model", str(exported("dream")), *args])
    refused(code, capsys.readouterr().err, needle)


def test_policy_file_of_another_model_is_one_line(capsys, exported, sample_file, policy_file):
    for command in (["infill", str(sample_file), "--at", "3:12"], ["refine", str(sample_file), "--range", "3:5-3:12"]):
        code = main([*command, "--model", str(exported("llada")), "--policy", "learned", "--policy-file", str(policy_file)])
        refused(code, capsys.readouterr().err, "not for this model")


def test_cli_fills_with_each_policy(capsys, exported, sample_file, policy_file):
    model = str(exported("dream"))
    for args in (["--policy", "verify"], ["--policy", "learned", "--policy-file", str(policy_file)]):
        code = main(["infill", str(sample_file), "--at", "3:12", "--model", model, "--max-tokens", "6", "--json",
                     "--provider", "cpu", *args])
        out = capsys.readouterr().out
        assert code == 0 and json.loads(out)["forward_passes"] >= 1


# ---- the language server's settings -------------------------------------------------------

def test_language_server_policy_settings(policy_file, exported):
    from dcoder_lsp.config import Settings

    dream_dir, llada_dir = str(exported("dream")), str(exported("llada"))
    base = Settings(model=dream_dir)
    good, problems = base.updated({"policy": "learned", "policyFile": str(policy_file)})
    assert not problems and good.options("python").sampler.learned is not None
    assert base.updated({"policy": "verify"})[0].options("python", inline=True).sampler.policy == "verify"
    for raw, needle in (({"policy": "nope"}, "policy must be one of"),
                        ({"policy": "learned"}, "needs the setting policyFile"),
                        ({"threshold": 0}, "threshold")):
        kept, problems = base.updated(raw)
        assert kept == base and len(problems) == 1 and needle in problems[0]
    # the model changes under a learned policy made for the old one: every setting stays as it was
    kept, problems = good.updated({"model": llada_dir, "steps": 3})
    assert kept == good and "not for this model" in problems[0] and "settings unchanged" in problems[0]


# ---- the HTTP server ----------------------------------------------------------------------

def test_server_takes_the_policy_per_request(dream, policy_file, exported):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from dcoder.serving.server import ServeConfig, create_app

    body = {"text": SAMPLE, "cursor": SAMPLE.index("return a + b"), "max_tokens": 6}
    with TestClient(create_app(dream, ServeConfig(), "tiny")) as plain:
        assert plain.post("/v1/infill", json={**body, "sampler": {"policy": "verify"}}).status_code == 200
        for sampler, needle in (({"policy": "nope"}, "policy"), ({"policy": "learned"}, "no learned policy"),
                                ({"threshold": 0}, "threshold"), ({"policy": "verify", "temperature": 0.5}, "verify")):
            response = plain.post("/v1/infill", json={**body, "sampler": sampler})
            assert response.status_code == 400 and needle in response.json()["error"]["message"], response.text
    with TestClient(create_app(dream, ServeConfig(policy_file=str(policy_file)), "tiny")) as learned:
        response = learned.post("/v1/infill", json={**body, "sampler": {"policy": "learned"}})
        assert response.status_code == 200 and response.json()["forward_passes"] >= 1
    other = load_engine(exported("llada"), device="cpu")
    with pytest.raises(DcoderError, match="not for this model"):
        create_app(other, ServeConfig(policy_file=str(policy_file)), "tiny")
