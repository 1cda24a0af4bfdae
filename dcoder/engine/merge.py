"""Step passes of concurrent runs merged into one forward pass: batching across requests.

A server runs several infills at once, each on its own thread with a ``RunBackend`` in place of
the engine's backend; their samplers call ``predict`` as they always do. ``Merger`` runs every
pass on one thread:

- an ``encode`` (a run's first pass, or one whose context changed) runs alone: it covers the run's
  whole document, so it is a large pass already, and its context is the run's own. Its keys and
  values land, with no copy, in the run's rows of one cache that all runs share (``SlotCache``),
  every row padded to the same number of cached tokens;
- the ``step`` passes that open runs ask for within a short wait go into one pass over the cache
  rows they hold: spans padded to the longest, and the step graph's ``mask`` input hiding each
  row's padding (and every other run's tokens) from its queries.

A run gets back what it would get alone (``tests/test_merge.py``), to float rounding. A run whose
rows do not fit in the cache (more rows than are free, or a longer context than a row holds) runs
its passes alone, with its own cache, as ``OnnxBackend`` does. The merged pass costs what its
rows cost: on a CPU a single run's step already keeps the cores busy, so merging there shares
the model's time among runs instead of taking turns; on a GPU one pass of eight runs costs about
what one run's costs (see docs/serve.md).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from dcoder.engine.runtime import ContextCache, OnnxBackend, PassPlan, context_positions
from dcoder.errors import DcoderError

ELEMENT = {"tensor(float)": np.float32, "tensor(float16)": np.float16}
# Cached tokens per row of the shared cache: a model's 32k context would make each row of a 7B
# model 1.9 GB; a run with a longer context runs alone.
MAX_CACHED = 4096


class SlotCache:
    """Per layer, the keys and values of ``rows`` batch rows, each padded to ``length`` cached tokens,
    one buffer per graph input. A run's rows are contiguous, so its encode writes them and a merged
    step reads a range of rows in place."""

    def __init__(self, backend: OnnxBackend, rows: int, length: int):
        key = backend.session("encode").get_outputs()[1]  # key_0: (batch, kv heads, context, head dim)
        self.kv, self.head_dim = int(key.shape[1]), int(key.shape[3])
        self.dtype = ELEMENT[key.type]
        self.rows, self.length, self.layers = rows, length, backend.manifest.num_layers
        self.device, self.device_id = backend.device, backend.options.device_id
        # zeroed: a masked key still enters the product q.k, and garbage could be NaN. On the CPU
        # each buffer is its own (lazily zeroed) array; a device copies one host array.
        shape = (rows, self.kv, length, self.head_dim)
        host = None if self.device == "cpu" else np.zeros(shape, dtype=self.dtype)
        self.buffers = [backend.ort.OrtValue.ortvalue_from_numpy(
            np.zeros(shape, dtype=self.dtype) if host is None else host, self.device, self.device_id)
            for _ in range(2 * self.layers)]
        self.row_bytes = self.kv * length * self.head_dim * np.dtype(self.dtype).itemsize
        self.free = np.ones(rows, dtype=bool)

    @property
    def nbytes(self) -> int:
        return self.row_bytes * self.rows * len(self.buffers)

    def take(self, n: int) -> int | None:
        """The first of ``n`` contiguous free rows, now taken; None when there is no such run of rows."""
        run = 0
        for i, free in enumerate(self.free):
            run = run + 1 if free else 0
            if run == n:
                self.free[i - n + 1:i + 1] = False
                return i - n + 1
        return None

    def give(self, start: int, n: int) -> None:
        self.free[start:start + n] = True

    def bind(self, binding, output: bool, start: int, n: int) -> None:
        """Bind rows start..start+n-1 as the encode's outputs or the step's past inputs."""
        shape = [n, self.kv, self.length, self.head_dim]
        for i, buffer in enumerate(self.buffers):
            kind = "key" if i % 2 == 0 else "value"
            pointer = buffer.data_ptr() + start * self.row_bytes
            if output:
                binding.bind_output(f"{kind}_{i // 2}", self.device, self.device_id, self.dtype, shape, pointer)
            else:
                binding.bind_input(f"past_{kind}_{i // 2}", self.device, self.device_id, self.dtype, shape, pointer)


@dataclass
class _Ask:
    run: RunBackend
    kind: str  # "predict" or "full"
    ids: np.ndarray
    plan: PassPlan | None = None
    window: tuple = ()  # lo, hi, cols: the sampler's own arguments, for a pass run alone
    step: int = 0
    done: threading.Event = field(default_factory=threading.Event)
    result: np.ndarray | None = None
    error: BaseException | None = None


@dataclass
class MergeStats:
    """Totals since start (written by the merger's thread only)."""

    step_passes: int = 0  # merged step passes
    step_runs: int = 0  # runs' steps they carried, in all
    last_runs: int = 0  # runs the latest of them carried
    alone_passes: int = 0  # encodes, full passes, and the passes of runs that did not fit


class Merger:
    """The one thread that runs every forward pass of the runs it opened (see the module docstring).

    ``rows``: batch rows the shared cache holds (every open run's candidates); ``wait``: seconds a
    pass waits for the other open runs to ask for theirs; ``length``: cached tokens per row (the
    model's context, at most ``MAX_CACHED``, by default).
    """

    def __init__(self, backend: OnnxBackend, rows: int, wait: float, length: int | None = None):
        if not backend.takes_mask:
            raise DcoderError(f"{backend.manifest.folder} was exported without the step graph's attention mask, "
                              "which merging runs needs: export it again (dcoder export)")
        self.backend = backend
        self.slots = SlotCache(backend, rows, length or min(backend.manifest.max_context, MAX_CACHED))
        self.wait = wait
        self.stats = MergeStats()
        self._pad = backend.manifest.tokens.mask
        self._cond = threading.Condition()
        self._asks: list[_Ask] = []
        self._open = 0
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="dcoder-merge", daemon=True)
        self._thread.start()

    def open(self) -> RunBackend:
        """A backend for one run; ``close`` it (or use it as a context manager) when the run ends."""
        with self._cond:
            if self._closed:
                raise DcoderError("the model is shutting down")
            self._open += 1
        return RunBackend(self)

    def close(self, wait: float = 5.0) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=wait)

    def _release(self, run: RunBackend) -> None:
        with self._cond:
            self._open -= 1
            if run.slot is not None:
                self.slots.give(run.slot, run.rows)
                run.slot = None
            self._cond.notify_all()

    def _ask(self, ask: _Ask) -> np.ndarray:
        with self._cond:
            if self._closed:
                raise DcoderError("the model is shutting down")
            self._asks.append(ask)
            self._cond.notify_all()
        ask.done.wait()
        if ask.error is not None:
            raise ask.error
        return ask.result

    # ---- the merger's thread ---------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._asks and not self._closed:
                    self._cond.wait()
                if not self._asks:
                    return
                until = time.monotonic() + self.wait
                # every open run that will ask soon is worth a short wait: its step joins this pass
                while len(self._asks) < self._open and (left := until - time.monotonic()) > 0:
                    self._cond.wait(left)
                asks, self._asks = self._asks, []
            steps = []
            for ask in asks:
                try:
                    if self._alone_or_encode(ask):
                        steps.append(ask)
                except BaseException as exc:  # the asking run raises it; the thread goes on
                    ask.error = exc
                    ask.done.set()
            if steps:
                try:
                    self._merged(steps)
                except BaseException as exc:  # a failed pass fails its runs, never the thread they wait on
                    for ask in steps:
                        if not ask.done.is_set():
                            ask.error = exc
                            ask.done.set()

    def _alone_or_encode(self, ask: _Ask) -> bool:
        """Serve ``ask`` now unless it is a step that joins the merged pass (then True)."""
        run, b = ask.run, self.backend
        if ask.kind == "full":
            self.stats.alone_passes += 1
            return self._answer(ask, b.full(ask.ids))
        plan, ids, refresh = ask.plan, ask.ids, b.options.cache_refresh
        if run.slot is not None and not plan.stale(ask.step, refresh, run.cache):
            return True
        self.stats.alone_passes += 1
        if run.alone is None or plan.stale(ask.step, refresh, run.alone):  # an encode: into shared rows if they fit
            fits = plan.context_ids.shape[1] <= self.slots.length and len(ids) <= self.slots.rows
            with self._cond:
                if run.slot is not None and (run.rows != len(ids) or not fits):
                    self.slots.give(run.slot, run.rows)
                    run.slot = None
                if run.slot is None and fits:
                    run.slot = self.slots.take(len(ids))
                run.rows = len(ids)
        if run.slot is None:  # no room: this run's passes run alone, on its own cache, until it encodes again
            b.cache, run.alone = run.alone, None
            try:
                return self._answer(ask, b.predict(ids, *ask.window[:2], ask.step, ask.window[2]))
            finally:
                run.alone, b.cache = b.cache, None
        run.alone = None
        # padded with token 0's keys and values: finite, and hidden by the step's mask
        context = np.zeros(self.slots.length, dtype=np.int64)
        context[:plan.context_ids.shape[1]] = context_positions(plan.span, ids.shape[1])
        logprobs, _ = b.encode_into(ids, plan.rows, context, lambda binding: self.slots.bind(binding, True, run.slot, run.rows))
        run.cache = ContextCache(plan.key, plan.context_ids, [])
        return self._answer(ask, logprobs)

    @staticmethod
    def _answer(ask: _Ask, result: np.ndarray) -> bool:
        ask.result = result
        ask.done.set()
        return False

    def _merged(self, steps: list[_Ask]) -> None:
        """One step pass over the cache rows of every run in ``steps``."""
        length = self.slots.length
        first = min(a.run.slot for a in steps)
        count = max(a.run.slot + a.run.rows for a in steps) - first
        width = max(a.plan.span[1] - a.plan.span[0] for a in steps)
        ids = np.full((count, width), self._pad, dtype=np.int64)
        positions = np.zeros((count, width), dtype=np.int64)
        mask = np.zeros((count, length + width), dtype=bool)
        mask[:, length] = True  # rows no run asks for (free, or a run busy elsewhere) see one token: no empty softmax
        rows = np.unique(np.concatenate([a.plan.step_rows for a in steps]))
        for a in steps:
            r, n = a.run.slot - first, a.run.rows
            (s0, s1), context = a.plan.span, a.plan.context_ids.shape[1]
            ids[r:r + n, :s1 - s0] = a.ids[:, s0:s1]
            positions[r:r + n] = np.arange(s0, s0 + width)
            mask[r:r + n, :context] = True
            mask[r:r + n, length:length + s1 - s0] = True
        out = self.backend.step_with(ids, positions, rows, mask,
                                     lambda binding: self.slots.bind(binding, False, first, count))
        self.stats.step_passes += 1
        self.stats.step_runs += len(steps)
        self.stats.last_runs = len(steps)
        for a in steps:
            r = a.run.slot - first
            self._answer(a, out[r:r + a.run.rows][:, np.searchsorted(rows, a.plan.step_rows)])


class RunBackend:
    """One run's backend: the sampler's passes go through the ``Merger`` that opened it."""

    name = "onnx"

    def __init__(self, merger: Merger):
        self.merger = merger
        self.shift = merger.backend.shift
        self.slot: int | None = None  # first of the run's rows in the shared cache
        self.rows = 0
        self.cache: ContextCache | None = None  # what those rows hold (values live in the SlotCache)
        self.alone: ContextCache | None = None  # the run's own cache when its rows did not fit

    def predict(self, ids: np.ndarray, lo: int, hi: int, step: int, cols: np.ndarray | None = None) -> np.ndarray:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        plan = PassPlan.of(ids, lo, hi, cols, self.shift)
        return self.merger._ask(_Ask(self, "predict", ids, plan, (lo, hi, cols), step))

    def full(self, ids: np.ndarray) -> np.ndarray:
        return self.merger._ask(_Ask(self, "full", np.ascontiguousarray(ids, dtype=np.int64)))

    def close(self) -> None:
        self.merger._release(self)

    def __enter__(self) -> RunBackend:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
