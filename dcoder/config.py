"""Configuration as frozen dataclasses: special tokens, and every option the front ends share
(the sampler's knobs, span lengths, the infill request's options). The model's shape is
dcoder.engine.model_config.

Each option's default and bounds are declared once, on its field (``bounded``), and checked there;
the command line and the language server read both from these declarations, so their defaults
and limits cannot drift from the engine's.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

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


def bounded(default: Any, low: float, high: float, flag: str | None = None) -> Any:
    """A dataclass field whose value must lie in [low, high] (or be None, where the field allows
    it); ``flag`` is its command-line option, when not ``--`` and the field's name."""
    return field(default=default, metadata={"bounds": (low, high), "flag": flag})


def bounds(cls: type, name: str) -> tuple[Any, Any]:
    """The bounds ``bounded`` declared for field ``name`` of dataclass ``cls``."""
    return next(f for f in fields(cls) if f.name == name).metadata["bounds"]


def check_bounds(config: Any) -> None:
    """Refuse the first field of ``config`` outside its declared bounds (NaN is outside any)."""
    for f in fields(config):
        value = getattr(config, f.name)
        if "bounds" not in f.metadata or value is None:
            continue
        low, high = f.metadata["bounds"]
        if not low <= value <= high:
            flag = f.metadata["flag"] or "--" + f.name.replace("_", "-")
            raise DcoderError(f"{flag} must be from {low:g} to {high:g}")


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


EXPORT_DTYPES = ("fp32", "fp16", "int8")  # formats of an exported model folder (dcoder export)
ALGS = ("origin", "maskgit_plus", "topk_margin", "entropy")
# How the tokens revealed at a step are chosen (dcoder.engine.sampler): ``confidence`` by --threshold
# (or the --steps schedule), ``learned`` by a classifier trained on the model's own denoising
# traces (dcoder train-policy), ``verify`` as a one-token-per-step greedy decode would, checked by
# batched verification passes (the same output in fewer passes).
POLICIES = ("confidence", "learned", "verify")
VERIFY_ROWS = 4  # states a verification pass checks at once: up to this many tokens revealed per pass
POLICY_FEATURES = ("confidence", "margin", "certainty", "position", "masked", "left_known", "right_known")
LENGTH_MODES = ("auto", "pad", "expand")
MAX_SPAN_LIMIT = 4096  # tokens a span may have, however its length is decided


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
    max_span: int = bounded(256, 1, MAX_SPAN_LIMIT)

    def __post_init__(self) -> None:
        if self.mode not in LENGTH_MODES:
            raise DcoderError(f"unknown --length {self.mode!r} (choose from {', '.join(LENGTH_MODES)})")
        check_bounds(self)


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

    steps: int = bounded(32, 1, 4096)
    # in (0, 1]: 0 would reveal every token at the first step; 0.001 is the smallest that means anything
    threshold: float | None = bounded(None, 0.001, 1.0)
    alg: str = "entropy"
    alg_temp: float = 0.0
    temperature: float = bounded(0.0, 0.0, 10.0)  # far past the point where every token is as likely
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
        # NaN passes every comparison and an infinite temperature never settles a token: both refused.
        if not all(math.isfinite(t) and t >= 0 for t in (self.temperature, self.alg_temp)):
            raise DcoderError("temperatures must be finite and >= 0")
        check_bounds(self)
        if self.seed < 0:
            raise DcoderError("--seed must be at least 0")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise DcoderError("--top-p must be in (0, 1]")
        if self.top_k is not None and self.top_k < 1:
            raise DcoderError("--top-k must be at least 1")
        if self.policy not in POLICIES:
            raise DcoderError(f"unknown --policy {self.policy!r} (choose from {', '.join(POLICIES)})")
        if self.policy == "verify" and not self.deterministic:
            raise DcoderError("--policy verify checks a greedy decode: it needs --temperature 0, --alg-temp 0 "
                              "and an --alg other than origin")


@dataclass(frozen=True)
class InfillOptions:
    """One infill or refine request's options (``dcoder.infill``)."""

    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    # mask tokens reserved per span; None: chosen from the context
    max_tokens: int | None = bounded(None, 1, MAX_SPAN_LIMIT)
    exact_length: int | None = None  # exactly this many tokens per span, no early end
    max_context: int | None = None  # tokens of document the model sees; None: the model's limit
    # more would only cost memory (the candidates are one batch), never give a better fill
    candidates: int = bounded(1, 1, 64)
    # The document's language (grammar name, see dcoder.syntax): fills are fitted to the file's
    # indentation and line endings, syntax regions get budgets for their kind, and fills that
    # break the parse are searched past (candidates) and repaired (re-mask rounds).
    language: str | None = None
    repair_rounds: int = bounded(2, 0, 16, flag="--repair")  # more only take time
    # Longest fill (tokens) the last-resort constrained search tries for a span that still
    # breaks the parse after the repair rounds; 0 turns it off (as does exact_length).
    search_tokens: int = bounded(4, 0, 16)
    lengths: LengthConfig = field(default_factory=LengthConfig)  # pad-ending, or spans that grow and shrink
    # seconds the request may take; then the best fill found by then is returned (none, with an
    # error, if the first denoising pass has not finished)
    deadline: float = bounded(5.0, 0.1, 3600.0)
    # log-probability added to the tokens that spell a name in scope where an identifier begins or
    # goes on (dcoder.engine.names; needs ``language``); 0 turns the lean off
    scope_bias: float = bounded(1.0, 0.0, 10.0)
    # code from other files of the workspace (dcoder.retrieval.Snippet), put ahead of the file in
    # the model's context
    snippets: tuple = ()

    def __post_init__(self) -> None:
        if self.max_context is not None and self.max_context < 1:
            raise DcoderError("--max-context must be at least 1")
        if self.exact_length is not None and self.exact_length < 1:
            raise DcoderError("--exact-length must be at least 1")
        check_bounds(self)
