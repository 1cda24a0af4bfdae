"""The denoising loop: plain functions over numpy arrays, with the model passed in as a backend.

A backend is any object with ``predict(ids, lo, hi, step, cols) -> logprobs``: given the
current token ids (B, T) it returns float log-probabilities (B, len(cols), V) whose row j is
the prediction for position ``lo + cols[j]`` (all of lo..hi-1 when ``cols`` is None; the
logit-shift convention is the backend's business, see ``shifted_window``). The sampler asks
only for the columns that still hold a mask, so a backend can skip the rest. ``step`` counts
forward passes of this run from 0, so a caching backend knows when to (re)encode the context.
Positions outside [lo, hi) never change during a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from dcoder.config import SamplerConfig


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


@dataclass(frozen=True)
class SampleResult:
    ids: np.ndarray
    logprobs: np.ndarray  # log-probability of each revealed token when it was chosen; 0 elsewhere
    forward_passes: int
    steps: int
    cancelled: bool


OnStep = Callable[[StepState], bool | None]


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

    ``rank`` and ``gate`` are -inf where ``win`` is False. With a threshold: every position whose
    gate passes it, or the best-ranked one when none does. Otherwise the best-ranked
    ceil(remaining / steps left) positions, so the run ends after ``config.steps`` passes.
    """
    remaining = win.sum(axis=-1)
    if config.threshold is not None:
        passing = win & (gate > config.threshold)
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


def denoise(
    ids: np.ndarray,
    backend: Backend,
    config: SamplerConfig,
    mask_id: int,
    on_step: OnStep | None = None,
    suppress: tuple[int, ...] = (),
    suppress_rows: np.ndarray | None = None,
) -> SampleResult:
    """Resolve every ``mask_id`` in ``ids`` (B, T). ``on_step`` returning True stops the run.

    The ``suppress`` tokens are never chosen in the rows where ``suppress_rows`` (B,) is True
    (in every row when it is None); the mask token is never chosen anywhere.
    """
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
            chosen = drop_tokens(np.array(predicted[b_idx, row_of[w_idx]], dtype=np.float32), (mask_id,))
            held = suppress_rows[b_idx]
            if suppress and held.any():
                chosen[held] = drop_tokens(chosen[held], suppress)
            tokens, rank, gate, tok_logp = choose_tokens(chosen, config, rng)
        if config.alg_temp > 0:
            rank = rank / config.alg_temp + rng.gumbel(size=rank.shape)
        rank_grid = np.full(win.shape, -np.inf)
        rank_grid[b_idx, w_idx] = rank
        gate_grid = np.full(win.shape, -np.inf)
        gate_grid[b_idx, w_idx] = gate
        pick = reveal_mask(win, rank_grid, gate_grid, config, step)[b_idx, w_idx]
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
