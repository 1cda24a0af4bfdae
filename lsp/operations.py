"""What the server asks of the engine, in document character offsets: complete at a cursor,
refine a selection, fill ranges. Runs on the inference thread; knows nothing of LSP messages."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from dcoder.engine.engine import Engine
from dcoder.engine.spans import find_holes
from dcoder.infill import Edit, Progress, infill
from dcoder.infill import InfillOptions
from dcoder.infill import refine as engine_refine
from dcoder.retrieval import WorkspaceIndex
from dcoder_lsp.completion import CONTEXT_CHARS, tidy
from dcoder_lsp.config import Settings
from dcoder_lsp.documents import Document, EngineText
from dcoder_lsp.remote import RemoteEngine

Runner = Engine | RemoteEngine  # a loaded model, or a dcoder server doing the runs


@dataclass(frozen=True)
class Step:
    """One denoising step, for previews and progress: each span's text so far and its range."""

    step: int
    previews: tuple[str, ...]
    ranges: tuple[tuple[int, int], ...]
    masked_left: int


OnStep = Callable[[Step], bool]  # returns True to stop the run
Cancelled = Callable[[], bool]  # asked between steps and throughout the syntax checks


@dataclass(frozen=True)
class Outcome:
    edits: tuple[Edit, ...]
    cancelled: bool
    parses: bool | None = None  # False: even the best fill breaks the parse; None: not checked
    timed_out: bool = False  # the deadline cut the search for a fill that parses short


def _progress(view: EngineText, on_step: OnStep):
    def forward(p: Progress) -> bool:
        ranges = tuple((view.to_document(a), view.to_document(b)) for a, b in p.ranges)
        previews = tuple(view.restore_eol(t) for t in p.previews)
        return bool(on_step(Step(p.step, previews, ranges, p.masked_left)))

    return forward


def _infill(engine: Runner, text: str, ranges: list[tuple[int, int]], options, on_progress, cancelled: Cancelled):
    if isinstance(engine, RemoteEngine):  # a remote run stops when on_progress says so
        return engine.infill(text, ranges, options, on_progress)
    return infill(engine, text, ranges, options, on_progress, cancelled)


def _with_context(options: InfillOptions, workspace: WorkspaceIndex | None, doc: Document,
                  span: tuple[int, int]) -> InfillOptions:
    """``options`` with the workspace's code most like the lines around ``span`` (engine offsets)."""
    if workspace is None:
        return options
    found = workspace.search(doc.engine.text, *span, skip=doc.path)
    return replace(options, snippets=tuple(found)) if found else options


def _document_edits(view: EngineText, original: str, edits: tuple[Edit, ...]) -> tuple[Edit, ...]:
    out = []
    for e in edits:
        start, end = view.to_document(e.start), view.to_document(e.end)
        text = view.restore_eol(e.text)
        if original[start:end] != text:
            out.append(Edit(start, end, text))
    return tuple(out)


BLOCK_REGIONS = frozenset({"block", "statement", "function.inner", "function.outer", "class.inner", "class.outer"})


def single_line(doc: Document, at: int) -> bool:
    """Whether to complete only the cursor's line (else a block): when code follows the cursor
    on its line, or when the cursor is in a one-line expression (arguments, condition, ...)."""
    text = doc.engine.text
    end = text.find("\n", at)
    if text[at:end if end >= 0 else len(text)].strip():
        return True
    tree = doc.syntax
    inner = next(iter(tree.regions_at(at)), None) if tree is not None else None
    return inner is not None and inner.name not in BLOCK_REGIONS and "\n" not in text[inner.start:inner.end]


def complete(engine: Runner, doc: Document, offset: int, settings: Settings, on_step: OnStep,
             cancelled: Cancelled, workspace: WorkspaceIndex | None = None) -> str | None:
    """Ghost text to insert at ``offset``; None when the run was stopped, '' when nothing fits.
    ``workspace``: the index of the workspace's files, for similar code in the model's context."""
    view = doc.engine
    text, at = view.text, view.to_engine(offset)
    options = _with_context(settings.options(doc.grammar, inline=True), workspace, doc, (at, at))
    result = _infill(engine, text, [(at, at)], options, _progress(view, on_step), cancelled)
    if result.cancelled:
        return None
    before = text[max(0, at - CONTEXT_CHARS):at]
    after = text[at:at + CONTEXT_CHARS]
    return view.restore_eol(tidy(result.edits[0].text, before, after, single_line(doc, at)))


def refine(engine: Runner, doc: Document, start: int, end: int, settings: Settings, keep_confident: bool,
           on_step: OnStep, cancelled: Cancelled, workspace: WorkspaceIndex | None = None) -> Outcome:
    """Regenerate ``doc.text[start:end]``; with ``keep_confident``, only its unlikely tokens."""
    view = doc.engine
    span = (view.to_engine(start), view.to_engine(end))
    min_confidence = settings.min_confidence if keep_confident else None
    options, progress = _with_context(settings.options(doc.grammar), workspace, doc, span), _progress(view, on_step)
    if isinstance(engine, RemoteEngine):
        result = engine.refine(view.text, span, options, min_confidence, progress)
    else:
        result = engine_refine(engine, view.text, span, options, min_confidence, progress, cancelled)
    return Outcome(_document_edits(view, doc.text, result.edits), result.cancelled, result.parses, result.timed_out)


def fill(engine: Runner, doc: Document, ranges: list[tuple[int, int]], settings: Settings, on_step: OnStep,
         cancelled: Cancelled, workspace: WorkspaceIndex | None = None) -> Outcome:
    """Replace every range with generated code, all in one run."""
    view = doc.engine
    spans = [(view.to_engine(a), view.to_engine(b)) for a, b in ranges]
    options = _with_context(settings.options(doc.grammar), workspace, doc, spans[0])
    result = _infill(engine, view.text, spans, options, _progress(view, on_step), cancelled)
    return Outcome(_document_edits(view, doc.text, result.edits), result.cancelled, result.parses, result.timed_out)


def holes(doc: Document) -> list[tuple[int, int]]:
    """Document offsets of every ``<|mask|>`` marker."""
    view = doc.engine
    return [(view.to_document(a), view.to_document(b)) for a, b in find_holes(view.text)]
