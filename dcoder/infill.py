"""The engine's façade: fill or rewrite character ranges of a document, get edits back."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from dcoder import syntax
from dcoder.config import InfillOptions
from dcoder.engine.engine import Engine
from dcoder.engine.sampler import GrownResult, Lengths, StepState, denoise, denoise_lengths
from dcoder.engine.spans import Layout, Span, build_layout, default_budget, fix_length, preview_text, variant_length
from dcoder.errors import DcoderError
from dcoder.syntax.validity import choose

@dataclass(frozen=True)
class Edit:
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Progress:
    """Passed to the per-step callback: each span's partially resolved text."""

    step: int
    forward_passes: int
    previews: tuple[str, ...]
    ranges: tuple[tuple[int, int], ...]
    masked_left: int


@dataclass(frozen=True)
class InfillResult:
    text: str
    edits: tuple[Edit, ...]
    forward_passes: int
    steps: int
    cancelled: bool
    score: float  # mean log-probability of the generated tokens
    generated_tokens: int
    parses: bool | None = None  # the fill adds no parse error; None: not checked (no language given)
    repairs: int = 0  # re-mask rounds spent on a fill that broke the parse
    searched: bool = False  # the constrained search for a short fill that parses ran
    timed_out: bool = False  # the deadline cut the repair rounds or the search short


OnProgress = Callable[[Progress], bool | None]
CANCELLED, DEADLINE = "cancelled", "deadline"


class DeadlinePassed(DcoderError):
    """The deadline came before the first denoising pass finished: there is no fill to return."""


class Stop:
    """Whether a request must end: its caller cancelled it, or its deadline passed. Every long
    loop asks (denoising steps, candidate checks, repair rounds, the constrained search)."""

    def __init__(self, seconds: float, cancelled: Callable[[], bool] | None = None):
        self.deadline = time.monotonic() + seconds
        self.cancelled = cancelled
        self.reason: str | None = None  # CANCELLED or DEADLINE once stopped

    def cancel(self) -> None:
        self.reason = self.reason or CANCELLED

    def __call__(self) -> bool:
        if self.reason is None:
            if self.cancelled is not None and self.cancelled():
                self.reason = CANCELLED
            elif time.monotonic() >= self.deadline:
                self.reason = DEADLINE
        return self.reason is not None


def apply_edits(text: str, edits: tuple[Edit, ...] | list[Edit]) -> str:
    out, pos = [], 0
    for e in sorted(edits, key=lambda e: e.start):
        out.append(text[pos:e.start])
        out.append(e.text)
        pos = e.end
    out.append(text[pos:])
    return "".join(out)


def _max_len(engine: Engine, options: InfillOptions) -> int:
    return min(engine.max_context, options.max_context or engine.max_context)


def _layout(engine: Engine, text: str, spans: list[Span], options: InfillOptions) -> Layout:
    return build_layout(text, spans, engine.tokenizer, engine.tokens, _max_len(engine, options), engine.lead)


def length_mode(engine: Engine, options: InfillOptions) -> str:
    """``pad`` or ``expand``: how this checkpoint decides span lengths under ``options.lengths``."""
    mode = options.lengths.mode
    if mode == "auto":
        return "expand" if engine.tokens.can_grow else "pad"
    if mode == "expand" and not engine.tokens.can_grow:
        raise DcoderError("--length expand needs a model whose tokenizer has <|expand|> and <|delete|>; "
                          "this one ends spans with padding only (--length pad)")
    return mode


def _lengths(engine: Engine, options: InfillOptions) -> Lengths | None:
    """What the sampler needs to let spans change length; None for pad-ending."""
    if length_mode(engine, options) == "pad":
        return None
    t = engine.tokens
    return Lengths(expand=t.expand, delete=t.delete, pad=t.span_pad, ends=t.stripped,
                   max_span=options.lengths.max_span, max_len=_max_len(engine, options))


def _budget(engine: Engine, text: str, start: int, end: int, options: InfillOptions, kind: str | None = None) -> int:
    if options.exact_length is not None:
        return options.exact_length
    if options.max_tokens is not None:
        return options.max_tokens
    return default_budget(text, start, end, engine.tokenizer, kind)


def _kinds(doc: syntax.Document | None, ranges: list[tuple[int, int]], options: InfillOptions) -> list[str | None]:
    """The syntax region each range is exactly, if any (it sets the budget)."""
    sized = options.max_tokens is not None or options.exact_length is not None
    return [doc.kind_of(a, b) if doc is not None and not sized else None for a, b in ranges]


def _parsed(text: str, options: InfillOptions, doc: syntax.Document | None) -> syntax.Document | None:
    """The request's one parse of ``text``: the caller's, or made here."""
    if doc is not None:
        if doc.text != text:
            raise ValueError("the parsed document is not of the text to fill")
        return doc
    return syntax.parse(text, options.language) if options.language is not None else None


def _step_callback(engine: Engine, layout: Layout, on_progress: OnProgress | None, stop: Stop):
    """The sampler's per-step callback: progress reports, and the end of the run when ``stop`` says
    so (``on_progress`` returning True cancels)."""
    ranges = tuple((s.start, s.end) for s in layout.spans)

    def on_step(state: StepState) -> bool:
        if on_progress is not None:
            row = state.ids[0]
            slots = state.slots or layout.slots
            previews = tuple(preview_text(row, slot, engine.tokenizer, engine.tokens) for slot in slots)
            if on_progress(Progress(state.step, state.forward_passes, previews, ranges, int(state.masked[0].sum()))):
                stop.cancel()
        return stop()

    return on_step


def _candidates(engine: Engine, layout: Layout, ids: np.ndarray, options: InfillOptions):
    """The first pass's batch and which rows have fixed lengths.

    Row 0 lets the model choose each span's length (it may end a span with padding early);
    rows 1.. give every fully masked span a fixed length (``variant_length``), so even greedy
    decoding yields different candidates for the validity search to choose from.
    """
    batch = np.repeat(ids[None], options.candidates, axis=0)
    fixed = np.zeros(len(batch), dtype=bool)
    whole = [(a, b) for a, b in layout.slots if (ids[a:b] == engine.tokens.mask).all()]
    if options.exact_length is None and whole:
        for r in range(1, len(batch)):
            for a, b in whole:
                batch[r] = fix_length(batch[r], (a, b), variant_length(b - a, r), engine.tokens)
            fixed[r] = True
    return batch, fixed


def _denoise(engine: Engine, rows: np.ndarray, rows_fixed: np.ndarray, slots: tuple[tuple[int, int], ...],
             options: InfillOptions, lengths: Lengths | None, on_step) -> GrownResult:
    """Denoise a batch: pad-ending when ``lengths`` is None or every row's length is fixed, else
    with spans that change length (the result may then have wider slots)."""
    # a row of fixed length may not end early: padding and end-of-text are not drawn there
    if options.exact_length is not None:
        rows_fixed = np.ones(len(rows), dtype=bool)
    if len(rows) > 1 and options.sampler.deterministic and (rows == rows[0]).all() and (rows_fixed == rows_fixed[0]).all():
        # a repair round's identical rows would all come back the same: denoise one
        one = _denoise(engine, rows[:1], rows_fixed[:1], slots, options, lengths, on_step)
        n = len(rows)
        return GrownResult(replace(one.sample, ids=np.repeat(one.sample.ids, n, 0),
                                   logprobs=np.repeat(one.sample.logprobs, n, 0)),
                           one.slots, np.repeat(one.generated, n, 0))
    if lengths is None or rows_fixed.all():
        result = denoise(rows, engine.backend, options.sampler, engine.tokens.mask, on_step,
                         tuple(engine.tokens.stripped), rows_fixed, engine.tokens.structural)
        return GrownResult(result, slots, rows == engine.tokens.mask)
    return denoise_lengths(rows, slots, engine.backend, options.sampler, engine.tokens.mask, lengths, on_step, rows_fixed)


def _run(engine: Engine, text: str, doc: syntax.Document | None, layout: Layout, ids: np.ndarray,
         options: InfillOptions, on_progress: OnProgress | None, stop: Stop, extra_passes: int = 0) -> InfillResult:
    batch, fixed = _candidates(engine, layout, ids, options)
    lengths = _lengths(engine, options)
    first = _denoise(engine, batch, fixed, layout.slots, options, lengths,
                     _step_callback(engine, layout, on_progress, stop))
    if first.sample.cancelled and stop.reason == DEADLINE:
        raise DeadlinePassed(f"no fill within the deadline of {options.deadline:g} s: the model had not "
                             "finished denoising (a longer deadline or fewer steps help)")
    if first.slots != layout.slots:  # a span outgrew its slot: the rows were laid out anew
        layout = Layout(first.sample.ids[0], layout.spans, first.slots)
    # repair rounds keep this layout: their spans change length within their slots
    within = None if lengths is None else replace(lengths, max_span=0, max_len=first.sample.ids.shape[1])
    on_step = _step_callback(engine, layout, on_progress, stop)

    def resample(rows: np.ndarray, rows_fixed: np.ndarray):
        return _denoise(engine, rows, rows_fixed, layout.slots, options, within, on_step).sample

    result, generated = first.sample, first.generated
    pick = choose(engine, text, doc, layout, result, generated, options.language, options.candidates,
                  options.repair_rounds, resample, 0 if options.exact_length is not None else options.search_tokens,
                  stop, lambda: stop.reason == CANCELLED)
    edits = tuple(Edit(span.start, span.end, fill) for span, fill in zip(layout.spans, pick.fills))
    return InfillResult(
        text=apply_edits(text, edits),
        edits=edits,
        forward_passes=result.forward_passes + pick.forward_passes + extra_passes,
        steps=result.steps + pick.steps,
        cancelled=stop.reason == CANCELLED,
        score=pick.score,
        generated_tokens=int(generated[0].sum()),
        parses=pick.parses,
        repairs=pick.repairs,
        searched=pick.searched,
        timed_out=stop.reason == DEADLINE,
    )


def infill(engine: Engine, text: str, ranges: list[tuple[int, int]], options: InfillOptions | None = None,
           on_progress: OnProgress | None = None, cancelled: Callable[[], bool] | None = None,
           doc: syntax.Document | None = None) -> InfillResult:
    """Replace each character range [start, end) of ``text`` with generated code, all in one run.

    ``cancelled`` is asked throughout the run; once it returns True the run ends soon after, with
    a result marked ``cancelled``. ``doc``: ``text`` already parsed in ``options.language``, when
    the caller has it (else it is parsed here, once)."""
    options = options or InfillOptions()
    stop = Stop(options.deadline, cancelled)
    if not ranges:
        raise DcoderError("nothing to fill: no range, cursor or <|mask|> hole given")
    doc = _parsed(text, options, doc)
    kinds = _kinds(doc, ranges, options)
    spans = [Span(a, b, _budget(engine, text, a, b, options, kind)) for (a, b), kind in zip(ranges, kinds)]
    layout = _layout(engine, text, spans, options)
    return _run(engine, text, doc, layout, layout.ids, options, on_progress, stop)


def token_logprobs(engine: Engine, ids: np.ndarray, slot: tuple[int, int], groups: int = 4) -> np.ndarray:
    """Log-probability the model gives each token of ``slot`` when that token is hidden.

    Tokens are hidden in ``groups`` interleaved sets (one batch row each), so a token is scored
    with most of its neighbours visible, in a single batched forward pass.
    """
    a, b = slot
    n = b - a
    groups = max(1, min(groups, n))
    batch = np.repeat(ids[None], groups, axis=0)
    offsets = np.arange(n)
    for g in range(groups):
        batch[g, a + offsets[offsets % groups == g]] = engine.tokens.mask
    logp = np.asarray(engine.backend.predict(batch, a, b, 0), dtype=np.float32)
    rows = offsets % groups
    return logp[rows, offsets, ids[a:b]]


def refine(engine: Engine, text: str, span: tuple[int, int], options: InfillOptions | None = None,
           min_confidence: float | None = None, on_progress: OnProgress | None = None,
           cancelled: Callable[[], bool] | None = None, doc: syntax.Document | None = None) -> InfillResult:
    """Regenerate ``text[start:end]`` conditioned on everything else.

    With ``min_confidence``, only the tokens the model finds unlikely (probability below it)
    are re-masked and resolved again, so confident code is kept as it is.
    """
    options = options or InfillOptions()
    start, end = span
    if min_confidence is None:
        return infill(engine, text, [span], options, on_progress, cancelled, doc)
    if not 0 < min_confidence <= 1:
        raise DcoderError("--min-confidence must be in (0, 1]")
    stop = Stop(options.deadline, cancelled)
    original = tuple(engine.tokenizer.encode(text[start:end]))
    if not original:
        return infill(engine, text, [span], options, on_progress, cancelled, doc)
    layout = _layout(engine, text, [Span(start, end, len(original), fill=original)], options)
    slot = layout.slots[0]
    logp = token_logprobs(engine, layout.ids, slot)
    weak = np.exp(logp) < min_confidence
    if not weak.any():
        return InfillResult(text, (), 1, 0, False, float(logp.mean()), 0)
    ids = layout.ids.copy()
    ids[slot[0]:slot[1]][weak] = engine.tokens.mask
    return _run(engine, text, _parsed(text, options, doc), layout, ids, options, on_progress, stop, extra_passes=1)
