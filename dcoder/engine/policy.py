"""Learned unmasking policy files: which model a policy was trained for, and reading and writing
them (the policy itself is ``dcoder.config.LearnedPolicy``; ``dcoder.engine.sampler`` runs it and
``dcoder.training.policy`` trains it)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, fields
from pathlib import Path

from dcoder.config import LearnedPolicy, read_json
from dcoder.errors import DcoderError

FORMAT = "dcoder-unmask-policy"


def model_identity(folder: Path | None) -> str:
    """sha256 of what fixes a model's predictions: an exported folder's manifest (it records every
    graph's and weight file's sha256) and tokenizer; a checkpoint's config and tokenizer with its
    weight files' names and sizes (hashing gigabytes of weights at every start would be slow)."""
    if folder is None:
        raise DcoderError("this model was not loaded from a folder: a learned policy cannot be checked against it")
    h = hashlib.sha256()
    manifest = folder / "manifest.json"
    if manifest.exists():
        h.update(manifest.read_bytes())
        h.update((folder / json.loads(manifest.read_text(encoding="utf-8"))["tokenizer"]).read_bytes())
        return h.hexdigest()
    for f in sorted(folder.iterdir()):
        if f.name in ("config.json", "tokenizer.json"):
            h.update(f.read_bytes())
        elif f.suffix in (".safetensors", ".bin", ".pt", ".pth"):
            h.update(f"{f.name}:{f.stat().st_size}".encode())
    return h.hexdigest()


def save_policy(policy: LearnedPolicy, path: str | Path, trained_on: dict) -> None:
    target = Path(path)
    body = {"format": FORMAT, **asdict(policy), "trained_on": trained_on}
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DcoderError(f"cannot write {path}: {exc.strerror}") from None


def load_policy(path: str | Path, folder: Path | None) -> LearnedPolicy:
    """The policy in ``path``, refused unless it was trained for the model loaded from ``folder``."""
    data = read_json(Path(path), "policy file")
    if data.get("format") != FORMAT:
        raise DcoderError(f"{path} is not a dcoder unmasking policy (dcoder train-policy writes one)")
    names = {f.name for f in fields(LearnedPolicy)}
    try:
        policy = LearnedPolicy(**{k: _tuples(v) for k, v in data.items() if k in names})
    except (TypeError, ValueError):
        raise DcoderError(f"{path}: the policy's fields are missing or malformed") from None
    if policy.model != model_identity(folder):
        where = (data.get("trained_on") or {}).get("model", "another model")
        raise DcoderError(f"{path} was trained for {where}, not for this model: train one for it "
                          "(dcoder train-policy --model ...)")
    return policy


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value
