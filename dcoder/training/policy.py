"""``dcoder train-policy``: fit the learned unmasking policy to a model's own denoising traces.

Holes of one to three whole lines are cut from training-corpus files and filled the way an
editor request is (``dcoder.infill.infill``), one token per step. At every step each masked
position gives a sample: its features (``dcoder.engine.sampler.token_features``) and whether the
token the model would pick there now is the one the full decode ends with. A small MLP in numpy
learns that chance; the policy then reveals, at each step, the tokens it trusts. Evaluation
benchmarks never feed it: files of the benchmark projects are skipped.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from dcoder.config import POLICY_FEATURES, LearnedPolicy, SamplerConfig
from dcoder.engine.engine import Engine
from dcoder.engine.policy import model_identity
from dcoder.engine.sampler import drop_tokens, learned_gate, token_features
from dcoder.errors import DcoderError

# the projects dcoder's benchmarks are cut from (see dcoder.training.decontam): never trained on
HELD_OUT = ("attrs", "click", "boltons", "more-itertools", "more_itertools", "toolz")
HIDDEN = 16
MAX_SAMPLES = 20_000
CUTS = np.round(np.arange(0.5, 1.0, 0.01), 2)
PRECISION = 0.98  # the default cut: the lowest whose held-out reveals are this often final


@dataclass
class Recorder:
    """A backend that keeps every pass's input and output."""

    inner: object
    calls: list

    def predict(self, ids, lo, hi, step, cols=None):
        out = self.inner.predict(ids, lo, hi, step, cols)
        self.calls.append((np.array(ids), lo, hi, np.arange(hi - lo) if cols is None else np.array(cols), np.array(out)))
        return out


def corpus_files(root: Path) -> list[Path]:
    if not root.is_dir():
        raise DcoderError(f"corpus folder not found: {root}")
    files = sorted(p for p in root.rglob("*.py")
                   if not any(part.lower() in HELD_OUT for part in p.relative_to(root).parts))
    if not files:
        raise DcoderError(f"{root} holds no Python file to train on")
    return files


def holes(files: list[Path], count: int, rng: random.Random):
    """(text without the hole, hole offset) of ``count`` holes of one to three whole lines."""
    out = []
    for path in rng.sample(files, len(files)):
        try:
            lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        except (OSError, UnicodeDecodeError):
            continue
        code = [i for i in range(1, len(lines)) if lines[i].strip()]
        if len(code) < 4:
            continue
        start = rng.choice(code)
        end = min(len(lines), start + rng.choice((1, 1, 1, 2, 3)))
        text = "".join(lines[:start]) + "".join(lines[end:])
        cut = len("".join(lines[:start]))
        # the model sees a few hundred tokens: keep the hole's neighbourhood
        lo = max(0, cut - 3000)
        out.append((text[lo:cut + 1500], cut - lo))
        if len(out) == count:
            break
    return out


def samples(engine: Engine, calls: list) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of one one-token-per-step trace."""
    mask = engine.tokens.mask
    final = calls[-1][0][0].copy()
    feats, labels, steps = [], [], []
    for ids, lo, hi, cols, out in calls:
        row = ids[:1]
        win = row[:, lo:hi] == mask
        b_idx, w_idx = np.nonzero(win)
        row_of = np.zeros(hi - lo, dtype=np.int64)
        row_of[cols] = np.arange(len(cols))
        with np.errstate(all="ignore"):
            chosen = drop_tokens(np.array(out[b_idx, row_of[w_idx]], dtype=np.float32), (mask, *engine.tokens.structural))
        tokens = np.argmax(chosen, axis=-1)
        feats.append(token_features(chosen, win, b_idx, w_idx))
        steps.append((lo + w_idx, tokens))
    # the last pass reveals the last mask: its token is the greedy one
    pos, tokens = steps[-1]
    final[pos] = tokens
    for pos, tokens in steps:
        labels.append(tokens == final[pos])
    return np.concatenate(feats), np.concatenate(labels).astype(np.float64)


def traces(engine: Engine, files: list[Path], count: int, seed: int, log: Callable[[str], None]):
    """Samples of ``count`` holes, with the hole each came from."""
    from dcoder.infill import InfillOptions, infill

    calls: list = []
    recording = replace(engine, backend=Recorder(engine.backend, calls))
    options = InfillOptions(sampler=SamplerConfig(steps=4096), language="python", repair_rounds=0, search_tokens=0,
                            deadline=3600.0)
    xs, ys, groups = [], [], []
    for n, (text, at) in enumerate(holes(files, count, random.Random(seed))):
        calls.clear()
        infill(recording, text, [(at, at)], options)
        if not calls:
            continue
        x, y = samples(engine, calls)
        xs.append(x)
        ys.append(y)
        groups.append(np.full(len(y), n))
        if (n + 1) % 10 == 0:
            log(f"traced {n + 1}/{count} holes ({sum(map(len, ys))} samples)")
    if not xs:
        raise DcoderError("no trace could be made from the corpus")
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(groups)


def fit(x: np.ndarray, y: np.ndarray, seed: int, iters: int = 800, lr: float = 0.05, decay: float = 1e-4):
    """An MLP (tanh, ``HIDDEN`` units) by full-batch Adam on the cross-entropy, on at most
    ``MAX_SAMPLES`` of the samples; returns its arrays. The products are einsums: a threaded BLAS
    on these thin matrices is a hundred times slower on a busy machine."""
    rng = np.random.default_rng(seed)
    if len(y) > MAX_SAMPLES:
        keep = rng.choice(len(y), MAX_SAMPLES, replace=False)
        x, y = x[keep], y[keep]
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 1e-6, scale, 1.0)
    z = (x - mean) / scale
    params = [rng.normal(0, 1 / np.sqrt(x.shape[1]), (x.shape[1], HIDDEN)), np.zeros(HIDDEN),
              rng.normal(0, 1 / np.sqrt(HIDDEN), HIDDEN), np.array(np.log((y.mean() + 1e-3) / (1 - y.mean() + 1e-3)))]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    for t in range(1, iters + 1):
        w1, b1, w2, b2 = params
        h = np.tanh(np.einsum("nf,fh->nh", z, w1) + b1)
        p = 1 / (1 + np.exp(-(np.einsum("nh,h->n", h, w2) + b2)))
        g = (p - y) / len(y)
        dh = g[:, None] * w2 * (1 - h * h)
        grads = [np.einsum("nf,nh->fh", z, dh) + decay * w1, dh.sum(0), np.einsum("nh,n->h", h, g) + decay * w2,
                 np.array(g.sum())]
        for i, gr in enumerate(grads):
            m[i] = 0.9 * m[i] + 0.1 * gr
            v[i] = 0.999 * v[i] + 0.001 * gr * gr
            params[i] = params[i] - lr * (m[i] / (1 - 0.9 ** t)) / (np.sqrt(v[i] / (1 - 0.999 ** t)) + 1e-8)
    return mean, scale, params


def _policy(model: str, mean, scale, params, threshold: float) -> LearnedPolicy:
    w1, b1, w2, b2 = params
    return LearnedPolicy(model, tuple(map(float, mean)), tuple(map(float, scale)),
                         tuple(tuple(map(float, row)) for row in w1), tuple(map(float, b1)),
                         tuple(map(float, w2)), float(b2), threshold, POLICY_FEATURES)


def train_policy(engine: Engine, corpus: Path, holes_count: int, seed: int,
                 log: Callable[[str], None]) -> tuple[LearnedPolicy, dict]:
    """The policy, and figures of it on held-out holes (a fifth of them)."""
    if holes_count < 5:
        raise DcoderError("--holes must be at least 5 (a fifth are held out to choose the cut)")
    x, y, groups = traces(engine, corpus_files(corpus), holes_count, seed, log)
    held = groups % 5 == 4
    mean, scale, params = fit(x[~held], y[~held], seed)
    draft = _policy(model_identity(engine.folder), mean, scale, params, 0.99)
    p = learned_gate(draft, x[held])
    truth = y[held].astype(bool)
    cut = 0.99  # when no cut reaches PRECISION
    for c in CUTS[::-1]:
        chosen = p > c
        if chosen.any() and truth[chosen].mean() >= PRECISION:
            cut = float(c)
    chosen = p > cut
    figures = {"samples": int(len(y)), "holes": int(groups.max() + 1), "final_rate": float(y.mean()),
               "held_out_samples": int(held.sum()), "cut": cut,
               "held_out_precision": float(truth[chosen].mean()) if chosen.any() else None,
               "held_out_revealed": float(chosen.mean()) if len(chosen) else None,
               "held_out_accuracy": float(((p > 0.5) == truth).mean()) if len(truth) else None}
    return replace(draft, threshold=cut), figures
