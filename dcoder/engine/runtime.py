"""Run an exported model folder with onnxruntime: the editor's path, with no PyTorch.

The backend caches the context: at the first forward pass of a run (and every
``cache_refresh`` passes after it) the ``encode`` graph runs the whole sequence, returning the
span's logits and the keys/values of every token outside the span (prefix and suffix alike).
The other passes run the ``step`` graph on the span alone against that cache. Context
keys/values were computed while the span was still masked, so with a cache that is never
refreshed the logits are an approximation; refreshing at every pass gives the full result.
When spans change length (``sampler.denoise_lengths``) the sampler starts the pass count again
at 0 after each layout change, so the context is encoded anew at its new positions.

The CUDA provider is used when onnxruntime has it and an NVIDIA driver is present; we check
for the driver ourselves because onnxruntime-gpu, asked for CUDA without one, logs errors and
falls back on its own. A provider can also load and then lack a kernel for one of the graph's
nodes, so the graphs run on a few tokens when the model is opened (``check``), and ``auto``
falls back to the CPU then rather than mid-edit. Keys/values are bound to the device with
IOBinding, so on a GPU they stay there between passes.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import io
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dcoder.engine.engine import Engine
from dcoder.engine.manifest import Manifest, load_manifest
from dcoder.engine.sampler import shifted_window
from dcoder.engine.tokenizer import Tokenizer
from dcoder.errors import DcoderError, Interrupted

PROVIDERS = ("auto", "cpu", "cuda", "tensorrt")
ORT_NAMES = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}
QUIET, ERRORS = 4, 3  # onnxruntime log severities: fatal only / errors


@dataclass(frozen=True)
class RuntimeOptions:
    provider: str = "auto"  # auto: CUDA when usable, else CPU
    threads: int | None = None  # CPU intra-op threads; None: every core this process may use
    cache_refresh: int = 0  # re-encode the context every k passes of a run; 0: only at its first pass
    device_id: int = 0
    tensorrt: dict = field(default_factory=dict)  # extra TensorRT provider options (override the defaults)

    def __post_init__(self) -> None:
        if self.provider not in PROVIDERS:
            raise DcoderError(f"unknown provider {self.provider!r} (choose from {', '.join(PROVIDERS)})")
        if self.cache_refresh < 0:
            raise DcoderError("--cache-refresh must be >= 0 (0: never refresh within a run)")
        if self.threads is not None and self.threads < 1:
            raise DcoderError("--threads must be at least 1")


def import_ort():
    try:
        import onnxruntime
    except ImportError:
        raise DcoderError("exported models need onnxruntime: pip install dcoder-diffusion") from None
    return onnxruntime


def nvidia_driver_present() -> bool:
    names = ("nvcuda.dll",) if sys.platform == "win32" else ("libcuda.so.1", "libcuda.so")
    for name in names:
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


def default_threads() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def preload_cuda(ort) -> None:
    """Make the CUDA/cuDNN libraries of the nvidia-* pip wheels loadable (onnxruntime >= 1.21)."""
    if not hasattr(ort, "preload_dlls"):
        return
    # preload_dlls reports on stdout, which may be the language server's JSON-RPC channel
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            ort.preload_dlls()
        except (OSError, RuntimeError):
            pass  # then the CUDA provider fails to load, and that is detected below


def cuda_libraries(ort) -> str:
    """What the CUDA provider of this onnxruntime build needs: the error's hint when it does not load."""
    info = getattr(ort.capi, "build_and_package_info", None)
    version = getattr(info, "cuda_version", None)
    cuda = f"CUDA {version}" if version else "CUDA"
    return (f"this onnxruntime was built for {cuda} and cuDNN 9: pip install 'dcoder-diffusion[cuda]' "
            "installs them, and the NVIDIA driver must support that CUDA version")


def resolve_provider(ort, requested: str) -> str:
    """cpu, cuda or tensorrt: what to try given what is installed; explicit requests must be met."""
    if requested == "cpu":
        return "cpu"
    available = ort.get_available_providers()
    usable = "CUDAExecutionProvider" in available and nvidia_driver_present()
    if requested == "auto":
        return "cuda" if usable else "cpu"
    if not usable:
        why = "no NVIDIA driver found" if "CUDAExecutionProvider" in available else \
            "this onnxruntime has no CUDA provider (install onnxruntime-gpu)"
        raise DcoderError(f"provider {requested} is not usable: {why}")
    if requested == "tensorrt" and "TensorrtExecutionProvider" not in available:
        raise DcoderError("provider tensorrt is not usable: this onnxruntime has no TensorRT provider")
    return requested


def tensorrt_options(manifest: Manifest, kind: str, options: RuntimeOptions) -> dict:
    """Engine cache per model, fp16 for fp16 folders, and shape profiles up to the model's context."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dcoder" / "tensorrt"
    weights_hash = manifest.raw["external_data"][0].get("sha256", "model")[:16]
    longest = min(manifest.max_context, 8192)
    raw = manifest.raw["model"]
    kv = f"{raw['num_key_value_heads']}x{{}}x{raw['head_dim']}"
    seq = {"full": "seq", "encode": "seq", "step": "span"}[kind]
    dims = {"seq": (1, 2080, longest), "span": (1, 33, 512), "rows": (1, 33, 512), "context": (1, 2048, longest)}
    profiles = []
    for which in range(3):
        shapes = [f"ids:1x{dims[seq][which]}", f"positions:1x{dims[seq][which]}"]
        if kind == "encode":
            shapes += [f"rows:{dims['rows'][which]}", f"context:{dims['context'][which]}"]
        if kind == "step":
            shapes.append(f"rows:{dims['rows'][which]}")
            for i in range(manifest.num_layers):
                c = kv.format(dims["context"][which])
                shapes += [f"past_key_{i}:1x{c}", f"past_value_{i}:1x{c}"]
        profiles.append(",".join(shapes))
    opts = {
        "device_id": options.device_id,
        "trt_fp16_enable": manifest.dtype == "fp16",
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(cache / weights_hash),
        "trt_timing_cache_enable": True,
        "trt_max_workspace_size": 4 << 30,
        "trt_profile_min_shapes": profiles[0],
        "trt_profile_opt_shapes": profiles[1],
        "trt_profile_max_shapes": profiles[2],
    }
    opts.update(options.tensorrt)
    return opts


@contextlib.contextmanager
def ort_failures(graph: str, options=None):
    """onnxruntime's errors while binding or running ``graph`` as one line (its exception types
    are its own, and a failed pass must end the request, not the editor's server); a pass ended
    through its RunOptions (``OnnxBackend.interrupt``) raises ``Interrupted``."""
    try:
        yield
    except Exception as exc:
        if options is not None and options.terminate:
            raise Interrupted(f"{graph}.onnx was interrupted") from None
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DcoderError(f"onnxruntime failed running {graph}.onnx: {first[:200]}") from None


@dataclass
class ContextCache:
    key: tuple[int, int, int, int]  # batch, length, span start, span end
    context_ids: np.ndarray
    values: list  # OrtValues key_0, value_0, key_1, ... on the session's device


class OnnxBackend:
    """The sampler's backend over an exported folder (see the module docstring)."""

    name = "onnx"

    def __init__(self, manifest: Manifest, options: RuntimeOptions | None = None):
        self.manifest = manifest
        self.options = options or RuntimeOptions()
        self.shift = manifest.shift
        self.ort = import_ort()
        self.ort.set_default_logger_severity(ERRORS)
        self.kind = resolve_provider(self.ort, self.options.provider)
        if self.kind != "cpu":
            preload_cuda(self.ort)
        self.sessions: dict = {}
        self.cache: ContextCache | None = None
        self.running = None  # the RunOptions of the encode/step pass in flight
        self.fallback: str | None = None  # why a GPU provider that loaded was given up for the CPU
        try:
            self.check()
        except DcoderError as exc:
            if self.kind == "cpu" or self.options.provider != "auto":
                raise
            self.fallback = f"{self.provider} could not run the model ({exc})"
            self._use_cpu()
            self.check()

    @property
    def provider(self) -> str:
        """The execution provider that actually runs the graphs."""
        return ORT_NAMES[self.kind]

    @property
    def device(self) -> str:
        return "cpu" if self.kind == "cpu" else "cuda"

    def check(self) -> None:
        """Open ``encode`` and ``step`` and run a few tokens through both. A provider may load and
        still lack a kernel for a node (onnxruntime's CUDA Attention runs grouped-query attention
        with past keys/values only in fp16/bf16, on recent GPUs): that shows now, not mid-edit."""
        ids = np.full((1, 8), self.manifest.tokens.mask, dtype=np.int64)
        try:
            self.encode(ids, np.arange(2, 6), (2, 6), np.concatenate([ids[:, :2], ids[:, 6:]], axis=1))
            self.step(ids, 2, 6, np.arange(4))
        finally:
            self.cache = None

    @functools.cached_property
    def takes_mask(self) -> bool:
        """Whether the step graph takes an attention mask (folders exported before it did not),
        which spans of several runs need to share a pass (``merge.py``)."""
        return any(i.name == "mask" for i in self.session("step").get_inputs())

    def interrupt(self) -> None:
        """End the forward pass in flight, if any (from another thread: a cancelled request must
        not wait for a long pass to finish); that pass raises ``Interrupted``."""
        running = self.running
        if running is not None:
            running.terminate = True

    @contextlib.contextmanager
    def _pass(self, graph: str):
        """The RunOptions of one forward pass of ``graph``, which ``interrupt`` reaches while it
        runs; onnxruntime's errors become one line (``ort_failures``)."""
        options = self.running = self.ort.RunOptions()
        try:
            with ort_failures(graph, options):
                yield options
        finally:
            self.running = None

    def _use_cpu(self) -> None:
        self.kind = "cpu"
        self.sessions.clear()
        self.cache = None

    def session_options(self):
        ort = self.ort
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.log_severity_level = ERRORS
        if self.kind == "cpu":
            so.intra_op_num_threads = self.options.threads or default_threads()
            so.inter_op_num_threads = 1
            # Idle workers sleep instead of spinning: an editor's model shares the CPU with the
            # editor and the build, and spinning workers slow down sharply when a core is taken.
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return so

    def _providers(self, kind: str) -> list:
        cpu = ("CPUExecutionProvider", {})
        if self.kind == "cpu":
            return [cpu]
        cuda = ("CUDAExecutionProvider", {"device_id": self.options.device_id,
                                          "arena_extend_strategy": "kSameAsRequested"})
        if self.kind == "tensorrt":
            return [("TensorrtExecutionProvider", tensorrt_options(self.manifest, kind, self.options)), cuda, cpu]
        return [cuda, cpu]

    def session(self, kind: str):
        if kind in self.sessions:
            return self.sessions[kind]
        path = str(self.manifest.graph_path(kind))
        while True:
            if self.kind != "cpu":
                self.ort.set_default_logger_severity(QUIET)  # a failing CUDA provider logs errors we report ourselves
            try:
                names, opts = zip(*self._providers(kind))
                sess = self.ort.InferenceSession(path, self.session_options(), providers=list(names),
                                                 provider_options=list(opts))
            except Exception as exc:  # onnxruntime raises its own exception types for bad graphs
                raise DcoderError(f"onnxruntime cannot load {Path(path).name}: {str(exc).splitlines()[0][:200]}") from None
            finally:
                self.ort.set_default_logger_severity(ERRORS)
            if sess.get_providers()[0] == self.provider:
                break
            # the GPU provider did not load (e.g. CUDA or cuDNN libraries missing)
            if self.options.provider != "auto":
                raise DcoderError(f"provider {self.kind} failed to load in onnxruntime ({cuda_libraries(self.ort)})")
            self._use_cpu()
        self.sessions[kind] = sess
        return sess

    # ---- forward passes ----------------------------------------------------------------------

    def full(self, ids: np.ndarray) -> np.ndarray:
        """Logits for every position of ``ids`` (B, T), with the ``full`` graph."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        positions = np.ascontiguousarray(np.broadcast_to(np.arange(ids.shape[1]), ids.shape))
        sess = self.session("full")
        with ort_failures("full"):
            return sess.run(["logits"], {"ids": ids, "positions": positions})[0]

    def predict(self, ids: np.ndarray, lo: int, hi: int, step: int, cols: np.ndarray | None = None) -> np.ndarray:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        plan = PassPlan.of(ids, lo, hi, cols, self.shift)
        if plan.stale(step, self.options.cache_refresh, self.cache):
            return self.encode(ids, plan.rows, plan.span, plan.context_ids)
        return self.step(ids, *plan.span, plan.step_rows)

    def encode(self, ids: np.ndarray, rows: np.ndarray, span: tuple[int, int], context_ids: np.ndarray):
        """Whole sequence: log-probabilities of ``rows``, and the cache of every token outside ``span``."""
        context = context_positions(span, ids.shape[1])

        def bind_cache(binding):
            for i in range(self.manifest.num_layers):
                binding.bind_output(f"key_{i}", self.device, self.options.device_id)
                binding.bind_output(f"value_{i}", self.device, self.options.device_id)

        logprobs, values = self.encode_into(ids, rows, context, bind_cache)
        self.cache = ContextCache((*ids.shape, *span), context_ids, values)
        return logprobs

    def encode_into(self, ids: np.ndarray, rows: np.ndarray, context: np.ndarray, bind_cache):
        """The ``encode`` pass, its keys/values bound by ``bind_cache(binding)``: log-probabilities
        of ``rows`` and the cache's OrtValues."""
        sess = self.session("encode")
        positions = np.ascontiguousarray(np.broadcast_to(np.arange(ids.shape[1]), ids.shape))
        with self._pass("encode") as run_options:
            binding = sess.io_binding()
            binding.bind_cpu_input("ids", ids)
            binding.bind_cpu_input("positions", positions)
            binding.bind_cpu_input("rows", np.ascontiguousarray(rows, dtype=np.int64))
            binding.bind_cpu_input("context", context)
            binding.bind_output("logprobs", "cpu")
            bind_cache(binding)
            sess.run_with_iobinding(binding, run_options)
            outputs = binding.get_outputs()
        return outputs[0].numpy(), list(outputs[1:])

    def step(self, ids: np.ndarray, s0: int, s1: int, rows: np.ndarray) -> np.ndarray:
        """Log-probabilities of span rows ``rows`` (of s0..s1-1), the span attending to itself and the cached context."""
        span_ids = np.ascontiguousarray(ids[:, s0:s1])
        positions = np.ascontiguousarray(np.broadcast_to(np.arange(s0, s1), span_ids.shape))

        def bind_past(binding):
            for i in range(self.manifest.num_layers):
                binding.bind_ortvalue_input(f"past_key_{i}", self.cache.values[2 * i])
                binding.bind_ortvalue_input(f"past_value_{i}", self.cache.values[2 * i + 1])

        mask = None
        if self.takes_mask:  # one run alone attends to all of its context and span
            mask = np.ones((span_ids.shape[0], self.cache.values[0].shape()[2] + span_ids.shape[1]), dtype=bool)
        return self.step_with(span_ids, positions, rows, mask, bind_past)

    def step_with(self, span_ids: np.ndarray, positions: np.ndarray, rows: np.ndarray, mask: np.ndarray | None,
                  bind_past) -> np.ndarray:
        """The ``step`` pass, its cached keys/values bound by ``bind_past(binding)``."""
        sess = self.session("step")
        with self._pass("step") as run_options:
            binding = sess.io_binding()
            binding.bind_cpu_input("ids", span_ids)
            binding.bind_cpu_input("positions", positions)
            binding.bind_cpu_input("rows", np.ascontiguousarray(rows, dtype=np.int64))
            bind_past(binding)
            if mask is not None:
                binding.bind_cpu_input("mask", mask)
            binding.bind_output("logprobs", "cpu")
            sess.run_with_iobinding(binding, run_options)
            return binding.get_outputs()[0].numpy()


def context_positions(span: tuple[int, int], length: int) -> np.ndarray:
    """Positions of the tokens outside ``span`` in a sequence of ``length``: what the cache holds."""
    return np.concatenate([np.arange(span[0]), np.arange(span[1], length)]).astype(np.int64)


@dataclass(frozen=True)
class PassPlan:
    """What one ``predict`` call needs: the logit rows, the span recomputed at every pass and the
    context around it, which the cache must hold for a ``step`` to do."""

    rows: np.ndarray  # positions whose log-probabilities are asked for
    span: tuple[int, int]  # s0, s1: tokens recomputed at every pass (a shifted model needs lo-1)
    context_ids: np.ndarray
    step_rows: np.ndarray  # ``rows`` counted from s0
    key: tuple[int, int, int, int]  # batch, length, span start, span end

    @classmethod
    def of(cls, ids: np.ndarray, lo: int, hi: int, cols: np.ndarray | None, shift: bool) -> PassPlan:
        a, z = shifted_window(lo, hi, shift)  # logit rows for positions lo..hi-1
        cols = np.arange(hi - lo, dtype=np.int64) if cols is None else np.asarray(cols, dtype=np.int64)
        s0, s1 = min(a, lo), max(z, hi)
        return cls(a + cols, (s0, s1), np.concatenate([ids[:, :s0], ids[:, s1:]], axis=1), a - s0 + cols,
                   (*ids.shape, s0, s1))

    def stale(self, step: int, refresh: int, cache: ContextCache | None) -> bool:
        """Whether this pass must encode: a run's first pass, a refresh, or a context the cache lacks."""
        return (
            step == 0
            or bool(refresh and step % refresh == 0)
            or cache is None
            or cache.key != self.key
            or not np.array_equal(cache.context_ids, self.context_ids)
        )


def load_exported(path: str | Path, options: RuntimeOptions | None = None):
    """An Engine over an exported folder, after verifying its manifest."""
    manifest = load_manifest(path)
    backend = OnnxBackend(manifest, options)
    folder = manifest.folder
    return Engine(
        tokenizer=Tokenizer(folder / manifest.raw["tokenizer"]),
        tokens=manifest.tokens,
        backend=backend,
        shift=manifest.shift,
        max_context=manifest.max_context,
        vocab_size=manifest.vocab_size,
        description=f"{folder.name} (onnx {manifest.dtype}, {backend.provider}"
                    + (f"; {backend.fallback}" if backend.fallback else "") + ")",
        folder=folder,
    )
