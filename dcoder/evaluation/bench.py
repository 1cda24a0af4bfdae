"""``dcoder bench``: speed of an exported model, measured in one run, as one JSON object.

Figures are medians over ``repeats`` timed runs after one warm-up run:
- ``full_pass_ms``: the ``full`` graph over context + span tokens (2,048 + 32 by default), and
  ``full_pass_gflop``, the work of its matrix products;
- ``cached_step_ms``: one ``step`` pass over the span against the cached context;
- ``ort_vs_torch``: PyTorch eager time / onnxruntime time for the same full pass, the two run
  alternately (needs torch; the source checkpoint, or an fp32/fp16 folder to unpack it from);
  for fp32 on the CPU, with an sgemm in the rotation: ``sgemm_gflops_per_s``, each full pass's
  rate, and ``ort_vs_torch_bound``, the ratio at that sgemm rate with nothing else to do;
- ``infill_latency_ms_p50`` / ``_p95``: a 32-token infill in a real Python file of about
  2,000 tokens, end to end (text in, edits out), with threshold decoding (or, with ``steps``, a
  fixed schedule: a random checkpoint is never confident enough to reveal more than one token a
  pass, a trained model at a low threshold is);
- ``tokens_per_forward`` and ``tokens_per_second`` of that infill.

``--synthetic SHAPE`` makes a random checkpoint of a known model's shape and exports it first;
``--export-memory`` only exports it, in a child process, and reports that process's peak RSS.
"""

from __future__ import annotations

import inspect
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dcoder.config import SamplerConfig
from dcoder.engine.families import family_of
from dcoder.engine.model_config import ModelConfig
from dcoder.errors import DcoderError

# Random checkpoints with the shapes of real models (vocabulary sizes included).
SHAPES = {
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2),
    "small": dict(hidden_size=512, intermediate_size=1536, num_hidden_layers=6, num_attention_heads=8,
                  num_key_value_heads=2),
    "qwen2.5-1.5b": dict(vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                         num_attention_heads=12, num_key_value_heads=2, tie_word_embeddings=True),
    "diffucoder-7b": dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                          num_attention_heads=28, num_key_value_heads=4),
    # the other families, written in their own file layouts (config keys, weight names)
    "open-dcoder-0.5b": dict(model_type="qwen2", vocab_size=151936, hidden_size=896, intermediate_size=4864,
                             num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                             tie_word_embeddings=True),
    "coda-1.7b": dict(model_type="CoDA", vocab_size=151936, hidden_size=2048, intermediate_size=6144,
                      num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8, attention_bias=False,
                      qk_norm=True),
    "llada-8b": dict(model_type="llada", vocab_size=126464, hidden_size=4096, intermediate_size=12288,
                     num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32, attention_bias=False,
                     rope_theta=500000.0),
}


def real_python_source(tokenizer, n_tokens: int) -> str:
    """The first lines of a real Python file (the standard library's argparse) that make at
    least ``n_tokens`` tokens."""
    import argparse

    lines = inspect.getsource(argparse).splitlines(keepends=True)
    for end in range(50, len(lines) + 50, 50):
        text = "".join(lines[:end])
        if len(tokenizer.encode(text)) >= n_tokens:
            return text
    raise DcoderError(f"the benchmark file has fewer than {n_tokens} tokens with this tokenizer")


def median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def alternate_ms(passes: dict, repeats: int) -> dict:
    """Median ms of each of ``passes``, run in turn so that all see the same load on a shared
    machine. Each timed pass follows an untimed one of the same kind: right after another one
    ran, the caches hold its data and, on a 2-core machine, its worker threads still spinning
    (OpenMP, onnxruntime's pool) take a core, which would be charged to whichever came next."""
    times = {name: [] for name in passes}
    for _ in range(repeats):
        for name, fn in passes.items():
            fn()
            t = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t) * 1000)
    return {name: statistics.median(ms) for name, ms in times.items()}


def torch_full_pass(checkpoint: Path, ids: np.ndarray, threads: int, device: str = "cpu", dtype: str = "fp32"):
    import torch

    from dcoder.engine.checkpoint import open_checkpoint
    from dcoder.engine.torch_backend import load_model

    torch.set_num_threads(threads)
    model = load_model(open_checkpoint(checkpoint), dtype).to(device)
    x = torch.from_numpy(ids).to(device)

    def run():
        with torch.inference_mode():
            # float32 logits in host memory, as onnxruntime's full pass gives them (which also
            # waits for the GPU to finish)
            model(x).float().cpu()

    return run


def full_pass_gflop(cfg: ModelConfig, tokens: int) -> float:
    """GFLOP (2 per multiply-add) of the matrix products of one full pass over ``tokens`` tokens:
    projections, MLP, LM head, and attention's two products for every query head."""
    h, hd, nh, nkv = cfg.hidden_size, cfg.head_dim, cfg.num_attention_heads, cfg.num_key_value_heads
    layer = h * (nh + 2 * nkv) * hd + nh * hd * h + 3 * h * cfg.intermediate_size
    per_token = cfg.num_hidden_layers * layer + h * cfg.vocab_size
    attention = cfg.num_hidden_layers * nh * 2 * tokens * tokens * hd
    return 2 * (tokens * per_token + attention) / 1e9


def sgemm_pass(backend, n: int = 2048):
    """A callable running one float32 (n, n) x (n, n) MatMul on onnxruntime's CPU provider with
    the backend's session options, and its GFLOP; None where that is no ceiling for the model
    (another provider or dtype) or onnx is not installed. The output is bound once: a fresh
    16 MB array per run would time page faults, which the model's memory arena does not pay."""
    if backend.kind != "cpu" or backend.manifest.dtype != "fp32":
        return None
    try:
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        return None
    rng = np.random.default_rng(0)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "sgemm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n, n])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, n])],
        initializer=[numpy_helper.from_array(rng.standard_normal((n, n), dtype=np.float32), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    ort = backend.ort
    sess = ort.InferenceSession(model.SerializeToString(), backend.session_options(), providers=["CPUExecutionProvider"])
    binding = sess.io_binding()
    binding.bind_cpu_input("x", rng.standard_normal((n, n), dtype=np.float32))
    binding.bind_ortvalue_output("y", ort.OrtValue.ortvalue_from_numpy(np.empty((n, n), dtype=np.float32)))
    return (lambda: sess.run_with_iobinding(binding)), 2 * n ** 3 / 1e9


def torch_comparison(backend, checkpoint: Path | None, ids: np.ndarray, threads: int, repeats: int,
                     gflop: float) -> dict:
    """``ort_vs_torch``, with PyTorch running the source checkpoint or, when that is not at hand
    (the built-in model ships without it), the checkpoint unpacked from the model folder.

    PyTorch runs on onnxruntime's device: on a GPU in the folder's dtype when that is fp16 (a 7B
    model in fp32 on the CPU would take minutes a pass), on the CPU in fp32.

    On the CPU an fp32 MatMul runs in the same rotation: its rate is this machine's sgemm
    ceiling under the current load, and ``ort_vs_torch_bound`` the ratio onnxruntime would reach
    if its full pass ran every matrix product at that rate and nothing else."""
    try:
        import torch
    except ImportError:
        return {"ort_vs_torch": None, "ort_vs_torch_note": "PyTorch is not installed"}
    device = backend.device
    if device == "cuda" and not torch.cuda.is_available():
        return {"ort_vs_torch": None, "ort_vs_torch_note": "this PyTorch cannot use the GPU onnxruntime runs on"}
    dtype = "fp16" if device == "cuda" and backend.manifest.dtype == "fp16" else "fp32"
    from dcoder.engine.export import unpack

    source = checkpoint or Path(backend.manifest.source.get("path", ""))
    label = str(source)
    with tempfile.TemporaryDirectory(prefix="dcoder-bench-") as work:
        if not source.is_dir():
            if backend.manifest.dtype not in ("fp32", "fp16"):
                return {"ort_vs_torch": None, "ort_vs_torch_note": f"source checkpoint {source} not found (give --checkpoint)"}
            source, label = unpack(backend.manifest.folder, Path(work) / "checkpoint"), "unpacked from the model folder"
        passes = {"torch": torch_full_pass(source, ids, threads, device, dtype), "ort": lambda: backend.full(ids)}
        sgemm = sgemm_pass(backend)
        if sgemm:
            passes["sgemm"] = sgemm[0]
        ms = alternate_ms(passes, repeats)
    out = {"torch_checkpoint": label, "torch_device": device, "torch_dtype": dtype, "torch_full_pass_ms": ms["torch"],
           "ort_full_pass_ms_alternating": ms["ort"], "ort_vs_torch": ms["torch"] / ms["ort"]}
    if sgemm:
        rate = sgemm[1] / ms["sgemm"] * 1000
        out.update({"sgemm_gflops_per_s": rate, "ort_full_pass_gflops_per_s": gflop / ms["ort"] * 1000,
                    "torch_full_pass_gflops_per_s": gflop / ms["torch"] * 1000,
                    "ort_vs_torch_bound": ms["torch"] / (gflop / rate * 1000)})
    return out


MERGED_RUNS = 8  # runs in the benchmark's merged step pass: dcoder serve's default --batch


def merged_step_ms(backend, ids: np.ndarray, lo: int, span: int, runs: int, repeats: int) -> float:
    """Median ms of one step pass carrying ``runs`` runs' spans (dcoder/engine/merge.py), each run
    on a thread of its own asking for its step at the same moment, as a server's requests do."""
    import threading

    from dcoder.engine.merge import Merger

    merger = Merger(backend, rows=runs, wait=1.0, length=ids.shape[1] - span)
    backends = [merger.open() for _ in range(runs)]
    # bounded: a pass that fails breaks the barriers instead of leaving the others waiting
    go, done = threading.Barrier(runs + 1, timeout=300), threading.Barrier(runs + 1, timeout=300)
    rounds = repeats + 2  # the first encodes, the second warms the merged pass
    errors: list[BaseException] = []

    def run(b):
        try:
            for step in range(rounds):
                go.wait()
                b.predict(ids, lo, lo + span, step)
                done.wait()
        except threading.BrokenBarrierError:
            pass
        except BaseException as exc:
            errors.append(exc)
            go.abort()
            done.abort()

    threads = [threading.Thread(target=run, args=(b,), daemon=True) for b in backends]
    for t in threads:
        t.start()
    times = []
    try:
        for _ in range(rounds):
            started = time.perf_counter()
            go.wait()
            done.wait()
            times.append((time.perf_counter() - started) * 1000)
    except threading.BrokenBarrierError:
        if errors:
            raise errors[0] from None
        raise DcoderError("the merged step pass did not finish within 300 s") from None
    finally:
        go.abort()
        done.abort()
        for t in threads:
            t.join(timeout=60)
        for b in backends:
            b.close()
        merger.close()
    return statistics.median(times[2:])


def bench(model: Path, checkpoint: Path | None = None, context: int = 2048, span: int = 32, repeats: int = 5,
          threshold: float = 0.9, cache_refresh: int = 0, provider: str = "auto", threads: int | None = None,
          steps: int | None = None) -> dict:
    from dcoder.engine.runtime import RuntimeOptions, default_threads, load_exported
    from dcoder.infill import InfillOptions, infill

    threads = threads or default_threads()
    sampler = SamplerConfig(threshold=threshold) if steps is None else SamplerConfig(steps=steps)
    engine = load_exported(model, RuntimeOptions(provider=provider, threads=threads, cache_refresh=cache_refresh))
    backend = engine.backend
    text = real_python_source(engine.tokenizer, context + span)
    ids = np.array(engine.tokenizer.encode(text)[:context + span], dtype=np.int64)
    lo = context // 2
    ids[lo:lo + span] = engine.tokens.mask
    ids = ids[None]
    out = {"model": str(model), "provider": backend.provider, "dtype": backend.manifest.dtype,
           "threads": threads, "context_tokens": context, "span_tokens": span, "repeats": repeats}
    if backend.fallback:
        out["provider_fallback"] = backend.fallback

    out["full_pass_ms"] = median_ms(lambda: backend.full(ids), repeats)
    out["full_pass_gflop"] = full_pass_gflop(ModelConfig.from_hf_dict(backend.manifest.raw["config"]), ids.shape[1])
    backend.predict(ids, lo, lo + span, 0)
    step = iter(range(1, 1 << 30))
    out["cached_step_ms"] = median_ms(lambda: backend.predict(ids, lo, lo + span, next(step)), repeats)
    out["encode_ms"] = median_ms(lambda: backend.predict(ids, lo, lo + span, 0), repeats)
    out["cached_step_speedup"] = out["full_pass_ms"] / out["cached_step_ms"]
    if backend.takes_mask:
        out["merged_runs"] = MERGED_RUNS
        out["merged_step_ms"] = merged_step_ms(backend, ids, lo, span, MERGED_RUNS, repeats)
        # 8 would mean merging saves nothing; 1, that the other runs ride for free
        out["merged_step_vs_one_run"] = out["merged_step_ms"] / out["cached_step_ms"]

    out.update(torch_comparison(backend, checkpoint, ids, threads, repeats, out["full_pass_gflop"]))

    # infill: cursor at the start of a line in the middle of the file
    cursor = text.index("\n", len(text) // 2) + 1
    options = InfillOptions(sampler=sampler, exact_length=span, max_context=context + span)
    latencies, passes = [], []
    infill(engine, text, [(cursor, cursor)], options)
    for _ in range(repeats):
        t = time.perf_counter()
        result = infill(engine, text, [(cursor, cursor)], options)
        latencies.append((time.perf_counter() - t) * 1000)
        passes.append(result.forward_passes)
    out["threshold"] = sampler.threshold
    out["steps"] = steps
    out["cache_refresh"] = cache_refresh
    out["infill_context_tokens"] = min(engine.max_context, context + span)
    out["infill_latency_ms_p50"] = float(np.percentile(latencies, 50))
    out["infill_latency_ms_p95"] = float(np.percentile(latencies, 95))
    out["tokens_per_forward"] = span / statistics.median(passes)
    out["tokens_per_second"] = span / (out["infill_latency_ms_p50"] / 1000)
    return out


def make_synthetic(shape: str, folder: Path, dtype: str = "float32", max_context: int = 4096) -> Path:
    """A random checkpoint of the given shape, written shard by shard."""
    import argparse
    import difflib

    from dcoder.evaluation.synthetic import train_tokenizer, write_random_checkpoint

    if shape not in SHAPES:
        raise DcoderError(f"unknown --synthetic shape {shape!r} (choose from {', '.join(SHAPES)})")
    folder.mkdir(parents=True, exist_ok=True)
    tok = train_tokenizer([inspect.getsource(m) for m in (argparse, difflib, json)], 1000, folder)
    from tokenizers import Tokenizer

    dims = {"vocab_size": Tokenizer.from_file(str(tok)).get_vocab_size(with_added_tokens=True),
            "model_type": "Dream", "rope_theta": 1_000_000.0, **SHAPES[shape]}
    config = ModelConfig(max_position_embeddings=max_context,
                         shift_logits=family_of({"model_type": dims["model_type"]}).shift_logits, **dims)
    return write_random_checkpoint(folder / "checkpoint", config, tok, dtype=dtype, sharded=True)


def export_peak_rss(checkpoint: Path, out: Path, dtype: str) -> dict:
    """Export in a child process; its peak resident memory is what ``dcoder export`` needs."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "dcoder.cli", "export", str(checkpoint), str(out), "--dtype", dtype],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise DcoderError(f"export failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    weights = sum(f.stat().st_size for f in checkpoint.glob("*.safetensors"))
    params = json.loads((out / "manifest.json").read_text())["model"]["parameters"]
    return {"parameters": params, "checkpoint_bytes": weights, "dtype": dtype,
            "export_peak_rss_mib": round(peak_kib / 1024, 1), "export_seconds": round(time.perf_counter() - start, 1)}


MAX_SERVE_CLIENTS, MAX_SERVE_REQUESTS = 64, 10_000


def serve_bench(url: str, token: str | None, clients: int, requests: int, span: int) -> dict:
    """``requests`` fill-in-the-middle completions sent to a running dcoder server by ``clients``
    concurrent clients: latency percentiles, throughput and the answers' status codes."""
    import os
    import urllib.error
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    if not 1 <= clients <= MAX_SERVE_CLIENTS:
        raise DcoderError(f"--clients must be from 1 to {MAX_SERVE_CLIENTS}")
    if not 1 <= requests <= MAX_SERVE_REQUESTS:
        raise DcoderError(f"--requests must be from 1 to {MAX_SERVE_REQUESTS}")
    source = inspect.getsource(json.decoder)
    headers = {"content-type": "application/json"}
    token = token or os.environ.get("DCODER_TOKEN")
    if token:
        headers["authorization"] = f"Bearer {token}"

    def one(i: int) -> tuple[int, float]:
        cut = len(source) * (i % 7 + 1) // 8  # different cursors: different lengths, as from a team
        body = json.dumps({"prompt": source[:cut], "suffix": source[cut:], "max_tokens": span}).encode()
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(urllib.request.Request(url.rstrip("/") + "/v1/completions", body, headers),
                                        timeout=300) as r:
                r.read()
                status = r.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (urllib.error.URLError, OSError) as exc:
            raise DcoderError(f"cannot reach the dcoder server {url}: {getattr(exc, 'reason', exc)}") from None
        return status, time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        answers = list(pool.map(one, range(requests)))
    wall = time.perf_counter() - started
    ok = sorted(t for status, t in answers if status == 200)
    codes: dict[str, int] = {}
    for status, _ in answers:
        codes[str(status)] = codes.get(str(status), 0) + 1

    def pct(q: float) -> float | None:
        return round(1000 * ok[min(len(ok) - 1, int(q * len(ok)))], 1) if ok else None

    return {"url": url, "clients": clients, "requests": requests, "max_tokens": span, "status": codes,
            "latency_ms": {"p50": pct(0.5), "p95": pct(0.95), "max": pct(1.0)},
            "requests_per_s": round(len(ok) / wall, 2), "wall_s": round(wall, 2)}


def counts(text: str, what: str) -> list[int]:
    """``1,4,8`` as [1, 4, 8], for --clients and --batches."""
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise DcoderError(f"--{what} takes numbers separated by commas, e.g. 1,4,8 (not {text!r})") from None
    if not values or min(values) < 1:
        raise DcoderError(f"--{what} takes numbers from 1 up")
    return values


def start_server(model: str | None, provider: str, batch: int, span: int) -> tuple[subprocess.Popen, str]:
    """``dcoder serve`` in a process of its own on a free loopback port, once it answers /health."""
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "dcoder", "serve", "--port", str(port), "--batch", str(batch),
           "--provider", provider, "--queue", "128", *(["--model", model] if model else [])]
    # its messages go to a file: a pipe nobody reads while the bench runs could fill and stall it
    log = tempfile.TemporaryFile("w+", encoding="utf-8")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                log.seek(0)
                lines = log.read().strip().splitlines()
                raise DcoderError(f"dcoder serve did not start: {lines[-1] if lines else f'exit {proc.returncode}'}")
            try:
                with urllib.request.urlopen(url + "/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.2)
        else:
            raise DcoderError("dcoder serve did not answer /health within 300 s")
        serve_bench(url, None, 1, 2, span)  # warm: sessions opened, first passes run
    except BaseException:
        stop_server(proc)
        raise
    finally:
        log.close()
    return proc, url


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def serve_compare(model: str | None, provider: str, batches: list[int], clients: list[int], requests: int,
                  span: int) -> dict:
    """The same load on servers that differ only in --batch, one after another in one run: each
    server's throughput and latency at each client count, and the ratios to the first server's."""
    rows = []
    for batch in batches:
        proc, url = start_server(model, provider, batch, span)
        try:
            rows += [{"batch": batch, **serve_bench(url, None, c, requests, span)} for c in clients]
        finally:
            stop_server(proc)
    base = {r["clients"]: r for r in rows if r["batch"] == batches[0]}
    single_p95 = base[clients[0]]["latency_ms"]["p95"]
    for r in rows:
        b = base[r["clients"]]
        if b["requests_per_s"]:  # none answered: no ratio
            r["throughput_vs_batch_%d" % batches[0]] = round(r["requests_per_s"] / b["requests_per_s"], 2)
        if single_p95:
            r["p95_vs_%d_client_p95" % clients[0]] = round((r["latency_ms"]["p95"] or 0) / single_p95, 2)
    return {"model": model or "built-in", "provider": provider, "requests": requests, "max_tokens": span,
            "rows": rows}


def run(args) -> dict:
    """The ``dcoder bench`` command's work (see cli.py for the options)."""
    if args.serve == "local":
        return serve_compare(args.model, args.provider, counts(args.batches, "batches"), counts(args.clients, "clients"),
                             args.requests, args.span)
    if args.serve:
        many = counts(args.clients, "clients")
        rows = [serve_bench(args.serve, None, c, args.requests, args.span) for c in many]
        return rows[0] if len(rows) == 1 else {"rows": rows}
    if args.synthetic:
        if args.workdir:
            return synthetic(args, Path(args.workdir))
        # a 7B shape leaves some 30 GB behind: a folder of our own goes when the run ends
        with tempfile.TemporaryDirectory(prefix="dcoder-bench-") as work:
            return synthetic(args, Path(work))
    if args.export_memory:
        raise DcoderError("--export-memory needs --synthetic SHAPE")
    from dcoder.engine.hub import resolve

    model = resolve(args.model) if args.model else None
    checkpoint = Path(args.checkpoint) if args.checkpoint else None
    if model is None:
        from dcoder.engine.engine import BUILTIN_MODEL

        if not (BUILTIN_MODEL / "manifest.json").exists():
            raise DcoderError("no --model given and no built-in model is installed; pass --model DIR")
        model = BUILTIN_MODEL
    if not (model / "manifest.json").exists():
        raise DcoderError(f"{model} is not an exported model folder (make one with `dcoder export`)")
    return bench_args(args, model, checkpoint)


def synthetic(args, work: Path) -> dict:
    """Make a random checkpoint of ``args.synthetic``'s shape in ``work``, export it, measure it."""
    # big shapes are written in float16, as real checkpoints ship in 16 bits
    ckpt = make_synthetic(args.synthetic, work, "float32" if args.synthetic in ("tiny", "small") else "float16")
    model = work / f"onnx-{args.dtype}"
    if args.export_memory:
        return {"synthetic": args.synthetic, **export_peak_rss(ckpt, model, args.dtype)}
    from dcoder.engine.export import export

    export(ckpt, model, args.dtype)
    return bench_args(args, model, ckpt)


def bench_args(args, model: Path, checkpoint: Path | None) -> dict:
    return bench(model, checkpoint, args.context, args.span, args.repeats, args.threshold, args.cache_refresh,
                 args.provider, args.threads, args.steps)
