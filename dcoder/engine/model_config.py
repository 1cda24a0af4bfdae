"""The model's shape: a Hugging Face config.json of any supported family, read into one dataclass."""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields

from dcoder.engine.families import config_values, family_of, hf_config
from dcoder.errors import DcoderError


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
    shift_logits: bool = False  # the prediction for token i is read from the logits at i - 1
    attention_bias: bool = True  # q/k/v projections have biases (Qwen2); Qwen3 and LLaDA have none
    qk_norm: bool = False  # per-head RMSNorm of queries and keys before rotary (Qwen3, CoDA)

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_hf_dict(cls, raw: dict) -> "ModelConfig":
        """Read a Hugging Face config.json of any family in dcoder/engine/families.py."""
        family = family_of(raw)
        rope = raw.get("rope_scaling") or raw.get("rope_parameters") or {}
        rope_type = rope.get("rope_type", rope.get("type", "default"))
        if rope_type != "default":
            raise DcoderError(f"unsupported rope scaling {rope_type!r} in config.json")
        values = config_values(family, raw, tuple(f.name for f in fields(cls)))
        values["model_type"] = raw["model_type"]
        values["rope_theta"] = float(raw.get("rope_theta", rope.get("rope_theta", 10000.0)))
        values["shift_logits"] = bool(raw.get("shift_logits", family.shift_logits))
        values.setdefault("num_key_value_heads", values.get("num_attention_heads"))
        heads, width = values.get("num_attention_heads"), values.get("hidden_size")
        if isinstance(heads, int) and isinstance(width, int) and heads > 0 and raw.get("head_dim") not in (None, width // heads):
            raise DcoderError("config.json head_dim must equal hidden_size / num_attention_heads")
        missing = [family.config_key(f.name) for f in fields(cls) if f.default is MISSING and f.name not in values]
        if missing:
            raise DcoderError(f"config.json lacks {', '.join(missing)} (a {family.name} checkpoint needs it)")
        config = cls(**values)
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
        """config.json in the layout of this config's family."""
        return hf_config(family_of({"model_type": self.model_type}), {f.name: getattr(self, f.name) for f in fields(self)})
