"""LLaDA, Open-dCoder, CoDA and DreamOn checkpoints in their released layouts: read, run in
PyTorch against transformers' own models, exported and run with onnxruntime, infilled; and what
dcoder refuses about them."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from family_layouts import FAMILIES, reference, reference_logits  # noqa: E402

from dcoder.cli import main  # noqa: E402
from dcoder.engine.checkpoint import open_checkpoint  # noqa: E402
from dcoder.engine.export import export, unpack  # noqa: E402
from dcoder.engine.load import load_engine  # noqa: E402
from dcoder.engine.torch_backend import load_model  # noqa: E402
from dcoder.errors import DcoderError  # noqa: E402

# family -> (shifted logits, tied head, q/k bias, q/k norm)
FACTS = {"llada": (False, False, False, False), "open-dcoder": (True, True, True, False),
         "coda": (True, False, False, True), "dreamon": (True, False, True, False)}


@pytest.fixture(scope="module")
def onnx_folder(family_ckpt, tmp_path_factory):
    made = {}

    def get(family):
        if family not in made:
            made[family] = export(family_ckpt(family), tmp_path_factory.mktemp("onnx") / family)
        return made[family]

    return get


def ids_for(ckpt, batch=2, length=29, seed=0):
    return torch.randint(0, ckpt.config.vocab_size, (batch, length), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("family", FAMILIES)
def test_config_and_special_tokens_are_read(family, family_ckpt):
    ckpt = open_checkpoint(family_ckpt(family))
    cfg = ckpt.config
    assert (cfg.shift_logits, cfg.tie_word_embeddings, cfg.attention_bias, cfg.qk_norm) == FACTS[family]
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_key_value_heads) == (64, 2, 2)
    tok = ckpt.tokenizer()
    mask = {"llada": "<|mdm_mask|>", "open-dcoder": "<M>", "coda": "<|mask|>", "dreamon": "<|mask|>"}[family]
    assert ckpt.tokens.mask == tok.token_id(mask)
    assert ckpt.tokens.eos == tok.token_id("<|im_end|>" if family == "coda" else "<|endoftext|>")
    if family == "llada":  # its BOS is named in tokenizer_config.json only
        assert ckpt.tokens.bos == tok.token_id("<|startoftext|>")
    if family == "dreamon":
        assert (ckpt.tokens.expand, ckpt.tokens.delete) == (tok.token_id("<|expand|>"), tok.token_id("<|delete|>"))
    else:
        assert ckpt.tokens.expand is None and ckpt.tokens.delete is None


def test_reference_needs_the_full_mask(family_ckpt):
    """The all-zeros 4-D mask really turns transformers' causal mask off: a later token changes
    the first position's logits with it, and not without it."""
    ref = reference("llada", family_ckpt("llada"))
    ids = torch.arange(3, 23).unsqueeze(0)
    changed = ids.clone()
    changed[0, -1] = 5
    with torch.no_grad():
        assert torch.equal(ref(input_ids=ids).logits[0, 0], ref(input_ids=changed).logits[0, 0])
    assert (reference_logits(ref, ids)[0, 0] - reference_logits(ref, changed)[0, 0]).abs().max() > 1e-6


@pytest.mark.parametrize("family", FAMILIES)
def test_torch_logits_match_transformers(family, family_ckpt):
    folder = family_ckpt(family)
    ckpt = open_checkpoint(folder)
    ids = ids_for(ckpt)
    with torch.no_grad():
        ours = load_model(ckpt)(ids)
    theirs = reference_logits(reference(family, folder), ids)
    assert ours.shape == theirs.shape
    assert (ours - theirs).abs().max().item() <= 1e-4


@pytest.mark.parametrize("family", FAMILIES)
def test_exported_graphs_match_transformers(family, family_ckpt, onnx_folder):
    folder = family_ckpt(family)
    ckpt = open_checkpoint(folder)
    ids = ids_for(ckpt, seed=1)
    theirs = reference_logits(reference(family, folder), ids).numpy()
    positions = np.broadcast_to(np.arange(ids.shape[1]), ids.shape).copy()
    out = onnx_folder(family)
    full = ort.InferenceSession(str(out / "full.onnx"), providers=["CPUExecutionProvider"])
    logits = full.run(None, {"ids": ids.numpy(), "positions": positions})[0]
    assert np.abs(logits - theirs).max() <= 1e-4
    # the dual cache: context encoded once, the span run alone against it
    span, context = np.arange(10, 20), np.concatenate([np.arange(10), np.arange(20, ids.shape[1])])
    encode = ort.InferenceSession(str(out / "encode.onnx"), providers=["CPUExecutionProvider"])
    outs = encode.run(None, {"ids": ids.numpy(), "positions": positions, "rows": span, "context": context})
    ref_lp = torch.log_softmax(torch.from_numpy(theirs), -1).numpy()
    assert np.abs(outs[0] - ref_lp[:, span]).max() <= 1e-4
    feed = {"ids": ids.numpy()[:, span], "positions": positions[:, span], "rows": np.arange(len(span)),
            "mask": np.ones((len(ids), ids.shape[1]), dtype=bool)}  # context and span: all of the sequence
    for i in range(ckpt.config.num_hidden_layers):
        feed[f"past_key_{i}"], feed[f"past_value_{i}"] = outs[1 + 2 * i], outs[2 + 2 * i]
    step = ort.InferenceSession(str(out / "step.onnx"), providers=["CPUExecutionProvider"]).run(None, feed)[0]
    assert np.abs(step - ref_lp[:, span]).max() <= 1e-4


@pytest.mark.parametrize("family", FAMILIES)
def test_manifest_records_the_family(family, family_ckpt, onnx_folder):
    manifest = json.loads((onnx_folder(family) / "manifest.json").read_text())
    ckpt = open_checkpoint(family_ckpt(family))
    assert manifest["shift_logits"] is FACTS[family][0]
    assert manifest["special_tokens"]["mask"] == ckpt.tokens.mask
    assert manifest["special_tokens"]["expand"] == ckpt.tokens.expand
    assert manifest["model"]["parameters"] == load_model(ckpt).num_parameters()


@pytest.mark.parametrize("family", FAMILIES)
def test_infill_is_the_same_through_onnx_and_torch(family, family_ckpt, onnx_folder):
    from dcoder.config import SamplerConfig
    from dcoder.infill import InfillOptions, infill

    text = "def add(a, b):\n    return \n\nprint(add(1, 2))\n"
    at = text.index("return ") + len("return ")
    options = InfillOptions(sampler=SamplerConfig(steps=4), exact_length=4, repair_rounds=0, search_tokens=0)
    raw = infill(load_engine(family_ckpt(family)), text, [(at, at)], options)
    onnx = infill(load_engine(onnx_folder(family), device="cpu", cache_refresh=1), text, [(at, at)], options)
    assert raw.generated_tokens == onnx.generated_tokens == 4
    assert [e.text for e in raw.edits] == [e.text for e in onnx.edits]


@pytest.mark.parametrize("family", ["llada", "coda"])
def test_unpack_gives_the_family_layout_back(family, family_ckpt, onnx_folder, tmp_path):
    back = unpack(onnx_folder(family), tmp_path / "back")
    original = open_checkpoint(family_ckpt(family))
    again = open_checkpoint(back)
    assert again.config == original.config and again.family == original.family
    ids = ids_for(original, seed=2)
    with torch.no_grad():
        assert torch.equal(load_model(original)(ids), load_model(again)(ids))


def _broken(family_ckpt, tmp_path, family, edit):
    folder = tmp_path / family
    shutil.copytree(family_ckpt(family), folder)
    cfg = json.loads((folder / "config.json").read_text())
    edit(cfg, folder)
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


def _remove_mask(cfg, folder):
    tok_cfg = json.loads((folder / "tokenizer_config.json").read_text())
    del tok_cfg["mask_token"]
    (folder / "tokenizer_config.json").write_text(json.dumps(tok_cfg))
    (folder / "special_tokens_map.json").unlink()
    tok = json.loads((folder / "tokenizer.json").read_text())
    tok["added_tokens"] = [t for t in tok["added_tokens"] if t["content"] != "<M>"]
    (folder / "tokenizer.json").write_text(json.dumps(tok))


BROKEN = {
    "unknown family": ("llada", lambda c, f: c.update(model_type="mistral"), "unsupported model_type 'mistral'"),
    "alibi": ("llada", lambda c, f: c.update(alibi=True), "config.json alibi is True"),
    "block type": ("llada", lambda c, f: c.update(block_type="sequential"), "block_type"),
    "no d_model": ("llada", lambda c, f: c.pop("d_model"), "config.json lacks d_model"),
    "no mask token": ("open-dcoder", _remove_mask, "declares no mask token"),
    "shape mismatch": ("coda", lambda c, f: c.update(intermediate_size=80), "weight model.layers.0.mlp.gate_proj.weight has shape (96, 64), config.json implies (80, 64)"),
    "untied without head": ("open-dcoder", lambda c, f: c.update(tie_word_embeddings=False), "lacks weight lm_head"),
    "pickle only": ("coda", lambda c, f: [p.unlink() for p in f.glob("model*")] + [(f / "pytorch_model.bin").write_bytes(b"x")],
                    "only pickle weights"),
}


@pytest.mark.parametrize("case", BROKEN)
def test_bad_checkpoints_give_one_line(case, family_ckpt, tmp_path, capsys):
    family, edit, needle = BROKEN[case]
    folder = _broken(family_ckpt, tmp_path, family, edit)
    with pytest.raises(DcoderError, match=re.escape(needle)):
        open_checkpoint(folder)
    assert main(["export", str(folder), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dcoder: error:") and needle in err[0]
    assert not (tmp_path / "out").exists() and [p.name for p in tmp_path.iterdir()] == [family]
