"""The training corpus: Python source files (by default the running interpreter's standard library).

A corpus is the standard library, a folder of ``.py`` files, or a folder ``dcoder corpus`` built
(``manifest.json`` plus ``files/``): that one is read as built, its filters and deduplication
already applied, and checked against the hash its manifest records.

Files are deduplicated by content and split into train and validation by file, with a split
that depends only on each file's relative path, so it is stable across machines and runs.
What is left out, and why:

- ``site-packages`` / ``dist-packages``: third-party code, not the standard library. This also
  keeps out attrs and click, the libraries the realcode-dev benchmark is cut from.
- test data folders (``data``, ``*data`` inside test trees): deliberately odd files (Python 2,
  bad encodings, broken syntax) that exist to exercise the tokenizer and parser.
- generated tables: codecs written by ``gencodec.py``, ``pydoc_data/topics.py`` (documentation
  prose in a string) and ``_sysconfigdata_*`` (this machine's build paths).
- files that are not UTF-8, that do not parse with the running interpreter, that are larger than
  ``MAX_FILE_BYTES``, or that contain the model's special tokens (they would read as control tokens).
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dcoder.errors import DcoderError

MAX_FILE_BYTES = 1 << 20
SKIP_DIRS = {"site-packages", "dist-packages", "__pycache__"}
GENERATED_MARKERS = ("with gencodec.py",)
GENERATED_FILES = {"pydoc_data/topics.py"}
SPECIAL_STRINGS = ("<|endoftext|>", "<|mask|>", "<|dlm_pad|>")
BUILT_MANIFEST = "manifest.json"  # with "format": BUILT_FORMAT, it marks a folder dcoder corpus built
BUILT_FORMAT = "dcoder-corpus/1"
BUILT_FILES = "files"


@dataclass(frozen=True)
class SourceFile:
    path: str  # relative to the corpus root, '/'-separated
    text: str
    sha256: str


@dataclass(frozen=True)
class Corpus:
    root: str
    train: tuple[SourceFile, ...]
    val: tuple[SourceFile, ...]
    skipped: dict  # reason -> number of files
    manifest_sha256: str | None = None  # a built corpus's manifest.json

    def summary(self) -> dict:
        """Sizes and hashes recorded with every checkpoint (the model manifest's corpus entry)."""
        summary = {
            "root": self.root,
            "python": sys.version.split()[0],
            "train": split_summary(self.train),
            "val": split_summary(self.val),
            "skipped": dict(sorted(self.skipped.items())),
            "sha256": files_hash(self.train + self.val),
        }
        if self.manifest_sha256 is not None:
            summary["manifest_sha256"] = self.manifest_sha256
        return summary


def split_summary(files: tuple[SourceFile, ...]) -> dict:
    return {
        "files": len(files),
        "bytes": sum(len(f.text.encode("utf-8")) for f in files),
        "sha256": files_hash(files),
    }


def files_hash(files: tuple) -> str:
    """Hash of (path, sha256) pairs: the identity of a set of files (anything with those two fields)."""
    h = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.path):
        h.update(f"{f.path}\0{f.sha256}\n".encode("utf-8"))
    return h.hexdigest()


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def resolve_root(spec: str) -> Path:
    """``stdlib`` names the running interpreter's standard library; anything else is a folder."""
    root = stdlib_root() if spec == "stdlib" else Path(spec).expanduser()
    if not root.is_dir():
        raise DcoderError(f"corpus folder not found: {root}")
    return root


def is_test_data(rel_dir: Path) -> bool:
    parts = rel_dir.parts
    in_tests = any(p in ("test", "tests") or p.startswith("test_") for p in parts)
    return in_tests and any(p == "data" or p.endswith("data") for p in parts)


def skip_reason(rel: str, data: bytes, markers: tuple[str, ...] = GENERATED_MARKERS) -> tuple[str | None, str]:
    """Why a file stays out of the corpus (None: it goes in), and its text. Markers are lower case."""
    if rel in GENERATED_FILES or Path(rel).name.startswith("_sysconfigdata_"):
        return "generated", ""
    if len(data) > MAX_FILE_BYTES:
        return "too large", ""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "not utf-8", ""
    head = text[:1000].lower()
    if any(m in head for m in markers):
        return "generated", ""
    if any(s in text for s in SPECIAL_STRINGS):
        return "special tokens", ""
    try:
        ast.parse(text)
    except (SyntaxError, ValueError):
        return "does not parse", ""
    return None, text


def in_val(rel: str, val_fraction: float) -> bool:
    digest = hashlib.sha256(rel.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < val_fraction


def walk_sources(root: Path) -> Iterator[tuple[str, Path]]:
    """Each ``.py`` file under the root (relative path, full path) in a stable order, minus skipped folders."""
    for folder, dirs, names in os.walk(root):
        rel_dir = Path(folder).relative_to(root)
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not is_test_data(rel_dir / d))
        for name in sorted(names):
            if name.endswith(".py"):
                yield (rel_dir / name).as_posix(), Path(folder) / name


def split(root: Path, files: list[SourceFile], skipped: dict, val_fraction: float,
          manifest_sha256: str | None = None) -> Corpus:
    files = sorted(files, key=lambda f: f.path)
    if not files:
        raise DcoderError(f"no usable .py files under {root}")
    val = tuple(f for f in files if in_val(f.path, val_fraction))
    train = tuple(f for f in files if not in_val(f.path, val_fraction))
    if not train:
        raise DcoderError(f"corpus {root} has no training files after the validation split")
    return Corpus(str(root), train, val, skipped, manifest_sha256)


def built_manifest(root: Path) -> tuple[dict, bytes] | None:
    """The manifest of a corpus folder ``dcoder corpus`` built, and its bytes; None for any other folder."""
    path = root / BUILT_MANIFEST
    try:
        data = path.read_bytes()
        manifest = json.loads(data)
    except (OSError, ValueError):
        return None
    return (manifest, data) if isinstance(manifest, dict) and manifest.get("format") == BUILT_FORMAT else None


def read_built(root: Path, manifest: dict, data: bytes, val_fraction: float) -> Corpus:
    """A built corpus: every file under ``files/``, checked against the hash in its manifest."""
    try:
        expected, skipped = manifest["corpus"]["sha256"], manifest["skipped"]
    except (KeyError, TypeError):
        raise DcoderError(f"{root / BUILT_MANIFEST} is incomplete; rebuild the corpus with dcoder corpus") from None
    files = []
    folder = root / BUILT_FILES
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        raw = path.read_bytes()
        try:
            files.append(SourceFile(path.relative_to(folder).as_posix(), raw.decode("utf-8"),
                                    hashlib.sha256(raw).hexdigest()))
        except UnicodeDecodeError:
            raise DcoderError(f"{path} is not UTF-8; rebuild the corpus with dcoder corpus") from None
    if files_hash(tuple(files)) != expected:
        raise DcoderError(f"the files under {root / BUILT_FILES} do not match {root / BUILT_MANIFEST}; "
                          "rebuild the corpus with dcoder corpus")
    return split(root, files, skipped, val_fraction, hashlib.sha256(data).hexdigest())


def collect(spec: str = "stdlib", val_fraction: float = 0.02) -> Corpus:
    """Every usable ``.py`` file under the root, deduplicated, split by file into train/val."""
    if not 0 <= val_fraction < 1:
        raise DcoderError("val_fraction must be in [0, 1)")
    root = resolve_root(spec)
    built = built_manifest(root)
    if built is not None:
        return read_built(root, *built, val_fraction)
    skipped: dict[str, int] = {}
    by_hash: dict[str, SourceFile] = {}
    for rel, path in walk_sources(root):
        try:
            data = path.read_bytes()
        except OSError:
            skipped["unreadable"] = skipped.get("unreadable", 0) + 1
            continue
        reason, text = skip_reason(rel, data)
        if reason is not None:
            skipped[reason] = skipped.get(reason, 0) + 1
            continue
        digest = hashlib.sha256(data).hexdigest()
        if digest in by_hash:
            skipped["duplicate"] = skipped.get("duplicate", 0) + 1
            continue
        by_hash[digest] = SourceFile(rel, text, digest)
    return split(root, list(by_hash.values()), skipped, val_fraction)
