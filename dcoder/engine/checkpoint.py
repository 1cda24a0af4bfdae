"""A Hugging Face checkpoint folder: config.json, tokenizer.json and safetensors weights.

Only safetensors are read: pickle-based formats (.bin, .pt, .pth, .ckpt) can run code
when loaded, so a folder that has only those is refused.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, replace
from pathlib import Path

from dcoder.config import SpecialTokens, read_json
from dcoder.engine.families import Family, family_of, weight_shapes
from dcoder.engine.model_config import ModelConfig
from dcoder.engine.tokenizer import DELETE_NAMES, EOS_NAMES, EXPAND_NAMES, MASK_NAMES, SPAN_PAD_NAMES, Tokenizer
from dcoder.errors import DcoderError

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
    def family(self) -> Family:
        return family_of(self.raw_config)

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
    # judged by the name, not by where links lead: the hub cache links a snapshot's files to its blobs
    if not name or Path(name).is_absolute() or ".." in Path(name).parts:
        raise DcoderError(f"checkpoint index names a file outside the folder: {name!r}")
    return folder / name


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


def header_shapes(files: tuple[Path, ...]) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor, from the safetensors headers alone (no tensor is read)."""
    shapes = {}
    for f in files:
        try:
            with f.open("rb") as fh:
                (n,) = struct.unpack("<Q", fh.read(8))
                if n > f.stat().st_size - 8:
                    raise ValueError("header runs past the file")
                header = json.loads(fh.read(n))
            header.pop("__metadata__", None)
            shapes.update({k: tuple(v["shape"]) for k, v in header.items()})
        except (OSError, struct.error, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise DcoderError(f"corrupt safetensors file {f.name}: {exc.__class__.__name__}") from None
    return shapes


def check_weights(folder: Path, cfg: ModelConfig, family: Family, shapes: dict[str, tuple[int, ...]]) -> None:
    """Every weight the config implies is there, with the shape it implies."""
    expected = {family.checkpoint_name(k): v for k, v in weight_shapes(cfg).items()}
    missing = [k for k in expected if k not in shapes]
    if missing:
        raise DcoderError(f"checkpoint {folder} lacks weight {missing[0]} ({len(missing)} missing)")
    for k, shape in expected.items():
        if shapes[k] != shape:
            raise DcoderError(f"weight {k} has shape {shapes[k]}, config.json implies {shape}")


def special_tokens(raw: dict, tok: Tokenizer, folder: Path, family: Family) -> SpecialTokens:
    """Read the special ids the checkpoint declares, falling back to well-known token names."""
    tok_cfg = {}
    for name in ("special_tokens_map.json", "tokenizer_config.json"):  # the latter wins
        if (folder / name).exists():
            tok_cfg |= read_json(folder / name, name)

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

    mask = declared("mask_token_id", "mask_token", family.mask_names + MASK_NAMES)
    eos = declared("eos_token_id", "eos_token", EOS_NAMES)
    # The span-ending pad: DiffuCoder's <|dlm_pad|> when present, else the declared pad token.
    span_pad = raw.get("span_pad_token_id")
    if not isinstance(span_pad, int):
        span_pad = tok.first_token_id(SPAN_PAD_NAMES[:1]) or declared("pad_token_id", "pad_token", SPAN_PAD_NAMES)
    bos = declared("bos_token_id", "bos_token", ())  # LLaDA names its <|startoftext|> in tokenizer_config only
    missing = [n for n, v in (("mask", mask), ("end-of-text", eos), ("span padding", span_pad)) if v is None]
    if missing:
        raise DcoderError(f"checkpoint {folder} declares no {' / '.join(missing)} token")
    return SpecialTokens(mask=mask, span_pad=span_pad, eos=eos, bos=bos,
                         expand=declared("expand_token_id", "expand_token", EXPAND_NAMES),
                         delete=declared("delete_token_id", "delete_token", DELETE_NAMES))


def open_checkpoint(path: str | Path) -> Checkpoint:
    folder = Path(path)
    if not folder.exists():
        raise DcoderError(f"model folder not found: {folder}")
    if not folder.is_dir():
        raise DcoderError(f"model path is not a folder: {folder}")
    raw = read_json(folder / "config.json", "config.json")
    config = ModelConfig.from_hf_dict(raw)
    family = family_of(raw)
    files = weight_files(folder)
    shapes = header_shapes(files)
    if config.tie_word_embeddings and family.checkpoint_name("lm_head.weight") in shapes:
        # a head saved beside the embedding is the one the model ran with (CoDA ships one)
        config = replace(config, tie_word_embeddings=False)
    check_weights(folder, config, family, shapes)
    tok = Tokenizer(folder / "tokenizer.json")
    tokens = special_tokens(raw, tok, folder, family)
    named = (("mask", tokens.mask), ("span padding", tokens.span_pad), ("end-of-text", tokens.eos),
             ("expand", tokens.expand), ("delete", tokens.delete))
    for name, tid in named:
        if tid is not None and not 0 <= tid < config.vocab_size:
            raise DcoderError(f"{name} token id {tid} is outside the vocabulary ({config.vocab_size})")
    return Checkpoint(path=folder, config=config, tokens=tokens, weight_files=files, raw_config=raw)
