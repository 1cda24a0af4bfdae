"""1-based ``LINE:COLUMN`` positions (columns count characters) and ``L:C-L:C`` ranges, to and from
character offsets: the command line's and the HTTP server's way of naming places in a file."""

from __future__ import annotations

import bisect
import re

from dcoder.errors import DcoderError


def line_starts(text: str) -> list[int]:
    return [0] + [m.end() for m in re.finditer("\n", text)]


def offset_of(text: str, starts: list[int], spec: str) -> int:
    """Character offset of a 1-based ``LINE:COLUMN`` (columns count characters)."""
    try:
        line_s, col_s = spec.split(":")
        line, col = int(line_s), int(col_s)
    except ValueError:
        raise DcoderError(f"bad position {spec!r}: expected LINE:COLUMN, e.g. 12:5") from None
    if not 1 <= line <= len(starts):
        raise DcoderError(f"position {spec} is outside the file: line {line} of {len(starts)}")
    begin = starts[line - 1]
    end = starts[line] - 1 if line < len(starts) else len(text)
    if end > begin and text[end - 1] == "\r":
        end -= 1
    if not 1 <= col <= end - begin + 1:
        raise DcoderError(f"position {spec} is outside the file: line {line} has {end - begin} characters")
    return begin + col - 1


def position_of(starts: list[int], offset: int) -> dict:
    line = bisect.bisect_right(starts, offset) - 1
    return {"line": line + 1, "column": offset - starts[line] + 1}


def parse_range(text: str, spec: str) -> tuple[int, int]:
    starts = line_starts(text)
    if "-" not in spec:
        raise DcoderError(f"bad range {spec!r}: expected L:C-L:C, e.g. 3:1-5:10")
    a, b = spec.split("-", 1)
    start, end = offset_of(text, starts, a), offset_of(text, starts, b)
    if end < start:
        raise DcoderError(f"bad range {spec}: it ends before it starts")
    return start, end
