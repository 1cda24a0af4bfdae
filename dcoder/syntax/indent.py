"""Fit a generated fill to the place it goes: the file's line endings and the block's indentation."""

from __future__ import annotations

import os
import re

TAB_WIDTH = 8


def line_ending(text: str) -> str:
    """"\\r\\n" when most of the file's line breaks are CRLF, else "\\n"."""
    crlf = text.count("\r\n")
    return "\r\n" if crlf and crlf * 2 >= text.count("\n") else "\n"


def indent_before(text: str, start: int) -> str | None:
    """The whitespace between the start of the line and ``start``; None when code precedes it there."""
    line_start = text.rfind("\n", 0, start) + 1
    lead = text[line_start:start]
    return lead if not lead.strip(" \t") else None


def _width(ws: str) -> int:
    return len(ws.expandtabs(TAB_WIDTH))


def _leading(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def reindent(fill: str, indent: str, strip_first: bool = False) -> str:
    """Re-base a multi-line fill that starts after ``indent`` so no line falls left of it.

    The model sometimes writes a block's later lines relative to column 0; the lines after the
    first keep their relative indentation and get the block's indentation (its own characters,
    tabs or spaces) in front. With ``strip_first`` (the fill replaces code that started right
    there), blanks leading the first line would double the indentation already in the file.
    """
    first, sep, rest = fill.partition("\n")
    if strip_first:
        first = first.lstrip(" \t")
    if not sep:
        return first
    lines = rest.split("\n")
    body = [ln for ln in lines if ln.strip()]
    if not body:
        return first + sep + rest
    common = os.path.commonprefix([_leading(ln) for ln in body])
    if _width(common) >= _width(indent):
        return first + sep + rest
    shifted = [indent + ln[len(common):] if ln.strip() else ln for ln in lines]
    return first + sep + "\n".join(shifted)


_TRAILING_BREAKS = re.compile(r"(?:\n[ \t]*)+\Z")


def trim_blank_tail(fill: str, replaced: str) -> str:
    """``fill`` ending in no more line breaks than ``replaced`` does (one at least, if it had any).

    A weak model pads a span it cannot finish with line breaks (a hole after ``return`` came back
    as 32 blank lines); the blanks after the last break stay, they indent the code that follows.
    """
    tail = _TRAILING_BREAKS.search(fill)
    found = _TRAILING_BREAKS.search(replaced)
    keep = max(1, found.group().count("\n") if found else 0)
    if tail is None or tail.group().count("\n") <= keep:
        return fill
    return fill[:tail.start()] + "\n" * keep + tail.group().rpartition("\n")[2]


def fit(text: str, start: int, end: int, fill: str) -> str:
    """``fill`` as it should replace ``text[start:end]``."""
    indent = indent_before(text, start)
    fill = trim_blank_tail(fill.replace("\r\n", "\n"), text[start:end].replace("\r\n", "\n"))
    if indent is not None:
        fill = reindent(fill, indent, strip_first=end > start and not text[start].isspace())
    return fill.replace("\n", "\r\n") if line_ending(text) == "\r\n" else fill
