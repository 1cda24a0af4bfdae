"""Running requests and how they stop.

Each inference request is a job for a document. A newer job of the same kind for the same
document supersedes the older one; an edit to the document, ``$/cancelRequest`` or a cancelled
progress bar stops it too. The engine asks ``cancelled`` after every denoising step and syntax
check, and a job's ``on_cancel`` (set while it runs) ends the forward pass in flight.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable

SUPERSEDED, MODIFIED, CANCELLED = "superseded", "modified", "cancelled"


@dataclass(eq=False)
class Job:
    uri: str
    kind: str  # "complete" (inline or completion) | "edit" (refine, fill)
    request_id: object
    reason: str | None = None
    on_cancel: Callable[[], None] | None = None  # called by ``cancel`` from the event loop's thread
    _stop: threading.Event = field(default_factory=threading.Event)

    @property
    def cancelled(self) -> bool:
        return self._stop.is_set()

    def cancel(self, reason: str) -> None:
        if not self._stop.is_set():
            self.reason = reason
            self._stop.set()
            if (hook := self.on_cancel) is not None:
                hook()


class Jobs:
    """Used from the event loop thread only; jobs are read from the inference thread."""

    def __init__(self) -> None:
        self._running: list[Job] = []

    @property
    def busy(self) -> bool:
        return bool(self._running)

    def start(self, uri: str, kind: str, request_id: object) -> Job:
        for old in self._running:
            if old.uri == uri and old.kind == kind:
                old.cancel(SUPERSEDED)
        job = Job(uri, kind, request_id)
        self._running.append(job)
        return job

    def finish(self, job: Job) -> None:
        if job in self._running:
            self._running.remove(job)

    def document_changed(self, uri: str) -> None:
        for job in self._running:
            if job.uri == uri:
                job.cancel(MODIFIED)

    def cancel_all(self) -> None:
        for job in self._running:
            job.cancel(CANCELLED)

    def cancel_request(self, request_id: object) -> None:
        for job in self._running:
            if job.request_id == request_id:
                job.cancel(CANCELLED)
