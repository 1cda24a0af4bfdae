"""The code actions and commands the server offers, as plain operations on document offsets.

An ``Operation`` is what a code action carries in its ``data`` until ``codeAction/resolve``
computes its edit; commands build the same operations from LSP positions.
"""

from __future__ import annotations

from dataclasses import dataclass

from dcoder_lsp.documents import Document
from dcoder_lsp.operations import holes

REFINE_COMMAND = "dcoder.refineSelection"
FILL_REGION_COMMAND = "dcoder.fillRegion"
FILL_HOLES_COMMAND = "dcoder.fillHoles"
COMMANDS = (REFINE_COMMAND, FILL_REGION_COMMAND, FILL_HOLES_COMMAND)

REFINE, REFINE_CONFIDENT, FILL, FILL_HOLES = "refine", "refineConfident", "fill", "fillHoles"
KINDS = {
    REFINE: "refactor.rewrite.dcoder.refine",
    REFINE_CONFIDENT: "refactor.rewrite.dcoder.refine",
    FILL: "refactor.rewrite.dcoder.fill",
    FILL_HOLES: "refactor.rewrite.dcoder.fillHoles",
}
MAX_REGIONS = 6  # "Fill ..." actions offered at one cursor
REGION_TITLES = {
    "function.inner": "function body", "function.outer": "function", "class.inner": "class body",
    "class.outer": "class", "call.inner": "arguments", "call.outer": "call", "return.value": "return value",
    "assignment.rhs": "assigned value",
}


def region_title(name: str) -> str:
    return REGION_TITLES.get(name, name.replace(".inner", " contents").replace(".outer", "").replace(".", " "))


@dataclass(frozen=True)
class Operation:
    op: str
    uri: str
    version: int
    ranges: tuple[tuple[int, int], ...]
    title: str

    def to_data(self) -> dict:
        return {"op": self.op, "uri": self.uri, "version": self.version,
                "ranges": [list(r) for r in self.ranges], "title": self.title}

    @classmethod
    def from_data(cls, data) -> "Operation":
        """Read back ``to_data``; ValueError when it is not one of ours."""
        try:
            op, uri, version, title = data["op"], data["uri"], data["version"], data["title"]
            ranges = tuple((int(a), int(b)) for a, b in data["ranges"])
        except (KeyError, TypeError, ValueError):
            raise ValueError("code action data is not a dcoder operation") from None
        if op not in KINDS or not isinstance(uri, str) or not isinstance(version, int) or not ranges:
            raise ValueError("code action data is not a dcoder operation")
        if any(not 0 <= a <= b for a, b in ranges):
            raise ValueError("code action data has a bad range")
        if op != FILL_HOLES and len(ranges) != 1:
            raise ValueError(f"code action data for {op} must hold one range, not {len(ranges)}")
        if op in (REFINE, REFINE_CONFIDENT) and ranges[0][0] == ranges[0][1]:
            raise ValueError("code action data selects nothing to refine")
        return cls(op, uri, version, ranges, str(title))

    def mismatch(self, doc: Document) -> str | None:
        """Why this operation does not fit ``doc`` (the version it was offered for), or None."""
        if any(b > len(doc.text) for _, b in self.ranges):
            return "range outside the document"
        if self.op == FILL_HOLES and list(self.ranges) != holes(doc):
            return "code action data does not match the document's <|mask|> holes"
        return None

    @property
    def kind(self) -> str:
        return KINDS[self.op]


def refine_operations(doc: Document, start: int, end: int) -> list[Operation]:
    if start == end or not doc.text[start:end].strip():
        return []
    span = ((start, end),)
    return [Operation(REFINE, doc.uri, doc.version, span, "Refine selection"),
            Operation(REFINE_CONFIDENT, doc.uri, doc.version, span, "Refine selection (keep confident code)")]


def region_operations(doc: Document, offset: int, name: str | None = None) -> list[Operation]:
    """"Fill <region>" for the syntax regions around ``offset``, innermost first."""
    tree = doc.syntax
    if tree is None:
        return []
    view = doc.engine
    seen, out = set(), []
    for r in tree.regions_at(view.to_engine(offset)):
        if (r.start, r.end) in seen or (name is not None and r.name != name):
            continue
        seen.add((r.start, r.end))
        span = (view.to_document(r.start), view.to_document(r.end))
        out.append(Operation(FILL, doc.uri, doc.version, (span,), f"Fill {region_title(r.name)}"))
    return out[:MAX_REGIONS]


def holes_operation(doc: Document) -> Operation | None:
    found = holes(doc)
    if not found:
        return None
    title = "Fill hole" if len(found) == 1 else f"Fill {len(found)} holes"
    return Operation(FILL_HOLES, doc.uri, doc.version, tuple(found), title)


def offer(doc: Document, start: int, end: int, only: list[str] | None) -> list[Operation]:
    """Every operation for a selection [start, end) (a cursor when empty), filtered by kind."""
    ops = refine_operations(doc, start, end) + region_operations(doc, start)
    hole = holes_operation(doc)
    if hole is not None:
        ops.append(hole)
    if only:
        ops = [op for op in ops if any(op.kind == k or op.kind.startswith(k + ".") for k in only)]
    return ops
