"""The denoising loop: plain functions over numpy arrays, with the model passed in as a backend.

A backend is any object with ``predict(ids, lo, hi, step) -> logits``: given the current
token ids (B, T) it returns float logits (B, hi - lo, V) whose row j is the prediction for
position ``lo + j`` (the logit-shift convention is the backend's business, see
``shifted_window``). ``step`` counts forward passes of this run from 0, so a caching backend
knows when to (re)encode the context. Positions outside [lo, hi) never change during a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from dcoder.config import SamplerConfig


class Backend(Protocol):
    def predict(self, ids: np.ndarray, lo: int, hi: int, step: int) -> np.ndarray: ...


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


def choose_tokens(logits: np.ndarray, config: SamplerConfig, rng: np.random.Generator):
    """Sample a token per row of (N, V) logits; return tokens, rank scores, threshold scores, log-probs."""
    if config.temperature > 0:
        logits = logits / config.temperature
    logits = filter_logits(logits, config.top_k, config.top_p)
    logp = log_softmax(logits)
    if config.temperature > 0:
        tokens = np.argmax(logp + rng.gumbel(size=logp.shape), axis=-1)
    else:
        tokens = np.argmax(logp, axis=-1)
    rows = np.arange(len(tokens))
    tok_logp = logp[rows, tokens]
    p_tok = np.exp(tok_logp)
    if config.alg == "maskgit_plus":
        rank = gate = p_tok
    elif config.alg == "topk_margin":
        top2 = np.exp(np.partition(logp, -2, axis=-1)[:, -2:]) if logp.shape[-1] > 1 else np.stack([p_tok * 0, p_tok], -1)
        rank = gate = top2[:, 1] - top2[:, 0]
    elif config.alg == "entropy":
        probs = np.exp(logp)
        neg_entropy = (probs * np.where(np.isfinite(logp), logp, 0.0)).sum(axis=-1)
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
    order = np.argsort(-rank, axis=-1, kind="stable")
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
) -> SampleResult:
    """Resolve every ``mask_id`` in ``ids`` (B, T). ``on_step`` returning True stops the run."""
    x = np.array(ids, dtype=np.int64, copy=True)
    masked = x == mask_id
    logprobs = np.zeros(x.shape, dtype=np.float32)
    if not masked.any():
        return SampleResult(x, logprobs, 0, 0, False)
    cols = np.nonzero(masked.any(axis=0))[0]
    lo, hi = int(cols[0]), int(cols[-1]) + 1
    rng = np.random.default_rng(config.seed)
    never = (mask_id, *suppress)
    step = 0
    cancelled = False
    while masked.any():
        logits = backend.predict(x, lo, hi, step)
        win = masked[:, lo:hi]
        b_idx, w_idx = np.nonzero(win)
        chosen = np.array(logits[b_idx, w_idx], dtype=np.float32)
        chosen[:, list(never)] = -np.inf
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
