"""The denoising loop against a backend whose answer and confidences are known."""

import numpy as np
import pytest

from dcoder.config import SamplerConfig
from dcoder.engine.sampler import denoise, filter_logits, shifted_window
from dcoder.errors import DcoderError

MASK = 9
V = 10


class KnownAnswer:
    """Position i predicts answer[i] with probability conf[i]; the rest share what is left."""

    def __init__(self, answer, conf):
        self.answer = np.asarray(answer)
        self.conf = np.asarray(conf, dtype=np.float64)
        self.calls = []

    def predict(self, ids, lo, hi, step, cols=None):
        self.calls.append((lo, hi, step))
        probs = np.tile(((1 - self.conf) / (V - 1))[:, None], (1, V))
        probs[np.arange(len(self.answer)), self.answer] = self.conf
        rows = np.arange(lo, hi) if cols is None else lo + np.asarray(cols)
        return np.broadcast_to(np.log(probs)[rows], (ids.shape[0], len(rows), V)).astype(np.float32)


ANSWER = [1, 2, 3, 4, 5, 6, 7, 8]
CONF = [0.3, 0.9, 0.5, 0.95, 0.2, 0.6, 0.8, 0.4]


def masked_row(n_fixed=2):
    return np.array([[0] * n_fixed + [MASK] * len(ANSWER)])


def run(config, answer=ANSWER, conf=CONF, on_step=None):
    backend = KnownAnswer([0, 0] + list(answer), [0.99, 0.99] + list(conf))
    return denoise(masked_row(), backend, config, MASK, on_step), backend


def reveal_order(config):
    order = []

    def on_step(state):
        order.append(sorted(np.nonzero(state.revealed[0])[0].tolist()))

    result, _ = run(config, on_step=on_step)
    return result, order


def test_greedy_fills_known_answer_and_counts_passes():
    result, backend = run(SamplerConfig(steps=4, alg="maskgit_plus"))
    assert result.ids[0, 2:].tolist() == ANSWER
    assert result.forward_passes == 4 == len(backend.calls)
    assert [c[2] for c in backend.calls] == [0, 1, 2, 3]
    assert all(c[:2] == (2, 10) for c in backend.calls)  # the window is the masked region only


@pytest.mark.parametrize("alg", ["maskgit_plus", "topk_margin", "entropy"])
def test_one_per_step_reveals_most_confident_first(alg):
    result, order = reveal_order(SamplerConfig(steps=8, alg=alg))
    expected = [[2 + i] for i in np.argsort(-np.array(CONF), kind="stable")]
    assert order == expected
    assert result.steps == 8


def test_schedule_spreads_reveals_over_steps():
    _, order = reveal_order(SamplerConfig(steps=3, alg="maskgit_plus"))
    assert [len(o) for o in order] == [3, 3, 2]
    assert order[0] == [3, 5, 8]  # confidences 0.9, 0.95, 0.8


def test_threshold_reveals_every_confident_position_at_once():
    _, order = reveal_order(SamplerConfig(threshold=0.7, alg="maskgit_plus"))
    assert order[0] == [3, 5, 8]
    # below the threshold, exactly one (the best) per step
    assert [len(o) for o in order[1:]] == [1] * 5
    assert order[1] == [7]  # 0.6


def test_threshold_for_entropy_compares_exp_negative_entropy():
    # a near-certain position passes even a high threshold; an uncertain one does not
    _, order = reveal_order(SamplerConfig(threshold=0.7, alg="entropy"))
    assert order[0] == [5]  # exp(-H) is about 0.75 for p=0.95 and 0.6 for p=0.9 (mask token excluded)


def test_cancellation_stops_at_next_step():
    result, backend = run(SamplerConfig(steps=8), on_step=lambda s: s.step == 2)
    assert result.cancelled and result.steps == 2 and len(backend.calls) == 2
    assert (result.ids[0] == MASK).sum() == 6


def test_origin_order_is_random_but_seeded():
    a, order_a = reveal_order(SamplerConfig(steps=8, alg="origin", seed=1))
    _, order_b = reveal_order(SamplerConfig(steps=8, alg="origin", seed=1))
    orders = {tuple(map(tuple, reveal_order(SamplerConfig(steps=8, alg="origin", seed=s))[1])) for s in range(6)}
    assert order_a == order_b and len(orders) > 1
    assert a.ids[0, 2:].tolist() == ANSWER


def test_sampling_is_deterministic_per_seed():
    cfg = dict(steps=4, temperature=1.5, alg="entropy")
    flat = [0.2] * len(ANSWER)
    r1, _ = run(SamplerConfig(seed=7, **cfg), conf=flat)
    r2, _ = run(SamplerConfig(seed=7, **cfg), conf=flat)
    others = [run(SamplerConfig(seed=s, **cfg), conf=flat)[0].ids.tolist() for s in range(8, 12)]
    assert r1.ids.tolist() == r2.ids.tolist()
    assert any(o != r1.ids.tolist() for o in others)
    assert MASK not in r1.ids


def test_top_k_one_is_greedy_even_when_sampling():
    result, _ = run(SamplerConfig(steps=2, temperature=2.0, top_k=1, seed=3))
    assert result.ids[0, 2:].tolist() == ANSWER


def test_alg_temp_randomises_order_deterministically():
    cfg = SamplerConfig(steps=8, alg="maskgit_plus", alg_temp=5.0, seed=4)
    assert reveal_order(cfg)[1] == reveal_order(cfg)[1]
    assert reveal_order(cfg)[1] != [[2 + i] for i in np.argsort(-np.array(CONF))]


def test_mask_token_is_never_produced():
    # a backend that prefers the mask token everywhere
    answer = [MASK] * len(ANSWER)
    result, _ = run(SamplerConfig(steps=2), answer=answer)
    assert MASK not in result.ids[0]


def test_batch_rows_resolve_independently():
    backend = KnownAnswer([0, 0] + ANSWER, [0.99, 0.99] + CONF)
    ids = np.repeat(masked_row(), 3, axis=0)
    ids[1, 5] = 4  # row 1 already knows one position
    result = denoise(ids, backend, SamplerConfig(steps=4), MASK)
    assert (result.ids[:, 2:] == np.array(ANSWER)).all()


def test_top_p_keeps_nucleus():
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05]]))
    kept = np.isfinite(filter_logits(logits, None, 0.7))
    assert kept.tolist() == [[True, True, False, False]]
    assert np.isfinite(filter_logits(logits, 2, None)).sum() == 2


def test_shifted_window():
    assert shifted_window(5, 9, False) == (5, 9)
    assert shifted_window(5, 9, True) == (4, 8)
    with pytest.raises(ValueError):
        shifted_window(0, 3, True)


def test_config_rejects_bad_values():
    for bad in (dict(alg="nope"), dict(steps=0), dict(threshold=1.5), dict(top_p=0), dict(temperature=-1)):
        with pytest.raises(DcoderError):
            SamplerConfig(**bad)


def test_suppressed_tokens_are_renormalised_away_only_in_their_rows():
    # every position prefers token 7; rows marked in suppress_rows may not draw it
    backend = KnownAnswer([0, 0] + [7] * len(ANSWER), [0.99, 0.99] + [0.9] * len(ANSWER))
    ids = np.repeat(masked_row(), 2, axis=0)
    result = denoise(ids, backend, SamplerConfig(steps=8), MASK, suppress=(7,), suppress_rows=np.array([False, True]))
    assert (result.ids[0, 2:] == 7).all()
    assert not (result.ids[1, 2:] == 7).any() and not (result.ids[1] == MASK).any()
    # the other 10% is shared by V - 1 tokens; without token 7 and the mask it is all there is
    share = np.log((0.1 / (V - 1)) / (1 - 0.9 - 0.1 / (V - 1)))
    assert np.allclose(result.logprobs[1, 2:], share, atol=1e-5)


class Broken:
    """Every score is ``value`` (NaN or +-inf): what a model with broken weights returns."""

    def __init__(self, value):
        self.value, self.calls = value, 0

    def predict(self, ids, lo, hi, step, cols=None):
        self.calls += 1
        rows = hi - lo if cols is None else len(cols)
        return np.full((ids.shape[0], rows, V), self.value, dtype=np.float32)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("config", [SamplerConfig(steps=64), SamplerConfig(steps=3), SamplerConfig(threshold=0.5),
                                    SamplerConfig(steps=64, temperature=2.0, top_p=0.9), SamplerConfig(steps=64, alg="topk_margin"),
                                    SamplerConfig(threshold=0.9, alg="maskgit_plus", alg_temp=1.0)])
def test_scores_that_are_not_numbers_still_end_the_run(value, config):
    backend = Broken(value)
    ids = np.repeat(masked_row(), 2, axis=0)
    result = denoise(ids, backend, config, MASK)
    # each pass reveals at least one position of every row: at most one pass per masked position
    assert not (result.ids == MASK).any() and not result.cancelled
    assert backend.calls == result.forward_passes <= min(config.steps, len(ANSWER)) if config.threshold is None \
        else backend.calls <= len(ANSWER)
