"""Runs merged into one step pass (dcoder/engine/merge.py): every run gets what it gets alone,
through real onnxruntime sessions, with shifted and unshifted models, spans that change length,
rows that do not fit, and runs that stop early."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
import pytest

from dcoder.config import InfillOptions, SamplerConfig
from dcoder.engine.engine import BUILTIN_MODEL
from dcoder.engine.merge import Merger
from dcoder.engine.runtime import load_exported
from dcoder.infill import infill

# documents of different lengths, holes at different places and of different widths
CASES = [
    ("def add(a, b):\n    return a + b\n", (15, 31)),
    ("import os\n\n\ndef main(argv):\n    path = os.path.join(argv[0], 'x')\n    print(path)\n" * 3, (40, 70)),
    ("class Point:\n    def __init__(self, x, y):\n        self.x = x\n        self.y = y\n", (60, 72)),
    ("x = [i * i for i in range(10)]\n", (4, 30)),
]


def rows_of(engine, text: str, span: tuple[int, int], width: int, batch: int):
    ids = np.array(engine.tokenizer.encode(text[:span[0]]) + [engine.tokens.mask] * width
                   + engine.tokenizer.encode(text[span[1]:]), dtype=np.int64)
    rows = np.repeat(ids[None], batch, axis=0)
    return rows, len(engine.tokenizer.encode(text[:span[0]]))


@pytest.mark.parametrize("name", ["dream", "llada", "dreamon"])
def test_merged_steps_match_each_run_alone(name, exported):
    """Log-probabilities pass by pass: three runs (contexts, spans and batch sizes all different)
    asking at once, against the same passes on a backend of their own; midway each run's span
    grows by a token, as an expand does, and the run encodes anew into its rows."""
    engine = load_exported(exported(name))
    runs = []
    for i, (text, span) in enumerate(CASES[:3]):
        ids, lo = rows_of(engine, text, span, width=6 + 5 * i, batch=1 + i % 2)
        runs.append((ids, lo, lo + 6 + 5 * i))

    def script(predict, ids, lo, hi):
        """A sampler's calls: the full window, then fewer columns as positions are revealed."""
        out, x = [], ids.copy()
        for step in range(6):
            if step == 3:  # the layout changes: one more masked position, the pass count starts again
                x, hi = np.insert(x, hi, engine.tokens.mask, axis=1), hi + 1
            cols = np.arange(step, hi - lo)
            out.append(predict(x, lo, hi, step % 3, cols))
            x[:, lo + step] = 7 + step  # reveal one position per step
        return out

    alone = [script(load_exported(exported(name)).backend.predict, *r) for r in runs]
    merger = Merger(engine.backend, rows=8, wait=0.5)
    try:
        backends = [merger.open() for _ in runs]  # all open first: each pass waits for every run
        with ThreadPoolExecutor(len(runs)) as pool:
            merged = list(pool.map(lambda i: script(backends[i].predict, *runs[i]), range(len(runs))))
        for b in backends:
            b.close()
    finally:
        merger.close()
    for got, want in zip(merged, alone):
        for g, w in zip(got, want):
            assert g.shape == w.shape
            assert np.abs(g - w).max() <= 1e-4
    # passes 1, 2, 4 and 5 of all three runs went as one pass each; 0 and 3 encoded
    assert merger.stats.step_passes == 4 and merger.stats.step_runs == 12
    assert merger.stats.alone_passes == 6 and merger.slots.free.all()


def concurrent_infills(engine, merger: Merger, cases, options: InfillOptions, cancels=None):
    cancels = cancels or [None] * len(cases)
    start = threading.Barrier(len(cases))

    def run(i: int):
        text, span = cases[i]
        with merger.open() as backend:
            start.wait()
            return infill(replace(engine, backend=backend), text, [span], options, cancelled=cancels[i])

    with ThreadPoolExecutor(len(cases)) as pool:
        return list(pool.map(run, range(len(cases))))


@pytest.mark.parametrize("candidates", [1, 3])
def test_concurrent_infills_with_the_builtin_model_equal_their_solo_fills(candidates):
    engine = load_exported(BUILTIN_MODEL)
    options = InfillOptions(language="python", candidates=candidates, sampler=SamplerConfig(steps=8))
    alone = [infill(engine, text, [span], options) for text, span in CASES]
    merger = Merger(engine.backend, rows=16, wait=0.2)
    try:
        merged = concurrent_infills(engine, merger, CASES, options)
    finally:
        merger.close()
    assert [r.text for r in merged] == [r.text for r in alone]
    assert [r.forward_passes for r in merged] == [r.forward_passes for r in alone]
    assert merger.stats.step_runs > merger.stats.step_passes  # passes did carry several runs
    assert merger.slots.free.all()  # every run gave its rows back


def test_runs_that_do_not_fit_run_alone_and_still_agree():
    """Two rows of cache for runs of three candidates each: their first denoising runs alone (a
    repair round of one row may then fit), with the same fills."""
    engine = load_exported(BUILTIN_MODEL)
    options = InfillOptions(language="python", candidates=3, sampler=SamplerConfig(steps=6))
    alone = [infill(engine, text, [span], options) for text, span in CASES[:2]]
    merger = Merger(engine.backend, rows=2, wait=0.05)
    try:
        merged = concurrent_infills(engine, merger, CASES[:2], options)
    finally:
        merger.close()
    assert [r.text for r in merged] == [r.text for r in alone]
    assert merger.stats.alone_passes >= 2 * 6  # both runs' three-row steps, each alone


def test_a_run_that_stops_leaves_the_others_running():
    engine = load_exported(BUILTIN_MODEL)
    options = InfillOptions(language="python", sampler=SamplerConfig(steps=16), max_tokens=16)
    merger = Merger(engine.backend, rows=8, wait=0.05)
    try:
        results = concurrent_infills(engine, merger, CASES[:3], options, [lambda: True, None, None])
    finally:
        merger.close()
    assert results[0].cancelled and not results[1].cancelled and not results[2].cancelled
    assert results[1].text == infill(engine, *CASES[1][:1], [CASES[1][1]], options).text


def test_a_failing_pass_fails_its_runs_and_the_merger_goes_on(monkeypatch):
    engine = load_exported(BUILTIN_MODEL)
    options = InfillOptions(language="python", sampler=SamplerConfig(steps=4), max_tokens=4)
    merger = Merger(engine.backend, rows=8, wait=0.05)
    try:
        def broken(*args, **kwargs):
            raise RuntimeError("the device is gone")

        monkeypatch.setattr(engine.backend, "step_with", broken)
        with pytest.raises(RuntimeError, match="the device is gone"):
            concurrent_infills(engine, merger, CASES[:2], options)
        monkeypatch.undo()
        assert [r.text for r in concurrent_infills(engine, merger, CASES[:2], options)] == \
            [infill(engine, text, [span], options).text for text, span in CASES[:2]]
    finally:
        merger.close()


def test_a_run_whose_context_outgrows_its_rows_goes_on_alone(exported):
    """Rows hold the first context; a later encode with a longer one gives the rows back and runs
    alone, with what a backend of its own gives."""
    engine = load_exported(exported("dream"))
    ids, lo = rows_of(engine, *CASES[0], width=6, batch=1)
    longer = np.concatenate([ids, ids[:, :8]], axis=1)  # eight more tokens of suffix
    calls = [(ids, 0), (ids, 1), (longer, 0), (longer, 1)]
    solo = load_exported(exported("dream")).backend
    want = [solo.predict(x, lo, lo + 6, step) for x, step in calls]
    merger = Merger(engine.backend, rows=4, wait=0.01, length=ids.shape[1] - 6)
    try:
        with merger.open() as backend:
            got = [backend.predict(x, lo, lo + 6, step) for x, step in calls]
            assert backend.slot is None and backend.alone is not None
        assert merger.slots.free.all()
    finally:
        merger.close()
    for g, w in zip(got, want):
        assert np.abs(g - w).max() <= 1e-4
