"""The spans training masks (dcoder/training/objective.py): characters, lines and syntax regions."""

import numpy as np
from regions_support import CODE

from dcoder import syntax


def test_training_spans_are_in_bounds_seeded_and_syntax_spans_are_regions():
    from dcoder.training.objective import MAX_CHAR_SPAN, SyntaxSpans, char_span, line_span

    regions = {(r.start, r.end) for r in syntax.parse(CODE, "python").regions()}
    spans = SyntaxSpans([CODE, "no python here (\n"], max_chars=2000)
    kinds = set()
    for seed in range(40):
        draw = [f(CODE, np.random.default_rng(seed)) for f in (char_span, line_span)]
        assert draw == [f(CODE, np.random.default_rng(seed)) for f in (char_span, line_span)]
        (a, b), (c, d) = draw
        assert 0 <= a < b <= len(CODE) and b - a <= MAX_CHAR_SPAN
        assert 0 <= c < d <= len(CODE) and CODE[c:d].strip() and (c == 0 or CODE[c - 1] in "\n \t")
        region = spans(0, np.random.default_rng(seed))
        assert region in regions
        kinds.add(next(r.name for r in syntax.parse(CODE, "python").regions() if (r.start, r.end) == region))
    assert len(kinds) > 3  # kind first, then a region of it: small regions do not crowd out the rest
    broken = spans(1, np.random.default_rng(0))
    assert broken is None or broken[1] <= len("no python here (\n")
