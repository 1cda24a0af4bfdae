"""The server's inference queue: requests wait in a bounded queue for one of ``batch`` workers.

Each worker runs one request's run (infill or refine) at a time. With ``batch`` > 1 the workers'
runs share the model through a ``Merger`` (dcoder/engine/merge.py): their step passes go as one
padded pass, so up to ``batch`` requests are denoised together. With ``batch`` = 1 (or a model
that cannot merge: a PyTorch checkpoint, or a folder exported before the step graph took a mask)
runs take turns on one worker. Each job can be cancelled on its own (client gone, time limit),
checked at every denoising step; a job cancelled while still queued is skipped.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Callable

from dcoder.engine.engine import Engine
from dcoder.engine.merge import Merger
from dcoder.engine.runtime import OnnxBackend
from dcoder.infill import InfillResult, Progress

# Rows of the merged cache per worker: two candidates each (a 7B model's row of 4,096 tokens is
# 235 MB); a run with more candidates than there are free rows runs its passes alone.
ROWS_PER_RUN = 2


class QueueFull(Exception):
    """Every place in the queue is taken: the client should retry later."""


Work = Callable[[Engine, Callable[[Progress], bool]], InfillResult]


@dataclass
class Job:
    work: Work
    deadline: float  # time.monotonic() after which the run stops
    on_progress: Callable[[Progress], None] | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    future: Future = field(default_factory=Future)
    timed_out: bool = False

    def cancel(self) -> None:
        self.cancelled.set()

    def _stop(self, progress: Progress) -> bool:
        if self.on_progress is not None:
            self.on_progress(progress)
        if time.monotonic() > self.deadline:
            self.timed_out = True
        return self.timed_out or self.cancelled.is_set()


@dataclass
class Stats:
    """Totals since start, read by /metrics (written by the workers under the queue's lock)."""

    runs: int = 0
    running: int = 0
    forward_passes: int = 0
    generated_tokens: int = 0
    busy_seconds: float = 0.0
    last_tokens_per_second: float = 0.0


def why_not_merged(engine: Engine) -> str | None:
    """Why runs of this model cannot share passes; None when they can."""
    if not isinstance(engine.backend, OnnxBackend):
        return "a PyTorch checkpoint (export it to merge runs)"
    if not engine.backend.takes_mask:
        return "a folder exported without the step graph's mask (export it again to merge runs)"
    return None


class InferenceQueue:
    def __init__(self, engine: Engine, size: int, batch: int = 1, wait_s: float = 0.002) -> None:
        self.engine = engine
        self.stats = Stats()
        self.not_merged = why_not_merged(engine) if batch > 1 else None
        self.merger = None
        if batch > 1 and self.not_merged is None:
            self.merger = Merger(engine.backend, rows=ROWS_PER_RUN * batch, wait=wait_s)
        self.workers = batch if self.merger is not None else 1
        self._lock = threading.Lock()
        self._jobs: queue.Queue[Job | None] = queue.Queue(maxsize=size)
        self._threads = [threading.Thread(target=self._loop, name=f"dcoder-inference-{i}", daemon=True)
                         for i in range(self.workers)]
        for t in self._threads:
            t.start()

    @property
    def depth(self) -> int:
        return self._jobs.qsize()

    @property
    def running(self) -> int:
        return self.stats.running

    @property
    def batch_runs(self) -> int:
        """Runs the latest step pass carried."""
        return self.merger.stats.last_runs if self.merger is not None else 1

    def submit(self, job: Job) -> Job:
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            raise QueueFull from None
        return job

    def close(self, wait: float = 5.0) -> None:
        """Stop the workers after the queued jobs (daemon threads: a stuck run does not hold the exit)."""
        for _ in self._threads:
            try:
                self._jobs.put(None, timeout=wait)
            except queue.Full:
                return
        for t in self._threads:
            t.join(timeout=wait)
        if self.merger is not None:
            self.merger.close(wait)

    def _loop(self) -> None:
        while (job := self._jobs.get()) is not None:
            if job.cancelled.is_set() or time.monotonic() > job.deadline:
                job.timed_out = not job.cancelled.is_set()
                job.future.cancel()  # its client left or waited too long: not run at all
                continue
            if not job.future.set_running_or_notify_cancel():
                continue
            started = time.monotonic()
            with self._lock:
                self.stats.running += 1
            try:
                result = self._run(job)
            except BaseException as exc:  # the caller turns it into a response; the worker goes on
                job.future.set_exception(exc)
                continue
            finally:
                with self._lock:
                    self.stats.running -= 1
            spent = time.monotonic() - started
            with self._lock:
                s = self.stats
                s.runs += 1
                s.forward_passes += result.forward_passes
                s.generated_tokens += result.generated_tokens
                s.busy_seconds += spent
                s.last_tokens_per_second = result.generated_tokens / spent if spent > 0 else 0.0
            job.future.set_result(result)

    def _run(self, job: Job) -> InfillResult:
        if self.merger is None:
            return job.work(self.engine, job._stop)
        with self.merger.open() as backend:
            return job.work(replace(self.engine, backend=backend), job._stop)
