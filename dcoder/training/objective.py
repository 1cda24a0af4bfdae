"""The training objective: masked diffusion, mixed with infilling-shaped masks.

Every sample draws a masking rate t and hides tokens with probability p = (1 - eps) t + eps;
the loss is the mean cross-entropy on each sample's hidden tokens, averaged over samples
(``weighting="mean"``). ``weighting="elbo"`` weights them 1/p over the sample's region instead (an
estimate of the diffusion ELBO, as in LLaDA): unbiased, but noisy with batches of a few thousand
tokens (a sample with one hidden token at p = 0.001 counts hundreds of times); a CPU run with it
(and lr 2e-3) stayed at the unigram level, see the README's training section. Samples come in two shapes:

- ``diffusion``: a window of the tokenized corpus (files joined by end-of-text), any token may be hidden;
- infilling (``chars``, ``lines``, ``syntax``): one or more character ranges of a file become
  spans, laid out exactly as the engine does at inference (``spans.build_layout``: each stretch of
  context tokenized on its own, a budget of slots per span). A slot holds the span's tokens then
  span-padding tokens up to the budget, so the model learns where a span of unknown length ends;
  only slot tokens are hidden, the context stays visible.

With probability ``expand_delete`` an infilling sample is laid out for variable-length decoding
instead (DreamOn's objective; ``sampler.denoise_lengths`` decodes it): no padding, and a slot
count that is not the span's length. Surplus slots follow the span's tokens and target the delete
token; runs of adjacent hidden tokens are merged into one slot that targets the expand token (a
mask that stands for two tokens or more). Expand and delete targets are always hidden, as they
are at inference, where a revealed expand becomes two masks and a revealed delete disappears.

Syntax-aligned spans are the regions of ``grammars/python/regions.scm`` (through ``dcoder.syntax``),
drawn kind first as ``dcoder.masking`` does; each file is parsed once and its regions kept as arrays,
since parsing a large file costs about a second. A file without regions gives whole lines instead.

A model with shifted logits (``shift``: position i predicts token i+1, as Dream and DiffuCoder
do) is scored one position early, and its infilling layouts start with the lead token the
engine puts first. ``SampleSource.ar_batch`` gives plain next-token batches for autoregressive
pretraining of such a model (clean windows, every next token scored).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from dcoder.config import SpecialTokens
from dcoder.engine.spans import BUDGET_BUCKETS, Span, build_layout
from dcoder.engine.tokenizer import Tokenizer
from dcoder.errors import DcoderError

KINDS = ("diffusion", "chars", "lines", "syntax")
WEIGHTINGS = ("mean", "elbo")
MAX_CHAR_SPAN = 200
MAX_LINES = 8
SPAN_TRIES = 4

CHARS_PER_TOKEN = 8  # regions longer than max_span_tokens * this are never drawn

SpanFn = Callable[[int, np.random.Generator], "tuple[int, int] | None"]


@dataclass(frozen=True)
class ObjectiveConfig:
    # Shares of each sample shape (normalized).
    diffusion: float = 0.3
    chars: float = 0.2
    lines: float = 0.35
    syntax: float = 0.15
    multi_span: float = 0.1  # probability that an infilling sample has several holes
    max_spans: int = 3
    max_span_tokens: int = 192
    exact_budget: float = 0.15  # probability that a slot has no padding (known length)
    expand_delete: float = 0.5  # probability that an infilling sample has expand/delete targets instead of padding
    eps: float = 1e-3
    weighting: str = "mean"  # "mean": each sample's hidden tokens averaged; "elbo": weighted 1/p

    def __post_init__(self) -> None:
        shares = [getattr(self, k) for k in KINDS]
        if min(shares) < 0 or sum(shares) <= 0:
            raise DcoderError("objective shares must be >= 0 and not all 0")
        for name in ("multi_span", "exact_budget", "expand_delete"):
            if not 0 <= getattr(self, name) <= 1:
                raise DcoderError(f"objective {name} must be in [0, 1]")
        if not 0 < self.eps < 1:
            raise DcoderError("objective eps must be in (0, 1)")
        if self.weighting not in WEIGHTINGS:
            raise DcoderError(f"objective weighting must be one of {', '.join(WEIGHTINGS)}")
        if self.max_spans < 1 or self.max_span_tokens < 1:
            raise DcoderError("objective max_spans and max_span_tokens must be at least 1")

    def probabilities(self) -> np.ndarray:
        shares = np.array([getattr(self, k) for k in KINDS], dtype=np.float64)
        return shares / shares.sum()


@dataclass(frozen=True)
class Batch:
    ids: np.ndarray  # (B, T) int64: the model's input, masks included
    targets: np.ndarray  # (B, T) int64: the clean tokens
    weights: np.ndarray  # (B, T) float32: where hidden, 1 / hidden count (or 1 / (p * region size)); else 0

    @property
    def masked(self) -> int:
        return int((self.weights > 0).sum())


# ---- spans ---------------------------------------------------------------------------------

def char_span(text: str, rng: np.random.Generator) -> tuple[int, int]:
    """A random character range, cutting tokens wherever it falls; length log-uniform in 1..200."""
    length = min(len(text), int(math.exp(rng.uniform(0, math.log(MAX_CHAR_SPAN)))))
    start = int(rng.integers(0, len(text) - length + 1))
    return start, start + length


def line_span(text: str, rng: np.random.Generator) -> tuple[int, int]:
    """One or several whole non-blank lines; sometimes without the indentation or the last newline."""
    pos = int(rng.integers(0, len(text)))
    start = text.rfind("\n", 0, pos) + 1
    while True:
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        if text[start:end].strip() or end == len(text):
            break
        start = end + 1
    count = 1 if rng.random() < 0.5 else int(rng.integers(2, MAX_LINES + 1))
    for _ in range(count - 1):
        if end == len(text):
            break
        nxt = text.find("\n", end + 1)
        end = len(text) if nxt < 0 else nxt
    if rng.random() < 0.3:
        line = text[start:end]
        start += len(line) - len(line.lstrip(" \t"))
    if end < len(text) and rng.random() < 0.6:
        end += 1
    return start, end


class SyntaxSpans:
    """Syntax regions of each file, parsed on first use; one is drawn kind first, then uniformly."""

    def __init__(self, texts: list[str], max_chars: int):
        self.texts = texts
        self.max_chars = max_chars
        self.cache: dict[int, list[np.ndarray]] = {}

    def _regions(self, text: str) -> list[np.ndarray]:
        from dcoder import syntax

        doc = syntax.parse(text, "python")
        by_kind: dict[str, list[tuple[int, int]]] = {}
        for r in doc.regions() if doc is not None else []:
            if 0 < r.end - r.start <= self.max_chars:
                by_kind.setdefault(r.name, []).append((r.start, r.end))
        return [np.array(by_kind[k], dtype=np.int64) for k in sorted(by_kind)]

    def __call__(self, index: int, rng: np.random.Generator) -> tuple[int, int] | None:
        if index not in self.cache:
            self.cache[index] = self._regions(self.texts[index])
        kinds = self.cache[index]
        if not kinds:
            return None
        of_kind = kinds[int(rng.integers(len(kinds)))]
        start, end = of_kind[int(rng.integers(len(of_kind)))]
        return int(start), int(end)


def sample_budget(n: int, limit: int, exact: float, rng: np.random.Generator) -> int:
    """Slots for a span of ``n`` tokens: exact, an inference bucket, or a random surplus."""
    r = rng.random()
    if r < exact:
        budget = n
    elif r < exact + (1 - exact) / 2:
        fitting = [b for b in BUDGET_BUCKETS if b >= n]
        budget = fitting[min(len(fitting) - 1, int(rng.integers(0, 2)))] if fitting else n
    else:
        budget = n + int(rng.integers(1, n // 2 + 17))
    return max(1, n, min(budget, limit))


# ---- samples -------------------------------------------------------------------------------

@dataclass
class Sample:
    ids: np.ndarray
    targets: np.ndarray
    weights: np.ndarray


def mask_rate(rng: np.random.Generator, eps: float) -> float:
    return (1 - eps) * float(rng.random()) + eps


def hidden_weights(hidden: np.ndarray, p: float, region: int, weighting: str) -> np.ndarray:
    """Loss weight of each position: 0 unless hidden (see the module docstring)."""
    w = 1.0 / (p * region) if weighting == "elbo" else 1.0 / max(1, int(hidden.sum()))
    return np.where(hidden, w, 0.0).astype(np.float32)


def diffusion_sample(stream: np.ndarray, seq_len: int, mask_id: int, eps: float, rng: np.random.Generator,
                     weighting: str = "mean") -> Sample:
    """A window of the token stream with every token hidden with probability p."""
    start = int(rng.integers(0, max(1, len(stream) - seq_len + 1)))
    targets = stream[start:start + seq_len].astype(np.int64)
    p = mask_rate(rng, eps)
    hidden = rng.random(len(targets)) < p
    ids = np.where(hidden, mask_id, targets)
    return Sample(ids, targets, hidden_weights(hidden, p, len(targets), weighting))


def infill_sample(
    text: str,
    ranges: list[tuple[int, int]],
    tokenizer: Tokenizer,
    tokens: SpecialTokens,
    seq_len: int,
    config: ObjectiveConfig,
    rng: np.random.Generator,
    shift: bool = False,
) -> Sample | None:
    """The engine's layout for ``ranges`` of ``text``, with each slot's true tokens as targets.

    None when the spans do not fit (too many tokens for ``max_span_tokens`` or the window).
    """
    middles = tokenizer.encode_batch([text[a:b] for a, b in ranges])
    limit = min(config.max_span_tokens, seq_len // 2)
    if sum(len(m) for m in middles) > limit:
        return None
    budgets = [sample_budget(len(m), limit, config.exact_budget, rng) for m in middles]
    if sum(budgets) > limit:
        budgets = [max(1, len(m)) for m in middles]
    p = mask_rate(rng, config.eps)
    if config.expand_delete and rng.random() < config.expand_delete:
        slots = [growing_slot(m, n - len(m), p, tokens, rng) for m, n in zip(middles, budgets)]
    else:
        slots = [padded_slot(m, n, p, tokens, rng) for m, n in zip(middles, budgets)]
    spans = [Span(a, b, len(t)) for (a, b), (t, _) in zip(ranges, slots)]
    layout = build_layout(text, spans, tokenizer, tokens, seq_len, lead=tokens.eos if shift else None)
    targets = layout.ids.copy()
    hidden = np.zeros(len(targets), dtype=bool)
    for (a, b), (slot_targets, slot_hidden) in zip(layout.slots, slots):
        targets[a:b], hidden[a:b] = slot_targets, slot_hidden
    ids = np.where(hidden, tokens.mask, targets)
    region = sum(len(t) for t, _ in slots)
    return Sample(ids, targets, hidden_weights(hidden, p, region, config.weighting))


def padded_slot(middle: list[int], budget: int, p: float, tokens: SpecialTokens,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A slot of ``budget`` positions for pad-ending: the span's tokens, then span padding; each
    position hidden with probability ``p``. Returns targets and which positions are hidden."""
    targets = np.array(list(middle) + [tokens.span_pad] * (budget - len(middle)), dtype=np.int64)
    return targets, rng.random(budget) < p


MERGE_PROB = 0.5  # chance that two adjacent hidden tokens share a slot (DreamOn's merge_prob)


def growing_slot(middle: list[int], surplus: int, p: float, tokens: SpecialTokens,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A slot for variable-length decoding (see the module docstring): the span's tokens, each
    hidden with probability ``p``, runs of hidden ones merged into expand slots, then ``surplus``
    hidden delete slots. Adjacent hidden tokens merge with probability ``MERGE_PROB`` in half the
    samples, and with that times the share left visible in the other half (DreamOn mixes the same
    two schedules). Returns targets and which positions are hidden."""
    n = len(middle)
    hidden = rng.random(n) < p
    share = hidden.mean() if n else 0.0
    merge = MERGE_PROB if rng.random() < 0.5 else MERGE_PROB * (1 - share)
    joins = np.zeros(n, dtype=bool)  # position i shares the slot of position i - 1
    joins[1:] = hidden[1:] & hidden[:-1] & (rng.random(max(n - 1, 0)) < merge)
    first = ~joins
    sizes = np.diff(np.append(np.nonzero(first)[0], n))
    targets = np.where(sizes > 1, tokens.expand, np.asarray(middle, dtype=np.int64)[first])
    targets = np.concatenate([targets, np.full(surplus, tokens.delete)]).astype(np.int64)
    return targets, np.concatenate([hidden[first], np.ones(surplus, dtype=bool)])


def disjoint(ranges: list[tuple[int, int]]) -> bool:
    ordered = sorted(ranges)
    return all(a[1] < b[0] for a, b in zip(ordered, ordered[1:]))


class SampleSource:
    """Draws training batches from tokenized and raw corpus files."""

    def __init__(
        self,
        texts: list[str],
        stream: np.ndarray,
        tokenizer: Tokenizer,
        tokens: SpecialTokens,
        seq_len: int,
        config: ObjectiveConfig,
        shift: bool = False,
    ):
        texts = [t for t in texts if t]
        if not texts:
            raise DcoderError("no source files to sample from")
        if config.expand_delete and not tokens.can_grow:
            raise DcoderError("objective expand_delete needs a tokenizer with <|expand|> and <|delete|> "
                              "(a run whose tokenizer predates them: --set objective.expand_delete=0)")
        self.texts = texts
        sizes = np.array([len(t) for t in texts], dtype=np.float64)
        self.file_probs = sizes / sizes.sum()  # files drawn by size: spans uniform over characters
        self.stream = stream
        self.tokenizer = tokenizer
        self.tokens = tokens
        self.seq_len = seq_len
        self.config = config
        self.shift = shift
        self.probs = config.probabilities()
        self.span_fns: dict[str, SpanFn] = {
            "chars": lambda i, rng: char_span(self.texts[i], rng),
            "lines": lambda i, rng: line_span(self.texts[i], rng),
            "syntax": SyntaxSpans(texts, config.max_span_tokens * CHARS_PER_TOKEN),
        }

    def _ranges(self, kind: str, index: int, rng: np.random.Generator) -> list[tuple[int, int]]:
        fn = self.span_fns[kind]
        text = self.texts[index]
        count = 1
        if rng.random() < self.config.multi_span:
            count = int(rng.integers(2, self.config.max_spans + 1)) if self.config.max_spans > 1 else 1
        ranges: list[tuple[int, int]] = []
        for _ in range(count):
            r = fn(index, rng) or line_span(text, rng)
            if disjoint(ranges + [r]):
                ranges.append(r)
        return sorted(ranges)

    def sample(self, rng: np.random.Generator) -> Sample:
        kind = KINDS[int(rng.choice(len(KINDS), p=self.probs))]
        if kind != "diffusion":
            for _ in range(SPAN_TRIES):
                index = int(rng.choice(len(self.texts), p=self.file_probs))
                text = self.texts[index]
                sample = infill_sample(text, self._ranges(kind, index, rng), self.tokenizer, self.tokens,
                                       self.seq_len, self.config, rng, self.shift)
                if sample is not None:
                    return sample
        return diffusion_sample(self.stream, self.seq_len, self.tokens.mask, self.config.eps, rng, self.config.weighting)

    def batch(self, size: int, rng: np.random.Generator) -> Batch:
        """``size`` samples, right-padded with end-of-text (never scored) to the sequence length."""
        ids = np.full((size, self.seq_len), self.tokens.eos, dtype=np.int64)
        targets = ids.copy()
        weights = np.zeros((size, self.seq_len), dtype=np.float32)
        for i in range(size):
            s = self.sample(rng)
            n = len(s.ids)
            ids[i, :n], targets[i, :n], weights[i, :n] = s.ids, s.targets, s.weights
        return Batch(ids, targets, weights)

    def ar_batch(self, size: int, rng: np.random.Generator) -> Batch:
        """``size`` clean windows of the token stream; every token after the first is scored
        (with shifted logits that is next-token prediction), each sample's mean counting once."""
        starts = rng.integers(0, max(1, len(self.stream) - self.seq_len + 1), size=size)
        ids = np.stack([self.stream[s:s + self.seq_len] for s in starts]).astype(np.int64)
        weights = np.zeros(ids.shape, dtype=np.float32)
        weights[:, 1:] = 1.0 / (ids.shape[1] - 1)
        return Batch(ids, ids.copy(), weights)


def scored_rows(weights, shift: bool = False):
    """Which logit rows score a token (B, T) bool: the hidden positions, or with ``shift`` the
    positions just before them (a token at position 0 is never scored)."""
    import torch

    if not shift:
        return weights > 0
    rows = torch.zeros_like(weights, dtype=torch.bool)
    rows[:, :-1] = weights[:, 1:] > 0
    return rows


def row_loss(row_logits, targets, weights, shift: bool = False):
    """``loss_terms`` from the logits of ``scored_rows`` only (N, V), in the same row order."""
    import torch.nn.functional as F

    if shift:
        targets, weights = targets[:, 1:], weights[:, 1:]
    hidden = weights > 0
    ce = F.cross_entropy(row_logits.float(), targets[hidden], reduction="none")
    loss = (ce * weights[hidden]).sum() / weights.shape[0]
    return loss, ce.mean() if ce.numel() else ce.sum()


def loss_terms(logits, targets, weights, shift: bool = False):
    """(weighted diffusion loss averaged over the batch, plain mean cross-entropy on hidden tokens).

    With ``shift`` the logits at i score the token at i+1 (a token at position 0 is never scored).
    """
    return row_loss(logits[scored_rows(weights, shift)], targets, weights, shift)
