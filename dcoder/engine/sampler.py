"""The denoising loop: plain functions over numpy arrays, with the model passed in as a backend.

A backend is any object with ``predict(ids, lo, hi, step, cols) -> logprobs``: given the
current token ids (B, T) it returns float log-probabilities (B, len(cols), V) whose row j is
the prediction for position ``lo + cols[j]`` (all of lo..hi-1 when ``cols`` is None; the
logit-shift convention is the backend's business, see ``shifted_window``). The sampler asks
only for the columns that still hold a mask, so a backend can skip the rest. ``step`` counts
forward passes of this run from 0, so a caching backend knows when to (re)encode the context.
Positions outside [lo, hi) never change during a run.

``denoise_lengths`` lets spans change length (DreamOn's expand and delete tokens). There each
row is its own sequence, laid out anew whenever one of its spans grows or shrinks, and ``step``
counts the passes since the batch the backend gets last changed (its layout or its rows): after
a layout change it is 0 again, as at a new run, so a caching backend encodes the context anew.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from dcoder.config import VERIFY_ROWS, LearnedPolicy, SamplerConfig
from dcoder.errors import DcoderError


class Backend(Protocol):
    def predict(self, ids: np.ndarray, lo: int, hi: int, step: int, cols: np.ndarray | None = None) -> np.ndarray: ...


@dataclass(frozen=True)
class StepState:
    """What the per-step callback sees; ``ids`` is the partially resolved batch."""

    step: int
    ids: np.ndarray
    masked: np.ndarray
    revealed: np.ndarray
    forward_passes: int
    slots: tuple[tuple[int, int], ...] | None = None  # where each span is now, when spans change length


@dataclass(frozen=True)
class SampleResult:
    ids: np.ndarray
    logprobs: np.ndarray  # log-probability of each revealed token when it was chosen; 0 elsewhere
    forward_passes: int
    steps: int
    cancelled: bool


OnStep = Callable[[StepState], bool | None]
# Adjusts, in place, the (N, V) log-probabilities of N masked positions, given the batch
# (B, T) and each position's row and index in it (dcoder.engine.names.NameBias).
Bias = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], None]


def shifted_window(lo: int, hi: int, shift: bool) -> tuple[int, int]:
    """Which logit rows hold the predictions for positions lo..hi-1."""
    if not shift:
        return lo, hi
    if lo < 1:
        raise ValueError("a shifted model needs a token before the first masked position")
    return lo - 1, hi - 1


def log_softmax(logits: np.ndarray) -> np.ndarray:
    m = logits.max(axis=-1, keepdims=True)
    z = logits - m
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def filter_logits(logits: np.ndarray, top_k: int | None, top_p: float | None) -> np.ndarray:
    """Set to -inf every logit outside the top-k and outside the top-p nucleus."""
    out = logits
    if top_k is not None and top_k < out.shape[-1]:
        kth = np.partition(out, -top_k, axis=-1)[:, -top_k][:, None]
        out = np.where(out < kth, -np.inf, out)
    if top_p is not None and top_p < 1.0:
        order = np.argsort(-out, axis=-1)
        sorted_logits = np.take_along_axis(out, order, axis=-1)
        probs = np.exp(log_softmax(sorted_logits))
        # drop a token once the mass before it already reaches top_p (the top-1 always stays)
        drop_sorted = (np.cumsum(probs, axis=-1) - probs) >= top_p
        drop = np.zeros_like(drop_sorted)
        np.put_along_axis(drop, order, drop_sorted, axis=-1)
        out = np.where(drop, -np.inf, out)
    return out


def logsumexp(logits: np.ndarray) -> np.ndarray:
    """log(sum(exp(row))) of each row of (N, V) logits, with one temporary array."""
    m = logits.max(axis=-1, keepdims=True)
    z = np.subtract(logits, m, where=np.isfinite(m), out=np.full_like(logits, -np.inf))
    np.exp(z, out=z)
    return m[:, 0] + np.log(z.sum(axis=-1))


def drop_tokens(logp: np.ndarray, never: tuple[int, ...]) -> np.ndarray:
    """Log-probabilities (N, V), in place, renormalised over every token but ``never``."""
    never = list(never)
    kept = 1.0 - np.exp(logp[:, never]).sum(axis=-1)
    logp[:, never] = -np.inf
    # the cheap correction loses precision when nearly all the mass was on dropped tokens
    exact = kept < 1e-3
    logp -= np.log(np.where(exact, 1.0, kept))[:, None]
    if exact.any():
        logp[exact] -= logsumexp(logp[exact])[:, None]
    return logp


def choose_tokens(logp: np.ndarray, config: SamplerConfig, rng: np.random.Generator):
    """Sample a token per row of (N, V) log-probabilities; return tokens, rank scores, threshold
    scores, and the chosen tokens' log-probabilities.

    Greedy decoding reads everything off the normalised rows; only temperature, top-k/top-p
    and the entropy ranking pay for another exp over the vocabulary (this runs at every step).
    """
    logits = logp / config.temperature if config.temperature > 0 else logp
    logits = filter_logits(logits, config.top_k, config.top_p)
    reshaped = logits is not logp
    if config.temperature > 0:
        tokens = np.argmax(logits + rng.gumbel(size=logits.shape), axis=-1)
    else:
        tokens = np.argmax(logits, axis=-1)
    rows = np.arange(len(tokens))
    lse = logsumexp(logits) if reshaped else np.zeros(len(tokens), dtype=logits.dtype)
    tok_logp = logits[rows, tokens] - lse
    broken = np.isnan(tok_logp)
    if broken.any():
        # NaN scores (a broken model, an infinite temperature) win every argmax: pick among the rest
        clean = np.nan_to_num(logits[broken], nan=-np.inf)
        tokens[broken] = np.argmax(clean, axis=-1)
        tok_logp[broken] = clean[np.arange(len(clean)), tokens[broken]] - logsumexp(clean)
    p_tok = np.exp(tok_logp)
    if config.alg == "maskgit_plus":
        rank = gate = p_tok
    elif config.alg == "topk_margin":
        top2 = np.exp(np.partition(logits, -2, axis=-1)[:, -2:] - lse[:, None]) if logits.shape[-1] > 1 \
            else np.stack([p_tok * 0, p_tok], -1)
        rank = gate = top2[:, 1] - top2[:, 0]
    elif config.alg == "entropy":
        full = logits - lse[:, None] if reshaped else logits
        # sum p log p, with 0 * log 0 = 0: dropped tokens have p == 0 and a finite stand-in log
        neg_entropy = np.einsum("ij,ij->i", np.exp(full), np.maximum(full, np.finfo(full.dtype).min))
        rank, gate = neg_entropy, np.exp(neg_entropy)
    else:  # origin: reveal in random order; the threshold still reads the token's probability
        rank, gate = rng.random(len(tokens)), p_tok
    return tokens, rank.astype(np.float64), gate, tok_logp


def reveal_mask(win: np.ndarray, rank: np.ndarray, gate: np.ndarray, config: SamplerConfig, step: int) -> np.ndarray:
    """Which masked positions of the (B, W) window to reveal this step.

    ``rank`` and ``gate`` are -inf where ``win`` is False. With a threshold (``config.cut``): every
    position whose gate passes it, or the best-ranked one when none does. Otherwise the best-ranked
    ceil(remaining / steps left) positions, so the run ends after ``config.steps`` passes.
    """
    remaining = win.sum(axis=-1)
    if config.cut is not None:
        passing = win & (gate > config.cut)
        counts = np.where(passing.any(axis=-1), 0, np.minimum(remaining, 1))
    else:
        passing = np.zeros_like(win)
        counts = np.ceil(remaining / max(config.steps - step, 1)).astype(np.int64)
    # masked positions first whatever their rank (a NaN rank would sort after the rest), so every
    # row with a mask left reveals at least one and the run ends
    rank = np.where(np.isnan(rank), -np.inf, rank)
    order = np.lexsort((-rank, ~win), axis=-1)
    position_rank = np.empty_like(order)
    np.put_along_axis(position_rank, order, np.broadcast_to(np.arange(win.shape[1]), win.shape).copy(), axis=-1)
    return passing | (win & (position_rank < counts[:, None]))


def token_features(chosen: np.ndarray, win: np.ndarray, b_idx: np.ndarray, w_idx: np.ndarray) -> np.ndarray:
    """The learned policy's features (``dcoder.config.POLICY_FEATURES``) of each masked position
    (b_idx, w_idx) of the (B, W) window, from its normalised log-probabilities ``chosen`` (N, V)."""
    n, width = len(b_idx), win.shape[1]
    out = np.zeros((n, 7), dtype=np.float64)
    if n == 0:
        return out
    with np.errstate(all="ignore"):
        top2 = np.exp(np.partition(chosen, -2, axis=-1)[:, -2:]) if chosen.shape[-1] > 1 else np.zeros((n, 2))
        finite = np.maximum(chosen, np.finfo(chosen.dtype).min)
        neg_entropy = np.einsum("ij,ij->i", np.exp(chosen), finite)
    out[:, 0] = top2[:, 1]
    out[:, 1] = top2[:, 1] - top2[:, 0]
    out[:, 2] = np.exp(neg_entropy)
    out[:, 3] = w_idx / max(width - 1, 1)
    out[:, 4] = win.sum(axis=1)[b_idx] / width
    out[:, 5] = (w_idx == 0) | ~win[b_idx, np.maximum(w_idx - 1, 0)]
    out[:, 6] = (w_idx == width - 1) | ~win[b_idx, np.minimum(w_idx + 1, width - 1)]
    return np.nan_to_num(out, nan=0.0, posinf=1.0, neginf=0.0)


def learned_gate(policy: LearnedPolicy, features: np.ndarray) -> np.ndarray:
    """The policy's chance, per row of ``features``, that the position's greedy token is final."""
    z = (features - np.asarray(policy.mean)) / np.asarray(policy.scale)
    hidden = np.tanh(z @ np.asarray(policy.w1) + np.asarray(policy.b1))
    return 1.0 / (1.0 + np.exp(-(hidden @ np.asarray(policy.w2) + policy.b2)))


def reveal(win: np.ndarray, b_idx: np.ndarray, w_idx: np.ndarray, chosen: np.ndarray, config: SamplerConfig,
           rng: np.random.Generator, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(which masked positions (b_idx, w_idx) of the window this step reveals, their tokens, the
    tokens' log-probabilities), from the log-probabilities ``chosen`` at those positions."""
    with np.errstate(all="ignore"):  # non-finite scores are handled, not reported
        tokens, rank, gate, tok_logp = choose_tokens(chosen, config, rng)
        if config.policy == "learned":
            gate = learned_gate(config.learned, token_features(chosen, win, b_idx, w_idx))
    if config.alg_temp > 0:
        rank = rank / config.alg_temp + rng.gumbel(size=rank.shape)
    rank_grid = np.full(win.shape, -np.inf)
    rank_grid[b_idx, w_idx] = rank
    gate_grid = np.full(win.shape, -np.inf)
    gate_grid[b_idx, w_idx] = gate
    return reveal_mask(win, rank_grid, gate_grid, config, step)[b_idx, w_idx], tokens, tok_logp


def check_policy(config: SamplerConfig) -> None:
    if config.policy == "learned" and config.learned is None:
        raise DcoderError("policy learned needs a policy file (--policy-file; dcoder train-policy writes one)")


def denoise(
    ids: np.ndarray,
    backend: Backend,
    config: SamplerConfig,
    mask_id: int,
    on_step: OnStep | None = None,
    suppress: tuple[int, ...] = (),
    suppress_rows: np.ndarray | None = None,
    never: tuple[int, ...] = (),
    bias: Bias | None = None,
) -> SampleResult:
    """Resolve every ``mask_id`` in ``ids`` (B, T). ``on_step`` returning True stops the run.

    The ``suppress`` tokens are never chosen in the rows where ``suppress_rows`` (B,) is True
    (in every row when it is None); the mask token and the ``never`` tokens are never chosen anywhere.
    ``bias`` adjusts each step's log-probabilities before the tokens are chosen.
    """
    check_policy(config)
    x = np.array(ids, dtype=np.int64, copy=True)
    masked = x == mask_id
    logprobs = np.zeros(x.shape, dtype=np.float32)
    if not masked.any():
        return SampleResult(x, logprobs, 0, 0, False)
    cols = np.nonzero(masked.any(axis=0))[0]
    lo, hi = int(cols[0]), int(cols[-1]) + 1
    rng = np.random.default_rng(config.seed)
    if suppress_rows is None:
        suppress_rows = np.ones(len(x), dtype=bool)
    if config.policy == "verify":
        return _denoise_verified(x, (lo, hi), backend, config, mask_id, on_step, suppress, suppress_rows, never)
    step = 0
    cancelled = False
    while masked.any():
        win = masked[:, lo:hi]
        cols = np.nonzero(win.any(axis=0))[0]
        predicted = backend.predict(x, lo, hi, step, cols)
        b_idx, w_idx = np.nonzero(win)
        row_of = np.zeros(hi - lo, dtype=np.int64)
        row_of[cols] = np.arange(len(cols))
        with np.errstate(all="ignore"):  # non-finite scores are handled, not reported
            chosen = drop_tokens(np.array(predicted[b_idx, row_of[w_idx]], dtype=np.float32), (mask_id, *never))
            held = suppress_rows[b_idx]
            if suppress and held.any():
                chosen[held] = drop_tokens(chosen[held], suppress)
            if bias is not None:
                bias(x, b_idx, lo + w_idx, chosen)
        pick, tokens, tok_logp = reveal(win, b_idx, w_idx, chosen, config, rng, step)
        x[b_idx[pick], lo + w_idx[pick]] = tokens[pick]
        logprobs[b_idx[pick], lo + w_idx[pick]] = tok_logp[pick]
        revealed = np.zeros_like(masked)
        revealed[b_idx[pick], lo + w_idx[pick]] = True
        masked &= ~revealed
        step += 1
        if on_step is not None and on_step(StepState(step, x, masked.copy(), revealed, step)):
            cancelled = bool(masked.any())
            break
    return SampleResult(x, logprobs, step, step, cancelled)


def _scored(batch: np.ndarray, window: tuple[int, int], backend: Backend, config: SamplerConfig, mask_id: int,
            step: int, suppress: tuple[int, ...], suppress_rows: np.ndarray, never: tuple[int, ...]):
    """One forward pass over ``batch`` (none when it has no mask left): each row's greedy choices
    ranked as ``reveal_mask`` ranks them: per row, every masked position's (position, token,
    log-probability, gate), best first."""
    lo, hi = window
    win = batch[:, lo:hi] == mask_id
    if not win.any():  # every state is resolved: nothing to run
        return [[] for _ in batch]
    cols = np.nonzero(win.any(axis=0))[0]
    predicted = backend.predict(batch, lo, hi, step, cols)
    b_idx, w_idx = np.nonzero(win)
    row_of = np.zeros(hi - lo, dtype=np.int64)
    row_of[cols] = np.arange(len(cols))
    with np.errstate(all="ignore"):
        chosen = drop_tokens(np.array(predicted[b_idx, row_of[w_idx]], dtype=np.float32), (mask_id, *never))
        held = suppress_rows[b_idx]
        if suppress and held.any():
            chosen[held] = drop_tokens(chosen[held], suppress)
        tokens, rank, gate, tok_logp = choose_tokens(chosen, config, np.random.default_rng(0))
    rank = np.where(np.isnan(rank), -np.inf, rank)
    ranked = []
    for r in range(len(batch)):
        mine = np.nonzero(b_idx == r)[0]
        # best rank first; ties go to the leftmost position, as reveal_mask's stable sort does
        mine = mine[np.lexsort((w_idx[mine], -rank[mine]))]
        ranked.append([(lo + int(w_idx[i]), int(tokens[i]), float(tok_logp[i]), float(gate[i])) for i in mine])
    return ranked


def _denoise_verified(x: np.ndarray, window: tuple[int, int], backend: Backend, config: SamplerConfig, mask_id: int,
                      on_step: OnStep | None, suppress: tuple[int, ...], suppress_rows: np.ndarray,
                      never: tuple[int, ...]) -> SampleResult:
    """``denoise`` with policy ``verify``: exactly the tokens a greedy decode revealing one token per
    step would give, in fewer passes where the model agrees with itself.

    Each pass runs ``VERIFY_ROWS`` states per row: the current one with its next greedy token
    revealed, then with each of the next-ranked tokens (a draft; with a threshold, only those
    whose confidence passes it) revealed one more at a time. A drafted token is kept only if the
    state before it, run through the model, picks that very position and token next; the first
    state that picks otherwise is where the row continues, its prediction already at hand. The
    batch keeps one shape, so a caching backend encodes the context once.
    """
    k = VERIFY_ROWS
    logprobs = np.zeros(x.shape, dtype=np.float32)
    rows_suppressed = np.repeat(suppress_rows, k)
    heads = _scored(np.repeat(x, k, axis=0), window, backend, config, mask_id, 0, suppress, rows_suppressed,
                    never)[::k]
    passes = 1
    while (x == mask_id).any():
        batch = np.repeat(x, k, axis=0)
        drafts = []
        for r, ranked in enumerate(heads):
            draft = ranked[:1] + [c for c in ranked[1:k] if config.cut is None or c[3] > config.cut]
            drafts.append(draft)
            for j in range(k):
                for pos, tok, _, _ in draft[:j + 1]:
                    batch[r * k + j, pos] = tok
        ran = (batch == mask_id).any()
        checked = _scored(batch, window, backend, config, mask_id, passes, suppress, rows_suppressed, never)
        passes += int(ran)
        revealed = np.zeros(x.shape, dtype=bool)
        for r, draft in enumerate(drafts):
            if not draft:
                continue
            # state j holds draft[:j+1]; draft[j+1] is kept when state j picks it next, with the
            # log-probability state j gives it (the one the one-token-per-step decode records)
            kept = draft[:1]
            while len(kept) < len(draft) and checked[r * k + len(kept) - 1][:1] \
                    and checked[r * k + len(kept) - 1][0][:2] == draft[len(kept)][:2]:
                kept.append(checked[r * k + len(kept) - 1][0])
            for pos, tok, lp, _ in kept:
                x[r, pos], logprobs[r, pos], revealed[r, pos] = tok, lp, True
            heads[r] = checked[r * k + len(kept) - 1]
        if on_step is not None and on_step(StepState(passes - 1, x, x == mask_id, revealed, passes)):
            return SampleResult(x, logprobs, passes, passes - 1, bool((x == mask_id).any()))
    return SampleResult(x, logprobs, passes, passes - 1, False)


# ---- spans that change length ---------------------------------------------------------------

@dataclass(frozen=True)
class Lengths:
    """What ``denoise_lengths`` needs beyond ``denoise``: the checkpoint's tokens and the bounds."""

    expand: int
    delete: int
    pad: int  # fills the room a span leaves unused in the returned rows
    ends: frozenset[int]  # tokens that end a span (span padding, end-of-text): revealed, they act as delete
    max_span: int  # most tokens a span may grow to (a slot that starts larger never grows)
    max_len: int  # longest the returned rows may be: the model's context

    @property
    def removers(self) -> tuple[int, ...]:
        """Tokens that remove their position when revealed."""
        return tuple(sorted({self.delete, *self.ends}))


@dataclass(frozen=True)
class GrownResult:
    sample: SampleResult  # rows laid out with ``slots``
    slots: tuple[tuple[int, int], ...]  # each span's slot, as wide as its longest fill in any row (or as before)
    generated: np.ndarray  # (B, T) bool: the positions the run filled (not context, not unused room)


class _Row:
    """One row of a variable-length run: its tokens now, and where its spans are in them."""

    def __init__(self, ids: np.ndarray, slots, fixed: bool, lengths: Lengths, mask_id: int):
        keep = np.ones(len(ids), dtype=bool)
        if not fixed:  # padding in a slot is room, not text: a span that may change length leaves it out
            for a, b in slots:
                keep[a:b] = ~np.isin(ids[a:b], list(lengths.ends))
        before = np.concatenate([[0], np.cumsum(keep)])
        self.x = ids[keep].copy()
        self.lp = np.zeros(len(self.x), dtype=np.float32)
        self.gen = self.x == mask_id
        self.slots = [(int(before[a]), int(before[b])) for a, b in slots]
        self.fixed = fixed
        self.grown = [0] * len(slots)  # expansions so far, per span

    def layout(self) -> tuple:
        """Rows with the same layout share a forward pass. An expansion and a deletion in one span
        leave the layout as it was: the context, which a backend may have cached, did not move."""
        return len(self.x), tuple(self.slots)

    def slot_index(self) -> np.ndarray:
        """The span each position belongs to (-1 for context)."""
        out = np.full(len(self.x), -1, dtype=np.int64)
        for i, (a, b) in enumerate(self.slots):
            out[a:b] = i
        return out


def _settle(row: _Row, picked: np.ndarray, was_masked: np.ndarray, lengths: Lengths, mask_id: int,
            caps: list[int], widths: list[int], context: int) -> np.ndarray:
    """Apply the expand and delete tokens revealed in ``row`` this step; return which positions now
    hold newly revealed text. ``widths`` (each span's room in the returned rows, shared by every
    row) grows with the spans, within ``lengths.max_len``."""
    x = row.x
    stop = picked & np.isin(x, lengths.removers)
    grow = picked & (x == lengths.expand)
    counts = np.ones(len(x), dtype=np.int64)  # copies of each position after this step
    for i, (a, b) in enumerate(row.slots):
        if stop[a:b].any():
            # the span ends at its first delete: what was still masked after it goes too (a
            # training sample's surplus slots all come last), as DreamOn decodes
            first = a + int(np.argmax(stop[a:b]))
            counts[first:b][was_masked[first:b]] = 0
        length = int(counts[a:b].sum())
        for p in np.nonzero(grow[a:b] & (counts[a:b] > 0))[0] + a:
            widen = length + 1 > widths[i]
            if length + 1 <= caps[i] and row.grown[i] < caps[i] and (not widen or context + sum(widths) < lengths.max_len):
                counts[p] = 2
                length += 1
                row.grown[i] += 1
                widths[i] = max(widths[i], length)
            else:  # an expansion before it this step took the room or the budget: it stays masked
                x[p] = mask_id
                row.lp[p] = 0.0
                picked[p] = False
    revealed = picked & (counts == 1)
    if (counts == 1).all():
        return revealed
    x[counts == 2] = mask_id
    row.lp[counts == 2] = 0.0
    before = np.concatenate([[0], np.cumsum(counts)])
    row.x, row.lp, row.gen = np.repeat(x, counts), np.repeat(row.lp, counts), np.repeat(row.gen, counts)
    row.slots = [(int(before[a]), int(before[b])) for a, b in row.slots]
    return np.repeat(revealed, counts)


def denoise_lengths(
    ids: np.ndarray,
    slots: tuple[tuple[int, int], ...],
    backend: Backend,
    config: SamplerConfig,
    mask_id: int,
    lengths: Lengths,
    on_step: OnStep | None = None,
    fixed: np.ndarray | None = None,
    bias: Bias | None = None,
) -> GrownResult:
    """Resolve every ``mask_id`` in ``ids`` (B, T), the spans at ``slots`` free to change length.

    At each step a mask revealed as ``expand`` becomes two masks, one revealed as ``delete`` (or as
    a token that ends a span) is removed with every mask after it in its span. Padding in a slot
    is room the span may grow into, not part of it. ``bias`` is as for ``denoise``. Rows where ``fixed`` (B,) is True keep their
    layout: they never expand, delete nor end a span early, as in ``denoise``. Rows are batched
    while they have the same layout. A span grows to at most ``lengths.max_span`` tokens by at
    most as many expansions, and only while the returned rows stay within ``lengths.max_len``,
    so every step reveals or removes a mask or spends one of those expansions: the run ends.
    """
    check_policy(config)
    if config.policy == "verify":
        raise DcoderError("--policy verify checks fixed-length spans: use it with --length pad")
    ids = np.asarray(ids, dtype=np.int64)
    fixed = np.zeros(len(ids), dtype=bool) if fixed is None else fixed
    rows = [_Row(ids[r], slots, bool(fixed[r]), lengths, mask_id) for r in range(len(ids))]
    start = [b - a for a, b in slots]
    widths = list(start)  # each span's room in the returned rows: its slot, or its longest fill now
    context = ids.shape[1] - sum(widths)
    caps = [max(lengths.max_span, w) for w in start]
    rng = np.random.default_rng(config.seed)
    step = passes = 0
    cancelled = False
    last: dict[tuple, tuple] = {}  # layout -> (rows, window, passes since the layout changed)
    while any((row.x == mask_id).any() for row in rows):
        groups: dict[tuple, list[int]] = {}
        for r, row in enumerate(rows):
            if (row.x == mask_id).any():
                groups.setdefault(row.layout(), []).append(r)
        picks = {}
        current = {}
        for key, members in groups.items():
            batch = np.stack([rows[r].x for r in members])
            seen = last.get(key)
            if seen is None or seen[0] != members:  # a new batch: the backend starts over
                cols = np.nonzero((batch == mask_id).any(axis=0))[0]
                window, since = (int(cols[0]), int(cols[-1]) + 1), 0
            else:
                window, since = seen[1], seen[2] + 1
            current[key] = (members, window, since)
            lo, hi = window
            win = batch[:, lo:hi] == mask_id
            cols = np.nonzero(win.any(axis=0))[0]
            predicted = backend.predict(batch, lo, hi, since, cols)
            passes += 1
            b_idx, w_idx = np.nonzero(win)
            row_of = np.zeros(hi - lo, dtype=np.int64)
            row_of[cols] = np.arange(len(cols))
            chosen = drop_tokens(np.array(predicted[b_idx, row_of[w_idx]], dtype=np.float32), (mask_id,))
            may_grow, may_end = _permissions([rows[r] for r in members], b_idx, lo + w_idx, caps, widths,
                                             context, lengths)
            if not may_grow.all():
                chosen[~may_grow] = drop_tokens(chosen[~may_grow], (lengths.expand,))
            if not may_end.all():
                chosen[~may_end] = drop_tokens(chosen[~may_end], lengths.removers)
            if bias is not None:
                with np.errstate(all="ignore"):
                    bias(batch, b_idx, lo + w_idx, chosen)
            pick, tokens, tok_logp = reveal(win, b_idx, w_idx, chosen, config, rng, step)
            for j, r in enumerate(members):
                mine = pick & (b_idx == j)
                picks[r] = (lo + w_idx[mine], tokens[mine], tok_logp[mine])
        last = current
        revealed0 = None
        for r, (pos, toks, logps) in picks.items():
            row = rows[r]
            was_masked = row.x == mask_id
            row.x[pos], row.lp[pos] = toks, logps
            picked = np.zeros(len(row.x), dtype=bool)
            picked[pos] = True
            revealed = picked if row.fixed else _settle(row, picked, was_masked, lengths, mask_id, caps, widths, context)
            if r == 0:
                revealed0 = revealed
        # room freed by spans that shrank is room again
        widths = [max([w] + [row.slots[i][1] - row.slots[i][0] for row in rows]) for i, w in enumerate(start)]
        step += 1
        if on_step is not None:
            head = rows[0]
            if revealed0 is None:
                revealed0 = np.zeros(len(head.x), dtype=bool)
            state = StepState(step, head.x[None].copy(), (head.x == mask_id)[None], revealed0[None], passes,
                              tuple(head.slots))
            if on_step(state):
                cancelled = any((row.x == mask_id).any() for row in rows)
                break
    return _widened(rows, slots, widths, ids.shape[1], lengths.pad, passes, step, cancelled)


def _permissions(rows: list[_Row], b_idx: np.ndarray, pos: np.ndarray, caps: list[int], widths: list[int],
                 context: int, lengths: Lengths) -> tuple[np.ndarray, np.ndarray]:
    """For each masked position: may it expand, may it be deleted (or end its span)?"""
    room = context + sum(widths) < lengths.max_len
    may_grow = np.zeros(len(pos), dtype=bool)
    may_end = np.zeros(len(pos), dtype=bool)
    for j, row in enumerate(rows):
        if row.fixed:
            continue
        mine = b_idx == j
        span = row.slot_index()[pos[mine]]
        grows = np.array([b - a < caps[i] and row.grown[i] < caps[i] and (b - a < widths[i] or room)
                          for i, (a, b) in enumerate(row.slots)] + [False])
        may_grow[mine] = grows[span]  # span -1 (a mask in the context) reads the trailing False
        may_end[mine] = span >= 0
    return may_grow, may_end


def _widened(rows: list[_Row], slots, widths: list[int], length: int, pad: int, passes: int, steps: int,
             cancelled: bool) -> GrownResult:
    """Every row laid out with the same slots: each as wide as ``widths``, padded after its span."""
    bounds = [0] + [p for a, b in slots for p in (a, b)] + [length]
    out_slots, at = [], 0
    for i, w in enumerate(widths):
        at += bounds[2 * i + 1] - bounds[2 * i]
        out_slots.append((at, at + w))
        at += w
    total = at + length - bounds[-2]
    ids = np.full((len(rows), total), pad, dtype=np.int64)
    logprobs = np.zeros(ids.shape, dtype=np.float32)
    generated = np.zeros(ids.shape, dtype=bool)
    for r, row in enumerate(rows):
        src = [0] + [p for a, b in row.slots for p in (a, b)] + [len(row.x)]
        dst = [0] + [p for a, b in out_slots for p in (a, b)] + [total]
        for k in range(len(src) - 1):  # context and span pieces in turn; a span's room stays padding
            a, b, at = src[k], src[k + 1], dst[k]
            ids[r, at:at + b - a], logprobs[r, at:at + b - a], generated[r, at:at + b - a] = \
                row.x[a:b], row.lp[a:b], row.gen[a:b]
    return GrownResult(SampleResult(ids, logprobs, passes, steps, cancelled), tuple(out_slots), generated)
