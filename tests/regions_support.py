"""Helpers shared by the syntax-region tests: positions by marker text, region text by name."""

from dcoder import syntax


def at(text: str, marker: str, offset: int = 0) -> int:
    assert text.count(marker) == 1, marker
    return text.index(marker) + offset


def named(text: str, marker: str, name: str, offset: int = 0, language: str = "python") -> str:
    """The text of the innermost ``name`` region at ``marker`` (+ ``offset``)."""
    pos = at(text, marker, offset)
    r = syntax.region(text, pos, name, language)
    assert r is not None, (marker, name, [x.name for x in syntax.regions_at(text, pos, language)])
    return text[r.start:r.end]


def between(text: str, first: str, last: str) -> str:
    """From the start of ``first`` to the end of ``last`` (both unique)."""
    return text[at(text, first):at(text, last) + len(last)]


def expansions(doc, text: str, marker: str) -> list:
    """Expand a one-character selection at ``marker`` until nothing encloses it; each step must
    contain the previous selection and be strictly larger."""
    sel = (at(text, marker), at(text, marker) + 1)
    chain = []
    while (r := doc.expand(*sel)) is not None:
        assert r.start <= sel[0] and sel[1] <= r.end and r.end - r.start > sel[1] - sel[0]
        chain.append(r)
        sel = (r.start, r.end)
    return chain
