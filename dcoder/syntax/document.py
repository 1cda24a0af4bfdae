"""A parsed document: syntax regions and parse checks with tree-sitter, in str character offsets.

The regions a language offers are its query file's captures (dcoder.syntax.languages). tree-sitter works in UTF-8
bytes; everything here takes and returns character offsets into the Python string, converted
through a byte index, so non-ASCII identifiers, tabs and CRLF line endings keep their places.
A language without a parser or without a query file has no regions: callers fall back to
plain character spans and show ``note(language)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from dcoder.syntax.languages import Grammar, grammar, helper, kind_predicate


@dataclass(frozen=True)
class Region:
    name: str  # capture name from the query file, e.g. "function.inner"
    start: int
    end: int
    node_type: str  # tree-sitter node type of the (first) captured node
    depth: int = 0  # nesting depth of that node: breaks ties between regions of one range
    order: int = 0  # index of its pattern in the query file: breaks the remaining ties


@dataclass(frozen=True)
class Problem:
    """A parse error: an ERROR node, or a MISSING node tree-sitter invented to recover."""

    kind: str  # "ERROR" or "MISSING <type>"
    start: int
    end: int
    context: tuple[int, int]  # smallest node to regenerate: the error itself, a missing node's parent


_WORD_PAIR = re.compile(r"(?=\b([^\W\d]\w*)[ \t]+([^\W\d]\w*))")  # overlapping: "a b c" -> (a b), (b c)
_PREFIX = re.compile(r"^[A-Za-z]+")  # a string's prefix letters (f, r, b, u)
_QUOTES = re.compile(r"[\"'`]+")
_NEXT_LINE = re.compile(rb"[ \t\r]*\n[ \t]*")  # from a comment's end to the next line's first text


class _Offsets:
    """Character <-> UTF-8 byte offsets of one text (identity for ASCII)."""

    def __init__(self, text: str, data: bytes):
        self.ascii = len(text) == len(data)
        if not self.ascii:
            lead = (np.frombuffer(data, dtype=np.uint8) & 0xC0) != 0x80
            self._char = np.concatenate([[0], np.cumsum(lead)])
            self._byte = np.append(np.flatnonzero(lead), len(data))

    def char(self, byte: int) -> int:
        return byte if self.ascii else int(self._char[byte])

    def byte(self, char: int) -> int:
        return char if self.ascii else int(self._byte[char])


def _point(data: bytes, byte: int) -> tuple[int, int]:
    row = data.count(b"\n", 0, byte)
    return row, byte - (data.rfind(b"\n", 0, byte) + 1)


def _depth(node) -> int:
    d = 0
    while node.parent is not None:
        node = node.parent
        d += 1
    return d


class Document:
    """A text parsed with one grammar. ``edit`` reparses incrementally, reusing the old tree."""

    def __init__(self, text: str, grammar: Grammar, old_tree=None):
        self.text = text
        self.grammar = grammar
        self.data = text.encode("utf-8")
        self.offsets = _Offsets(text, self.data)
        parser = grammar.parser()
        self.tree = parser.parse(self.data, old_tree) if old_tree is not None else parser.parse(self.data)
        self._regions: list[Region] | None = None
        self._problems: list[Problem] | None = None

    def edit(self, start: int, end: int, new_text: str) -> Document:
        """The document with ``text[start:end]`` replaced by ``new_text``, reparsed incrementally."""
        return self.edits([(start, end, new_text)])

    def edits(self, edits: list[tuple[int, int, str]]) -> Document:
        """The document with every (start, end, new text) of ``edits`` (not overlapping) applied,
        reparsed incrementally once."""
        tree = self.tree.copy()
        text, pos = [], 0
        for start, end, new in sorted(edits):
            text += [self.text[pos:start], new]
            pos = end
        text.append(self.text[pos:])
        for start, end, new in sorted(edits, reverse=True):  # back to front: earlier offsets hold
            sb, ob = self.offsets.byte(start), self.offsets.byte(end)
            added = new.encode("utf-8")
            row, col = _point(self.data, sb)
            lines = added.count(b"\n")
            new_end = (row + lines, (col if not lines else 0) + len(added) - (added.rfind(b"\n") + 1))
            tree.edit(start_byte=sb, old_end_byte=ob, new_end_byte=sb + len(added), start_point=(row, col),
                      old_end_point=_point(self.data, ob), new_end_point=new_end)
        return Document("".join(text), self.grammar, tree)

    def excerpt(self, ranges: list[tuple[int, int]], size: int) -> list[tuple[int, int]]:
        """Character ranges of this document, of about ``size`` bytes around each of ``ranges``
        (merged where they meet), that parse much as they do in the whole file.

        Each is a run of sibling nodes around its range, under the lowest node larger than ``size``
        (a class, a module), widened to whole lines: a cut between siblings never falls inside a
        string or comment. A range inside a token larger than ``size`` gets the lines around it.
        """
        out: list[tuple[int, int]] = []
        for start, end in sorted(ranges):
            a, b = self._around(self.offsets.byte(start), self.offsets.byte(end), size)
            a, b = self._whole_lines(a, b)
            a, b = self.offsets.char(a), self.offsets.char(b)
            if out and a <= out[-1][1]:
                out[-1] = (out[-1][0], max(b, out[-1][1]))
            else:
                out.append((a, b))
        return out

    def _around(self, sb: int, eb: int, size: int) -> tuple[int, int]:
        node = self.tree.root_node.descendant_for_byte_range(sb, eb)
        while node.parent is not None and node.end_byte - node.start_byte <= size:
            node = node.parent
        kids = node.children
        if not kids:  # whole lines of the token
            half = size // 2
            a = self.data.rfind(b"\n", 0, max(sb - half, 0)) + 1
            b = self.data.rfind(b"\n", eb, eb + half) + 1 or eb
            return max(node.start_byte, a), min(node.end_byte, b)
        near = [i for i, k in enumerate(kids) if k.end_byte >= sb and k.start_byte <= eb]
        if not near:  # between two siblings: take both
            before = [i for i, k in enumerate(kids) if k.end_byte <= sb]
            near = before[-1:] + [i for i, k in enumerate(kids) if k.start_byte >= eb][:1]
        i, j = near[0], near[-1]
        while True:  # grow on the side with less context so far, while the run fits
            left = i > 0 and kids[j].end_byte - kids[i - 1].start_byte <= size
            right = j + 1 < len(kids) and kids[j + 1].end_byte - kids[i].start_byte <= size
            if not (left or right):
                return kids[i].start_byte, kids[j].end_byte
            if left and (not right or sb - kids[i].start_byte <= kids[j].end_byte - eb):
                i -= 1
            else:
                j += 1

    def _whole_lines(self, a: int, b: int) -> tuple[int, int]:
        """[a, b) widened to line starts and ends where only blanks lie between."""
        line = self.data.rfind(b"\n", 0, a) + 1
        if not self.data[line:a].strip(b" \t"):
            a = line
        stop = self.data.find(b"\n", b)
        stop = len(self.data) if stop < 0 else stop + 1
        if not self.data[b:stop].strip():
            b = stop
        return a, b

    def span(self, node) -> tuple[int, int]:
        return self.offsets.char(node.start_byte), self.offsets.char(node.end_byte)

    def comments_past(self, start: int, end: int) -> bool:
        """Whether a comment begins within ``start:end`` and runs on past ``end`` over code.

        Only a hole cut across a block of comments may be filled that way: the next line is a
        comment too, and the comment opens its line or what it hides reads as prose: two words in
        a row, neither a keyword (never Python code; in C-like languages a declaration reads so,
        which only the comment on the next line lets through)."""
        if end >= len(self.text) or end <= start:
            return False
        sb, eb = self.offsets.byte(start), self.offsets.byte(end)
        node = self.tree.root_node.descendant_for_byte_range(eb - 1, eb)
        while node is not None:
            if "comment" in node.type and sb <= node.start_byte < eb < node.end_byte:
                return not (self._comment_at_next_line(node.end_byte)
                            and (self._opens_line(node.start_byte) or self._prose(eb, node.end_byte)))
            node = node.parent
        return False

    def _comment_at_next_line(self, byte: int) -> bool:
        match = _NEXT_LINE.match(self.data, byte)
        if match is None:
            return False
        at = match.end()
        node = self.tree.root_node.descendant_for_byte_range(at, at + 1)
        return node is not None and "comment" in node.type and node.start_byte == at

    def _opens_line(self, byte: int) -> bool:
        return not self.data[self.data.rfind(b"\n", 0, byte) + 1:byte].strip()

    def _prose(self, start: int, end: int) -> bool:
        text = self.data[start:end].decode("utf-8", "replace")
        keywords = set(self.grammar.keywords)
        return any(a not in keywords and b not in keywords for a, b in _WORD_PAIR.findall(text))

    def string_delimiter(self, offset: int) -> str | None:
        """The quotes that close the string ``offset`` lies in past its opening quotes (those
        quotes without prefix letters such as ``f`` or ``r``); None outside a string. A string
        node here is one whose first and last children are its quotes (an escape sequence
        inside its content is no delimiter)."""
        byte = self.offsets.byte(offset)
        node = self.tree.root_node.descendant_for_byte_range(max(0, byte - 1), byte)
        while node is not None:
            if "string" in node.type and node.child_count >= 2:
                opening = node.children[0]
                closing = node.children[-1]
                quotes = _PREFIX.sub("", self.data[opening.start_byte:opening.end_byte].decode("utf-8", "replace"))
                if (opening.end_byte <= byte <= closing.start_byte and _QUOTES.fullmatch(quotes)
                        and self.data[closing.start_byte:closing.end_byte] == quotes.encode()):
                    return quotes
            node = node.parent
        return None

    @property
    def has_error(self) -> bool:
        return self.tree.root_node.has_error

    def problems(self) -> list[Problem]:
        """Every ERROR and MISSING node, outermost ERROR only (kept: the validity search asks
        the original document once per candidate)."""
        if self._problems is None:
            self._problems = self._collect_problems()
        return self._problems

    def _collect_problems(self) -> list[Problem]:
        out = []
        stack = [self.tree.root_node] if self.tree.root_node.has_error else []
        while stack:
            node = stack.pop()
            if node.is_error or node.is_missing:
                start, end = self.span(node)
                context = self.span(node.parent) if node.is_missing and node.parent is not None else (start, end)
                kind = "ERROR" if node.is_error else f"MISSING {node.type}"
                out.append(Problem(kind, start, end, context))
                continue
            flagged = [c for c in node.children if c.has_error or c.is_missing]
            if not flagged:  # recovery left no ERROR node (`return a.b "s"` in a try body): blame the node
                start, end = self.span(node)
                out.append(Problem("ERROR", start, end, (start, end)))
            stack.extend(flagged)
        return sorted(out, key=lambda p: (p.start, p.end, p.kind))

    def regions(self) -> list[Region]:
        """Every region the query file captures, once per (name, range)."""
        if self._regions is None:
            self._regions = self._collect() if self.grammar.query is not None else []
        return self._regions

    def _near(self, start: int, end: int) -> list[Region]:
        """The regions of the top-level nodes around [start, end]: every region that contains it,
        without running the query over a whole large file (an editor request's hot path)."""
        if self._regions is not None or self.grammar.query is None:
            return self.regions()
        kids = self.tree.root_node.children
        sb, eb = self.offsets.byte(start), self.offsets.byte(end)
        near = [k for k in kids if k.end_byte >= sb and k.start_byte <= eb]
        if not near:  # between top-level nodes: take both neighbours
            near = [k for k in kids if k.end_byte <= sb][-1:] + [k for k in kids if k.start_byte >= eb][:1]
        if not near:
            return []
        return self._collect((min(k.start_byte for k in near), max(k.end_byte for k in near)))

    def _collect(self, window: tuple[int, int] | None = None) -> list[Region]:
        from tree_sitter import QueryCursor

        cursor = QueryCursor(self.grammar.query)
        if window is not None:
            cursor.set_byte_range(*window)
        seen: dict[tuple[str, int, int], Region] = {}
        for pattern, captures in cursor.matches(self.tree.root_node, predicate=kind_predicate):
            inside = self.grammar.inside.get(pattern, frozenset())
            for name, nodes in captures.items():
                if helper(name):
                    continue
                first, last = nodes[0], nodes[-1]
                if name in inside and first.child_count >= 2:
                    start, end = first.children[0].end_byte, last.children[-1].start_byte
                else:
                    start, end = min(n.start_byte for n in nodes), max(n.end_byte for n in nodes)
                key = (name, self.offsets.char(start), self.offsets.char(end))
                if key not in seen:
                    seen[key] = Region(name, key[1], key[2], first.type, _depth(first), pattern)
        return sorted(seen.values(), key=_inner_first)

    def regions_at(self, position: int) -> list[Region]:
        """Regions containing ``position`` (ends included), innermost first."""
        return [r for r in self._near(position, position) if r.start <= position <= r.end]

    def region(self, position: int, name: str) -> Region | None:
        return next((r for r in self.regions_at(position) if r.name == name), None)

    def expand(self, start: int, end: int) -> Region | None:
        """The smallest region that contains [start, end) and is larger than it."""
        return next((r for r in self._near(start, end)
                     if r.start <= start and end <= r.end and (r.start, r.end) != (start, end)), None)

    def kind_of(self, start: int, end: int) -> str | None:
        """Name of the innermost region whose range is exactly [start, end)."""
        return next((r.name for r in self._near(start, end) if (r.start, r.end) == (start, end)), None)


def _inner_first(r: Region):
    return r.end - r.start, -r.depth, r.order, r.start


def parse(text: str, language: str | None, old: Document | None = None,
          edit: tuple[int, int, str] | None = None) -> Document | None:
    """Parse ``text``; None when ``language`` has no parser.

    Given the previous ``old`` document and the ``edit`` (start, end, new text) that turned
    ``old.text`` into ``text``, the old tree is reused (incremental reparse).
    """
    if old is not None and edit is not None:
        doc = old.edit(*edit)
        if doc.text != text:
            raise ValueError("the edit does not turn the old document into the new text")
        return doc
    g = grammar(language)
    if g is None:
        return None
    return Document(text, g)


def regions_at(text: str, position: int, language: str | None = "python") -> list[Region]:
    doc = parse(text, language)
    return doc.regions_at(position) if doc is not None else []


def region(text: str, position: int, name: str, language: str | None = "python") -> Region | None:
    doc = parse(text, language)
    return doc.region(position, name) if doc is not None else None


def expand(text: str, selection: tuple[int, int], language: str | None = "python") -> Region | None:
    doc = parse(text, language)
    return doc.expand(*selection) if doc is not None else None


_BLANKS = re.compile(r"[ \t]*")


def _blanks_before(text: str, i: int) -> int:
    while i > 0 and text[i - 1] in " \t":
        i -= 1
    return i


def _line_end(text: str, i: int) -> int:
    end = text.find("\n", i)
    return len(text) if end < 0 else end


def introduced_problems(before: Document, after: Document, edits: list[tuple[int, int, str]]) -> list[Problem]:
    """Problems of ``after`` that ``before`` did not have, once ``edits`` (start, end, text) are applied.

    A problem of ``before`` clear of every edit is carried to its shifted place and ignored. One
    that an edit touches, even only at an end, or that lies wholly on the lines an edit touches,
    counts if it is still there: a hole's own breakage (``if <cursor>:``, half a call removed,
    the ``)`` left over from a cut ``f(a, b)``) is the fill's to mend, so an empty fill there does
    not pass for valid. Blanks next to an edit count as part of it (``x = <cursor>`` leaves an
    error that ends before the space). A problem reaching beyond those lines (an unclosed
    bracket further up) is the file's own.
    """
    carried = carried_problems(before.text, before.problems(), edits)
    return [p for p in after.problems() if (p.kind, p.start, p.end) not in carried]


def carried_problems(text: str, problems: list[Problem], edits: list[tuple[int, int, str]]) -> set[tuple[str, int, int]]:
    """(kind, start, end) after ``edits`` of each of ``problems`` (of ``text``) that no edit touches
    (see ``introduced_problems``)."""
    edits = sorted(edits)
    reach = [(_blanks_before(text, a), _BLANKS.match(text, b).end()) for a, b, _ in edits]
    lines = [(text.rfind("\n", 0, a) + 1, _line_end(text, b)) for a, b, _ in edits]
    carried = set()
    for p in problems:
        shift, keep = 0, True
        for (a, b, new), (ra, rb), (la, lb) in zip(edits, reach, lines):
            if (ra <= p.end and p.start <= rb) or (la <= p.start and p.end <= lb):
                keep = False
                break
            if p.start > rb:
                shift += len(new) - (b - a)
        if keep:
            carried.add((p.kind, p.start + shift, p.end + shift))
    return carried
