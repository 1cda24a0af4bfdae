"""The dcoder language server (pygls): inline completion, completion, refine/fill code actions
and commands, with live denoising previews.

Handlers are thin: they turn LSP positions into document offsets and hand the work to
``dcoder_lsp.operations`` on a single inference thread, so the event loop keeps reading messages
(cancellations, edits) while the model runs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from lsprotocol import types
from pygls.capabilities import ServerCapabilitiesBuilder, get_capability
from pygls.exceptions import JsonRpcContentModified, JsonRpcException, JsonRpcInvalidParams, JsonRpcRequestCancelled
from pygls.protocol import default_converter
from pygls.protocol.language_server import lsp_method
from pygls.uris import to_fs_path

from dcoder import __version__
from dcoder.errors import DcoderError, Interrupted
from dcoder.infill import Edit
from dcoder.retrieval import WorkspaceIndex
from dcoder_lsp import actions, operations
from dcoder_lsp.config import Settings
from dcoder_lsp.documents import Document, DocumentStore
from dcoder_lsp.jobs import CANCELLED, MODIFIED, SUPERSEDED, Job, Jobs
from dcoder_lsp.loader import Loader, ModelUnavailable
from dcoder_lsp.positions import UTF16, PositionError
from dcoder_lsp.remote import RemoteEngine
from dcoder_lsp.rpc import StrictProtocol, StrictServer, log_one_line_per_record
from dcoder_lsp.transport import serve_stdio, serve_tcp

log = logging.getLogger("dcoder.lsp")

PREVIEW = "dcoder/preview"
STATUS = "dcoder/status"
_CONVERTER = default_converter()


class ServerCancelled(JsonRpcException):
    CODE = -32802
    MESSAGE = "a newer request for this document replaced this one"


class RequestFailed(JsonRpcException):
    CODE = -32803
    MESSAGE = "request failed"


class DcoderProtocol(StrictProtocol):
    """pygls's protocol with two changes: documents are mirrored by ``dcoder_lsp.documents`` (pygls's
    mirror splits lines at form feeds and U+2028 and clamps columns one short), and
    ``$/cancelRequest`` also stops jobs of requests pygls runs as generators (executeCommand)."""

    def _forward(self, method: str, params):
        if (handler := self.fm.features.get(method)) is not None:
            yield handler, (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: types.DidOpenTextDocumentParams):
        yield from self._forward(types.TEXT_DOCUMENT_DID_OPEN, params)

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams):
        yield from self._forward(types.TEXT_DOCUMENT_DID_CHANGE, params)

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: types.DidCloseTextDocumentParams):
        yield from self._forward(types.TEXT_DOCUMENT_DID_CLOSE, params)

    def _handle_cancel_notification(self, msg_id):
        self._server.jobs.cancel_request(msg_id)
        super()._handle_cancel_notification(msg_id)


class DcoderServer(StrictServer):
    def __init__(self, inference: ThreadPoolExecutor | None = None) -> None:
        super().__init__("dcoder", __version__, protocol_cls=DcoderProtocol)
        self.documents = DocumentStore()
        self.jobs = Jobs()
        self.settings = Settings()
        self.encoding = UTF16
        self.problems: list[str] = []  # settings problems found at initialize, reported once initialized
        self.loader = Loader(self._report_from_thread)
        # TCP sessions pass the one thread they share, as they share the loaded models.
        self.owns_inference = inference is None
        self.inference = inference or ThreadPoolExecutor(max_workers=1, thread_name_prefix="dcoder-inference")
        self._loop: asyncio.AbstractEventLoop | None = None
        self.root: Path | None = None  # the workspace folder, from initialize
        self.index: WorkspaceIndex | None = None  # its index, when the settings ask for similar code
        self._workspace_key: tuple | None = None

    # ---- the workspace index ---------------------------------------------------------------

    def index_workspace(self) -> None:
        """(Re)build the workspace index on a thread of its own when the root or the settings call
        for it; requests use what is indexed so far (the build is bounded in files, bytes and time)."""
        s = self.settings
        key = (self.root, s.workspace_exclude) if s.workspace_context and self.root is not None else None
        if key == self._workspace_key:
            return
        self._workspace_key = key
        if key is None:
            self.index = None
            return
        index = self.index = WorkspaceIndex(self.root, s.workspace_exclude or ())
        for doc in self.documents.all():
            self.stage(doc)
        loop = asyncio.get_running_loop()

        def build() -> None:
            try:
                files = index.build()
            except Exception:  # a bug must not take the server down: requests go on without the index
                log.exception("workspace index failed")
                return
            stopped = f" (stopped at the {index.stopped})" if index.stopped else ""
            loop.call_soon_threadsafe(self.report, "info", f"workspace: indexed {files} files of {index.root}{stopped}")

        threading.Thread(target=build, name="dcoder-workspace", daemon=True).start()

    def stage(self, doc: Document | None) -> None:
        """The editor's text of ``doc`` replaces the file's in the workspace index."""
        if doc is not None and self.index is not None and doc.path is not None:
            self.index.stage(doc.path, doc.engine.text)

    # ---- messages to the client ------------------------------------------------------------

    def report(self, level: str, message: str) -> None:
        """``level``: "error" and "warning" pop up (window/showMessage); "info" and "loading"
        are only logged; every report updates the status."""
        kind = {"error": types.MessageType.Error, "warning": types.MessageType.Warning}.get(level)
        if kind is not None:
            self.window_show_message(types.ShowMessageParams(type=kind, message=f"dcoder: {message}"))
        self.window_log_message(types.LogMessageParams(type=kind or types.MessageType.Info, message=f"dcoder: {message}"))
        self.send_status(loading=level == "loading")

    def _report_from_thread(self, level: str, message: str) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.report, level, message)

    def send_status(self, loading: bool = False) -> None:
        loaded, failure = self.loader.loaded, self.loader.failure
        state = "error" if failure else "loading" if loading else "busy" if self.jobs.busy else "idle"
        self.protocol.notify(STATUS, {
            "state": state,
            "busy": self.jobs.busy,
            "model": f"dcoder server {self.settings.server}" if self.settings.server
            else loaded.engine.description if loaded else self.settings.model,
            "provider": loaded.provider if loaded else self.settings.provider,
            "message": failure,
        })

    def lsp_range(self, doc: Document, start: int, end: int) -> types.Range:
        (l0, c0), (l1, c1) = doc.lines.position(start, self.encoding), doc.lines.position(end, self.encoding)
        return types.Range(types.Position(l0, c0), types.Position(l1, c1))

    def workspace_edit(self, doc: Document, edits: tuple[Edit, ...]) -> types.WorkspaceEdit:
        """The edits, pinned to the document version they were computed for."""
        text_edits = [types.TextEdit(self.lsp_range(doc, e.start, e.end), e.text) for e in edits]
        if get_capability(self.client_capabilities, "workspace.workspace_edit.document_changes", False):
            versioned = types.OptionalVersionedTextDocumentIdentifier(doc.uri, doc.version)
            return types.WorkspaceEdit(document_changes=[types.TextDocumentEdit(versioned, text_edits)])
        return types.WorkspaceEdit(changes={doc.uri: text_edits})

    # ---- running the model -----------------------------------------------------------------

    async def infer(self, job: Job, doc: Document, work: Callable, preview: bool, progress: str | None = None):
        """``work(engine, settings, on_step, cancelled)`` on the inference thread; None if stopped before it ran."""
        loop = self._loop = asyncio.get_running_loop()
        settings = self.settings
        running = [True]  # cleared on the event loop when the request ends: later steps are not sent

        def send(report: Callable, *args) -> None:
            if running[0]:
                report(*args)

        def on_step(step: operations.Step) -> bool:
            if preview:
                spans = [{"range": self.lsp_range(doc, a, b), "text": t} for (a, b), t in zip(step.ranges, step.previews)]
                loop.call_soon_threadsafe(send, self.protocol.notify, PREVIEW, {
                    "uri": doc.uri, "version": doc.version, "step": step.step, "done": False, "spans": spans})
            if progress is not None:
                # only the steps schedule knows its length in advance
                scheduled = settings.threshold is None and settings.policy == "confidence"
                done = min(99, 100 * step.step // settings.steps) if scheduled else None
                loop.call_soon_threadsafe(send, self.work_done_progress.report, progress, types.WorkDoneProgressReport(
                    message=f"step {step.step}, {step.masked_left} tokens left", percentage=done))
            return job.cancelled

        def run():
            if job.cancelled:
                return None
            if settings.server is not None:
                engine = RemoteEngine(settings.server, settings.server_token or os.environ.get("DCODER_TOKEN"))
            else:
                engine = self.loader.engine(settings.model, settings.provider)
            job.on_cancel = getattr(getattr(engine, "backend", None), "interrupt", None)  # ends a long forward pass at once
            try:
                return None if job.cancelled else work(engine, settings, on_step, lambda: job.cancelled)
            except Interrupted:
                return None
            finally:
                job.on_cancel = None

        self.send_status()
        try:
            return await loop.run_in_executor(self.inference, run)
        except asyncio.CancelledError:
            job.cancel(CANCELLED)
            raise
        finally:
            running[0] = False
            self.jobs.finish(job)
            if preview:
                self.protocol.notify(PREVIEW, {"uri": doc.uri, "version": doc.version, "done": True,
                                               "cancelled": job.cancelled, "spans": []})
            self.send_status()

    def failure(self, exc: Exception) -> JsonRpcException:
        """The error response for an exception: a clear message, never a traceback."""
        if isinstance(exc, JsonRpcException):
            return exc
        if isinstance(exc, (DcoderError, ModelUnavailable)):
            return RequestFailed(str(exc))
        log.exception("internal error")
        message = f"internal error: {exc.__class__.__name__}: {exc}"
        self.report("error", message)
        return RequestFailed(message)

    async def complete(self, uri: str, position: types.Position) -> tuple[types.Position, str] | None:
        """Ghost text at ``position`` and where it goes; None when there is nothing to offer."""
        doc = self.documents.get(uri)
        if doc is None:
            return None
        try:
            offset = doc.lines.offset(position.line, position.character, self.encoding)
        except PositionError:
            return None
        job = self.jobs.start(uri, "complete", self.protocol.msg_id)
        try:
            workspace = self.index
            text = await self.infer(job, doc, lambda engine, settings, on_step, cancelled: operations.complete(
                engine, doc, offset, settings, on_step, cancelled, workspace), preview=self.settings.inline_preview)
        except (DcoderError, ModelUnavailable) as exc:
            self.window_log_message(types.LogMessageParams(types.MessageType.Info, f"dcoder: no completion: {exc}"))
            return None
        except Exception as exc:
            self.failure(exc)
            return None
        if not text or job.cancelled or self.documents.version(uri) != doc.version:
            return None  # stopped, empty, or computed for a version the editor no longer shows
        line, character = doc.lines.position(offset, self.encoding)
        return types.Position(line, character), text

    async def perform(self, op: actions.Operation, progress: bool) -> tuple[Document, tuple[Edit, ...]]:
        """Run a refine/fill operation; raises the JSON-RPC error to answer when it cannot finish."""
        doc = self.documents.get(op.uri)
        if doc is None:
            raise JsonRpcInvalidParams(f"unknown document {op.uri}")
        if doc.version != op.version:
            raise JsonRpcContentModified("the document changed since this action was offered")
        if (mismatch := op.mismatch(doc)) is not None:
            raise JsonRpcInvalidParams(mismatch)
        job = self.jobs.start(op.uri, "edit", self.protocol.msg_id)
        token = await self._begin_progress(op.title, job) if progress else None
        workspace = self.index
        try:
            outcome = await self.infer(job, doc, lambda engine, settings, on_step, cancelled: _run(
                op, engine, doc, settings, on_step, cancelled, workspace), preview=self.settings.preview, progress=token)
        finally:
            if token is not None:
                self.work_done_progress.end(token, types.WorkDoneProgressEnd(message="stopped" if job.cancelled else "done"))
                self.work_done_progress.tokens.pop(token, None)
        if job.cancelled or outcome is None or outcome.cancelled:
            raise {SUPERSEDED: ServerCancelled(), MODIFIED: JsonRpcContentModified("the document changed meanwhile")}.get(
                job.reason, JsonRpcRequestCancelled("cancelled"))
        if self.documents.version(op.uri) != doc.version:
            raise JsonRpcContentModified("the document changed meanwhile")
        if outcome.timed_out:
            self.window_log_message(types.LogMessageParams(types.MessageType.Warning, f"dcoder: {op.title}: stopped at "
                                                           f"the deadline ({self.settings.deadline:g} s): the best fill found by then"))
        if outcome.parses is False:
            self.window_log_message(types.LogMessageParams(
                types.MessageType.Warning, f"dcoder: {op.title}: no fill found that parses; review the result"))
        return doc, outcome.edits

    async def _begin_progress(self, title: str, job: Job) -> str | None:
        if not get_capability(self.client_capabilities, "window.work_done_progress", False):
            return None
        token = f"dcoder-{uuid.uuid4()}"
        try:
            await self.work_done_progress.create_async(token)
        except Exception as exc:  # the client refused the progress bar: run without one
            log.warning("work done progress refused: %s", exc)
            return None
        self.work_done_progress.tokens[token].add_done_callback(lambda f: f.cancelled() and job.cancel(CANCELLED))
        self.work_done_progress.begin(token, types.WorkDoneProgressBegin(title=f"dcoder: {title}", cancellable=True, percentage=0))
        return token

    async def execute(self, op: actions.Operation) -> dict:
        """A command: run the operation, then ask the client to apply the edit."""
        doc, edits = await self.perform(op, progress=True)
        if not edits:
            return {"applied": False, "reason": "nothing to change"}
        result = await self.workspace_apply_edit_async(types.ApplyWorkspaceEditParams(
            edit=self.workspace_edit(doc, edits), label=f"dcoder: {op.title}"))
        return {"applied": bool(result.applied), "reason": result.failure_reason}


def _run(op: actions.Operation, engine, doc: Document, settings: Settings, on_step, cancelled,
         workspace: WorkspaceIndex | None) -> operations.Outcome:
    if op.op in (actions.REFINE, actions.REFINE_CONFIDENT):
        (start, end), = op.ranges
        return operations.refine(engine, doc, start, end, settings, op.op == actions.REFINE_CONFIDENT, on_step,
                                 cancelled, workspace)
    return operations.fill(engine, doc, list(op.ranges), settings, on_step, cancelled, workspace)


# ---- handlers --------------------------------------------------------------------------------

def initialize(ls: DcoderServer, params: types.InitializeParams) -> None:
    encoding = ServerCapabilitiesBuilder.choose_position_encoding(params.capabilities)
    ls.encoding = getattr(encoding, "value", encoding)
    ls.settings, ls.problems = ls.settings.updated(params.initialization_options)
    ls.root = _root(params)


def _root(params: types.InitializeParams) -> Path | None:
    """The workspace folder: the first of the workspace folders, else the root URI or path."""
    uris = [f.uri for f in params.workspace_folders or ()] + [params.root_uri]
    for uri in uris:
        if uri and uri.startswith("file:"):
            return Path(to_fs_path(uri))
    return Path(params.root_path) if params.root_path else None


def initialized(ls: DcoderServer, params: types.InitializedParams) -> None:
    for problem in ls.problems:
        ls.report("warning", problem)
    ls.send_status()
    ls.index_workspace()


def shutdown(ls: DcoderServer, params) -> None:
    ls.jobs.cancel_all()
    if ls.owns_inference:
        ls.inference.shutdown(wait=False, cancel_futures=True)


def did_open(ls: DcoderServer, params: types.DidOpenTextDocumentParams) -> None:
    d = params.text_document
    ls.stage(ls.documents.open(d.uri, d.language_id, d.version, d.text))


def did_change(ls: DcoderServer, params: types.DidChangeTextDocumentParams) -> None:
    d = params.text_document
    ls.jobs.document_changed(d.uri)
    try:
        ls.stage(ls.documents.change(d.uri, d.version, params.content_changes, ls.encoding))
    except PositionError as exc:
        ls.report("warning", f"ignored a change to {d.uri}: {exc}")


def did_save(ls: DcoderServer, params: types.DidSaveTextDocumentParams) -> None:
    ls.stage(ls.documents.get(params.text_document.uri))


def did_close(ls: DcoderServer, params: types.DidCloseTextDocumentParams) -> None:
    ls.jobs.document_changed(params.text_document.uri)
    doc = ls.documents.get(params.text_document.uri)
    ls.documents.close(params.text_document.uri)
    if doc is not None and doc.path is not None and ls.index is not None:
        ls.index.restage(doc.path)  # unsaved edits are gone with the buffer: the file on disk counts again


async def did_change_configuration(ls: DcoderServer, params: types.DidChangeConfigurationParams) -> None:
    raw = params.settings
    if not (isinstance(raw, dict) and raw) and get_capability(ls.client_capabilities, "workspace.configuration", False):
        raw = (await ls.workspace_configuration_async(
            types.ConfigurationParams(items=[types.ConfigurationItem(section="dcoder")])))[0]
    ls.settings, problems = ls.settings.updated(raw)
    for problem in problems:
        ls.report("warning", problem)
    ls.send_status()
    ls.index_workspace()


async def inline_completion(ls: DcoderServer, params: types.InlineCompletionParams) -> types.InlineCompletionList:
    found = await ls.complete(params.text_document.uri, params.position)
    if found is None:
        return types.InlineCompletionList(items=[])
    at, text = found
    return types.InlineCompletionList(items=[types.InlineCompletionItem(insert_text=text, range=types.Range(at, at))])


async def completion(ls: DcoderServer, params: types.CompletionParams) -> types.CompletionList:
    found = await ls.complete(params.text_document.uri, params.position)
    if found is None:
        return types.CompletionList(is_incomplete=True, items=[])
    at, text = found
    label = next(line.strip() for line in text.splitlines() if line.strip())
    item = types.CompletionItem(
        label=label if len(label) <= 60 else label[:59] + "…",
        kind=types.CompletionItemKind.Snippet,
        detail="dcoder",
        documentation=types.MarkupContent(kind=types.MarkupKind.PlainText, value=text),
        text_edit=types.TextEdit(types.Range(at, at), text),
        insert_text_format=types.InsertTextFormat.PlainText,
        sort_text="0",
    )
    return types.CompletionList(is_incomplete=True, items=[item])


def code_action(ls: DcoderServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    doc = ls.documents.get(params.text_document.uri)
    if doc is None:
        return []
    r = params.range
    try:
        start = doc.lines.offset(r.start.line, r.start.character, ls.encoding)
        end = doc.lines.offset(r.end.line, r.end.character, ls.encoding)
        ops = actions.offer(doc, min(start, end), max(start, end), params.context.only)
    except PositionError:
        return []
    except Exception as exc:
        raise ls.failure(exc) from None
    return [types.CodeAction(title=op.title, kind=op.kind, data=op.to_data()) for op in ops]


async def code_action_resolve(ls: DcoderServer, action: types.CodeAction) -> types.CodeAction:
    try:
        op = actions.Operation.from_data(action.data)
    except ValueError as exc:
        raise JsonRpcInvalidParams(str(exc)) from None
    try:
        doc, edits = await ls.perform(op, progress=False)
    except Exception as exc:
        raise ls.failure(exc) from None
    if not edits:
        ls.report("info", f"{op.title}: nothing to change")
    action.edit = ls.workspace_edit(doc, edits)
    return action


def _argument(args: tuple, *required: str) -> dict:
    if len(args) != 1 or not isinstance(args[0], dict) or any(k not in args[0] for k in required):
        raise JsonRpcInvalidParams(f"expected one argument object with {', '.join(required)}")
    return args[0]


def _command_document(ls: DcoderServer, arg: dict) -> Document:
    doc = ls.documents.get(arg["uri"]) if isinstance(arg["uri"], str) else None
    if doc is None:
        raise JsonRpcInvalidParams(f"unknown document {arg['uri']!r}")
    if arg.get("version") is not None and arg["version"] != doc.version:
        raise JsonRpcContentModified("the document changed")
    return doc


def _offset(ls: DcoderServer, doc: Document, raw) -> int:
    try:
        pos = _CONVERTER.structure(raw, types.Position)
        return doc.lines.offset(pos.line, pos.character, ls.encoding)
    except PositionError as exc:
        raise JsonRpcInvalidParams(str(exc)) from None
    except Exception:
        raise JsonRpcInvalidParams(f"not a position: {raw!r}") from None


async def refine_command(ls: DcoderServer, *args):
    """Arguments: {uri, range, keepConfident?, version?}."""
    try:
        arg = _argument(args, "uri", "range")
        doc = _command_document(ls, arg)
        rng = arg["range"] if isinstance(arg["range"], dict) else {}
        start, end = _offset(ls, doc, rng.get("start")), _offset(ls, doc, rng.get("end"))
        ops = actions.refine_operations(doc, min(start, end), max(start, end))
        if not ops:
            raise JsonRpcInvalidParams("the selection is empty")
        return await ls.execute(ops[1] if arg.get("keepConfident") else ops[0])
    except Exception as exc:
        raise ls.failure(exc) from None


async def fill_region_command(ls: DcoderServer, *args):
    """Arguments: {uri, position, region?, version?}; without region, the innermost one."""
    try:
        arg = _argument(args, "uri", "position")
        doc = _command_document(ls, arg)
        ops = actions.region_operations(doc, _offset(ls, doc, arg["position"]), arg.get("region"))
        if not ops:
            raise JsonRpcInvalidParams("no syntax region there" + (f" named {arg['region']!r}" if arg.get("region") else ""))
        return await ls.execute(ops[0])
    except Exception as exc:
        raise ls.failure(exc) from None


async def fill_holes_command(ls: DcoderServer, *args):
    """Arguments: {uri, version?}."""
    try:
        doc = _command_document(ls, _argument(args, "uri"))
        op = actions.holes_operation(doc)
        if op is None:
            raise JsonRpcInvalidParams("the document has no <|mask|> hole")
        return await ls.execute(op)
    except Exception as exc:
        raise ls.failure(exc) from None


def create_server(inference: ThreadPoolExecutor | None = None) -> DcoderServer:
    ls = DcoderServer(inference)
    ls.feature(types.INITIALIZE)(initialize)
    ls.feature(types.INITIALIZED)(initialized)
    ls.feature(types.SHUTDOWN)(shutdown)
    ls.feature(types.TEXT_DOCUMENT_DID_OPEN)(did_open)
    ls.feature(types.TEXT_DOCUMENT_DID_CHANGE)(did_change)
    ls.feature(types.TEXT_DOCUMENT_DID_CLOSE)(did_close)
    ls.feature(types.TEXT_DOCUMENT_DID_SAVE)(did_save)
    ls.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)(did_change_configuration)
    ls.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())(inline_completion)
    ls.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions())(completion)
    ls.feature(types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionOptions(
        code_action_kinds=sorted(set(actions.KINDS.values())), resolve_provider=True))(code_action)
    ls.feature(types.CODE_ACTION_RESOLVE)(code_action_resolve)
    ls.command(actions.REFINE_COMMAND)(refine_command)
    ls.command(actions.FILL_REGION_COMMAND)(fill_region_command)
    ls.command(actions.FILL_HOLES_COMMAND)(fill_holes_command)
    return ls


def serve(tcp: tuple[str, int] | None = None) -> int:
    """Serve until ``exit`` (stdio; returns the exit code) or until interrupted (TCP)."""
    log_one_line_per_record()
    if tcp is None:
        return serve_stdio(create_server())
    inference = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dcoder-inference")
    serve_tcp(lambda: create_server(inference), lambda ls: ls.jobs.cancel_all(), *tcp)
    return 0
