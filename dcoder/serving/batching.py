"""The server's inference queue: one thread runs the engine, requests wait in a bounded queue.

A run is one engine call (infill or refine), which denoises all of a request's spans and
candidates as one batch. Runs of different requests are not merged: the onnxruntime backend
caches one run's context between passes, so runs take turns on the one thread. Each job can be
cancelled on its own (client gone, time limit), checked at every denoising step; a job
cancelled while still queued is skipped.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable

from dcoder.engine.engine import Engine
from dcoder.infill import InfillResult, Progress


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
    """Totals since start, read by /metrics (written only by the worker thread)."""

    runs: int = 0
    forward_passes: int = 0
    generated_tokens: int = 0
    busy_seconds: float = 0.0
    last_tokens_per_second: float = 0.0


class InferenceQueue:
    def __init__(self, engine: Engine, size: int) -> None:
        self.engine = engine
        self.stats = Stats()
        self._jobs: queue.Queue[Job | None] = queue.Queue(maxsize=size)
        self._thread = threading.Thread(target=self._loop, name="dcoder-inference", daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        return self._jobs.qsize()

    def submit(self, job: Job) -> Job:
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            raise QueueFull from None
        return job

    def close(self, wait: float = 5.0) -> None:
        """Stop the worker after the queued jobs (daemon thread: a stuck run does not hold the exit)."""
        try:
            self._jobs.put(None, timeout=wait)
        except queue.Full:
            return
        self._thread.join(timeout=wait)

    def _loop(self) -> None:
        while (job := self._jobs.get()) is not None:
            if job.cancelled.is_set() or time.monotonic() > job.deadline:
                job.timed_out = not job.cancelled.is_set()
                job.future.cancel()  # its client left or waited too long: not run at all
                continue
            if not job.future.set_running_or_notify_cancel():
                continue
            started = time.monotonic()
            try:
                result = job.work(self.engine, job._stop)
            except BaseException as exc:  # the caller turns it into a response; the worker goes on
                job.future.set_exception(exc)
                continue
            spent = time.monotonic() - started
            s = self.stats
            s.runs += 1
            s.forward_passes += result.forward_passes
            s.generated_tokens += result.generated_tokens
            s.busy_seconds += spent
            s.last_tokens_per_second = result.generated_tokens / spent if spent > 0 else 0.0
            job.future.set_result(result)
