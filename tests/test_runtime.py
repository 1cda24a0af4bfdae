"""The onnxruntime backend: the sampler on exported folders against PyTorch, the context cache
and its refresh policy, provider choice on a machine without a GPU, manifest checks, no torch."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from dcoder.config import SamplerConfig
from dcoder.engine.checkpoint import open_checkpoint
from dcoder.engine.manifest import load_manifest, sha256_file
from dcoder.engine.runtime import OnnxBackend, RuntimeOptions, load_exported, nvidia_driver_present
from dcoder.engine.sampler import denoise, log_softmax, shifted_window
from dcoder.errors import DcoderError

torch = pytest.importorskip("torch")

CKPTS = ("dream", "llada")
NO_GPU = not nvidia_driver_present()


def masked_batch(mask: int, batch: int = 2, length: int = 90, span=(30, 54)) -> np.ndarray:
    ids = np.random.default_rng(5).integers(3, 500, (batch, length))
    ids[:, span[0]:span[1]] = mask
    return ids


def ort_log_softmax():
    """onnxruntime's LogSoftmax, the op that ends the encode and step graphs."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    node = helper.make_node("LogSoftmax", ["x"], ["y"], axis=-1)
    graph = helper.make_graph([node], "ls", [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return lambda x: sess.run(None, {"x": np.ascontiguousarray(x)})[0]


class FullRecompute:
    """Reference backend: the ``full`` graph over the whole sequence at every pass, normalised
    with the same op as the cached graphs (a random model's near-ties would otherwise turn
    last-bit rounding differences into different picks)."""

    def __init__(self, backend: OnnxBackend):
        self.backend = backend
        self.normalize = ort_log_softmax()

    def predict(self, ids, lo, hi, step, cols=None):
        a, z = shifted_window(lo, hi, self.backend.shift)
        cols = np.arange(z - a) if cols is None else cols
        return self.normalize(self.backend.full(ids)[:, a + np.asarray(cols)])


class Counting(OnnxBackend):
    def __init__(self, *args, **kw):
        self.calls = {"encode": 0, "step": 0}
        super().__init__(*args, **kw)
        self.calls = {"encode": 0, "step": 0}  # not the passes that checked the model at load

    def encode(self, *args):
        self.calls["encode"] += 1
        return super().encode(*args)

    def step(self, *args):
        self.calls["step"] += 1
        return super().step(*args)


@pytest.mark.parametrize("name", CKPTS)
def test_refresh_every_pass_gives_the_full_recompute_result(name, exported):
    manifest = load_manifest(exported(name))
    backend = OnnxBackend(manifest, RuntimeOptions(provider="cpu", cache_refresh=1))
    ids = masked_batch(manifest.tokens.mask)
    config = SamplerConfig(steps=12, alg="entropy")
    cached = denoise(ids, backend, config, manifest.tokens.mask)
    full = denoise(ids, FullRecompute(backend), config, manifest.tokens.mask)
    assert np.array_equal(cached.ids, full.ids)
    assert np.allclose(cached.logprobs, full.logprobs, atol=1e-4)
    assert cached.forward_passes == full.forward_passes == 12


@pytest.mark.parametrize("name", CKPTS)
def test_sampler_runs_unchanged_on_onnx_and_torch(name, exported, dream_ckpt, llada_ckpt):
    from dcoder.engine.torch_backend import TorchBackend, load_model

    ckpt = open_checkpoint({"dream": dream_ckpt, "llada": llada_ckpt}[name])
    torch_backend = TorchBackend(load_model(ckpt), ckpt.config.shift_logits)
    onnx_backend = OnnxBackend(load_manifest(exported(name)), RuntimeOptions(provider="cpu", cache_refresh=1))
    ids = masked_batch(ckpt.tokens.mask)
    for config in (SamplerConfig(steps=8, alg="maskgit_plus"), SamplerConfig(steps=24, threshold=0.5, alg="topk_margin")):
        a = denoise(ids, torch_backend, config, ckpt.tokens.mask)
        b = denoise(ids, onnx_backend, config, ckpt.tokens.mask)
        assert np.array_equal(a.ids, b.ids)
        assert a.forward_passes == b.forward_passes


@pytest.mark.parametrize("refresh, encodes", [(0, 1), (4, 3), (1, 12)])
def test_cache_refresh_policy_counts_encodes(refresh, encodes, exported):
    manifest = load_manifest(exported("dream"))
    backend = Counting(manifest, RuntimeOptions(provider="cpu", cache_refresh=refresh))
    ids = masked_batch(manifest.tokens.mask)
    result = denoise(ids, backend, SamplerConfig(steps=12), manifest.tokens.mask)
    assert result.forward_passes == 12
    assert backend.calls == {"encode": encodes, "step": 12 - encodes}
    # a new run over other context re-encodes at its first pass
    other = ids.copy()
    other[:, 0] = 7
    denoise(other, backend, SamplerConfig(steps=2), manifest.tokens.mask)
    assert backend.calls["encode"] == encodes + (2 if refresh == 1 else 1)


def test_cached_steps_stay_close_to_the_full_result(exported):
    """With a never-refreshed cache the context is approximate; the span's own logits are exact
    at the first pass and stay close later on a random model."""
    manifest = load_manifest(exported("llada"))
    backend = OnnxBackend(manifest, RuntimeOptions(provider="cpu"))
    ids = masked_batch(manifest.tokens.mask)
    first = backend.predict(ids, 30, 54, 0)
    assert np.allclose(first, log_softmax(backend.full(ids)[:, 30:54]), atol=1e-4)
    ids[:, 30:40] = 11  # reveal part of the span: the cached context does not see it
    later = backend.predict(ids, 30, 54, 1)
    full = log_softmax(backend.full(ids)[:, 30:54])
    assert np.allclose(backend.predict(ids, 30, 54, 2, np.array([3, 17])), later[:, [3, 17]], atol=1e-5)
    assert not np.allclose(later, full, atol=1e-6)
    assert np.abs(later - full).max() < 0.5


@pytest.mark.skipif(not NO_GPU, reason="checks the fallback on a machine without an NVIDIA driver")
def test_auto_provider_is_cpu_without_a_gpu_and_cuda_is_refused(exported):
    engine = load_exported(exported("dream"))
    assert engine.backend.provider == "CPUExecutionProvider"
    assert "CPUExecutionProvider" in engine.description
    with pytest.raises(DcoderError, match="provider cuda is not usable"):
        load_exported(exported("dream"), RuntimeOptions(provider="cuda"))
    with pytest.raises(DcoderError, match="unknown provider"):
        RuntimeOptions(provider="rocm")


@pytest.mark.skipif(not NO_GPU, reason="fakes a driver on a machine without one")
def test_a_cuda_provider_that_does_not_load_falls_back_quietly_or_says_what_to_install(exported, monkeypatch, capfd):
    """With a driver but no CUDA libraries, onnxruntime-gpu's CUDA provider fails to load: auto runs
    on the CPU without a word, an explicit request gets one line naming what to install."""
    import onnxruntime as ort

    import dcoder.engine.runtime

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("this onnxruntime has no CUDA provider")
    monkeypatch.setattr(dcoder.engine.runtime, "nvidia_driver_present", lambda: True)
    assert load_exported(exported("dream")).backend.provider == "CPUExecutionProvider"
    version = ort.capi.build_and_package_info.cuda_version
    with pytest.raises(DcoderError, match=rf"provider cuda failed to load .*CUDA {re.escape(version)} .*dcoder-diffusion\[cuda\]") as err:
        load_exported(exported("dream"), RuntimeOptions(provider="cuda"))
    assert "\n" not in str(err.value)
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


def test_runtime_path_imports_no_torch_and_prints_no_provider_noise(exported, tmp_path):
    src = tmp_path / "a.py"
    src.write_text("def f(x):\n    return x + 1\n", encoding="utf-8")
    code = ("import sys, runpy; sys.argv = ['dcoder', 'infill', sys.argv[1], '--at', '2:12', '--model', sys.argv[2],"
            " '--steps', '4', '--json'];\n"
            "from dcoder.cli import main\n"
            "rc = main(sys.argv[1:])\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n"
            "sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, str(src), str(exported("dream"))],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["edits"] and "CPUExecutionProvider" in out["model"]
    # at most dcoder's own one-line notes (a random model's fill may not parse), no provider logs
    assert all(line.startswith("dcoder: ") for line in proc.stderr.splitlines()), proc.stderr


def test_a_pass_in_flight_can_be_interrupted_from_another_thread(exported):
    """What the language server does when a request is cancelled: the pass ends with
    ``Interrupted`` instead of running to its end, and the next pass runs normally."""
    import threading

    from dcoder.errors import Interrupted

    manifest = load_manifest(exported("dream"))
    backend = OnnxBackend(manifest, RuntimeOptions(provider="cpu"))
    ids = masked_batch(manifest.tokens.mask, batch=48, length=500, span=(200, 456))
    done = threading.Event()

    def interrupt():
        while not done.is_set():
            backend.interrupt()

    thread = threading.Thread(target=interrupt)
    thread.start()
    try:
        with pytest.raises(Interrupted, match="encode.onnx was interrupted"):
            backend.predict(ids, 200, 456, 0)
    finally:
        done.set()
        thread.join()
    assert backend.running is None
    assert np.isfinite(backend.predict(ids[:1, :90], 30, 54, 0)).all()


def test_manifest_is_verified(exported, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(exported("llada"), folder)
    graph = folder / "step.onnx"
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF
    graph.write_bytes(bytes(data))
    with pytest.raises(DcoderError, match="step.onnx is corrupt"):
        load_exported(folder)
    (folder / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(DcoderError, match="manifest"):
        load_exported(folder)
    (folder / "manifest.json").unlink()
    with pytest.raises(DcoderError, match="not an exported model"):
        load_exported(folder)


def test_weights_are_verified_at_load_and_remembered_until_changed(exported, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = tmp_path / "m"
    shutil.copytree(exported("llada"), folder)
    weights = folder / "weights.bin"
    good = weights.read_bytes()
    load_exported(folder)
    assert len(list((tmp_path / "cache" / "dcoder" / "verified").iterdir())) == 1
    # the right size, the wrong bytes: zeros, 0xFF (NaN as float32), or one byte changed with the
    # modification time put back (a verified file is not hashed again, but this one was written)
    for data in (bytes(len(good)), b"\xff" * len(good), good[:-1] + bytes([good[-1] ^ 1])):
        stat = weights.stat()
        weights.write_bytes(data)
        os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        with pytest.raises(DcoderError, match="weights file weights.bin is corrupt"):
            load_exported(folder)
    (tmp_path / "a.py").write_text("x = 1\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "dcoder.cli", "infill", "--model", str(folder), "--at", "1:1",
                           str(tmp_path / "a.py")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("dcoder: error: weights file weights.bin is corrupt")
    assert proc.stderr.count("\n") == 1
    # NaN weights whose checksum matches (a checkpoint that diverged) are refused too
    nan = np.frombuffer(good, dtype=np.uint8).copy()
    nan[-4:] = np.frombuffer(np.float32(np.nan).tobytes(), dtype=np.uint8)
    weights.write_bytes(nan.tobytes())
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["external_data"][0]["sha256"] = sha256_file(weights)
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(DcoderError, match=r"weights.bin holds NaN or infinite values \(in \S+\)"):
        load_exported(folder)


def test_manifest_from_another_version_or_a_truncated_graph_is_refused(exported, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(exported("llada"), folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "dcoder_version": "0.0.9"}), encoding="utf-8")
    with pytest.raises(DcoderError, match=r"exported by dcoder 0\.0\.9, this is dcoder .*export the checkpoint again"):
        load_exported(folder)
    # a truncated graph whose checksum was rewritten to match still fails with one clear line
    graph = folder / "encode.onnx"
    graph.write_bytes(graph.read_bytes()[:2000])
    manifest["graphs"]["encode"]["sha256"] = sha256_file(graph)
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(DcoderError, match="encode.onnx is not a valid ONNX model") as err:
        load_exported(folder)
    assert "\n" not in str(err.value)
    proc = subprocess.run([sys.executable, "-m", "dcoder.cli", "bench", "--model", str(folder), "--repeats", "1"],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "encode.onnx" in proc.stderr


def test_a_graph_that_loads_but_cannot_run_is_refused_at_load_in_one_line(exported, tmp_path):
    """The model is run on a few tokens when it is opened, so a graph onnxruntime cannot run
    (here: its ``rows`` input renamed) fails there with one line, not in the middle of an edit."""
    import onnx

    folder = tmp_path / "m"
    shutil.copytree(exported("dream"), folder)
    graph = folder / "step.onnx"
    model = onnx.load(str(graph), load_external_data=False)
    for node in model.graph.node:
        node.input[:] = ["row_index" if name == "rows" else name for name in node.input]
    next(i for i in model.graph.input if i.name == "rows").name = "row_index"
    onnx.save(model, str(graph))
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["graphs"]["step"]["sha256"] = sha256_file(graph)
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(DcoderError, match=r"^onnxruntime failed running step\.onnx: .*rows") as err:
        load_exported(folder)
    assert "\n" not in str(err.value)
    (tmp_path / "a.py").write_text("x = 1\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "dcoder.cli", "infill", "--model", str(folder), "--at", "1:1",
                           str(tmp_path / "a.py")], capture_output=True, text=True)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("dcoder: error: onnxruntime failed running step.onnx") and len(proc.stderr.splitlines()) == 1


def test_bench_compares_with_torch_without_the_source_checkpoint(exported, tmp_path):
    """The built-in model ships without its checkpoint: PyTorch runs the one unpacked from the folder."""
    folder = tmp_path / "m"
    shutil.copytree(exported("llada"), folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["source"]["path"] = str(tmp_path / "gone")
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "dcoder.cli", "bench", "--model", str(folder), "--repeats", "2",
                           "--context", "64", "--span", "8", "--json", str(tmp_path / "b.json")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    figures = json.loads((tmp_path / "b.json").read_text())
    assert figures["torch_checkpoint"] == "unpacked from the model folder"
    assert figures["torch_device"] == "cpu" and figures["torch_dtype"] == "fp32"
    assert figures["ort_vs_torch"] > 0 and figures["torch_full_pass_ms"] > 0
    # an fp32 model on the CPU: the sgemm ceiling ran in the same rotation
    assert figures["sgemm_gflops_per_s"] > 0 and figures["ort_vs_torch_bound"] > 0
    assert figures["full_pass_gflop"] == pytest.approx(figures["ort_full_pass_gflops_per_s"] * figures["ort_full_pass_ms_alternating"] / 1000)
    # eight runs' steps merged into one pass, timed against one run's step
    assert figures["merged_runs"] == 8 and figures["merged_step_ms"] > 0
    assert figures["merged_step_vs_one_run"] == pytest.approx(figures["merged_step_ms"] / figures["cached_step_ms"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.json", "m"]


def test_bench_decodes_on_a_fixed_schedule_when_given_steps(exported, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "dcoder.cli", "bench", "--model", str(exported("dream")), "--repeats", "1",
                           "--context", "64", "--span", "8", "--steps", "2", "--json", str(tmp_path / "b.json")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    figures = json.loads((tmp_path / "b.json").read_text())
    assert figures["steps"] == 2 and figures["threshold"] is None
    assert figures["tokens_per_forward"] == 4.0
    proc = subprocess.run([sys.executable, "-m", "dcoder.cli", "bench", "--model", str(exported("dream")), "--steps", "0"],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and proc.stderr.strip() == "dcoder: error: --steps must be from 1 to 4096"


def test_full_pass_gflop_counts_every_matrix_product(monkeypatch):
    """The count against PyTorch's own, with attention written out so that its products count too."""
    from torch.utils.flop_counter import FlopCounterMode

    import dcoder.engine.model
    from dcoder.engine.model_config import ModelConfig
    from dcoder.evaluation.bench import full_pass_gflop

    def math_attention(q, k, v, is_causal=False):
        weights = torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, dim=-1)
        return weights @ v

    monkeypatch.setattr(dcoder.engine.model.F, "scaled_dot_product_attention", math_attention)
    cfg = ModelConfig(vocab_size=300, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2)
    model = dcoder.engine.model.DiffusionLM(cfg).eval()
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(torch.randint(0, 300, (1, 50)))
    assert full_pass_gflop(cfg, 50) * 1e9 == pytest.approx(counter.get_total_flops())


def test_bench_on_a_synthetic_shape_leaves_no_temporary_folder(tmp_path):
    """Without --workdir the random checkpoint and its export (30 GB for a 7B shape) are deleted."""
    import os

    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "dcoder.cli", "bench", "--synthetic", "tiny", "--repeats", "1",
                           "--context", "32", "--span", "8", "--steps", "2"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["tokens_per_forward"] == 4.0
    assert not list(tmp_path.glob("dcoder-bench-*"))  # (torch keeps caches of its own there)
