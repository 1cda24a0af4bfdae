"""Configuration as frozen dataclasses: the model's shape and the sampler's knobs."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

from dcoder.errors import DcoderError

# model_type -> whether the prediction for token i is read from the logits at i-1.
# Dream and DiffuCoder shift (they were adapted from autoregressive Qwen2); LLaDA-style
# checkpoints predict each position in place. A config may override with "shift_logits".
SUPPORTED_MODEL_TYPES = {"Dream": True, "qwen2": False, "dcoder": False}


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    max_position_embeddings: int = 32768
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    tie_word_embeddings: bool = False
    model_type: str = "dcoder"
    shift_logits: bool = False

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_hf_dict(cls, raw: dict) -> "ModelConfig":
        """Read a Hugging Face config.json (Qwen2 / Dream / DiffuCoder layout)."""
        model_type = raw.get("model_type")
        if model_type not in SUPPORTED_MODEL_TYPES:
            raise DcoderError(
                f"unsupported model_type {model_type!r} in config.json "
                f"(supported: {', '.join(SUPPORTED_MODEL_TYPES)})"
            )
        act = raw.get("hidden_act", "silu")
        if act != "silu":
            raise DcoderError(f"unsupported hidden_act {act!r} in config.json (only silu)")
        rope = raw.get("rope_scaling") or raw.get("rope_parameters") or {}
        rope_type = rope.get("rope_type", rope.get("type", "default"))
        if rope_type != "default":
            raise DcoderError(f"unsupported rope scaling {rope_type!r} in config.json")
        theta = raw.get("rope_theta", rope.get("rope_theta", 10000.0))
        if raw.get("head_dim") not in (None, raw.get("hidden_size", 0) // max(1, raw.get("num_attention_heads", 1))):
            raise DcoderError("config.json head_dim must equal hidden_size / num_attention_heads")
        known = {f.name for f in fields(cls)}
        values = {k: raw[k] for k in known if k in raw}
        values["rope_theta"] = float(theta)
        values["shift_logits"] = bool(raw.get("shift_logits", SUPPORTED_MODEL_TYPES[model_type]))
        values.setdefault("num_key_value_heads", raw.get("num_attention_heads"))
        try:
            config = cls(**values)
        except TypeError as exc:
            raise DcoderError(f"config.json is missing a field: {exc}") from None
        config.validate()
        return config

    def validate(self) -> None:
        for name in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                     "num_attention_heads", "num_key_value_heads"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise DcoderError(f"config.json field {name} must be a positive integer, got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise DcoderError("config.json hidden_size is not divisible by num_attention_heads")
        if self.num_attention_heads % self.num_key_value_heads:
            raise DcoderError("config.json num_attention_heads is not divisible by num_key_value_heads")
        if self.head_dim % 2:
            raise DcoderError("config.json head dimension must be even for rotary embeddings")

    def to_hf_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["hidden_act"] = "silu"
        return out


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

    @property
    def stripped(self) -> frozenset[int]:
        """Tokens removed from a span's output: they end a span, they are not text."""
        return frozenset({self.span_pad, self.eos})


ALGS = ("origin", "maskgit_plus", "topk_margin", "entropy")

# Seconds an infill request may run before it returns the best fill found by then (the CLI's
# --deadline and the language server's "deadline" setting; both take these bounds).
DEADLINE_S = 5.0
DEADLINE_BOUNDS = (0.1, 3600.0)


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

    @property
    def deterministic(self) -> bool:
        """No random draws: a row's result depends on that row alone."""
        return self.temperature == 0 and self.alg_temp == 0 and self.alg != "origin"

    def __post_init__(self) -> None:
        if self.alg not in ALGS:
            raise DcoderError(f"unknown --alg {self.alg!r} (choose from {', '.join(ALGS)})")
        if self.steps < 1:
            raise DcoderError("--steps must be at least 1")
        if self.temperature < 0 or self.alg_temp < 0:
            raise DcoderError("temperatures must be >= 0")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise DcoderError("--top-p must be in (0, 1]")
        if self.top_k is not None and self.top_k < 1:
            raise DcoderError("--top-k must be at least 1")
        if self.threshold is not None and not 0 <= self.threshold <= 1:
            raise DcoderError("--threshold must be in [0, 1]")
