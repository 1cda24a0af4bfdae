"""A Hugging Face checkpoint folder: config.json, tokenizer.json and safetensors weights.

Only safetensors are read: pickle-based formats (.bin, .pt, .pth, .ckpt) can run code
when loaded, so a folder that has only those is refused.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from dcoder.config import ModelConfig, SpecialTokens, read_json
from dcoder.errors import DcoderError
from dcoder.tokenizer import DELETE_NAMES, EOS_NAMES, EXPAND_NAMES, MASK_NAMES, SPAN_PAD_NAMES, Tokenizer

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
INDEX_NAME = "model.safetensors.index.json"


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    config: ModelConfig
    tokens: SpecialTokens
    weight_files: tuple[Path, ...]
    raw_config: dict

    @property
    def tokenizer_path(self) -> Path:
        return self.path / "tokenizer.json"

    def tokenizer(self) -> Tokenizer:
        return Tokenizer(self.tokenizer_path)

    def content_hash(self) -> str:
        """sha256 over config, tokenizer and weight files (names and bytes), streamed."""
        h = hashlib.sha256()
        for f in (self.path / "config.json", self.tokenizer_path, *self.weight_files):
            h.update(f.name.encode())
            with f.open("rb") as fh:
                while chunk := fh.read(1 << 22):
                    h.update(chunk)
        return h.hexdigest()


def _inside(folder: Path, name: str) -> Path:
    path = (folder / name).resolve()
    if folder.resolve() not in path.parents:
        raise DcoderError(f"checkpoint index names a file outside the folder: {name!r}")
    return path


def weight_files(folder: Path) -> tuple[Path, ...]:
    index = folder / INDEX_NAME
    if index.exists():
        weight_map = read_json(index, "safetensors index").get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise DcoderError(f"{index} has no weight_map")
        files = tuple(_inside(folder, n) for n in sorted(set(weight_map.values())))
        for f in files:
            if not f.is_file():
                raise DcoderError(f"checkpoint shard missing: {f}")
        return files
    single = folder / "model.safetensors"
    if single.is_file():
        return (single,)
    shards = tuple(sorted(folder.glob("*.safetensors")))
    if shards:
        return shards
    if any(p.suffix in PICKLE_SUFFIXES for p in folder.iterdir()):
        raise DcoderError(
            f"{folder} holds only pickle weights (.bin/.pt); dcoder loads safetensors only "
            "(convert them with safetensors' convert script from a trusted environment)"
        )
    raise DcoderError(f"no safetensors weights in {folder}")


def special_tokens(raw: dict, tok: Tokenizer, folder: Path) -> SpecialTokens:
    """Read the special ids the checkpoint declares, falling back to well-known token names."""
    tok_cfg = {}
    if (folder / "tokenizer_config.json").exists():
        tok_cfg = read_json(folder / "tokenizer_config.json", "tokenizer_config.json")

    def declared(id_key: str, name_key: str, names: tuple[str, ...]) -> int | None:
        value = raw.get(id_key)
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, int):
            return value
        name = tok_cfg.get(name_key)
        if isinstance(name, dict):
            name = name.get("content")
        if isinstance(name, str) and tok.token_id(name) is not None:
            return tok.token_id(name)
        return tok.first_token_id(names)

    mask = declared("mask_token_id", "mask_token", MASK_NAMES)
    eos = declared("eos_token_id", "eos_token", EOS_NAMES)
    # The span-ending pad: DiffuCoder's <|dlm_pad|> when present, else the declared pad token.
    span_pad = raw.get("span_pad_token_id")
    if not isinstance(span_pad, int):
        span_pad = tok.first_token_id(SPAN_PAD_NAMES[:1]) or declared("pad_token_id", "pad_token", SPAN_PAD_NAMES)
    bos = raw.get("bos_token_id")
    # DreamOn's variable-length tokens where the checkpoint has them: by id in config.json, else by name
    expand, delete = (raw[key] if isinstance(raw.get(key), int) else tok.first_token_id(names)
                      for key, names in (("expand_token_id", EXPAND_NAMES), ("delete_token_id", DELETE_NAMES)))
    missing = [n for n, v in (("mask", mask), ("end-of-text", eos), ("span padding", span_pad)) if v is None]
    if missing:
        raise DcoderError(f"checkpoint {folder} declares no {' / '.join(missing)} token")
    return SpecialTokens(mask=mask, span_pad=span_pad, eos=eos, bos=bos if isinstance(bos, int) else None,
                         expand=expand, delete=delete)


def open_checkpoint(path: str | Path) -> Checkpoint:
    folder = Path(path)
    if not folder.exists():
        raise DcoderError(f"model folder not found: {folder}")
    if not folder.is_dir():
        raise DcoderError(f"model path is not a folder: {folder}")
    raw = read_json(folder / "config.json", "config.json")
    config = ModelConfig.from_hf_dict(raw)
    files = weight_files(folder)
    tok = Tokenizer(folder / "tokenizer.json")
    tokens = special_tokens(raw, tok, folder)
    for name, tid in (("mask", tokens.mask), ("span padding", tokens.span_pad), ("end-of-text", tokens.eos),
                      ("expand", tokens.expand), ("delete", tokens.delete)):
        if tid is not None and not 0 <= tid < config.vocab_size:
            raise DcoderError(f"{name} token id {tid} is outside the vocabulary ({config.vocab_size})")
    return Checkpoint(path=folder, config=config, tokens=tokens, weight_files=files, raw_config=raw)
