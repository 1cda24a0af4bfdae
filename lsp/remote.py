"""A dcoder server (``dcoder serve``) standing in for a loaded model: the language server's runs
go to its POST /v1/infill, streamed, so previews and cancellation work as with a local model.
Runs on the inference thread; plain urllib, so the language server needs no HTTP package."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

from dcoder.errors import DcoderError
from dcoder.infill import Edit, InfillOptions, InfillResult, OnProgress, Progress

TIMEOUT_S = 120  # a socket read that waits longer means the server is gone


@dataclass(frozen=True)
class RemoteEngine:
    url: str  # the server's base URL, e.g. http://gpu-box:8080
    token: str | None = None

    @property
    def description(self) -> str:
        return f"dcoder server {self.url}"

    def infill(self, text: str, ranges: list[tuple[int, int]], options: InfillOptions,
               on_progress: OnProgress | None = None) -> InfillResult:
        return self._run({"text": text, "ranges": [list(r) for r in ranges]}, options, on_progress)

    def refine(self, text: str, span: tuple[int, int], options: InfillOptions, min_confidence: float | None,
               on_progress: OnProgress | None = None) -> InfillResult:
        return self._run({"text": text, "ranges": [list(span)], "refine": True, "min_confidence": min_confidence},
                         options, on_progress)

    def _run(self, body: dict, options: InfillOptions, on_progress: OnProgress | None) -> InfillResult:
        s = options.sampler
        body.update(language=options.language, max_tokens=options.max_tokens, exact_length=options.exact_length,
                    candidates=options.candidates, repair=options.repair_rounds, search_tokens=options.search_tokens,
                    length=options.lengths.mode, max_span=options.lengths.max_span, deadline=options.deadline,
                    scope_bias=options.scope_bias, context=[{"path": c.path, "text": c.text} for c in options.snippets],
                    stream=True,
                    sampler={"steps": s.steps, "threshold": s.threshold, "alg": s.alg, "alg_temp": s.alg_temp,
                             "temperature": s.temperature, "top_k": s.top_k, "top_p": s.top_p, "seed": s.seed,
                             "policy": s.policy})
        headers = {"content-type": "application/json"}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.url.rstrip("/") + "/v1/infill", json.dumps(body).encode(), headers)
        try:
            response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
        except urllib.error.HTTPError as exc:
            raise DcoderError(f"dcoder server {self.url}: {_message(exc)}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise DcoderError(f"cannot reach the dcoder server {self.url}: {getattr(exc, 'reason', exc)}") from None
        with response:  # closing it early is how a run is cancelled: the server notices the client left
            last = 0
            for line in response:
                if not line.startswith(b"data: "):
                    continue
                frame = json.loads(line[6:])
                if "error" in frame:
                    raise DcoderError(f"dcoder server {self.url}: {frame['error'].get('message')}")
                if "result" in frame:
                    return _result(frame["result"])
                last = frame["forward_passes"]
                progress = Progress(frame["step"], last, tuple(sp["text"] for sp in frame["spans"]),
                                    tuple((sp["start_offset"], sp["end_offset"]) for sp in frame["spans"]),
                                    frame["masked_left"])
                if on_progress is not None and on_progress(progress):
                    return InfillResult(body["text"], (), last, progress.step, True, 0.0, 0)
        raise DcoderError(f"dcoder server {self.url} closed the stream before the result")


def _message(exc: urllib.error.HTTPError) -> str:
    try:
        return json.loads(exc.read())["error"]["message"]
    except (ValueError, KeyError, TypeError, OSError):
        return f"HTTP {exc.code}"


def _result(r: dict) -> InfillResult:
    edits = tuple(Edit(e["start_offset"], e["end_offset"], e["text"]) for e in r["edits"])
    return InfillResult(r["text"], edits, r["forward_passes"], r["steps"], False, r["score"], r["generated_tokens"],
                        r["parses"], r["repairs"], r["searched"], r["timed_out"])
