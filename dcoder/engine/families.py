"""Checkpoint families: how each one's config.json and weight names map onto dcoder's model.

dcoder's model (``dcoder/model.py``) is one bidirectional transformer with a few switches (q/k
bias, per-head q/k RMSNorm, tied head). A family says, as data, which config.json keys give its
dimensions, which values its architecture fixes, which config values dcoder cannot run, and
what its checkpoints call each weight. Everything else (loading, export, synthetic checkpoints)
goes through ``family_of`` and ``Family.checkpoint_name``, so a new family is one entry here.

Facts per family, from each project's released config.json and modelling code:
- Dream (Dream, DiffuCoder, Dream-Coder, DreamOn): Qwen2.5 layout, q/k/v bias, logits shifted.
- qwen2 (Open-dCoder): a Qwen2.5-Coder made bidirectional, saved as plain Qwen2; logits shifted.
- CoDA: Qwen3 layout (per-head q/k RMSNorm, no bias), model_type "CoDA"; logits shifted.
- LLaDA: OLMo-style config keys and weight names, no bias, predicts each position in place.
- dcoder: checkpoints ``dcoder train`` writes (Qwen2 layout, in place unless told otherwise).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from dcoder.errors import DcoderError

_LAYER = re.compile(r"model\.layers\.(\d+)\.(.+)")


@dataclass(frozen=True)
class Family:
    name: str
    model_types: tuple[str, ...]
    shift_logits: bool  # prediction for position i read from the logits at i - 1
    # ModelConfig field -> config.json keys, the first one present wins (default: the field's own name)
    keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
    fixed: dict[str, object] = field(default_factory=dict)  # fields the architecture fixes
    defaults: dict[str, object] = field(default_factory=dict)  # fields config.json may leave out
    # config.json key -> the values dcoder runs (a key left out reads as None)
    allowed: dict[str, tuple] = field(default_factory=dict)
    layer_prefix: str = "model.layers.{i}."
    layer_names: dict[str, str] = field(default_factory=dict)  # dcoder's per-layer name -> the family's
    outer_names: dict[str, str] = field(default_factory=dict)  # dcoder's other names -> the family's
    mask_names: tuple[str, ...] = ()  # mask token names beyond the common ones

    def checkpoint_name(self, name: str) -> str:
        """The family's name for the weight dcoder calls ``name`` (Qwen2 layout)."""
        m = _LAYER.fullmatch(name)
        if m:
            return self.layer_prefix.format(i=m[1]) + self.layer_names.get(m[2], m[2])
        return self.outer_names.get(name, name)

    def config_key(self, field_name: str) -> str:
        return self.keys.get(field_name, (field_name,))[0]


QWEN_ALLOWED = {"hidden_act": ("silu", None), "use_sliding_window": (False, None)}

DREAM = Family("dream", ("Dream",), shift_logits=True, fixed={"attention_bias": True, "qk_norm": False},
               allowed=QWEN_ALLOWED)
QWEN2 = Family("qwen2", ("qwen2",), shift_logits=True, fixed={"attention_bias": True, "qk_norm": False},
               allowed=QWEN_ALLOWED, mask_names=("<M>",))
CODA = Family("coda", ("CoDA",), shift_logits=True, fixed={"qk_norm": True},
              # CoDAConfig's own defaults, for keys its config.json leaves out
              defaults={"attention_bias": False, "tie_word_embeddings": True}, allowed=QWEN_ALLOWED)
LLADA = Family(
    "llada", ("llada",), shift_logits=False,
    keys={"vocab_size": ("embedding_size", "vocab_size"), "hidden_size": ("d_model",),
          "intermediate_size": ("mlp_hidden_size",), "num_hidden_layers": ("n_layers",),
          "num_attention_heads": ("n_heads",), "num_key_value_heads": ("n_kv_heads",),
          "max_position_embeddings": ("max_sequence_length",), "tie_word_embeddings": ("weight_tying",),
          "attention_bias": ("include_qkv_bias",)},
    fixed={"qk_norm": False},
    defaults={"attention_bias": False, "tie_word_embeddings": False, "rms_norm_eps": 1e-5},
    allowed={"activation_type": ("silu",), "block_type": ("llama",), "layer_norm_type": ("rms",),
             "rope": (True,), "alibi": (False, None), "scale_logits": (False, None),
             "input_emb_norm": (False, None), "attention_layer_norm": (False, None),
             "include_bias": (False, None), "bias_for_layer_norm": (False, None),
             "layer_norm_with_affine": (True, None), "block_group_size": (1, None)},
    layer_prefix="model.transformer.blocks.{i}.",
    layer_names={"input_layernorm.weight": "attn_norm.weight",
                 "post_attention_layernorm.weight": "ff_norm.weight",
                 "self_attn.q_proj.weight": "q_proj.weight", "self_attn.k_proj.weight": "k_proj.weight",
                 "self_attn.v_proj.weight": "v_proj.weight", "self_attn.q_proj.bias": "q_proj.bias",
                 "self_attn.k_proj.bias": "k_proj.bias", "self_attn.v_proj.bias": "v_proj.bias",
                 "self_attn.o_proj.weight": "attn_out.weight",
                 "mlp.gate_proj.weight": "ff_proj.weight",  # SiLU is applied to ff_proj's output
                 "mlp.up_proj.weight": "up_proj.weight", "mlp.down_proj.weight": "ff_out.weight"},
    outer_names={"model.embed_tokens.weight": "model.transformer.wte.weight",
                 "model.norm.weight": "model.transformer.ln_f.weight",
                 "lm_head.weight": "model.transformer.ff_out.weight"},
    mask_names=("<|mdm_mask|>",),
)
DCODER = Family("dcoder", ("dcoder",), shift_logits=False, fixed={"attention_bias": True, "qk_norm": False},
                allowed=QWEN_ALLOWED)

FAMILIES = (DREAM, QWEN2, CODA, LLADA, DCODER)
_BY_TYPE = {t: f for f in FAMILIES for t in f.model_types}


def family_of(raw: dict) -> Family:
    """The family of a config.json, by its model_type."""
    model_type = raw.get("model_type")
    family = _BY_TYPE.get(model_type) if isinstance(model_type, str) else None
    if family is None:
        raise DcoderError(f"unsupported model_type {model_type!r} in config.json "
                          f"(supported: {', '.join(_BY_TYPE)})")
    return family


def config_values(family: Family, raw: dict, fields: tuple[str, ...]) -> dict:
    """ModelConfig values read from a config.json of ``family``, refusing what dcoder cannot run."""
    for key, ok in family.allowed.items():
        value = raw.get(key)
        if value not in ok:
            wanted = " or ".join(repr(v) for v in ok if v is not None)
            raise DcoderError(f"config.json {key} is {value!r}: dcoder runs {family.name} checkpoints with {key} {wanted}")
    values = dict(family.defaults)
    for name in fields:
        for key in family.keys.get(name, (name,)):
            if raw.get(key) is not None:
                values[name] = raw[key]
                break
    if family is LLADA:
        # OLMo's fallbacks: no n_kv_heads means one per query head (or one in all, multi-query)
        if "num_key_value_heads" not in values and "num_attention_heads" in values:
            values["num_key_value_heads"] = 1 if raw.get("multi_query_attention") else values["num_attention_heads"]
        if "intermediate_size" not in values and "hidden_size" in values:
            values["intermediate_size"] = int(raw.get("mlp_ratio", 4)) * values["hidden_size"]
    values.update(family.fixed)
    return values


def hf_config(family: Family, values: dict) -> dict:
    """A config.json in ``family``'s own layout for ModelConfig ``values`` (synthetic checkpoints)."""
    out = {"model_type": family.model_types[0]}
    for name, value in values.items():
        if name in family.fixed or name == "model_type" or (name == "shift_logits" and value == family.shift_logits):
            continue
        out[family.config_key(name)] = value
    for key, ok in family.allowed.items():
        if ok[0] is not None:
            out.setdefault(key, ok[0])
    if family is LLADA:
        out["vocab_size"] = out["embedding_size"]
    return out


def weight_shapes(cfg) -> dict[str, tuple[int, ...]]:
    """Every weight dcoder's model reads for ModelConfig ``cfg``, by dcoder's (Qwen2) name."""
    h, i, v, hd = cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size, cfg.head_dim
    q, kv = cfg.num_attention_heads * hd, cfg.num_key_value_heads * hd
    out = {"model.embed_tokens.weight": (v, h), "model.norm.weight": (h,)}
    if not cfg.tie_word_embeddings:
        out["lm_head.weight"] = (v, h)
    for n in range(cfg.num_hidden_layers):
        p = f"model.layers.{n}."
        out |= {p + "input_layernorm.weight": (h,), p + "post_attention_layernorm.weight": (h,),
                p + "self_attn.q_proj.weight": (q, h), p + "self_attn.k_proj.weight": (kv, h),
                p + "self_attn.v_proj.weight": (kv, h), p + "self_attn.o_proj.weight": (h, q),
                p + "mlp.gate_proj.weight": (i, h), p + "mlp.up_proj.weight": (i, h), p + "mlp.down_proj.weight": (h, i)}
        if cfg.attention_bias:
            out |= {p + "self_attn.q_proj.bias": (q,), p + "self_attn.k_proj.bias": (kv,), p + "self_attn.v_proj.bias": (kv,)}
        if cfg.qk_norm:
            out |= {p + "self_attn.q_norm.weight": (hd,), p + "self_attn.k_norm.weight": (hd,)}
    return out


def parameter_count(cfg) -> int:
    return sum(math.prod(shape) for shape in weight_shapes(cfg).values())
