"""Configuration as frozen dataclasses: special tokens, lengths and the sampler's knobs (the model's
shape is dcoder.engine.model_config)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from dcoder.errors import DcoderError


def read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DcoderError(f"{what} not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DcoderError(f"{what} is not valid JSON: {path} ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise DcoderError(f"{what} must hold a JSON object: {path}")
    return data


@dataclass(frozen=True)
class SpecialTokens:
    mask: int
    span_pad: int
    eos: int
    bos: int | None = None
    # DreamOn's variable-length tokens: a mask revealed as expand becomes two masks, one revealed
    # as delete is removed (see dcoder.engine.sampler.denoise_lengths); None where the tokenizer lacks them
    expand: int | None = None
    delete: int | None = None

    @property
    def stripped(self) -> frozenset[int]:
        """Tokens removed from a span's output: they end a span, they are not text."""
        return frozenset({self.span_pad, self.eos})

    @property
    def can_grow(self) -> bool:
        """Whether spans may change length during a run (the tokenizer has expand and delete)."""
        return self.expand is not None and self.delete is not None

    @property
    def structural(self) -> tuple[int, ...]:
        """The expand and delete tokens there are: never text, so never chosen in a pad-ending run."""
        return tuple(t for t in (self.expand, self.delete) if t is not None)


ALGS = ("origin", "maskgit_plus", "topk_margin", "entropy")
# How the tokens revealed at a step are chosen (dcoder.engine.sampler): ``confidence`` by --threshold
# (or the --steps schedule), ``learned`` by a classifier trained on the model's own denoising
# traces (dcoder train-policy), ``verify`` as a one-token-per-step greedy decode would, checked by
# batched verification passes (the same output in fewer passes).
POLICIES = ("confidence", "learned", "verify")
VERIFY_ROWS = 4  # states a verification pass checks at once: up to this many tokens revealed per pass
POLICY_FEATURES = ("confidence", "margin", "certainty", "position", "masked", "left_known", "right_known")
LENGTH_MODES = ("auto", "pad", "expand")
MAX_SPAN_LIMIT = 4096  # bound of LengthConfig.max_span


@dataclass(frozen=True)
class LengthConfig:
    """How a span's length is decided.

    ``pad``: the span has its budget of mask tokens and ends early with span padding (it never
    grows past the budget). ``expand``: a mask may turn into two masks or vanish at each step
    (the checkpoint needs expand and delete tokens), so the budget is only a first guess and a
    span may grow to ``max_span`` tokens (a larger budget keeps its own size). ``auto``: expand
    when the checkpoint has those tokens, else pad.
    """

    mode: str = "auto"
    max_span: int = 256

    def __post_init__(self) -> None:
        if self.mode not in LENGTH_MODES:
            raise DcoderError(f"unknown --length {self.mode!r} (choose from {', '.join(LENGTH_MODES)})")
        if not 1 <= self.max_span <= MAX_SPAN_LIMIT:
            raise DcoderError(f"--max-span must be in [1, {MAX_SPAN_LIMIT}]")

# Seconds an infill request may run before it returns the best fill found by then (the CLI's
# --deadline and the language server's "deadline" setting; both take these bounds).
DEADLINE_S = 5.0
DEADLINE_BOUNDS = (0.1, 3600.0)


@dataclass(frozen=True)
class LearnedPolicy:
    """A small MLP (``POLICY_FEATURES`` -> ``hidden`` tanh units -> the chance that a masked token's
    current greedy choice is the one the full decode ends with), trained for one model."""

    model: str  # dcoder.engine.policy.model_identity of the model it was trained for
    mean: tuple[float, ...]  # feature standardisation
    scale: tuple[float, ...]
    w1: tuple[tuple[float, ...], ...]  # (features, hidden)
    b1: tuple[float, ...]
    w2: tuple[float, ...]  # (hidden,)
    b2: float
    threshold: float  # the cut used when no --threshold is given
    features: tuple[str, ...] = POLICY_FEATURES

    def __post_init__(self) -> None:
        n, h = len(self.features), len(self.b1)
        if self.features != POLICY_FEATURES:
            raise DcoderError(f"the policy uses features {', '.join(self.features)}; this dcoder computes "
                              f"{', '.join(POLICY_FEATURES)} (train it again)")
        shapes = (len(self.mean), len(self.scale), len(self.w1), len(self.w2))
        if shapes != (n, n, n, h) or any(len(row) != h for row in self.w1) or not 0 < self.threshold <= 1:
            raise DcoderError("the policy's weights do not have the shapes of its features")


@dataclass(frozen=True)
class SamplerConfig:
    """How the denoising loop picks tokens and decides what to reveal at each step.

    With ``threshold`` set, every masked position whose confidence exceeds it is revealed
    at each step (at least one); otherwise ``steps`` fixes a linear schedule.
    """

    steps: int = 32
    threshold: float | None = None
    alg: str = "entropy"
    alg_temp: float = 0.0
    temperature: float = 0.0
    top_k: int | None = None
    top_p: float | None = None
    seed: int = 0
    policy: str = "confidence"
    # the weights policy "learned" reads: read for the model in use (dcoder.engine.policy), so a request
    # that only names the policy (to a server with its own) carries none
    learned: LearnedPolicy | None = field(default=None, repr=False)

    @property
    def cut(self) -> float | None:
        """The gate's threshold in force: --threshold, else a learned policy's own cut."""
        if self.threshold is None and self.policy == "learned" and self.learned is not None:
            return self.learned.threshold
        return self.threshold

    @property
    def deterministic(self) -> bool:
        """No random draws: a row's result depends on that row alone."""
        return self.temperature == 0 and self.alg_temp == 0 and self.alg != "origin"

    def __post_init__(self) -> None:
        if self.alg not in ALGS:
            raise DcoderError(f"unknown --alg {self.alg!r} (choose from {', '.join(ALGS)})")
        if self.steps < 1:
            raise DcoderError("--steps must be at least 1")
        # NaN passes every comparison and an infinite temperature never settles a token: both refused.
        if not all(math.isfinite(t) and t >= 0 for t in (self.temperature, self.alg_temp)):
            raise DcoderError("temperatures must be finite and >= 0")
        if self.seed < 0:
            raise DcoderError("--seed must be at least 0")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise DcoderError("--top-p must be in (0, 1]")
        if self.top_k is not None and self.top_k < 1:
            raise DcoderError("--top-k must be at least 1")
        if self.threshold is not None and not 0 < self.threshold <= 1:
            raise DcoderError("--threshold must be in (0, 1]")
        if self.policy not in POLICIES:
            raise DcoderError(f"unknown --policy {self.policy!r} (choose from {', '.join(POLICIES)})")
        if self.policy == "verify" and not self.deterministic:
            raise DcoderError("--policy verify checks a greedy decode: it needs --temperature 0, --alg-temp 0 "
                              "and an --alg other than origin")
