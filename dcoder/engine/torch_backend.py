"""Run a checkpoint with PyTorch: for training, export, parity tests and un-exported checkpoints."""

from __future__ import annotations

import numpy as np

from dcoder.engine.checkpoint import Checkpoint
from dcoder.engine.sampler import shifted_window
from dcoder.errors import DcoderError

try:
    import torch
except ImportError:  # the runtime path works without torch; only this backend needs it
    torch = None

DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def require_torch():
    if torch is None:
        raise DcoderError(
            "this model folder is a raw checkpoint, which needs PyTorch: pip install 'dcoder-diffusion[torch]', "
            "or export it first with `dcoder export`"
        )
    return torch


def load_state_dict(ckpt: Checkpoint, dtype: str = "fp32") -> dict:
    """The weights dcoder's model reads, under its (Qwen2) names, whatever the family calls them
    (open_checkpoint has checked that all are there with the right shapes)."""
    require_torch()
    from safetensors import SafetensorError, safe_open

    from dcoder.engine.families import weight_shapes

    target = getattr(torch, DTYPES[dtype])
    wanted = {ckpt.family.checkpoint_name(k): k for k in weight_shapes(ckpt.config)}
    state = {}
    for f in ckpt.weight_files:
        try:
            with safe_open(str(f), framework="pt") as fh:
                for name in fh.keys():
                    if name in wanted:
                        state[wanted[name]] = fh.get_tensor(name).to(target)
        except (SafetensorError, OSError, RuntimeError) as exc:
            raise DcoderError(f"corrupt safetensors file {f.name}: {str(exc).splitlines()[0][:120]}") from None
    return state


def load_model(ckpt: Checkpoint, dtype: str = "fp32"):
    """The model with the checkpoint's weights, built without a throwaway random init."""
    require_torch()
    from dcoder.engine.model import DiffusionLM

    state = load_state_dict(ckpt, dtype)
    with torch.device("meta"):
        model = DiffusionLM(ckpt.config)
    expected = model.state_dict()
    if ckpt.config.tie_word_embeddings:
        expected.pop("lm_head.weight", None)
    missing = [k for k in expected if k not in state]
    if missing:
        raise DcoderError(f"checkpoint {ckpt.path} lacks weight {missing[0]} ({len(missing)} missing)")
    model.load_state_dict({k: state[k] for k in expected}, strict=False, assign=True)
    if ckpt.config.tie_word_embeddings:
        model.lm_head.weight = model.model.embed_tokens.weight
    return model.eval()


class TorchBackend:
    """Full forward pass at every step (no cache); the reference the ONNX runtime is checked against."""

    name = "torch"

    def __init__(self, model, shift: bool, device: str = "cpu"):
        self.model = model.to(device)
        self.shift = shift
        self.device = device

    def predict(self, ids: np.ndarray, lo: int, hi: int, step: int, cols: np.ndarray | None = None) -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int64)).to(self.device)
            logits = self.model(x, window=shifted_window(lo, hi, self.shift))
            if cols is not None:
                logits = logits[:, torch.from_numpy(np.asarray(cols, dtype=np.int64)).to(self.device)]
            return torch.log_softmax(logits.float(), dim=-1).cpu().numpy()
