"""Span layout: masks placed between separately tokenized stretches, trimming, decoding."""

import numpy as np
import pytest
from regions_support import at

from dcoder import syntax
from dcoder.config import SamplerConfig
from dcoder.engine.checkpoint import open_checkpoint
from dcoder.engine.engine import Engine
from dcoder.engine.spans import Span, bucket, build_layout, default_budget, find_holes, preview_text, span_text
from dcoder.errors import DcoderError
from dcoder.infill import InfillOptions, apply_edits, infill, refine


@pytest.fixture(scope="module")
def ckpt(dream_files):
    return open_checkpoint(dream_files)


def layout_for(ckpt, text, spans, max_len=512, lead=0):
    return build_layout(text, spans, ckpt.tokenizer(), ckpt.tokens, max_len, lead)


def test_span_in_the_middle_of_a_word_keeps_both_sides(ckpt):
    tok = ckpt.tokenizer()
    text = "value = compute_total(items)\n"
    cut = text.index("total")
    lay = layout_for(ckpt, text, [Span(cut, cut + 5, 4)])
    (a, b), = lay.slots
    assert tok.decode(lay.ids[1:a].tolist()) == text[:cut]
    assert tok.decode(lay.ids[b:].tolist()) == text[cut + 5:]
    assert (lay.ids[a:b] == ckpt.tokens.mask).all() and lay.ids[0] == 0
    row = lay.ids.copy()
    fill = tok.encode("sum")
    row[a:a + len(fill)] = fill
    row[a + len(fill):b] = ckpt.tokens.span_pad
    assert span_text(row, (a, b), tok, ckpt.tokens) == "sum"


def test_several_spans_in_document_order(ckpt):
    text = "a = 1\nb = 2\nc = 3\n"
    spans = [Span(16, 17, 3), Span(4, 5, 2)]
    lay = layout_for(ckpt, text, spans)
    assert [s.start for s in lay.spans] == [4, 16]
    assert [b - a for a, b in lay.slots] == [2, 3]


def test_long_files_keep_text_nearest_the_span(ckpt):
    tok = ckpt.tokenizer()
    lines = [f"x{i} = {i}\n" for i in range(400)]
    text = "".join(lines)
    pos = text.index("x200 =")
    lay = layout_for(ckpt, text, [Span(pos, pos, 8)], max_len=64)
    assert len(lay.ids) <= 64
    (a, b), = lay.slots
    before = tok.decode(lay.ids[1:a].tolist())
    after = tok.decode(lay.ids[b:].tolist())
    assert text[:pos].endswith(before) and text[pos:].startswith(after)
    assert "x199" in before and "x200" in after
    assert abs(len(tok.encode(before)) - len(tok.encode(after))) <= 2  # budget split between sides


def test_bad_spans_are_clear_errors(ckpt):
    with pytest.raises(DcoderError, match="outside"):
        layout_for(ckpt, "abc", [Span(2, 9, 4)])
    with pytest.raises(DcoderError, match="overlap"):
        layout_for(ckpt, "abcdef", [Span(0, 3, 4), Span(2, 4, 4)])
    with pytest.raises(DcoderError, match="context"):
        layout_for(ckpt, "abc", [Span(1, 1, 600)])


def test_holes_and_budgets(ckpt):
    tok = ckpt.tokenizer()
    assert find_holes("a<|mask|>b<|mask|>") == [(1, 9), (10, 18)]
    code = "def f(x):\n    \nreturn_value = g(x)\n"
    assert default_budget(code, code.index("g("), code.index("g("), tok) == 32
    assert default_budget(code, 14, 14, tok) == 128  # empty line after a block opener
    assert default_budget("x = 1\n\ny = 2\n", 6, 6, tok) == 64
    assert default_budget(code, 0, 9, tok) == 32


def test_preview_draws_masks(ckpt):
    tok = ckpt.tokenizer()
    m = ckpt.tokens.mask
    row = np.array(tok.encode("ab") + [m, m] + tok.encode("cd"))
    n = len(tok.encode("ab"))
    assert preview_text(row, (0, len(row)), tok, ckpt.tokens, "#") == "ab##cd"
    assert preview_text(row, (n, n + 2), tok, ckpt.tokens, "#") == "##"


class Scripted:
    """Predicts ``script`` tokens for the masked window then span padding; ignores the input."""

    def __init__(self, script, pad, vocab):
        self.script, self.pad, self.vocab = script, pad, vocab

    def predict(self, ids, lo, hi, step, cols=None):
        cols = range(hi - lo) if cols is None else cols
        logp = np.full((ids.shape[0], len(cols), self.vocab), -30.0, dtype=np.float32)
        for r, j in enumerate(cols):
            logp[:, r, self.script[j] if j < len(self.script) else self.pad] = 0.0
        return logp


def scripted_engine(ckpt, text):
    tok = ckpt.tokenizer()
    backend = Scripted(tok.encode(text), ckpt.tokens.span_pad, ckpt.config.vocab_size)
    return Engine(tok, ckpt.tokens, backend, shift=True, max_context=512, vocab_size=ckpt.config.vocab_size,
                  description="scripted")


def test_infill_strips_padding_and_returns_edits(ckpt):
    engine = scripted_engine(ckpt, "a + b")
    text = "def add(a, b):\n    return \n"
    pos = text.index("return ") + 7
    result = infill(engine, text, [(pos, pos)], InfillOptions(SamplerConfig(steps=4)))
    assert result.text == "def add(a, b):\n    return a + b\n"
    assert [(e.start, e.end, e.text) for e in result.edits] == [(pos, pos, "a + b")]
    assert result.forward_passes == 4 and not result.cancelled


def test_exact_length_forbids_padding(ckpt):
    engine = scripted_engine(ckpt, "a")
    result = infill(engine, "x = \n", [(4, 4)], InfillOptions(SamplerConfig(steps=2), exact_length=3))
    assert result.generated_tokens == 3
    assert len(ckpt.tokenizer().encode(result.edits[0].text)) >= 2  # padding was not allowed


def test_progress_callback_sees_previews_and_can_cancel(ckpt):
    engine = scripted_engine(ckpt, "a + b")
    seen = []

    def on_progress(p):
        seen.append(p.previews[0])
        return True

    result = infill(engine, "x = \n", [(4, 4)], InfillOptions(SamplerConfig(steps=8), max_tokens=8), on_progress)
    assert result.cancelled and len(seen) == 1 and "\u2591" in seen[0]


def test_refine_with_min_confidence_keeps_likely_tokens(ckpt):
    engine = scripted_engine(ckpt, "total")
    text = "y = total\n"
    # the scripted model is sure of every token of "total", so nothing is re-masked
    kept = refine(engine, text, (4, 9), InfillOptions(SamplerConfig(steps=2)), min_confidence=0.5)
    assert kept.edits == () and kept.text == text and kept.forward_passes == 1
    replaced = refine(scripted_engine(ckpt, "zz"), "y = ab\n", (4, 6), InfillOptions(SamplerConfig(steps=2)),
                      min_confidence=0.5)
    assert replaced.text != "y = ab\n" and replaced.text.startswith("y = ")


def test_apply_edits_in_any_order():
    from dcoder.infill import Edit

    assert apply_edits("0123456789", [Edit(7, 8, "X"), Edit(1, 3, "")]) == "03456X89"


def test_region_kind_sets_the_budget(engine):
    text = "def f():\n    return 1\n"
    r = syntax.region(text, at(text, "1"), "function.inner")
    body = default_budget(text, r.start, r.end, engine.tokenizer, "function.inner")
    plain = default_budget(text, r.start, r.end, engine.tokenizer)
    assert body == 128 and plain < body
    big = "x = 1\n    " * 80
    assert default_budget(big, 0, len(big), engine.tokenizer, "function.inner") == bucket(
        int(len(engine.tokenizer.encode(big)) * 1.5) + 8)
