"""The exported model folder's ``manifest.json``: what it promises and how it is checked.

Loading verifies, before any graph reaches onnxruntime: the dcoder version that wrote the
folder, each graph file's checksum (a corrupt or truncated graph is caught here, not as an
onnxruntime error), the weights file's size, and that every external-data file the graphs
reference is a plain file of this folder (no absolute paths, no ``..``, no links out).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

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
    for kind in GRAPHS:
        f = _member(folder, graphs[kind].get("file"), f"{kind} graph")
        data = f.read_bytes()
        if hashlib.sha256(data).hexdigest() != graphs[kind].get("sha256"):
            raise DcoderError(f"graph file {f.name} is corrupt or truncated (checksum differs from the manifest)")
        for location in external_locations(data, f.name):
            if location not in data_files:
                raise DcoderError(f"graph {f.name} reads external data from {location!r}, "
                                  "which is not a weights file of this model folder")
    return manifest


def verify_weights(manifest: Manifest) -> None:
    """Full checksum of the weights (slow for big models, so not part of every load)."""
    for entry in manifest.raw["external_data"]:
        f = manifest.folder / entry["file"]
        if entry.get("sha256") and sha256_file(f) != entry["sha256"]:
            raise DcoderError(f"weights file {f.name} is corrupt (checksum differs from the manifest)")


# ---- external-data references, read from the protobuf wire format --------------------------
# (field numbers from onnx.proto; reading them here keeps the runtime free of the onnx package)

_MODEL_GRAPH, _MODEL_FUNCTIONS = 7, 25
_GRAPH_NODE, _GRAPH_INIT, _GRAPH_SPARSE = 1, 5, 15
_NODE_ATTR, _FUNCTION_NODE = 5, 7
_ATTR_T, _ATTR_G, _ATTR_TENSORS, _ATTR_GRAPHS, _ATTR_SPARSE, _ATTR_SPARSES = 5, 6, 10, 11, 22, 23
_SPARSE_VALUES, _SPARSE_INDICES = 1, 2
_TENSOR_EXTERNAL = 13


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


def _fields(buf: bytes, start: int, end: int):
    """(field number, (start, end)) of every length-delimited field in buf[start:end]."""
    i = start
    while i < end:
        key, i = _varint(buf, i)
        wire = key & 7
        if wire == 0:
            _, i = _varint(buf, i)
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        elif wire == 2:
            n, i = _varint(buf, i)
            if i + n > end:
                raise ValueError("field runs past its message")
            yield key >> 3, (i, i + n)
            i += n
        else:
            raise ValueError(f"wire type {wire}")
    if i != end:
        raise ValueError("message runs past its end")


def external_locations(data: bytes, name: str = "graph") -> set[str]:
    """Every external-data ``location`` named anywhere in a serialized ModelProto."""
    found: set[str] = set()

    def tensor(span):
        for f, (a, b) in _fields(data, *span):
            if f == _TENSOR_EXTERNAL:
                entry = dict(_fields(data, a, b))
                if 1 in entry and data[slice(*entry[1])] == b"location":
                    found.add(data[slice(*entry[2])].decode("utf-8", "replace") if 2 in entry else "")

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
