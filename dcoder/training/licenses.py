"""Which licences the training corpus accepts, and what a wheel's metadata says about its own.

The corpus takes only permissive licences: MIT, BSD, Apache-2.0, PSF and ISC. Licences compare by
family, since a wheel's classifier says "BSD License" where the package list says BSD-3-Clause.
"""

from __future__ import annotations

import re
from email.message import Message

ACCEPTED = "MIT, BSD, Apache-2.0, PSF or ISC"
# SPDX identifiers the corpus accepts, and the family each belongs to.
PERMISSIVE = {
    "MIT": "MIT", "MIT-0": "MIT",
    "BSD-2-Clause": "BSD", "BSD-3-Clause": "BSD", "0BSD": "BSD",
    "Apache-2.0": "Apache",
    "PSF-2.0": "PSF", "Python-2.0": "PSF",
    "ISC": "ISC",
}
CLASSIFIERS = {
    "License :: OSI Approved :: MIT License": "MIT",
    "License :: OSI Approved :: MIT No Attribution License (MIT-0)": "MIT",
    "License :: OSI Approved :: BSD License": "BSD",
    "License :: OSI Approved :: Apache Software License": "Apache",
    "License :: OSI Approved :: Python Software Foundation License": "PSF",
    "License :: OSI Approved :: ISC License (ISCL)": "ISC",
}
# A free-text License field names its licence by these patterns, unless it also names a licence the
# corpus refuses (then it is not trusted at all).
FREE_TEXT = (
    (re.compile(r"\bMIT\b|Permission is hereby granted, free of charge"), "MIT"),
    (re.compile(r"\bBSD\b|Redistribution and use in source and binary forms"), "BSD"),
    (re.compile(r"\bApache\b"), "Apache"),
    (re.compile(r"\bPSF\b|Python Software Foundation"), "PSF"),
    (re.compile(r"\bISC\b"), "ISC"),
)
REFUSED_TEXT = re.compile(r"GPL|General Public|Mozilla|\bMPL\b|EUPL|Commons|Proprietary|All rights reserved",
                          re.IGNORECASE)
_OPERATORS = {"AND", "OR", "WITH"}


def families(expression: str) -> frozenset[str] | None:
    """The licence families an SPDX expression names; None unless every identifier is permissive."""
    ids = [t for t in re.split(r"[\s()]+", expression) if t and t.upper() not in _OPERATORS]
    if not ids or any(i not in PERMISSIVE for i in ids):
        return None
    return frozenset(PERMISSIVE[i] for i in ids)


def wheel_license(metadata: Message) -> tuple[str, frozenset[str] | None]:
    """What a wheel's METADATA says its licence is, and the families that names (None: unknown or refused).

    License-Expression (PEP 639) wins; then the licence classifiers; then the free-text License field.
    """
    expression = (metadata.get("License-Expression") or "").strip()
    if expression:
        return expression, families(expression)
    classifiers = sorted({c for c in metadata.get_all("Classifier") or ()
                          if c.startswith("License ::") and c != "License :: OSI Approved"})
    if classifiers:
        said = " + ".join(c.rsplit(" :: ", 1)[-1] for c in classifiers)
        known = [CLASSIFIERS.get(c) for c in classifiers]
        return said, None if None in known else frozenset(known)
    text = (metadata.get("License") or "").strip()
    said = text.splitlines()[0][:80] if text else ""
    if not text or REFUSED_TEXT.search(text):
        return said, None
    if families(text) is not None:
        return said, families(text)
    found = frozenset(family for pattern, family in FREE_TEXT if pattern.search(text))
    return said, found or None
