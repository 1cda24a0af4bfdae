"""The exported model folder's ``manifest.json``: what it promises and how it is checked.

Loading verifies, before any graph reaches onnxruntime: the dcoder version that wrote the
folder, each graph file's checksum (a corrupt or truncated graph is caught here, not as an
onnxruntime error), that every external-data file the graphs reference is a plain file of this
folder (no absolute paths, no ``..``, no links out) and holds every tensor read from it, and the
weights themselves: their checksum, and that no floating-point weight is NaN or infinite (a model
that computes NaN never converges on a fill). Hashing a large model takes seconds, so a weights
file that passed is remembered (see ``_Verified``) until it is changed.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dcoder import __version__
from dcoder.config import SpecialTokens, read_json
from dcoder.errors import DcoderError

FORMAT = "dcoder-onnx"
MANIFEST_NAME = "manifest.json"
WEIGHTS_NAME = "weights.bin"
GRAPHS = ("full", "encode", "step")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class Manifest:
    folder: Path
    raw: dict
    dtype: str
    tokens: SpecialTokens
    shift: bool
    max_context: int
    vocab_size: int
    num_layers: int

    def graph_path(self, kind: str) -> Path:
        return self.folder / self.raw["graphs"][kind]["file"]

    @property
    def source(self) -> dict:
        return self.raw.get("source") or {}


def _member(folder: Path, name, what: str) -> Path:
    """A regular file directly inside ``folder``, named by a plain file name."""
    if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
        raise DcoderError(f"{what} {name!r} is not a plain file name inside the model folder")
    path = folder / name
    if path.is_symlink() and path.resolve().parent != folder.resolve():
        raise DcoderError(f"{what} {name} links outside the model folder")
    if not path.is_file():
        raise DcoderError(f"{what} missing from the model folder: {name}")
    return path


def load_manifest(path: str | Path, any_version: bool = False) -> Manifest:
    """The folder's manifest, checked; ``any_version`` accepts a folder another dcoder exported
    (to unpack its checkpoint, not to run it)."""
    folder = Path(path)
    if not folder.is_dir():
        raise DcoderError(f"model folder not found: {folder}")
    if not (folder / MANIFEST_NAME).is_file():
        raise DcoderError(f"{folder} has no {MANIFEST_NAME}: not an exported model (make one with `dcoder export`)")
    raw = read_json(folder / MANIFEST_NAME, MANIFEST_NAME)
    if raw.get("format") != FORMAT:
        raise DcoderError(f"{folder / MANIFEST_NAME} is not a dcoder model manifest")
    version = raw.get("dcoder_version")
    if version != __version__ and not any_version:
        raise DcoderError(
            f"{folder} was exported by dcoder {version}, this is dcoder {__version__}: export the checkpoint again "
            "(or this folder, if fp32/fp16: dcoder export FOLDER OUT)"
        )
    try:
        graphs = raw["graphs"]
        data_files = {d["file"]: d for d in raw["external_data"]}
        st = raw["special_tokens"]
        optional = {k: None if st.get(k) is None else int(st[k]) for k in ("bos", "expand", "delete")}
        tokens = SpecialTokens(mask=int(st["mask"]), span_pad=int(st["span_pad"]), eos=int(st["eos"]), **optional)
        model = raw["model"]
        manifest = Manifest(folder=folder, raw=raw, dtype=str(raw["dtype"]), tokens=tokens,
                            shift=bool(raw["shift_logits"]), max_context=int(raw["max_context"]),
                            vocab_size=int(model["vocab_size"]), num_layers=int(model["num_hidden_layers"]))
        missing = [k for k in GRAPHS if k not in graphs]
    except (KeyError, TypeError, ValueError) as exc:
        raise DcoderError(f"{folder / MANIFEST_NAME} is incomplete ({exc.__class__.__name__}: {exc})") from None
    if missing:
        raise DcoderError(f"{folder / MANIFEST_NAME} lists no {missing[0]} graph")
    _member(folder, raw.get("tokenizer"), "tokenizer")
    for name, entry in data_files.items():
        f = _member(folder, name, "weights file")
        if f.stat().st_size != entry.get("bytes"):
            raise DcoderError(f"weights file {name} is truncated or was changed "
                              f"({f.stat().st_size} bytes, manifest says {entry.get('bytes')})")
    tensors: dict[tuple[str, int], ExternalTensor] = {}
    for kind in GRAPHS:
        f = _member(folder, graphs[kind].get("file"), f"{kind} graph")
        data = f.read_bytes()
        if hashlib.sha256(data).hexdigest() != graphs[kind].get("sha256"):
            raise DcoderError(f"graph file {f.name} is corrupt or truncated (checksum differs from the manifest)")
        for t in external_tensors(data, f.name):
            if t.location not in data_files:
                raise DcoderError(f"graph {f.name} reads external data from {t.location!r}, "
                                  "which is not a weights file of this model folder")
            if t.offset < 0 or t.length < 0 or t.offset + t.length > data_files[t.location]["bytes"]:
                raise DcoderError(f"weight {t.name} of {f.name} does not lie within {t.location}")
            tensors[t.location, t.offset] = t
    verify_weights(manifest, list(tensors.values()))
    return manifest


# ONNX TensorProto data types checked for NaN and infinities (bfloat16 is read from its bits).
FLOAT_TYPES = {1: np.float32, 10: np.float16, 11: np.float64}
BFLOAT16 = 16
FINITE_CHUNK = 1 << 24  # elements checked at a time: a 7B model's embedding needs no bool array of its size


def verify_weights(manifest: Manifest, tensors: list[ExternalTensor]) -> None:
    """Each weights file's checksum, and every floating-point tensor in it finite."""
    for entry in manifest.raw["external_data"]:
        f = manifest.folder / entry["file"]
        expected = entry.get("sha256")
        if not isinstance(expected, str):
            raise DcoderError(f"{manifest.folder / MANIFEST_NAME} lists no checksum for {f.name}: export the model again")
        verified = _Verified(f, expected)
        if verified.known():
            continue
        if sha256_file(f) != expected:
            raise DcoderError(f"weights file {f.name} is corrupt (checksum differs from the manifest)")
        data = np.memmap(f, mode="r") if f.stat().st_size else np.zeros(0, np.uint8)
        for t in tensors:
            if t.location == entry["file"] and not _finite(data, t):
                raise DcoderError(f"weights file {f.name} holds NaN or infinite values (in {t.name}): "
                                  "the checkpoint it was exported from is broken")
        verified.remember()


def _finite(data: np.ndarray, t: ExternalTensor) -> bool:
    kind = np.uint16 if t.data_type == BFLOAT16 else FLOAT_TYPES.get(t.data_type)
    if kind is None:
        return True  # integers (int8 weights) cannot be NaN
    values = np.frombuffer(data, kind, t.length // np.dtype(kind).itemsize, t.offset)
    for i in range(0, len(values), FINITE_CHUNK):
        chunk = values[i:i + FINITE_CHUNK]
        # a bfloat16 is NaN or infinite when its exponent bits are all set
        bad = ((chunk & 0x7F80) == 0x7F80).any() if kind is np.uint16 else not np.isfinite(chunk).all()
        if bad:
            return False
    return True


class _Verified:
    """A record, under the user's cache folder, that a weights file matched its checksum. It names
    the file's path, size, inode, modification and change times: writing the file (even with its
    modification time put back) changes its change time, so the record no longer matches."""

    def __init__(self, path: Path, sha256: str):
        st = path.stat()
        self.key = f"{path.resolve()}\0{st.st_size}\0{st.st_dev}\0{st.st_ino}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\0{sha256}"
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        self.record = cache / "dcoder" / "verified" / hashlib.sha256(self.key.encode("utf-8", "replace")).hexdigest()

    def known(self) -> bool:
        try:
            return self.record.read_text(encoding="utf-8") == self.key
        except (OSError, UnicodeDecodeError):
            return False

    def remember(self) -> None:
        try:
            self.record.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.record.with_name(f".{self.record.name}.{os.getpid()}")
            tmp.write_text(self.key, encoding="utf-8")
            os.replace(tmp, self.record)
        except OSError:
            pass  # no cache folder: the weights are hashed again at the next load


# ---- external-data references, read from the protobuf wire format --------------------------
# (field numbers from onnx.proto; reading them here keeps the runtime free of the onnx package)

_MODEL_GRAPH, _MODEL_FUNCTIONS = 7, 25
_GRAPH_NODE, _GRAPH_INIT, _GRAPH_SPARSE = 1, 5, 15
_NODE_ATTR, _FUNCTION_NODE = 5, 7
_ATTR_T, _ATTR_G, _ATTR_TENSORS, _ATTR_GRAPHS, _ATTR_SPARSE, _ATTR_SPARSES = 5, 6, 10, 11, 22, 23
_SPARSE_VALUES, _SPARSE_INDICES = 1, 2
_TENSOR_TYPE, _TENSOR_NAME, _TENSOR_EXTERNAL = 2, 8, 13


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if i >= len(buf) or shift > 63:
            raise ValueError("bad varint")
        b = buf[i]
        value |= (b & 0x7F) << shift
        i += 1
        if b < 0x80:
            return value, i
        shift += 7


def _fields(buf: bytes, start: int, end: int, varints: bool = False):
    """(field number, (start, end)) of every length-delimited field in buf[start:end]; with
    ``varints``, (field number, value) of every varint field instead."""
    i = start
    while i < end:
        key, i = _varint(buf, i)
        wire = key & 7
        if wire == 0:
            value, i = _varint(buf, i)
            if varints:
                yield key >> 3, value
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        elif wire == 2:
            n, i = _varint(buf, i)
            if i + n > end:
                raise ValueError("field runs past its message")
            if not varints:
                yield key >> 3, (i, i + n)
            i += n
        else:
            raise ValueError(f"wire type {wire}")
    if i != end:
        raise ValueError("message runs past its end")


@dataclass(frozen=True)
class ExternalTensor:
    name: str
    location: str  # the external-data file it is read from
    offset: int
    length: int  # bytes
    data_type: int  # ONNX TensorProto data type


def external_tensors(data: bytes, name: str = "graph") -> list[ExternalTensor]:
    """Every tensor a serialized ModelProto reads from an external-data file, anywhere in it."""
    found: list[ExternalTensor] = []

    def text(span) -> str:
        return data[slice(*span)].decode("utf-8", "replace")

    def tensor(span):
        entries = {}
        for f, (a, b) in _fields(data, *span):
            if f == _TENSOR_EXTERNAL:
                entry = dict(_fields(data, a, b))
                if 1 in entry:
                    entries[text(entry[1])] = text(entry[2]) if 2 in entry else ""
        if entries:
            names = dict(_fields(data, *span))
            kind = dict(_fields(data, *span, varints=True)).get(_TENSOR_TYPE, 0)
            try:
                offset, length = int(entries.get("offset", 0)), int(entries["length"])
            except (KeyError, ValueError):
                raise ValueError("external tensor without a readable offset and length") from None
            found.append(ExternalTensor(text(names[_TENSOR_NAME]) if _TENSOR_NAME in names else "?",
                                        entries.get("location", ""), offset, length, kind))

    def sparse(span):
        for f, sub in _fields(data, *span):
            if f in (_SPARSE_VALUES, _SPARSE_INDICES):
                tensor(sub)

    def node(span):
        for f, attr in _fields(data, *span):
            if f != _NODE_ATTR:
                continue
            for g, sub in _fields(data, *attr):
                if g in (_ATTR_T, _ATTR_TENSORS):
                    tensor(sub)
                elif g in (_ATTR_G, _ATTR_GRAPHS):
                    graph(sub)
                elif g in (_ATTR_SPARSE, _ATTR_SPARSES):
                    sparse(sub)

    def graph(span):
        for f, sub in _fields(data, *span):
            if f == _GRAPH_INIT:
                tensor(sub)
            elif f == _GRAPH_SPARSE:
                sparse(sub)
            elif f == _GRAPH_NODE:
                node(sub)

    try:
        for f, sub in _fields(data, 0, len(data)):
            if f == _MODEL_GRAPH:
                graph(sub)
            elif f == _MODEL_FUNCTIONS:
                for g, n in _fields(data, *sub):
                    if g == _FUNCTION_NODE:
                        node(n)
    except (ValueError, IndexError):
        raise DcoderError(f"graph file {name} is not a valid ONNX model") from None
    return found
