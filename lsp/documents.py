"""The open documents, as immutable snapshots: a running request keeps the version it started on.

The engine sees each document with ``\\r\\n`` turned into ``\\n`` (what code models are trained on)
and lone surrogates, which only broken clients send, replaced by U+FFFD; offsets are mapped
between the two views, and generated text gets the document's own line ending back.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from functools import cached_property

from pygls.uris import to_fs_path

from dcoder import syntax
from dcoder_lsp.positions import LineIndex

_SURROGATE = re.compile("[\ud800-\udfff]")
SYNTAX_LIMIT = 2_000_000  # characters; larger documents get no syntax regions (parsing is O(size))


@dataclass(frozen=True)
class EngineText:
    text: str
    eol: str
    crlf: tuple[int, ...]  # document offset of the \r of each \r\n

    @classmethod
    def of(cls, text: str) -> "EngineText":
        crlf = tuple(m.start() for m in re.finditer("\r\n", text))
        first = re.search(r"\r\n|\r|\n", text)
        eol = first.group() if first else "\n"
        clean = text.replace("\r\n", "\n") if crlf else text
        if _SURROGATE.search(clean):
            clean = _SURROGATE.sub("\ufffd", clean)
        return cls(clean, eol, crlf)

    @cached_property
    def _engine_crlf(self) -> tuple[int, ...]:
        return tuple(c - i for i, c in enumerate(self.crlf))

    def to_engine(self, offset: int) -> int:
        return offset - bisect.bisect_left(self.crlf, offset)

    def to_document(self, offset: int) -> int:
        return offset + bisect.bisect_left(self._engine_crlf, offset)

    def restore_eol(self, generated: str) -> str:
        if self.eol == "\n":
            return generated
        return generated.replace("\r\n", "\n").replace("\n", self.eol)


@dataclass(frozen=True)
class Document:
    uri: str
    language: str
    version: int
    text: str

    @cached_property
    def lines(self) -> LineIndex:
        return LineIndex.of(self.text)

    @cached_property
    def engine(self) -> EngineText:
        return EngineText.of(self.text)

    @cached_property
    def path(self) -> str | None:
        """The file's path, for a file: URI."""
        return to_fs_path(self.uri) if self.uri.startswith("file:") else None

    @property
    def grammar(self) -> str | None:
        """The grammar name the engine checks fills with; None for a huge document."""
        return None if len(self.text) > SYNTAX_LIMIT else syntax.language_of(language_id=self.language)

    @cached_property
    def syntax(self) -> syntax.Document | None:
        """The parsed engine text; None for a language without a parser or a huge document."""
        return syntax.parse(self.engine.text, self.grammar) if self.grammar else None


class DocumentStore:
    """Documents by URI, updated from didOpen/didChange/didClose (full or incremental changes)."""

    def __init__(self) -> None:
        self._docs: dict[str, Document] = {}

    def get(self, uri: str) -> Document | None:
        return self._docs.get(uri)

    def all(self) -> list[Document]:
        return list(self._docs.values())

    def version(self, uri: str) -> int | None:
        doc = self._docs.get(uri)
        return None if doc is None else doc.version

    def open(self, uri: str, language: str, version: int, text: str) -> Document:
        doc = self._docs[uri] = Document(uri, language, version, text)
        return doc

    def close(self, uri: str) -> None:
        self._docs.pop(uri, None)

    def change(self, uri: str, version: int, changes, encoding: str) -> Document | None:
        """Apply content changes in order; a range outside the document is clamped to it."""
        doc = self._docs.get(uri)
        if doc is None:
            return None
        text = doc.text
        for change in changes:
            rng = getattr(change, "range", None)
            if rng is None:
                text = change.text
                continue
            lines = LineIndex.of(text) if text is not doc.text else doc.lines
            a = lines.offset(rng.start.line, rng.start.character, encoding, clamp=True)
            b = lines.offset(rng.end.line, rng.end.character, encoding, clamp=True)
            a, b = min(a, b), max(a, b)
            text = text[:a] + change.text + text[b:]
        doc = self._docs[uri] = Document(uri, doc.language, version, text)
        return doc
