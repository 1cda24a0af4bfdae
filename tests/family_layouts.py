"""Tiny random checkpoints in each family's exact released file layout, and independent references.

The config.json keys, weight names and tokenizer files copy the released checkpoints
(GSAI-ML/LLaDA-8B-Base, fredzzp/open-dcoder-0.5B, Salesforce/CoDA-v0-Instruct, Dream-org/DreamOn-v0-7B)
at toy sizes. They are written here by hand, not through dcoder.engine.families, so that a wrong mapping
there shows up as a logit mismatch against transformers' own Llama / Qwen2 / Qwen3.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

H, INTER, LAYERS, HEADS, KV = 64, 96, 2, 4, 2
HD = H // HEADS
PAD_VOCAB = 8  # released configs pad the vocabulary past the tokenizer

# family -> special tokens the tokenizer starts with (added tokens like <M> come after training)
SPECIALS = {
    "dreamon": ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|mask|>", "<|expand|>", "<|delete|>"),
    "open-dcoder": ("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
    "coda": ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|mask|>"),
    "llada": ("<|startoftext|>", "<|endoftext|>", "<|eot_id|>", "<|mdm_mask|>"),
}
FAMILIES = tuple(SPECIALS)


def _tokenizer(family: str, texts: list[str], out: Path) -> dict[str, int]:
    from tokenizers import AddedToken, Tokenizer

    from dcoder.evaluation.synthetic import train_tokenizer

    path = train_tokenizer(texts, 500, out, SPECIALS[family])
    tok = Tokenizer.from_file(str(path))
    if family == "open-dcoder":  # Open-dLLM's training script adds <M> to Qwen2.5's tokenizer
        tok.add_special_tokens([AddedToken("<M>", special=True, normalized=False)])
        tok.save(str(path))
    return {t: tok.token_to_id(t) for t in (*SPECIALS[family], "<M>") if tok.token_to_id(t) is not None} | {
        "__size__": tok.get_vocab_size(with_added_tokens=True)}


def _qwen_layer(p: str, bias: bool, qk_norm: bool) -> dict[str, tuple]:
    out = {p + "input_layernorm.weight": (H,), p + "post_attention_layernorm.weight": (H,),
           p + "self_attn.q_proj.weight": (HEADS * HD, H), p + "self_attn.k_proj.weight": (KV * HD, H),
           p + "self_attn.v_proj.weight": (KV * HD, H), p + "self_attn.o_proj.weight": (H, HEADS * HD),
           p + "mlp.gate_proj.weight": (INTER, H), p + "mlp.up_proj.weight": (INTER, H),
           p + "mlp.down_proj.weight": (H, INTER)}
    if bias:
        out |= {p + "self_attn.q_proj.bias": (HEADS * HD,), p + "self_attn.k_proj.bias": (KV * HD,),
                p + "self_attn.v_proj.bias": (KV * HD,)}
    if qk_norm:
        out |= {p + "self_attn.q_norm.weight": (HD,), p + "self_attn.k_norm.weight": (HD,)}
    return out


def _llada_layer(p: str) -> dict[str, tuple]:
    return {p + "attn_norm.weight": (H,), p + "ff_norm.weight": (H,), p + "q_proj.weight": (HEADS * HD, H),
            p + "k_proj.weight": (KV * HD, H), p + "v_proj.weight": (KV * HD, H), p + "attn_out.weight": (H, H),
            p + "ff_proj.weight": (INTER, H), p + "up_proj.weight": (INTER, H), p + "ff_out.weight": (H, INTER)}


def layout(family: str, ids: dict[str, int]) -> tuple[dict, dict[str, tuple], dict[str, dict]]:
    """(config.json, weight name -> shape, other tokenizer files) of ``family``."""
    vocab = ids["__size__"] + PAD_VOCAB
    if family == "llada":
        config = {
            "activation_type": "silu", "alibi": False, "alibi_bias_max": 8.0, "architectures": ["LLaDAModelLM"],
            "attention_dropout": 0.0, "attention_layer_norm": False, "attention_layer_norm_with_affine": True,
            "auto_map": {"AutoConfig": "configuration_llada.LLaDAConfig",
                         "AutoModel": "modeling_llada.LLaDAModelLM"},
            "bias_for_layer_norm": False, "block_group_size": 1, "block_type": "llama", "d_model": H,
            "embedding_dropout": 0.0, "embedding_size": vocab, "eos_token_id": ids["<|endoftext|>"],
            "flash_attention": False, "include_bias": False, "include_qkv_bias": False, "init_cutoff_factor": None,
            "init_device": "meta", "init_fn": "mitchell", "init_std": 0.02, "input_emb_norm": False,
            "layer_norm_type": "rms", "layer_norm_with_affine": True, "mask_token_id": ids["<|mdm_mask|>"],
            "max_sequence_length": 512, "mlp_hidden_size": INTER, "mlp_ratio": 4, "model_type": "llada",
            "multi_query_attention": None, "n_heads": HEADS, "n_kv_heads": KV, "n_layers": LAYERS,
            "pad_token_id": ids["<|endoftext|>"], "precision": "amp_bf16", "residual_dropout": 0.0,
            "rms_norm_eps": 1e-05, "rope": True, "rope_full_precision": True, "rope_theta": 500000.0,
            "scale_logits": False, "transformers_version": "4.46.3", "use_cache": False, "vocab_size": vocab,
            "weight_tying": False,
        }
        weights = {"model.transformer.wte.weight": (vocab, H), "model.transformer.ln_f.weight": (H,),
                   "model.transformer.ff_out.weight": (vocab, H)}
        for i in range(LAYERS):
            weights |= _llada_layer(f"model.transformer.blocks.{i}.")
        files = {"tokenizer_config.json": {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
                                           "tokenizer_class": "PreTrainedTokenizerFast"}}
        return config, weights, files
    qwen = {"hidden_act": "silu", "hidden_size": H, "initializer_range": 0.02, "intermediate_size": INTER,
            "max_position_embeddings": 512, "num_attention_heads": HEADS, "num_hidden_layers": LAYERS,
            "num_key_value_heads": KV, "rms_norm_eps": 1e-06, "rope_scaling": None, "rope_theta": 1000000.0,
            "sliding_window": None, "use_cache": True, "use_sliding_window": False, "vocab_size": vocab,
            "attention_dropout": 0.0, "max_window_layers": LAYERS, "transformers_version": "4.46.2"}
    if family == "dreamon":
        config = qwen | {"architectures": ["DreamModel"], "model_type": "Dream", "torch_dtype": "bfloat16",
                         "auto_map": {"AutoConfig": "configuration_dream.DreamConfig",
                                      "AutoModel": "modeling_dream.DreamModel"},
                         "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|endoftext|>"],
                         "pad_token_id": ids["<|endoftext|>"], "mask_token_id": ids["<|mask|>"],
                         "tie_word_embeddings": False}
        bias, qk_norm, tied = True, False, False
        files = {"tokenizer_config.json": {"mask_token": "<|mask|>", "eos_token": "<|endoftext|>",
                                           "pad_token": "<|endoftext|>"}}
    elif family == "open-dcoder":
        config = qwen | {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "torch_dtype": "float32",
                         "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|endoftext|>"],
                         "tie_word_embeddings": True}
        bias, qk_norm, tied = True, False, True
        special = {"content": "<M>", "lstrip": False, "normalized": False, "rstrip": False, "single_word": False}
        files = {"tokenizer_config.json": {"mask_token": "<M>", "eos_token": "<|endoftext|>",
                                           "pad_token": "<|endoftext|>", "tokenizer_class": "Qwen2Tokenizer"},
                 "special_tokens_map.json": {"mask_token": special, "eos_token": "<|endoftext|>"},
                 "added_tokens.json": {"<M>": ids["<M>"]}}
    else:  # coda: CoDALanguageModel/config.json has no tie_word_embeddings and ships lm_head
        config = {k: v for k, v in qwen.items() if k != "use_cache"} | {
            "architectures": ["CoDALanguageModel"], "model_type": "CoDA", "attention_bias": False,
            "attention_kernel": "flash_attention", "head_dim": HD,
            "auto_map": {"AutoConfig": "model_config.CoDAConfig", "AutoModel": "modeling_coda.CoDALanguageModel"},
            "block_masking_probability": [0.25, 0.5], "mask_block_sizes": [4, 8], "sampling_eps": [0.001, 0.25],
            "mask_token_id": ids["<|mask|>"], "pad_token_id": ids["<|endoftext|>"], "torch_dtype": "float32",
            "prefix_probability": 0, "truncate_probability": 0}
        bias, qk_norm, tied = False, True, False
        files = {"tokenizer_config.json": {"mask_token": "<|mask|>", "eos_token": "<|im_end|>",
                                           "bos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}}
    weights = {"model.embed_tokens.weight": (vocab, H), "model.norm.weight": (H,)}
    if not tied:
        weights["lm_head.weight"] = (vocab, H)
    for i in range(LAYERS):
        weights |= _qwen_layer(f"model.layers.{i}.", bias, qk_norm)
    return config, weights, files


def write_checkpoint(family: str, out: Path, texts: list[str], seed: int = 0) -> Path:
    """The family's tiny checkpoint: config.json, tokenizer files, sharded safetensors (bf16 for
    LLaDA and DreamOn, which ship bf16) with an index."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    ids = _tokenizer(family, texts, out)
    config, weights, files = layout(family, ids)
    (out / "config.json").write_text(json.dumps(config, indent=2))
    for name, data in files.items():
        (out / name).write_text(json.dumps(data, indent=2))
    dtype = torch.bfloat16 if family in ("llada", "dreamon") else torch.float32
    g = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, shape in weights.items():
        t = torch.randn(shape, generator=g) * 0.02
        tensors[name] = (1 + t * 5 if name.endswith("norm.weight") else t).to(dtype)
    names = sorted(tensors)
    shards = [names[: len(names) // 2], names[len(names) // 2:]]
    weight_map = {}
    for k, part in enumerate(shards):
        file = f"model-{k + 1:05d}-of-00002.safetensors"
        save_file({n: tensors[n] for n in part}, str(out / file), metadata={"format": "pt"})
        weight_map |= dict.fromkeys(part, file)
    (out / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return out


# ---- independent references: transformers' models with the family's weights ------------------

LLADA_TO_LLAMA = {"attn_norm": "input_layernorm", "ff_norm": "post_attention_layernorm",
                  "q_proj": "self_attn.q_proj", "k_proj": "self_attn.k_proj", "v_proj": "self_attn.v_proj",
                  "attn_out": "self_attn.o_proj", "ff_proj": "mlp.gate_proj", "up_proj": "mlp.up_proj",
                  "ff_out": "mlp.down_proj"}


def _llama_name(name: str) -> str:
    outer = {"model.transformer.wte.weight": "model.embed_tokens.weight", "model.transformer.ln_f.weight":
             "model.norm.weight", "model.transformer.ff_out.weight": "lm_head.weight"}
    if name in outer:
        return outer[name]
    _, _, _, i, module, leaf = name.split(".")
    return f"model.layers.{i}.{LLADA_TO_LLAMA[module]}.{leaf}"


def reference(family: str, folder: Path):
    """transformers' own model for the checkpoint, weights read with safetensors directly."""
    import transformers
    from safetensors.torch import load_file

    config = json.loads((folder / "config.json").read_text())
    state = {}
    for f in sorted(folder.glob("*.safetensors")):
        state |= {k: v.float() for k, v in load_file(str(f)).items()}
    common = dict(hidden_size=H, intermediate_size=INTER, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                  num_key_value_heads=KV, max_position_embeddings=512, attn_implementation="eager")
    vocab = config["vocab_size"]
    if family == "llada":
        cfg = transformers.LlamaConfig(vocab_size=vocab, rms_norm_eps=1e-5, rope_theta=500000.0,
                                       attention_bias=False, mlp_bias=False, tie_word_embeddings=False, **common)
        model, state = transformers.LlamaForCausalLM(cfg), {_llama_name(k): v for k, v in state.items()}
    elif family == "coda":
        cfg = transformers.Qwen3Config(vocab_size=vocab, rms_norm_eps=1e-6, rope_theta=1e6, head_dim=HD,
                                       attention_bias=False, tie_word_embeddings=False, **common)
        model = transformers.Qwen3ForCausalLM(cfg)
    else:
        cfg = transformers.Qwen2Config(vocab_size=vocab, rms_norm_eps=1e-6, rope_theta=1e6,
                                       tie_word_embeddings=config["tie_word_embeddings"], **common)
        model = transformers.Qwen2ForCausalLM(cfg)
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and set(missing) <= {"lm_head.weight"}, (missing, unexpected)
    if cfg.tie_word_embeddings:
        model.tie_weights()
    return model.eval()


def reference_logits(model, ids: torch.Tensor) -> torch.Tensor:
    """Logits with every position attending to every other: a 4-D all-zeros additive mask
    replaces the causal one (checked against a causal pass in test_families)."""
    b, t = ids.shape
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=torch.zeros(b, 1, t, t)).logits
