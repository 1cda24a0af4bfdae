"""LSP positions <-> character offsets, in the position encoding negotiated with the client.

An LSP line ends at ``\\n``, ``\\r\\n`` or ``\\r`` and nowhere else (``str.splitlines`` would also
split at form feeds and U+2028, which would shift every line below them). A column counts code
units of the negotiated encoding: UTF-16 by default, so an emoji is two columns.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

UTF8, UTF16, UTF32 = "utf-8", "utf-16", "utf-32"
ENCODINGS = (UTF8, UTF16, UTF32)
_BREAK = re.compile(r"\r\n|\r|\n")
_CODEC = {UTF8: ("utf-8", 1), UTF16: ("utf-16-le", 2)}


class PositionError(ValueError):
    """A position that is not in the document (a line past the end, a negative number)."""


def units(text: str, encoding: str) -> int:
    """Length of ``text`` in code units of ``encoding``."""
    if encoding == UTF32:
        return len(text)
    codec, width = _CODEC[encoding]
    return len(text.encode(codec, "surrogatepass")) // width


def chars_in(line: str, count: int, encoding: str) -> int:
    """How many characters of ``line`` the first ``count`` code units cover.

    A column inside a character (between the halves of a surrogate pair, inside a UTF-8
    sequence) is rounded down to that character's start; a column past the end gives the end.
    """
    if encoding == UTF32:
        return min(count, len(line))
    codec, width = _CODEC[encoding]
    data = line.encode(codec, "surrogatepass")[: count * width]
    while True:
        try:
            decoded = data.decode(codec, "surrogatepass")
            break
        except UnicodeDecodeError:
            data = data[:-1]
    n = len(decoded)
    if n and decoded[-1] != line[n - 1]:  # half of a surrogate pair
        n -= 1
    return n


@dataclass(frozen=True)
class LineIndex:
    """Where each line of a text starts and where its content ends (before the line break)."""

    text: str
    starts: tuple[int, ...]
    ends: tuple[int, ...]

    @classmethod
    def of(cls, text: str) -> "LineIndex":
        starts, ends = [0], []
        for m in _BREAK.finditer(text):
            ends.append(m.start())
            starts.append(m.end())
        ends.append(len(text))
        return cls(text, tuple(starts), tuple(ends))

    @property
    def line_count(self) -> int:
        return len(self.starts)

    def offset(self, line: int, character: int, encoding: str, clamp: bool = False) -> int:
        """Character offset of an LSP position.

        A column past the end of its line means the line's end (as the LSP specification says).
        A line past the last one is an error, except the position just after the last line
        (line = line count, column 0), which clients use for the end of the document; with
        ``clamp`` any such line means the end of the document instead.
        """
        if line < 0 or character < 0:
            raise PositionError(f"negative position {line}:{character}")
        if line >= self.line_count:
            if clamp or (line == self.line_count and character == 0):
                return len(self.text)
            raise PositionError(f"line {line} is outside the document ({self.line_count} lines)")
        start, end = self.starts[line], self.ends[line]
        return start + chars_in(self.text[start:end], character, encoding)

    def position(self, offset: int, encoding: str) -> tuple[int, int]:
        """LSP (line, column) of a character offset."""
        if not 0 <= offset <= len(self.text):
            raise PositionError(f"offset {offset} is outside the document")
        line = bisect.bisect_right(self.starts, offset) - 1
        start = self.starts[line]
        offset = min(offset, self.ends[line])  # never between the \r and \n of a line break
        return line, units(self.text[start:offset], encoding)
