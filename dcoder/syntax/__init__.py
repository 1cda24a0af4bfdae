"""Syntax: languages and their parsers, parsed documents and their regions, fills that parse.

The names most callers need are here; ``validity``, ``candidates``, ``search`` and ``indent`` are
imported by module (they stand above the engine).
"""

from dcoder.syntax.document import (
                                    Document,
                                    Problem,
                                    Region,
                                    carried_problems,
                                    expand,
                                    introduced_problems,
                                    parse,
                                    region,
                                    regions_at,
)
from dcoder.syntax.languages import CAPTURES, Grammar, grammar, language_of, note, region_names

__all__ = ["CAPTURES", "Document", "Grammar", "Problem", "Region", "carried_problems", "expand", "grammar",
           "introduced_problems", "language_of", "note", "parse", "region", "region_names", "regions_at"]
