"""Tiny random checkpoints in Hugging Face layout, written once per test session."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
import pytest_lsp
from lsp_support import FAST, SERVER, capabilities, record
from lsprotocol import types as t
from pytest_lsp import ClientServerConfig, LanguageClient

from dcoder.engine.model_config import ModelConfig
from dcoder.evaluation.synthetic import SPECIAL_TOKENS, VARIABLE_LENGTH_TOKENS, train_tokenizer, write_random_checkpoint

# The sample file the Python, Neovim and VS Code tests share.
SAMPLE = (Path(__file__).parent / "data" / "sample.py").read_text(encoding="utf-8")


def tiny_config(vocab_size: int, **over) -> ModelConfig:
    base = dict(vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                rope_theta=10000.0, model_type="Dream", shift_logits=True)
    base.update(over)
    return ModelConfig(**base)


def tokenizer_texts() -> list[str]:
    import argparse
    import difflib
    return [inspect.getsource(m) for m in (argparse, difflib, json)] + [SAMPLE]


@pytest.fixture(scope="session", autouse=True)
def cache_folder(tmp_path_factory):
    """Records of verified model weights go to a folder of the test run (servers and commands started
    by the tests inherit it), not to the user's cache."""
    import os

    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def tokenizer_json(tmp_path_factory) -> Path:
    return train_tokenizer(tokenizer_texts(), 600, tmp_path_factory.mktemp("tok"))


@pytest.fixture(scope="session")
def growing_tokenizer_json(tmp_path_factory) -> Path:
    """The same, with DreamOn's <|expand|> and <|delete|> after the engine's three (ids 3 and 4)."""
    return train_tokenizer(tokenizer_texts(), 600, tmp_path_factory.mktemp("tok-growing"), SPECIAL_TOKENS + VARIABLE_LENGTH_TOKENS)


@pytest.fixture(scope="session")
def family_ckpt(tmp_path_factory):
    """family_ckpt("llada" | "open-dcoder" | "coda" | "dreamon") -> a tiny checkpoint in that
    family's released file layout (tests/family_layouts.py), written once per session."""
    from family_layouts import write_checkpoint

    made: dict[str, Path] = {}

    def get(family: str) -> Path:
        if family not in made:
            made[family] = write_checkpoint(family, tmp_path_factory.mktemp(family) / "ckpt", tokenizer_texts())
        return made[family]

    return get


def _vocab(tokenizer_json: Path) -> int:
    from tokenizers import Tokenizer
    return Tokenizer.from_file(str(tokenizer_json)).get_vocab_size(with_added_tokens=True)


@pytest.fixture(scope="session")
def dream_files(tmp_path_factory, tokenizer_json) -> Path:
    """Dream-style: logits shifted by one, untied head, one safetensors file. Reading or exporting
    it needs no PyTorch."""
    return write_random_checkpoint(tmp_path_factory.mktemp("dream"), tiny_config(_vocab(tokenizer_json)), tokenizer_json)


@pytest.fixture(scope="session")
def llada_files(tmp_path_factory, tokenizer_json) -> Path:
    """LLaDA-style prediction in place, tied embeddings, sharded weights."""
    cfg = tiny_config(_vocab(tokenizer_json), model_type="qwen2", shift_logits=False, tie_word_embeddings=True)
    return write_random_checkpoint(tmp_path_factory.mktemp("llada"), cfg, tokenizer_json, seed=1, sharded=True)


@pytest.fixture(scope="session")
def dreamon_files(tmp_path_factory, growing_tokenizer_json) -> Path:
    """DreamOn-style: Dream's shifted logits, and a tokenizer with expand and delete tokens."""
    cfg = tiny_config(_vocab(growing_tokenizer_json))
    return write_random_checkpoint(tmp_path_factory.mktemp("dreamon"), cfg, growing_tokenizer_json, seed=2)


# Running a checkpoint itself takes PyTorch, which the test extra leaves out: those tests skip without it.
@pytest.fixture(scope="session")
def dream_ckpt(dream_files) -> Path:
    pytest.importorskip("torch")
    return dream_files


@pytest.fixture(scope="session")
def llada_ckpt(llada_files) -> Path:
    pytest.importorskip("torch")
    return llada_files


@pytest.fixture(scope="session")
def dreamon_ckpt(dreamon_files) -> Path:
    pytest.importorskip("torch")
    return dreamon_files


@pytest.fixture()
def sample_file(tmp_path) -> Path:
    p = tmp_path / "sample.py"
    p.write_text(SAMPLE, encoding="utf-8")
    return p


@pytest.fixture(scope="session")
def exported(tmp_path_factory, dream_files, llada_files, dreamon_files):
    """exported("dream" | "llada" | "dreamon", dtype) -> that checkpoint's ONNX folder, exported once per session."""
    from dcoder.engine.export import export

    ckpts = {"dream": dream_files, "llada": llada_files, "dreamon": dreamon_files}
    made: dict[tuple[str, str], Path] = {}

    def get(name: str, dtype: str = "fp32") -> Path:
        if (name, dtype) not in made:
            made[name, dtype] = export(ckpts[name], tmp_path_factory.mktemp("onnx") / f"{name}-{dtype}", dtype)
        return made[name, dtype]

    return get


@pytest.fixture(scope="module")
def engine(dream_ckpt):
    """The tiny Dream checkpoint, loaded once per test module."""
    from dcoder.engine.load import load_engine

    return load_engine(dream_ckpt)


# ---- language servers (tests/lsp_support.py has the client side) ----------------------------

@pytest.fixture(scope="module")
def model(exported):
    return str(exported("dream", "fp32"))


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER), scope="module")
async def client(lsp_client: LanguageClient, model):
    record(lsp_client)
    lsp_client.init_result = await lsp_client.initialize_session(t.InitializeParams(
        capabilities=capabilities(), initialization_options={"model": model, "provider": "cpu", **FAST}))
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER), scope="module", params=["utf-8", "utf-32"])
async def other_client(lsp_client: LanguageClient, request, model):
    """A client that prefers another position encoding; settings nested under "dcoder"."""
    record(lsp_client)
    lsp_client.encoding = request.param
    lsp_client.init_result = await lsp_client.initialize_session(t.InitializeParams(
        capabilities=capabilities([request.param, "utf-16"]),
        initialization_options={"dcoder": {"model": model, "steps": 8}}))
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER), scope="module")
async def broken_client(lsp_client: LanguageClient, tmp_path_factory):
    folder = tmp_path_factory.mktemp("broken")
    (folder / "manifest.json").write_text("{not json", encoding="utf-8")
    record(lsp_client)
    lsp_client.broken = str(folder)
    await lsp_client.initialize_session(t.InitializeParams(
        capabilities=capabilities(), initialization_options={"model": str(folder), "steps": "many", "colour": 1}))
    yield
    await lsp_client.shutdown_session()
