"""A lean towards names in scope while denoising: a prefix trie over the tokenizations of the
names (with and without a leading space), and a bias the sampler adds at each step.

A position the model would fill with an identifier (its likeliest token begins or continues
one) is biased. When the tokens before it spell the start of a known name, the tokens that carry
that name on gain ``strength`` (log-probability); after a word that is no known name's start,
only a token with a leading space can begin a known name; anywhere else, the first tokens of
known names gain it. The gain is taken back from the same kind of tokens (those that begin, or
continue, an identifier), so the model's mass on punctuation and line ends is as it was: the
bias picks among identifiers, never decides that one comes, and never bans a token (a new name
stays possible, only less likely).
"""

from __future__ import annotations

import functools
import re

import numpy as np

from dcoder.engine.tokenizer import Tokenizer

_BEGINS = re.compile(r" ?[^\W\d]\w*")  # a token that can begin an identifier
_CONTINUES = re.compile(r"\w+")
_ENDS_WORD = re.compile(r"\w$")


class _Kinds:
    """Which tokens begin, continue or end an identifier, for ``width`` token ids (a model may
    have more logits than its tokenizer has tokens: those are no identifier)."""

    def __init__(self, tokenizer: Tokenizer, width: int):
        texts = list(tokenizer.texts) + [""] * (width - len(tokenizer.texts))
        self.begins = np.array([bool(_BEGINS.fullmatch(t)) for t in texts])
        self.continues = np.array([bool(_CONTINUES.fullmatch(t)) for t in texts])
        self.ends_word = np.array([bool(_ENDS_WORD.search(t)) for t in texts])
        self.spaced = np.array([t.startswith(" ") for t in texts])
        self.spaced_begins = self.begins & self.spaced


@functools.lru_cache(maxsize=4)
def _kinds(tokenizer: Tokenizer, width: int) -> _Kinds:
    return _Kinds(tokenizer, width)


class NameBias:
    """Called by the sampler on each step's log-probabilities (see ``__call__``)."""

    def __init__(self, tokenizer: Tokenizer, names: tuple[str, ...], strength: float, mask: int):
        self.tokenizer = tokenizer
        self.kinds = _kinds(tokenizer, tokenizer.vocab_size)
        self.strength = float(strength)
        self.mask = mask
        self.trie: dict = {}  # token -> the trie of the tokens that may follow it in a name
        self.depth = 0
        spellings = [form for name in names for form in (name, " " + name)]
        for ids in tokenizer.encode_batch(spellings) if spellings else ():
            if not ids or not self.kinds.begins[ids[0]] or not self.kinds.continues[ids[1:]].all():
                continue  # a spelling the model would not write as one identifier (" " then the name)
            node = self.trie
            for t in ids:
                node = node.setdefault(t, {})
            self.depth = max(self.depth, len(ids))
        self.first = np.fromiter(self.trie, dtype=np.int64, count=len(self.trie))
        self.spaced_first = self.first[self.kinds.spaced[self.first]]

    def _after(self, row: np.ndarray, p: int):
        """The trie node the tokens just before position ``p`` of ``row`` lead to, when they spell
        the start of a name that begins at a word boundary; None right after a word that is no
        known name's start; the root when ``p`` may begin a name."""
        k = self.kinds
        left = int(row[p - 1]) if p > 0 else None
        if left is None or left == self.mask or not k.ends_word[left]:
            return self.trie
        for n in range(min(self.depth, p), 0, -1):  # the longest spelling that ends at p - 1
            start = p - n
            head = int(row[start])
            if head == self.mask or head not in self.trie:
                continue
            before = int(row[start - 1]) if start > 0 else self.mask
            if not k.spaced[head] and before != self.mask and k.ends_word[before]:
                continue  # inside a longer word
            node = self.trie
            for t in row[start:p]:
                node = node.get(int(t))
                if node is None:
                    break
            else:
                return node
        return None  # after a word no known name starts: only a spaced token begins a name here

    def __call__(self, ids: np.ndarray, rows: np.ndarray, positions: np.ndarray, logp: np.ndarray) -> None:
        """Bias ``logp`` (N, V), in place: row j is the prediction for ``ids[rows[j], positions[j]]``."""
        if self.strength == 0 or not self.trie:
            return
        if logp.shape[1] > len(self.kinds.begins):
            self.kinds = _kinds(self.tokenizer, logp.shape[1])
        k = self.kinds
        top = logp.argmax(axis=-1)
        begin, spaced = [], []
        for j in np.nonzero(k.begins[top] | k.continues[top])[0]:  # where the model expects an identifier
            node = self._after(ids[rows[j]], int(positions[j]))
            if node is self.trie:
                begin.append(j)
            elif node is None:
                spaced.append(j)
            elif node:
                boost = np.fromiter(node, dtype=np.int64, count=len(node))
                self._shift(logp, np.array([j]), boost, k.continues)
        if begin:
            self._shift(logp, np.array(begin), self.first, k.begins)
        if spaced and len(self.spaced_first):
            self._shift(logp, np.array(spaced), self.spaced_first, k.spaced_begins)

    def _shift(self, logp: np.ndarray, rows: np.ndarray, boost: np.ndarray, group: np.ndarray) -> None:
        """Add ``strength`` to the ``boost`` tokens of ``rows``, and take the gain back from the
        ``group`` tokens (which hold ``boost``) so the group keeps its probability."""
        width = logp.shape[1]  # fewer logits than tokens: the names' tokens past them cannot come
        boost, group = boost[boost < width], group[:width]
        whole = len(rows) == len(logp)
        sub = logp if whole else logp[rows]  # every row biased the same way: no copy
        p = np.exp(sub)
        group_p = p @ group.astype(p.dtype)
        boost_p = p[:, boost].sum(axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            back = np.where(group_p > 0, np.log(group_p) - np.log(group_p + boost_p * np.expm1(self.strength)), 0.0)
        sub += back[:, None].astype(sub.dtype) * group  # -inf stays -inf: only finite amounts are added
        sub[:, boost] += self.strength
        if not whole:
            logp[rows] = sub
