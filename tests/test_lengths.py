"""Spans that change length (DreamOn's expand and delete tokens): the sampler against backends whose
answers are known, the engine and the ONNX cache after a layout change on real graphs, the settings."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from dcoder.config import LengthConfig, SamplerConfig, SpecialTokens
from dcoder.engine.engine import Engine
from dcoder.engine.sampler import Lengths, denoise, denoise_lengths
from dcoder.engine.spans import Span, build_layout, fix_length
from dcoder.engine.tokenizer import Tokenizer
from dcoder.errors import DcoderError
from dcoder.infill import InfillOptions, infill, length_mode

EOS, MASK, PAD, EXPAND, DELETE = 0, 1, 2, 3, 4
V = 24
LENGTHS = Lengths(EXPAND, DELETE, PAD, frozenset({PAD, EOS}), max_span=16, max_len=64)
# context tokens are 10 and up; span tokens 5..9 (and the special ones)
ROW = np.array([10, 11, MASK, MASK, 12, 13, MASK, MASK, MASK, MASK, MASK, 14])
SLOTS = ((2, 4), (6, 11))


def spans(row: np.ndarray) -> list[tuple[int, int]]:
    """Runs of non-context tokens."""
    out, p = [], 0
    while p < len(row):
        if row[p] < 10:
            q = p
            while q < len(row) and row[q] < 10:
                q += 1
            out.append((p, q))
            p = q
        else:
            p += 1
    return out


def distribution(token: int, p: float, second: int | None = None) -> np.ndarray:
    """``token`` with probability p; ``second`` with most of the rest, when given."""
    out = np.full(V, np.log((1 - p) / (V - 1)), dtype=np.float32)
    out[token] = np.log(p)
    if second is not None:
        out[second] = np.log((1 - p) * 0.9)
    return out


class Oracle:
    """Knows each span's answer: a span shorter than its answer has every mask expand; otherwise
    mask k of a span predicts the answer's k-th token, and delete past its end."""

    def __init__(self, *answers):
        self.answers = answers
        self.calls = []

    def predict(self, ids, lo, hi, step, cols=None):
        self.calls.append((ids.shape, lo, hi, step))
        cols = np.arange(hi - lo) if cols is None else np.asarray(cols)
        out = np.zeros((len(ids), len(cols), V), dtype=np.float32)
        for b, row in enumerate(ids):
            found = spans(row)
            for j, c in enumerate(cols):
                k, (a, z) = next((k, s) for k, s in enumerate(found) if s[0] <= lo + c < s[1])
                answer = self.answers[k]
                token = EXPAND if z - a < len(answer) else answer[lo + c - a] if lo + c - a < len(answer) else DELETE
                out[b, j] = distribution(token, 0.9 - 0.01 * c)  # earlier columns first
        return out


class Always:
    """Every masked position predicts ``token``, else 7."""

    def __init__(self, token: int):
        self.token = token

    def predict(self, ids, lo, hi, step, cols=None):
        n = hi - lo if cols is None else len(cols)
        return np.broadcast_to(distribution(self.token, 0.99, 7), (len(ids), n, V)).copy()


@pytest.mark.parametrize("config", [SamplerConfig(steps=4, alg="maskgit_plus"), SamplerConfig(threshold=0.5),
                                    SamplerConfig(steps=32, alg="topk_margin")])
def test_spans_grow_and_shrink_to_their_answers(config):
    states = []
    result = denoise_lengths(ROW[None], SLOTS, Oracle([5, 6, 7, 8, 9], [5]), config, MASK, LENGTHS, states.append)
    ids, (s0, s1) = result.sample.ids[0], result.slots
    assert ids[s0[0]:s0[0] + 5].tolist() == [5, 6, 7, 8, 9] and ids[s1[0]] == 5
    assert s0[1] - s0[0] == 5 and s1[1] - s1[0] == 5  # slot 0 grew to its fill; slot 1 keeps its room
    assert set(ids[s1[0] + 1:s1[1]]) == {PAD}
    context = np.delete(ids, np.r_[s0[0]:s0[1], s1[0]:s1[1]])
    assert context.tolist() == [10, 11, 12, 13, 14]
    assert result.generated[0].nonzero()[0].tolist() == [*range(s0[0], s0[0] + 5), s1[0]]
    assert result.sample.logprobs[0][result.generated[0]].min() < 0  # the fills' tokens were scored
    # each step shows the row as it is then: its masks inside its slots, which move as spans change
    for state in states:
        row, slots = state.ids[0], state.slots
        inside = np.zeros(len(row), dtype=bool)
        for a, b in slots:
            inside[a:b] = True
        assert not (state.masked[0] & ~inside).any() and not np.isin(row, [EXPAND, DELETE]).any()
        assert row[slots[0][1]:slots[1][0]].tolist() == [12, 13]
    assert states[-1].ids[0].tolist() == [10, 11, 5, 6, 7, 8, 9, 12, 13, 5, 14]
    assert result.sample.forward_passes == result.sample.steps == len(states)


def test_the_backend_starts_over_after_each_layout_change():
    backend = Oracle([5, 6, 7], [5, 6, 7, 8, 9])  # span 0 grows by one; span 1 keeps its length
    denoise_lengths(ROW[None], SLOTS, backend, SamplerConfig(steps=64, alg="maskgit_plus"), MASK, LENGTHS)
    shapes = [c[0][1] for c in backend.calls]
    steps = [c[3] for c in backend.calls]
    assert shapes[0] == 12 and shapes[-1] == 13
    for k in range(1, len(steps)):  # step 0 exactly when the layout changed, else counting on
        assert steps[k] == (0 if shapes[k] != shapes[k - 1] else steps[k - 1] + 1)
    assert steps.count(0) == 2


@pytest.mark.parametrize("config", [SamplerConfig(steps=4), SamplerConfig(threshold=0.9),
                                    SamplerConfig(steps=64, alg="origin", temperature=1.0)])
def test_a_model_that_always_expands_stops_at_the_longest_span(config):
    result = denoise_lengths(ROW[None], SLOTS, Always(EXPAND), config, MASK, LENGTHS)
    ids = result.sample.ids[0]
    assert max(b - a for a, b in result.slots) <= 16 and result.sample.steps < 200
    assert not np.isin(ids, [MASK, EXPAND, DELETE]).any()
    # the model's context bounds the rows too: here it leaves 6 tokens of room to share
    tight = denoise_lengths(ROW[None], SLOTS, Always(EXPAND), config, MASK,
                            Lengths(EXPAND, DELETE, PAD, frozenset({PAD, EOS}), max_span=16, max_len=len(ROW) + 6))
    assert tight.sample.ids.shape[1] <= len(ROW) + 6
    if config.deterministic:  # (sampled, an end-of-text is drawn now and then: it ends its span)
        assert [b - a for a, b in result.slots] == [16, 16] and result.generated.sum() == 32
        assert tight.sample.ids.shape[1] == len(ROW) + 6 and tight.generated.sum() == 2 + 5 + 6


def test_a_model_that_always_deletes_leaves_empty_fills():
    result = denoise_lengths(ROW[None], SLOTS, Always(DELETE), SamplerConfig(steps=4), MASK, LENGTHS)
    assert result.slots == SLOTS and not result.generated.any()
    assert result.sample.ids[0].tolist() == [10, 11, PAD, PAD, 12, 13, PAD, PAD, PAD, PAD, PAD, 14]


def test_rows_of_fixed_length_keep_their_layout_beside_a_growing_row():
    batch = np.stack([ROW, fix_length(fix_length(ROW, SLOTS[0], 1, SpecialTokens(MASK, PAD, EOS)), SLOTS[1], 3,
                                      SpecialTokens(MASK, PAD, EOS))])
    result = denoise_lengths(batch, SLOTS, Oracle([5, 6, 7, 8, 9], [5, 6]), SamplerConfig(steps=8), MASK, LENGTHS,
                             fixed=np.array([False, True]))
    (a0, b0), (a1, b1) = result.slots
    grown, kept = result.sample.ids
    assert grown[a0:b0].tolist() == [5, 6, 7, 8, 9] and grown[a1:a1 + 2].tolist() == [5, 6]
    # the fixed row may neither grow, shrink nor end early: one and three tokens, padding after
    assert not np.isin(kept[a0:a0 + 1], [MASK, EXPAND, DELETE, PAD, EOS]).any() and set(kept[a0 + 1:b0]) == {PAD}
    assert not np.isin(kept[a1:a1 + 3], [MASK, EXPAND, DELETE, PAD, EOS]).any() and set(kept[a1 + 3:b1]) == {PAD}
    assert result.generated[1].sum() == 4  # its masks, as in a pad-ending run
    assert result.sample.forward_passes > result.sample.steps  # two layouts: two batches a step


def test_pad_ending_runs_never_choose_expand_or_delete():
    result = denoise(ROW[None], Always(EXPAND), SamplerConfig(steps=3), MASK, never=(EXPAND, DELETE))
    assert not np.isin(result.ids, [MASK, EXPAND, DELETE]).any() and result.ids.shape == (1, len(ROW))


# ---- the engine ---------------------------------------------------------------------------

class SpanOracle:
    """One span between a known prefix and suffix; the rest as ``Oracle``."""

    def __init__(self, prefix: int, suffix: int, answer: list[int], vocab: int):
        self.prefix, self.suffix, self.answer, self.vocab = prefix, suffix, answer, vocab

    def predict(self, ids, lo, hi, step, cols=None):
        cols = np.arange(hi - lo) if cols is None else np.asarray(cols)
        size = ids.shape[1] - self.prefix - self.suffix
        out = np.full((len(ids), len(cols), self.vocab), np.log(0.01 / self.vocab), dtype=np.float32)
        for j, c in enumerate(cols):
            k = lo + c - self.prefix
            token = EXPAND if size < len(self.answer) else self.answer[k] if k < len(self.answer) else DELETE
            out[:, j, token] = np.log(0.9)
        return out


def oracle_engine(tokenizer_json, text: str, cursor: int, answer: str) -> Engine:
    tok = Tokenizer(tokenizer_json)
    backend = SpanOracle(len(tok.encode(text[:cursor])), len(tok.encode(text[cursor:])), tok.encode(answer),
                         tok.vocab_size)
    tokens = SpecialTokens(mask=MASK, span_pad=PAD, eos=EOS, expand=EXPAND, delete=DELETE)
    return Engine(tok, tokens, backend, shift=False, max_context=512, vocab_size=tok.vocab_size, description="oracle")


def test_infill_grows_past_its_budget_and_maps_back_to_an_edit(growing_tokenizer_json):
    text = "def area(w, h):\n    return \n"
    cursor = text.index("\n", 20)
    answer = "w * h  # width times height"
    engine = oracle_engine(growing_tokenizer_json, text, cursor, answer)
    assert len(engine.tokenizer.encode(answer)) > 2
    previews = []
    options = InfillOptions(sampler=SamplerConfig(steps=6), max_tokens=2)
    result = infill(engine, text, [(cursor, cursor)], options, lambda p: previews.append(p.previews[0]))
    assert length_mode(engine, options) == "expand"
    assert result.edits[0].text == answer and result.text == text[:cursor] + answer + text[cursor:]
    assert result.generated_tokens == len(engine.tokenizer.encode(answer))
    assert "\u2591" in previews[0] and previews[-1] == answer
    # ending with padding instead, the same fill cannot outgrow its two masks
    pad = infill(engine, text, [(cursor, cursor)], InfillOptions(sampler=SamplerConfig(steps=6), max_tokens=2,
                                                                 lengths=LengthConfig("pad")))
    fill = pad.edits[0].text
    assert len(engine.tokenizer.encode(fill)) <= 2 and "<|" not in fill


def test_length_modes_resolve_per_checkpoint(growing_tokenizer_json):
    engine = oracle_engine(growing_tokenizer_json, "x = \n", 4, "1")
    plain = Engine(engine.tokenizer, SpecialTokens(MASK, PAD, EOS), engine.backend, False, 512, V, "plain")
    assert length_mode(plain, InfillOptions()) == "pad"
    assert length_mode(engine, InfillOptions(lengths=LengthConfig("pad"))) == "pad"
    with pytest.raises(DcoderError, match="--length expand needs"):
        infill(plain, "x = \n", [(4, 4)], InfillOptions(lengths=LengthConfig("expand")))
    for bad in (dict(mode="grow"), dict(max_span=0), dict(max_span=5000)):
        with pytest.raises(DcoderError):
            LengthConfig(**bad)


# ---- real checkpoints and graphs ---------------------------------------------------------------

def test_expand_and_delete_are_read_from_checkpoints_and_manifests(dreamon_ckpt, dream_ckpt, exported):
    from dcoder.engine.checkpoint import open_checkpoint
    from dcoder.engine.manifest import load_manifest

    tokens = open_checkpoint(dreamon_ckpt).tokens
    assert (tokens.expand, tokens.delete) == (3, 4) and tokens.can_grow
    assert load_manifest(exported("dreamon")).tokens == tokens
    assert not open_checkpoint(dream_ckpt).tokens.can_grow
    assert load_manifest(exported("dream")).tokens.structural == ()


class Forcing:
    """Wraps a backend, records its answers, and overrides them by plan: pass k forces expand at the
    first masked column and/or delete at the last, or one plain token at the first (everything
    else made flat, so a 0.5 threshold reveals only what is forced); after the plan every column
    is sharpened to its argmax, so one pass reveals all that is left."""

    def __init__(self, inner, plan):
        self.inner, self.plan = inner, plan
        self.seen = []  # (ids, step, answer) of each pass

    def predict(self, ids, lo, hi, step, cols=None):
        got = np.asarray(self.inner.predict(ids, lo, hi, step, cols), dtype=np.float32)
        self.seen.append((ids.copy(), step, got.copy()))
        out = got.copy()
        k = len(self.seen) - 1
        if k < len(self.plan):
            out[:] = -np.log(out.shape[-1])
            for column, token in self.plan[k]:
                out[:, column] = -30.0
                out[:, column, token] = 0.0
        else:
            out[np.arange(len(out))[:, None], np.arange(out.shape[1]), out.argmax(-1)] += 50.0
        return out


PLAN = [[(0, 7)], [(0, EXPAND), (-1, DELETE)], [(0, EXPAND)]]  # a plain token; a +1 -1 change; a +1 change


def two_holes(tokens: SpecialTokens, tok: Tokenizer):
    text = "def f(a, b):\n    x = \n    return \n"
    first, second = text.index("= ") + 2, text.index("return ") + 7
    layout = build_layout(text, [Span(first, first, 4), Span(second, second, 4)], tok, tokens, 512, tokens.eos)
    return layout.ids[None], layout.slots


def test_onnx_cache_is_encoded_anew_after_every_layout_change(exported):
    from test_runtime import FullRecompute

    from dcoder.engine.manifest import load_manifest
    from dcoder.engine.runtime import OnnxBackend, RuntimeOptions

    manifest = load_manifest(exported("dreamon"))
    tokens = manifest.tokens
    tok = Tokenizer(manifest.folder / "tokenizer.json")
    ids, slots = two_holes(tokens, tok)
    lengths = Lengths(tokens.expand, tokens.delete, tokens.span_pad, tokens.stripped, max_span=16, max_len=512)
    config = SamplerConfig(threshold=0.5, alg="maskgit_plus")
    cached = Forcing(OnnxBackend(manifest, RuntimeOptions(provider="cpu")), PLAN)
    full = Forcing(FullRecompute(cached.inner), PLAN)
    a = denoise_lengths(ids, slots, cached, config, tokens.mask, lengths)
    b = denoise_lengths(ids, slots, full, config, tokens.mask, lengths)
    # pass 1 ran on the cache; passes 2 and 3 follow layout changes (the first keeps the length)
    assert [s for _, s, _ in cached.seen] == [0, 1, 0, 0]
    assert [x.shape[1] for x, _, _ in cached.seen] == [ids.shape[1]] * 3 + [ids.shape[1] + 1]
    for (x, step, got), (y, _, want) in zip(cached.seen, full.seen):
        assert np.array_equal(x, y)
        if step == 0:  # a fresh encode: exactly the full result
            assert np.allclose(got, want, atol=1e-4)
    assert np.array_equal(a.sample.ids, b.sample.ids) and a.slots == b.slots
    assert a.sample.forward_passes == 4


def test_torch_backend_follows_the_changing_layout(exported, dreamon_ckpt):
    from dcoder.engine.checkpoint import open_checkpoint
    from dcoder.engine.manifest import load_manifest
    from dcoder.engine.runtime import OnnxBackend, RuntimeOptions

    pytest.importorskip("torch")
    from dcoder.engine.torch_backend import TorchBackend, load_model

    ckpt = open_checkpoint(dreamon_ckpt)
    tokens = ckpt.tokens
    ids, slots = two_holes(tokens, ckpt.tokenizer())
    lengths = Lengths(tokens.expand, tokens.delete, tokens.span_pad, tokens.stripped, max_span=16, max_len=512)
    config = SamplerConfig(threshold=0.5, alg="maskgit_plus")
    runs = []
    for inner in (TorchBackend(load_model(ckpt), True),
                  OnnxBackend(load_manifest(exported("dreamon")), RuntimeOptions(provider="cpu", cache_refresh=1))):
        forcing = Forcing(inner, PLAN)
        runs.append((denoise_lengths(ids, slots, forcing, config, tokens.mask, lengths), forcing.seen))
    (a, seen_a), (b, seen_b) = runs
    for (x, _, got), (y, _, want) in zip(seen_a, seen_b):
        assert np.array_equal(x, y) and np.allclose(got, want, atol=1e-3)
    assert np.array_equal(a.sample.ids, b.sample.ids)


def test_real_model_infills_with_expand_and_delete_end_to_end(exported):
    from dcoder.engine.runtime import load_exported

    engine = load_exported(exported("dreamon"))
    text = "def f(a, b):\n    x = \n    return x\n"
    cursor = text.index("= ") + 2
    options = InfillOptions(sampler=SamplerConfig(steps=6), max_tokens=3, candidates=3, language="python",
                            lengths=LengthConfig(max_span=12))
    assert length_mode(engine, options) == "expand"
    result = infill(engine, text, [(cursor, cursor)], options)
    fill = result.edits[0].text
    assert result.text == text[:cursor] + fill + text[cursor:]
    assert not any(s in fill for s in ("<|mask|>", "<|expand|>", "<|delete|>", "<|dlm_pad|>"))
    assert len(engine.tokenizer.encode(fill)) <= 12 and result.parses is not None and result.forward_passes >= 2


def dcoder(*args):
    return subprocess.run([sys.executable, "-m", "dcoder", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_cli_length_options(exported, sample_file):
    r = dcoder("infill", sample_file, "--at", "3:12", "--model", exported("dream"), "--length", "expand")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--length expand needs" in r.stderr
    r = dcoder("infill", sample_file, "--at", "3:12", "--model", exported("dreamon"), "--max-span", "0")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--max-span" in r.stderr
    r = dcoder("infill", sample_file, "--at", "3:12", "--model", exported("dreamon"), "--length", "expand",
               "--max-tokens", "2", "--max-span", "8", "--steps", "4", "--json", "--repair", "0", "--search-tokens", "0")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["generated_tokens"] <= 8


def test_eval_records_the_length_mode(exported, tmp_path, capsys):
    from dcoder.cli import main

    tasks = tmp_path / "t.jsonl"
    tasks.write_text(json.dumps({"task_id": "a", "prompt": "def f(x):\n    return ", "suffix": "\n",
                                 "canonical_solution": "x + 1", "kind": "single-line"}) + "\n")
    for mode, expected in (("auto", "expand"), ("pad", "pad")):
        out = tmp_path / f"{mode}.json"
        assert main(["eval", str(tasks), "--model", str(exported("dreamon")), "--length", mode, "--steps", "2",
                     "--json", str(out)]) == 0
        options = json.loads(out.read_text())["options"]
        assert options["length"] == expected and options["max_span"] == LengthConfig().max_span
    capsys.readouterr()
