"""``dcoder serve``: one loaded model behind HTTP, for a team and for any editor.

Endpoints: POST /v1/infill (dcoder's own API, optionally streamed as server-sent events),
POST /v1/completions (OpenAI-compatible fill-in-the-middle), GET /v1/models, GET /health,
GET /metrics (Prometheus text). The model is fixed at start; no endpoint names a server file.
FastAPI and uvicorn come with the ``serve`` extra and are imported only by this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import json
import os
import sys
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from dcoder.config import (ALGS, LENGTH_MODES, POLICIES, InfillOptions, LearnedPolicy, LengthConfig, SamplerConfig,
                           bounds)
from dcoder.engine.engine import Engine
from dcoder.engine.spans import find_holes
from dcoder.errors import DcoderError
from dcoder.infill import DeadlinePassed, infill, refine
from dcoder.positions import line_starts, position_of
from dcoder.retrieval import Snippet
from dcoder.serving.batching import InferenceQueue, Job, QueueFull

try:
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
    from pydantic import BaseModel, ConfigDict, Field
    from starlette.exceptions import HTTPException as StarletteHTTPException
except ImportError:
    raise DcoderError("dcoder serve needs FastAPI and uvicorn: pip install 'dcoder-diffusion[serve]'") from None

# per request: the work one request may ask for (the engine's own bounds are for one user's runs)
MAX_STEPS, MAX_SPAN_TOKENS, MAX_RANGES, MAX_BATCH = 512, 512, 16, 8
REPLAY_KEYS, MAX_KEY_CHARS = 1024, 255  # Idempotency-Keys remembered, and the longest taken
MAX_SNIPPETS, MAX_SNIPPET_CHARS = 8, 8000  # code from other files a request may put in the model's context


@dataclass(frozen=True)
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    token: str | None = None  # bearer token every request but /health must carry
    max_body_bytes: int = 1 << 20
    max_document_chars: int = 200_000
    timeout_s: float = 60.0  # per request: the run stops then, the client gets 504
    queue_size: int = 16  # requests waiting for the model; more get 503
    batch: int = 8  # requests denoised together (their step passes merged); 1: they take turns
    batch_wait_ms: float = 2.0  # how long a step pass waits for the other running requests' steps
    cors_origins: tuple[str, ...] = ()  # none: browsers' cross-origin requests are refused
    policy_file: str | None = None  # the learned unmasking policy requests with policy "learned" get

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise DcoderError("--port must be from 0 to 65535")
        if not 1024 <= self.max_body_bytes <= 64 << 20:
            raise DcoderError("--max-body must be from 1024 to 67108864 bytes")
        if not 1 <= self.max_document_chars <= 10_000_000:
            raise DcoderError("--max-document must be from 1 to 10000000 characters")
        if not 0 < self.timeout_s <= 3600:
            raise DcoderError("--timeout must be in (0, 3600] seconds")
        if not 1 <= self.queue_size <= 1024:
            raise DcoderError("--queue must be from 1 to 1024")
        if not 1 <= self.batch <= 64:
            raise DcoderError("--batch must be from 1 to 64")
        if not 0 <= self.batch_wait_ms <= 100:
            raise DcoderError("--batch-wait must be from 0 to 100 ms")
        if self.token is not None and len(self.token) < 16:
            raise DcoderError("the token must be at least 16 characters")
        if self.token is None and not is_loopback(self.host):
            raise DcoderError(f"refusing to listen on {self.host} without a token: "
                              "set --token-file or DCODER_TOKEN, or bind 127.0.0.1")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_token(path: str | None) -> str | None:
    """The token from ``path`` (its first line), else from $DCODER_TOKEN; None when neither is set."""
    if path is None:
        return os.environ.get("DCODER_TOKEN") or None
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DcoderError(f"cannot read the token file {path}: {exc.__class__.__name__}") from None
    token = lines[0].strip() if lines else ""
    if not token:
        raise DcoderError(f"the token file {path} is empty")
    return token


# ---- requests -------------------------------------------------------------------------------

class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def _declared(cls: type, name: str, high: float | None = None) -> Any:
    """A request field with the default and bounds dcoder.config declares (``high``: a lower cap)."""
    low, top = bounds(cls, name)
    return Field(getattr(cls, name), ge=low, le=top if high is None else high)


class Sampler(Strict):
    steps: int = _declared(SamplerConfig, "steps", MAX_STEPS)
    threshold: float | None = _declared(SamplerConfig, "threshold")
    alg: Literal[ALGS] = SamplerConfig.alg  # type: ignore[valid-type]
    policy: Literal[POLICIES] = SamplerConfig.policy  # type: ignore[valid-type]
    alg_temp: float = Field(SamplerConfig.alg_temp, ge=0, le=100)
    temperature: float = _declared(SamplerConfig, "temperature")
    top_k: int | None = Field(None, ge=1)
    top_p: float | None = Field(None, gt=0, le=1)
    seed: int = Field(SamplerConfig.seed, ge=0, le=2**63 - 1)


class ContextSnippet(Strict):
    path: str = Field(max_length=1000)  # the file it comes from, shown to the model in a comment
    text: str = Field(max_length=MAX_SNIPPET_CHARS)


class InfillRequest(Strict):
    text: str
    language: str | None = None
    model: str | None = None
    cursor: int | None = Field(None, ge=0)  # insert here (a character offset)
    ranges: list[Annotated[list[int], Field(min_length=2, max_length=2)]] | None = Field(
        None, min_length=1, max_length=MAX_RANGES)  # [start, end) character offsets
    region: str | None = None  # with cursor: the innermost syntax region of this name
    refine: bool = False  # regenerate the one range in place
    min_confidence: float | None = Field(None, gt=0, le=1)  # with refine: keep tokens above it
    sampler: Sampler = Field(default_factory=Sampler)
    max_tokens: int | None = _declared(InfillOptions, "max_tokens", MAX_SPAN_TOKENS)
    exact_length: int | None = Field(None, ge=1, le=MAX_SPAN_TOKENS)
    candidates: int = _declared(InfillOptions, "candidates", MAX_BATCH)
    length: Literal[LENGTH_MODES] = LengthConfig.mode  # type: ignore[valid-type]
    max_span: int = _declared(LengthConfig, "max_span")
    repair: int = _declared(InfillOptions, "repair_rounds")
    search_tokens: int = _declared(InfillOptions, "search_tokens")
    # seconds the run may take before the best fill so far is returned (the CLI's --deadline);
    # the server's --timeout still ends any request
    deadline: float = _declared(InfillOptions, "deadline")
    scope_bias: float = _declared(InfillOptions, "scope_bias")
    context: list[ContextSnippet] = Field(default_factory=list, max_length=MAX_SNIPPETS)  # ahead of the file
    stream: bool = False


class CompletionRequest(BaseModel):
    # OpenAI clients send fields dcoder has no use for (n, echo, presence_penalty, ...): ignored
    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    prompt: str
    suffix: str = ""
    max_tokens: int = Field(64, ge=1, le=MAX_SPAN_TOKENS)
    temperature: float = Field(0.0, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    stop: str | list[str] | None = None
    stream: bool = False
    seed: int | None = Field(None, ge=0, le=2**63 - 1)


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.code = status, message, kind, code


def error_response(status: int, message: str, kind: str = "invalid_request_error", code: str | None = None,
                   headers: dict | None = None) -> JSONResponse:
    # OpenAI's error shape, so its clients show the message
    return JSONResponse({"error": {"message": message, "type": kind, "code": code}}, status, headers=headers)


# ---- from requests to engine calls ------------------------------------------------------------

def check_document(text: str, max_chars: int, what: str = "the document") -> None:
    if len(text) > max_chars:
        raise ApiError(413, f"{what} has {len(text)} characters; this server takes {max_chars}", code="too_large")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # JSON allows lone surrogates ("\ud800"); no tokenizer takes them
        raise ApiError(400, f"{what} is not valid Unicode (a lone surrogate)") from None


def infill_work(body: InfillRequest, max_chars: int, learned: LearnedPolicy | None = None):
    """Check the request against the document; return the engine call to queue. ``learned``: the
    server's learned policy (--policy-file), for requests that ask for it."""
    text = body.text
    check_document(text, max_chars)
    for c in body.context:
        check_document(c.path + c.text, MAX_SNIPPET_CHARS + 1000, "a context snippet")
    if body.cursor is not None and body.ranges is not None:
        raise ApiError(400, "give cursor or ranges, not both")
    if body.region is not None and body.cursor is None:
        raise ApiError(400, "region needs cursor, a position inside the region")
    for a, b in body.ranges or ():
        if not 0 <= a <= b <= len(text):
            raise ApiError(400, f"range [{a}, {b}] is not within the document (0..{len(text)}, start <= end)")
    if body.cursor is not None and body.cursor > len(text):
        raise ApiError(400, f"cursor {body.cursor} is past the end of the document ({len(text)})")
    if body.refine and (body.ranges is None or len(body.ranges) != 1):
        raise ApiError(400, "refine rewrites exactly one range")
    if body.min_confidence is not None and not body.refine:
        raise ApiError(400, "min_confidence goes with refine")
    s = body.sampler
    if s.policy == "learned" and learned is None:
        raise ApiError(400, "sampler.policy learned: this server has no learned policy (dcoder serve --policy-file)")
    try:
        options = InfillOptions(
            sampler=SamplerConfig(steps=s.steps, threshold=s.threshold, alg=s.alg, alg_temp=s.alg_temp,
                                  temperature=s.temperature, top_k=s.top_k, top_p=s.top_p, seed=s.seed,
                                  policy=s.policy, learned=learned),
            max_tokens=body.max_tokens, exact_length=body.exact_length, candidates=body.candidates,
            language=body.language, repair_rounds=body.repair, search_tokens=body.search_tokens,
            lengths=LengthConfig(body.length, body.max_span), deadline=body.deadline, scope_bias=body.scope_bias,
            snippets=tuple(Snippet(c.path, 0, c.text, 0.0) for c in body.context))
    except DcoderError as exc:
        raise ApiError(400, str(exc)) from None
    if body.region is not None:
        ranges = [_region(text, body.cursor, body.region, body.language)]
    elif body.cursor is not None:
        ranges = [(body.cursor, body.cursor)]
    else:
        ranges = body.ranges or find_holes(text)
        if not ranges:
            raise ApiError(400, "nothing to fill: give cursor, ranges, or <|mask|> holes in the text")
    if body.refine:
        return lambda engine, stop: refine(engine, text, ranges[0], options, body.min_confidence, stop)
    return lambda engine, stop: infill(engine, text, ranges, options, stop)


def _region(text: str, cursor: int, name: str, language: str | None) -> tuple[int, int]:
    from dcoder import syntax

    if language is None or syntax.grammar(language) is None:
        raise ApiError(400, f"region needs a language with a parser (got {language!r})")
    if name not in syntax.region_names(language):
        raise ApiError(400, f"unknown region {name!r} for {language}")
    found = syntax.parse(text, language).region(cursor, name)
    if found is None:
        raise ApiError(400, f"no {name} region at offset {cursor}")
    return found.start, found.end


def infill_json(text: str, result, model: str) -> dict:
    starts = line_starts(text)
    edits = [{"start_offset": e.start, "end_offset": e.end, "start": position_of(starts, e.start),
              "end": position_of(starts, e.end), "text": e.text} for e in result.edits]
    return {"model": model, "text": result.text, "edits": edits, "forward_passes": result.forward_passes,
            "steps": result.steps, "generated_tokens": result.generated_tokens, "score": result.score, "parses": result.parses,
            "repairs": result.repairs, "searched": result.searched, "timed_out": result.timed_out}


def completion_work(body: CompletionRequest, max_chars: int):
    text = body.prompt + body.suffix
    check_document(text, max_chars, "prompt + suffix")
    stops = [body.stop] if isinstance(body.stop, str) else list(body.stop or ())
    if len(stops) > 4 or not all(stops):
        raise ApiError(400, "stop takes up to 4 non-empty strings")
    sampler = SamplerConfig(temperature=body.temperature, top_p=body.top_p, seed=body.seed or 0)
    options = InfillOptions(sampler=sampler, max_tokens=body.max_tokens)
    at = len(body.prompt)
    return (lambda engine, stop: infill(engine, text, [(at, at)], options, stop)), stops


def cut_at_stop(fill: str, stops: list[str]) -> tuple[str, str]:
    """The fill up to the first stop string, and OpenAI's finish_reason."""
    cuts = [i for i in (fill.find(s) for s in stops) if i >= 0]
    return (fill[:min(cuts)], "stop") if cuts else (fill, "length")


# ---- retried requests ---------------------------------------------------------------------------

@dataclass
class Attempt:
    fingerprint: str  # the endpoint and body the key first came with
    job: Job
    waiting: int = 0  # requests with this key waiting for the job


class Replays:
    """Runs by Idempotency-Key: a retried request (same key, same body) waits for the first
    attempt's run, or takes its result, instead of running again; the first attempt leaving (a
    client that timed out and retries) does not cancel a run another attempt waits for. Only
    runs that succeeded are kept, the latest ``size`` keys. Lives on the event loop (no locks)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.attempts: OrderedDict[str, Attempt] = OrderedDict()
        self.replayed = 0  # requests answered by an earlier attempt's run

    def join(self, key: str, fingerprint: str, start) -> Attempt:
        attempt = self.attempts.get(key)
        if attempt is not None and attempt.fingerprint != fingerprint:
            raise ApiError(422, "this Idempotency-Key came with another request", code="idempotency_key_reused")
        if attempt is None:
            attempt = self.attempts[key] = Attempt(fingerprint, start())
            while len(self.attempts) > self.size:
                self.attempts.popitem(last=False)
        else:
            self.replayed += 1
        attempt.waiting += 1
        return attempt

    def leave(self, key: str, attempt: Attempt) -> None:
        attempt.waiting -= 1
        job = attempt.job
        failed = job.timed_out or (job.future.done() and (job.future.cancelled() or job.future.exception() is not None))
        if failed or (attempt.waiting == 0 and not job.future.done()):
            job.cancel()  # nobody waits for it any more, or a retry must run it again
            if self.attempts.get(key) is attempt:
                del self.attempts[key]


# ---- metrics ----------------------------------------------------------------------------------

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self) -> None:
        self.latency = {}  # endpoint -> [bucket counts..., count, sum]
        self.status = {}  # (endpoint, status) -> count

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        h = self.latency.setdefault(endpoint, [0] * len(LATENCY_BUCKETS) + [0, 0.0])
        for i, b in enumerate(LATENCY_BUCKETS):
            h[i] += seconds <= b
        h[-2] += 1
        h[-1] += seconds
        self.status[endpoint, status] = self.status.get((endpoint, status), 0) + 1

    def render(self, inference: InferenceQueue, replays: Replays) -> str:
        s = inference.stats
        out = ["# TYPE dcoder_request_seconds histogram"]
        for endpoint, h in sorted(self.latency.items()):
            for b, n in zip(LATENCY_BUCKETS, h):
                out.append(f'dcoder_request_seconds_bucket{{endpoint="{endpoint}",le="{b}"}} {n}')
            out.append(f'dcoder_request_seconds_bucket{{endpoint="{endpoint}",le="+Inf"}} {h[-2]}')
            out.append(f'dcoder_request_seconds_count{{endpoint="{endpoint}"}} {h[-2]}')
            out.append(f'dcoder_request_seconds_sum{{endpoint="{endpoint}"}} {h[-1]}')
        out.append("# TYPE dcoder_requests_total counter")
        for (endpoint, status), n in sorted(self.status.items()):
            out.append(f'dcoder_requests_total{{endpoint="{endpoint}",status="{status}"}} {n}')
        out += [
            "# TYPE dcoder_queue_depth gauge", f"dcoder_queue_depth {inference.depth}",
            "# HELP dcoder_batch_requests requests the latest step pass denoised together",
            "# TYPE dcoder_batch_requests gauge", f"dcoder_batch_requests {inference.batch_runs}",
            "# TYPE dcoder_running_requests gauge", f"dcoder_running_requests {inference.running}",
            "# TYPE dcoder_runs_total counter", f"dcoder_runs_total {s.runs}",
            "# TYPE dcoder_forward_passes_total counter", f"dcoder_forward_passes_total {s.forward_passes}",
            "# TYPE dcoder_generated_tokens_total counter", f"dcoder_generated_tokens_total {s.generated_tokens}",
            "# HELP dcoder_busy_seconds_total seconds of runs, summed over requests denoised together",
            "# TYPE dcoder_busy_seconds_total counter", f"dcoder_busy_seconds_total {s.busy_seconds}",
            "# TYPE dcoder_tokens_per_second gauge", f"dcoder_tokens_per_second {s.last_tokens_per_second}",
            "# HELP dcoder_replayed_total requests answered by the run of an earlier attempt with their Idempotency-Key",
            "# TYPE dcoder_replayed_total counter", f"dcoder_replayed_total {replays.replayed}",
        ]
        return "\n".join(out) + "\n"


# ---- the app ----------------------------------------------------------------------------------

class Guard:
    """Outermost layer, before the app reads anything: the bearer token, the body size limit
    (413 for any transfer encoding), and each /v1 request's latency and status for /metrics."""

    def __init__(self, app, config: ServeConfig, metrics: Metrics) -> None:
        self.app, self.config, self.metrics = app, config, metrics
        self.expected = f"Bearer {config.token}".encode() if config.token is not None else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, path = time.monotonic(), scope["path"]
        status = 500

        async def timed_send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            refusal, receive = await self.check(scope, receive)
            if refusal is not None:
                return await refusal(scope, receive, timed_send)
            await self.app(scope, receive, timed_send)
        finally:
            if path.startswith("/v1/"):
                self.metrics.observe(path, status, time.monotonic() - started)

    async def check(self, scope, receive):
        headers = dict(scope["headers"])
        if self.expected is not None and scope["path"] != "/health":
            if not hmac.compare_digest(headers.get(b"authorization", b""), self.expected):
                return error_response(401, "missing or wrong bearer token", "authentication_error",
                                      headers={"www-authenticate": "Bearer"}), receive
        limit = self.config.max_body_bytes
        declared = headers.get(b"content-length")
        too_big = declared is not None and (not declared.isdigit() or int(declared) > limit)
        messages, size = [], 0
        while not too_big:
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            too_big = size > limit
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        if too_big:
            return error_response(413, f"the request body is over {limit} bytes", code="too_large",
                                  headers={"connection": "close"}), receive

        async def replay():
            return messages.pop(0) if messages else await receive()

        return None, replay


def sse(data) -> bytes:
    return f"data: {data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)}\n\n".encode()


def create_app(engine: Engine, config: ServeConfig, model_id: str) -> FastAPI:
    from dcoder.engine.policy import load_policy

    learned = None if config.policy_file is None else load_policy(config.policy_file, engine.folder)
    inference = InferenceQueue(engine, config.queue_size, config.batch, config.batch_wait_ms / 1000)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        await asyncio.to_thread(inference.close)

    app = FastAPI(title="dcoder", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    metrics = Metrics()
    replays = Replays(REPLAY_KEYS)
    app.state.inference, app.state.replays = inference, replays

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return error_response(400, f"{where or 'body'}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return error_response(exc.status, exc.message, exc.kind, exc.code)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        messages = {404: f"no endpoint {request.url.path}", 405: f"{request.method} is not allowed on {request.url.path}"}
        return error_response(exc.status_code, messages.get(exc.status_code, str(exc.detail)))

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception):  # a bug in dcoder: one line, never a traceback
        return error_response(500, f"internal error: {exc.__class__.__name__}", "server_error")

    def check_model(name: str | None) -> None:
        if name is not None and name != model_id:
            raise ApiError(404, f"unknown model {name!r}: this server runs {model_id!r}", code="model_not_found")

    def queue_job(work, on_progress=None) -> Job:
        try:
            return inference.submit(Job(work, time.monotonic() + config.timeout_s, on_progress))
        except QueueFull:
            raise ApiError(503, "the server is busy: every queue place is taken, retry later",
                           "server_busy", "queue_full") from None

    async def outcome(job: Job, request: Request, release=None):
        """The job's result; cancels it (or calls ``release``) when the client goes away or it ends."""
        future = asyncio.wrap_future(job.future)
        try:
            while True:
                done, _ = await asyncio.wait({future}, timeout=0.25)
                if done or job.timed_out:
                    break
                if await request.is_disconnected():
                    raise ApiError(499, "client closed the request")
                job.timed_out = time.monotonic() > job.deadline + 1  # still queued, or stuck: give up
            if job.timed_out:
                raise ApiError(504, f"the run passed the server's time limit ({config.timeout_s:g} s)", "timeout")
            try:
                result = future.result()
            except DeadlinePassed as exc:  # the request's own deadline, before any fill existed
                raise ApiError(504, str(exc), "timeout") from None
            except DcoderError as exc:
                raise ApiError(400, str(exc)) from None
        finally:
            (release or job.cancel)()
        if job.timed_out:  # stopped mid-run: what it has is not a fill
            raise ApiError(504, f"the run passed the server's time limit ({config.timeout_s:g} s)", "timeout")
        return result

    async def run_once(work, body: BaseModel, request: Request):
        """The result of ``work``, run once per Idempotency-Key (see Replays); without a key, once per request."""
        key = request.headers.get("idempotency-key")
        if key is None:
            return await outcome(queue_job(work), request)
        if not 1 <= len(key) <= MAX_KEY_CHARS:
            raise ApiError(400, f"Idempotency-Key takes 1 to {MAX_KEY_CHARS} characters")
        fingerprint = hashlib.sha256(f"{request.url.path} {body.model_dump_json()}".encode()).hexdigest()
        attempt = replays.join(key, fingerprint, lambda: queue_job(work))
        return await outcome(attempt.job, request, lambda: replays.leave(key, attempt))

    def stream(job: Job, steps: asyncio.Queue, final):
        """Server-sent events: each step's frame, then the final result; cancels the job when the client goes."""
        async def events():
            future = asyncio.wrap_future(job.future)
            try:
                while not future.done() or not steps.empty():
                    getter = asyncio.ensure_future(steps.get())
                    done, _ = await asyncio.wait({getter, future}, return_when=asyncio.FIRST_COMPLETED)
                    if getter in done:
                        yield sse(getter.result())
                    else:
                        getter.cancel()
                if job.timed_out:
                    yield sse({"error": {"message": "the run passed the server's time limit", "type": "timeout"}})
                    return
                try:
                    result = future.result()
                except DcoderError as exc:
                    kind = "timeout" if isinstance(exc, DeadlinePassed) else "invalid_request_error"
                    yield sse({"error": {"message": str(exc), "type": kind}})
                    return
                for frame in final(result):
                    yield sse(frame)
            finally:
                job.cancel()

        return StreamingResponse(events(), media_type="text/event-stream", headers={"cache-control": "no-cache"})

    def step_feed(steps: asyncio.Queue):
        loop = asyncio.get_running_loop()

        def put(p):
            frame = {"step": p.step, "forward_passes": p.forward_passes, "masked_left": p.masked_left,
                     "spans": [{"start_offset": a, "end_offset": b, "text": t} for (a, b), t in zip(p.ranges, p.previews)]}
            loop.call_soon_threadsafe(steps.put_nowait, frame)

        return put

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": model_id, "queue_depth": inference.depth}

    @app.get("/metrics")
    async def metrics_text():
        return PlainTextResponse(metrics.render(inference, replays), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": model_id, "object": "model", "created": 0, "owned_by": "dcoder"}]}

    @app.post("/v1/infill")
    async def infill_endpoint(body: InfillRequest, request: Request):
        check_model(body.model)
        work = infill_work(body, config.max_document_chars, learned)
        if not body.stream:
            result = await run_once(work, body, request)
            return infill_json(body.text, result, model_id)
        steps: asyncio.Queue = asyncio.Queue()
        job = queue_job(work, step_feed(steps))
        return stream(job, steps, lambda result: [{"result": infill_json(body.text, result, model_id)}])

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, request: Request):
        check_model(body.model)
        work, stops = completion_work(body, config.max_document_chars)
        ident, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())

        def choice(result):
            return cut_at_stop(result.edits[0].text, stops)

        if body.stream:
            job = queue_job(work)

            def final(result):
                text, reason = choice(result)
                yield {"id": ident, "object": "text_completion", "created": created, "model": model_id,
                       "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": reason}]}
                yield "[DONE]"

            return stream(job, asyncio.Queue(), final)
        result = await run_once(work, body, request)
        text, reason = choice(result)
        return {"id": ident, "object": "text_completion", "created": created, "model": model_id,
                "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": reason}],
                "usage": {"prompt_tokens": 0, "completion_tokens": result.generated_tokens,
                          "total_tokens": result.generated_tokens}}

    if config.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(config.cors_origins),
                           allow_methods=["GET", "POST"], allow_headers=["authorization", "content-type"])
    app.add_middleware(Guard, config=config, metrics=metrics)
    return app


def serve(engine: Engine, config: ServeConfig, model_id: str) -> None:
    try:
        import uvicorn
    except ImportError:
        raise DcoderError("dcoder serve needs FastAPI and uvicorn: pip install 'dcoder-diffusion[serve]'") from None
    app = create_app(engine, config, model_id)
    inference = app.state.inference
    if inference.not_merged:
        sys.stderr.write(f"dcoder: requests take turns: the model is {inference.not_merged}\n")
    elif inference.merger is not None:
        slots = inference.merger.slots
        sys.stderr.write(f"dcoder: up to {inference.workers} requests denoised together; their cache: "
                         f"{slots.rows} rows of {slots.length} tokens, {slots.nbytes / 2**20:.0f} MiB\n")
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning", access_log=False,
                timeout_graceful_shutdown=5)
