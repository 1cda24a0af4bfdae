"""A bidirectional Qwen2-architecture transformer (Dream, DiffuCoder, Open-dCoder; with switches
for Qwen3's per-head q/k norm and bias-free projections, CoDA and LLaDA too).

Parameter names follow Hugging Face's Qwen2 layout (``model.layers.N.self_attn.q_proj.weight``);
families that name weights otherwise are mapped in ``dcoder/families.py``. Attention is full
(no causal mask): every position sees the whole sequence, which is what masked diffusion needs;
training can ask for a causal mask to pretrain autoregressively before adapting to diffusion.

Keys and values can be returned and fed back (``cache``) so a caller can encode the fixed
context once and then run only the span: keys are cached after rotary embedding, so a span
placed anywhere in the document attends to them correctly as long as its true positions are given.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dcoder.engine.model_config import ModelConfig

KV = tuple[torch.Tensor, torch.Tensor]


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


def rotary(positions: torch.Tensor, head_dim: int, theta: float, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin of shape (B, 1, T, head_dim) for the rotate-half form."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32, device=positions.device) / head_dim))
    angles = positions.float()[..., None] * inv_freq
    emb = torch.cat((angles, angles), dim=-1)[:, None]
    return emb.cos().to(dtype), emb.sin().to(dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Attention(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.n_head = config.num_attention_heads
        self.n_kv = config.num_key_value_heads
        self.head_dim = config.head_dim
        hd = self.head_dim
        bias = config.attention_bias
        self.q_proj = nn.Linear(config.hidden_size, self.n_head * hd, bias=bias)
        self.k_proj = nn.Linear(config.hidden_size, self.n_kv * hd, bias=bias)
        self.v_proj = nn.Linear(config.hidden_size, self.n_kv * hd, bias=bias)
        self.o_proj = nn.Linear(self.n_head * hd, config.hidden_size, bias=False)
        if config.qk_norm:
            self.q_norm = RMSNorm(hd, config.rms_norm_eps)
            self.k_norm = RMSNorm(hd, config.rms_norm_eps)
        self.qk_norm = config.qk_norm

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, past: KV | None,
                causal: bool = False) -> tuple[torch.Tensor, KV]:
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.n_head, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.n_kv, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.n_kv, self.head_dim).transpose(1, 2)
        if self.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        new = (k, v)
        if past is not None:
            k = torch.cat((past[0], k), dim=2)
            v = torch.cat((past[1], v), dim=2)
        groups = self.n_head // self.n_kv
        if groups > 1:
            k = k.repeat_interleave(groups, dim=1)
            v = v.repeat_interleave(groups, dim=1)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        y = y.transpose(1, 2).reshape(b, t, self.n_head * self.head_dim)
        return self.o_proj(y), new


class MLP(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.self_attn = Attention(config)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.mlp = MLP(config)

    def forward(self, x, cos, sin, past, causal=False):
        a, kv = self.self_attn(self.input_layernorm(x), cos, sin, past, causal)
        x = x + a
        x = x + self.mlp(self.post_attention_layernorm(x))
        return x, kv


class Backbone(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(Block(config) for _ in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)


class DiffusionLM(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.model = Backbone(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def forward(
        self,
        ids: torch.Tensor,
        positions: torch.Tensor | None = None,
        cache: list[KV] | None = None,
        return_cache: bool = False,
        window: tuple[int, int] | None = None,
        causal: bool = False,
        rows: torch.Tensor | None = None,
    ):
        """Logits (B, T, V) for ``ids`` (B, T); ``positions`` default to 0..T-1.

        ``cache`` holds per-layer (keys, values) of other tokens of the same sequences that
        ``ids`` attend to; with ``return_cache`` the keys/values of ``ids`` come back too.
        ``window`` = (a, b) computes logits for positions a..b-1 only: the LM head is the
        costliest matmul for large vocabularies, and the sampler needs only the span.
        ``causal`` masks attention to earlier positions: autoregressive pretraining only.
        ``rows`` (B, T) bool gives logits (N, V) for those positions only (training scores few).
        """
        b, t = ids.shape
        if positions is None:
            positions = torch.arange(t, device=ids.device).expand(b, t)
        x = self.model.embed_tokens(ids)
        cos, sin = rotary(positions, self.config.head_dim, self.config.rope_theta, x.dtype)
        new_cache = []
        for i, layer in enumerate(self.model.layers):
            x, kv = layer(x, cos, sin, cache[i] if cache is not None else None, causal)
            new_cache.append(kv)
        if window is not None:
            x = x[:, window[0]:window[1]]
        if rows is not None:
            x = x[rows]
        logits = self.lm_head(self.model.norm(x))
        return (logits, new_cache) if return_cache else logits

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
