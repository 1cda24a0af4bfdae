"""Our bidirectional model against transformers' own Qwen2 with a full (non-causal) mask."""

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from dcoder.engine.checkpoint import open_checkpoint  # noqa: E402
from dcoder.engine.torch_backend import load_model, load_state_dict  # noqa: E402


def reference_model(ckpt):
    cfg = ckpt.config
    hf_cfg = transformers.Qwen2Config(
        vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_hidden_layers, num_attention_heads=cfg.num_attention_heads,
        num_key_value_heads=cfg.num_key_value_heads, max_position_embeddings=cfg.max_position_embeddings,
        rms_norm_eps=cfg.rms_norm_eps, rope_theta=cfg.rope_theta, tie_word_embeddings=cfg.tie_word_embeddings,
        attn_implementation="eager",
    )
    ref = transformers.Qwen2ForCausalLM(hf_cfg).eval()
    state = load_state_dict(ckpt)
    missing, unexpected = ref.load_state_dict(state, strict=False)
    assert not unexpected
    assert all(k == "lm_head.weight" for k in missing) and (not missing or cfg.tie_word_embeddings)
    return ref


def full_attention_logits(ref, ids):
    b, t = ids.shape
    zeros = torch.zeros(b, 1, t, t)
    with torch.no_grad():
        return ref(input_ids=ids, attention_mask={"full_attention": zeros}).logits


@pytest.mark.parametrize("fixture", ["dream_ckpt", "llada_ckpt"])
def test_logits_match_transformers_qwen2(fixture, request):
    ckpt = open_checkpoint(request.getfixturevalue(fixture))
    ours = load_model(ckpt)
    ref = reference_model(ckpt)
    ids = torch.randint(0, ckpt.config.vocab_size, (2, 37), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        mine = ours(ids)
    theirs = full_attention_logits(ref, ids)
    assert (mine - theirs).abs().max().item() <= 1e-4


def test_attention_is_bidirectional(dream_ckpt):
    """Changing a later token must change an earlier position's logits (no causal mask)."""
    model = load_model(open_checkpoint(dream_ckpt))
    ids = torch.arange(5, 25).unsqueeze(0)
    changed = ids.clone()
    changed[0, -1] = 3
    with torch.no_grad():
        assert (model(ids)[0, 0] - model(changed)[0, 0]).abs().max() > 1e-6


def test_cache_matches_full_pass(dream_ckpt):
    """Prefix+suffix keys/values (after rotary) from a full pass, fed back with the span's true
    positions, reproduce the full-pass logits of the span: the basis of the dual cache."""
    model = load_model(open_checkpoint(dream_ckpt))
    ids = torch.randint(0, 300, (1, 30), generator=torch.Generator().manual_seed(1))
    pos = torch.arange(30).unsqueeze(0)
    ctx = torch.cat([pos[:, :10], pos[:, 20:]], dim=1)[0]
    with torch.no_grad():
        full, kv = model(ids, return_cache=True)
        cache = [(k[:, :, ctx], v[:, :, ctx]) for k, v in kv]
        span = model(ids[:, 10:20], pos[:, 10:20], cache=cache)
    assert (span - full[:, 10:20]).abs().max().item() <= 1e-4
