"""Names in scope (grammars/python/locals.scm through dcoder.syntax.scope) and the sampler's lean
towards them (dcoder.engine.names), with the built-in model's real tokenizer."""

from __future__ import annotations

import numpy as np
import pytest

from dcoder import syntax
from dcoder.config import SamplerConfig
from dcoder.engine.engine import BUILTIN_MODEL
from dcoder.engine.names import NameBias
from dcoder.engine.sampler import denoise
from dcoder.engine.tokenizer import Tokenizer
from dcoder.errors import DcoderError
from dcoder.infill import InfillOptions
from dcoder.syntax.scope import names_at

SOURCE = '''import os
from collections import OrderedDict as Ordered
LIMIT = 3

class Cache:
    def __init__(self, size, *items, **extra):
        self.size = size
        self._map = Ordered()

    def put(self, key, value):
        total = len(self._map)
        for index, item in enumerate(value):
            pass
        HOLE

def helper(unrelated):
    hidden = 1
'''


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer(BUILTIN_MODEL / "tokenizer.json")


def test_names_visible_at_a_hole_and_none_from_other_scopes():
    doc = syntax.parse(SOURCE, "python")
    names = names_at(doc, SOURCE.index("HOLE"))
    # locals and parameters of the function first, then the class's, then the module's
    assert names.index("total") < names.index("_map") < names.index("Cache")
    assert {"key", "value", "total", "index", "item", "self"} <= set(names)  # locals, parameters, loop targets
    assert {"size", "_map", "put", "__init__"} <= set(names)  # attributes set on self, methods
    assert {"os", "Ordered", "LIMIT", "helper", "len", "enumerate"} <= set(names)  # imports, globals, builtins
    assert not {"unrelated", "hidden", "items", "extra"} & set(names)  # locals of other functions


JS_SOURCE = """import { readFile as read } from "fs";
const LIMIT = 3;
class Cache {
  constructor(size, ...items) {
    this.size = size;
    this._map = new Map();
  }
  put(key, { value }) {
    let total = this._map.size;
    HOLE
  }
}
function helper(unrelated) { const hidden = 1; }
"""


def test_javascript_names_in_scope_with_this_fields():
    pytest.importorskip("tree_sitter_language_pack")
    doc = syntax.parse(JS_SOURCE, "javascript")
    names = names_at(doc, JS_SOURCE.index("HOLE"))
    assert {"total", "key", "value", "size", "_map", "put", "Cache", "LIMIT", "helper", "read", "Map"} <= set(names)
    assert names.index("total") < names.index("_map") < names.index("LIMIT")
    assert not {"unrelated", "hidden", "items"} & set(names)


def test_a_language_without_locals_scm_has_no_names():
    doc = syntax.parse("local x = 1", "lua")
    assert names_at(doc, 6) == () and names_at(None, 0) == ()


def _uniform(tokenizer: Tokenizer, rows: int, favourite: str) -> np.ndarray:
    """Every token about as likely, ``favourite``'s first token a little more (the model's guess)."""
    logits = np.zeros((rows, tokenizer.vocab_size), dtype=np.float32)
    logits[:, tokenizer.encode(favourite)[0]] = 0.5
    return logits - np.log(np.exp(logits).sum(-1, keepdims=True))


def _spelled(tokenizer: Tokenizer, text: str) -> list[int]:
    return tokenizer.encode(text)


def test_the_bias_favours_in_scope_names_where_an_identifier_begins_but_keeps_every_token(tokenizer):
    bias = NameBias(tokenizer, ("validate_inst", "_map"), 2.0, mask=-1)
    row = np.array([_spelled(tokenizer, "x = ") + [-1]])
    logp = _uniform(tokenizer, 1, "unknown")
    before = logp.copy()
    bias(row, np.array([0]), np.array([row.shape[1] - 1]), logp)
    p = np.exp(logp[0])
    first = _spelled(tokenizer, "validate_inst")[0], _spelled(tokenizer, " validate_inst")[0]
    other = _spelled(tokenizer, "unknown")[0]  # a new name: less likely, still possible
    assert all(p[t] > np.exp(before[0, t]) * 5 for t in first)
    assert 0 < p[other] < np.exp(before[0, other])
    assert np.isfinite(logp).all() and p.sum() == pytest.approx(1.0, abs=1e-4)
    punct = tokenizer.encode("(")[0]
    assert logp[0, punct] == before[0, punct]  # only identifiers share the shifted mass
    expects_punct = _uniform(tokenizer, 1, "(")  # where the model expects no identifier, nothing changes
    bias(row, np.array([0]), np.array([row.shape[1] - 1]), expects_punct)
    assert np.array_equal(expects_punct, _uniform(tokenizer, 1, "("))


def test_the_bias_continues_a_name_already_begun_and_leaves_new_words_alone(tokenizer):
    bias = NameBias(tokenizer, ("validate_inst",), 3.0, mask=-1)
    head, *rest = _spelled(tokenizer, "validate_inst")
    row = np.array([_spelled(tokenizer, "x = ") + [head, -1]])
    logp = _uniform(tokenizer, 1, "ate")
    bias(row, np.array([0]), np.array([row.shape[1] - 1]), logp)
    assert int(np.argmax(logp[0])) == rest[0]
    word = np.array([_spelled(tokenizer, "x = zzz") + [-1]])  # a word no name starts: a new name goes on
    logp = _uniform(tokenizer, 1, " data")
    bias(word, np.array([0]), np.array([word.shape[1] - 1]), logp)
    (glued,) = _spelled(tokenizer, "_in")[:1]
    assert logp[0, glued] == _uniform(tokenizer, 1, " data")[0, glued]


class Uniform:
    """A model with no opinion except a slight one for a name nobody defined."""

    def __init__(self, tokenizer: Tokenizer, favourite: int):
        self.v, self.favourite = tokenizer.vocab_size, favourite

    def predict(self, ids, lo, hi, step, cols=None):
        n = hi - lo if cols is None else len(cols)
        logits = np.zeros((ids.shape[0], n, self.v), dtype=np.float32)
        logits[..., self.favourite] = 0.5
        return logits - np.log(np.exp(logits).sum(-1, keepdims=True))


def test_denoising_picks_the_name_in_scope_with_the_bias_and_the_new_one_without(tokenizer):
    mask = tokenizer.token_id("<|mask|>")
    name = _spelled(tokenizer, " size")
    new = _spelled(tokenizer, " data")
    assert len(name) == len(new) == 1
    ids = np.array([_spelled(tokenizer, "return") + [mask]])
    backend = Uniform(tokenizer, new[0])
    plain = denoise(ids, backend, SamplerConfig(steps=1), mask)
    assert plain.ids[0, -1] == new[0]
    biased = denoise(ids, backend, SamplerConfig(steps=1), mask, bias=NameBias(tokenizer, ("size",), 1.0, mask))
    assert biased.ids[0, -1] == name[0]


@pytest.mark.parametrize("value", [-0.5, 10.5, float("nan")])
def test_scope_bias_out_of_bounds_is_refused(value):
    with pytest.raises(DcoderError, match="--scope-bias must be from 0 to 10"):
        InfillOptions(scope_bias=value)


def test_a_model_with_more_logits_than_tokens(tokenizer):
    bias = NameBias(tokenizer, ("validate_inst",), 2.0, mask=-1)
    wide = np.zeros((1, tokenizer.vocab_size + 8), dtype=np.float32)
    wide[0, tokenizer.encode("unknown")[0]] = 0.5
    wide -= np.log(np.exp(wide).sum(-1, keepdims=True))
    before = wide.copy()
    row = np.array([_spelled(tokenizer, "x = ") + [-1]])
    bias(row, np.array([0]), np.array([row.shape[1] - 1]), wide)
    assert np.array_equal(wide[0, -8:], before[0, -8:])  # the logits past the tokenizer are no identifier
    assert wide[0, _spelled(tokenizer, "validate_inst")[0]] > before[0, _spelled(tokenizer, "validate_inst")[0]]
