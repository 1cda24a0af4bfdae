"""Helpers shared by the syntax-region tests: positions by marker text, region text by name."""

import textwrap

from dcoder import syntax

CODE = textwrap.dedent('''\
    import os
    from typing import (Any,
        Dict)


    def outer(x):
        def inner(y: int = 2, *rest, **kw):
            return [v * y for v in rest if v > 0]
        return inner


    @cache
    @wraps(f)
    async def fetch(url, /, *, timeout=None):
        """Fetch {url}."""
        async with session.get(url) as r:
            data = await r.json()
        key = lambda d, k=1: d[k]
        total += len(data)
        assert data, "empty"
        msg = f"{data['x']} of {{total}}"
        match data:
            case {"kind": kind}:
                pass
        while total > 10:
            total -= 1
        return key(data) if data else call()


    class Box(Base):
        """A box."""

        def größe(self, ä):
            return ä * 2
''')

FAR = "".join(f"def g{i}(x):\n    return x + {i}\n\n\n" for i in range(6000))  # 210 kB of valid code


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


def assert_nested(regions: list, position: int) -> None:
    """Every region contains ``position`` and each next one contains the previous one, as
    ``regions_at`` promises (innermost first)."""
    spans = [(r.start, r.end) for r in regions]
    assert all(a <= position <= b for a, b in spans), (position, spans)
    assert all(a2 <= a1 and b1 <= b2 for (a1, b1), (a2, b2) in zip(spans, spans[1:])), spans


def crlf_copy(text: str, language: str, more_than: int = 0) -> str:
    """``text`` with CRLF line breaks, checked to parse without error and to give the same regions
    as ``text``, each shifted by the line breaks before it; there must be more than ``more_than``
    (and at least one) so the comparison is not vacuous."""
    crlf = text.replace("\n", "\r\n")
    doc = syntax.parse(crlf, language)
    assert doc.has_error is False

    def shift(i: int) -> int:  # one more character per line break before i
        return i + text.count("\n", 0, i)

    lf = {(r.name, shift(r.start), shift(r.end), r.node_type) for r in syntax.parse(text, language).regions()}
    cr = {(r.name, r.start, r.end, r.node_type) for r in doc.regions()}
    assert cr == lf and len(cr) > max(more_than, 0), (len(cr), sorted(cr ^ lf)[:10])
    return crlf
