"""Near-duplicate files: token shingles, MinHash signatures, and clusters by locality-sensitive hashing.

A file's tokens are its runs of word characters outside ``#`` comments (so reformatting does not
hide a copy, and a shared licence header does not make two files alike); its shingles are the
hashes of ``SHINGLE`` consecutive tokens. The signature is a one-permutation MinHash: every
shingle hash falls into one of ``SLOTS`` bins by its top bits and each bin keeps its smallest
hash; an empty bin borrows the next full bin's value, shifted by the distance (rotation
densification). Two signatures agree in a slot with probability about the Jaccard similarity of
the shingle sets, at the cost of one sort per file instead of one pass per hash function.
Candidate pairs share one of ``BANDS`` bands of slots exactly; a pair counts as near-duplicate
when the share of equal slots is at least the threshold.
"""

from __future__ import annotations

import re
import zlib

import numpy as np

SHINGLE = 5
MIN_SHINGLES = 16  # smaller files (a few lines) have no meaningful near-duplicates; only exact ones count
SLOTS = 128
BANDS = 32
ROWS = SLOTS // BANDS
SLOT_BITS = 7  # log2(SLOTS): the top bits of a shingle hash pick its bin
VALUE_BITS = 64 - SLOT_BITS

_COMMENT = re.compile(rb"#[^\n]*")
_WORD = re.compile(rb"\w+")
_MIX = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                 0xD6E8FEB86659FD93, 0xFF51AFD7ED558CCD], dtype=np.uint64)
_SLOT_IDS = np.arange(SLOTS)


def _finalize(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: spreads every input bit over the whole hash (wrapping uint64 maths)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def shingles(data: bytes) -> np.ndarray:
    """The file's distinct shingle hashes, sorted (uint64)."""
    tokens = _WORD.findall(_COMMENT.sub(b"", data))
    ids = np.fromiter(map(zlib.crc32, tokens), dtype=np.uint64, count=len(tokens))
    n = len(ids) - SHINGLE + 1
    if n < 1:
        return np.zeros(0, dtype=np.uint64)
    with np.errstate(over="ignore"):
        mixed = ids[:n] * _MIX[0]
        for j in range(1, SHINGLE):
            mixed ^= ids[j:j + n] * _MIX[j]
        return np.unique(_finalize(mixed))


def containment(hashes: np.ndarray, reference: np.ndarray) -> float:
    """The share of a file's shingles (``shingles``) found in a sorted array of shingle hashes."""
    if not len(hashes) or not len(reference):
        return 0.0
    at = np.minimum(np.searchsorted(reference, hashes), len(reference) - 1)
    return float((reference[at] == hashes).mean())


def signature(hashes: np.ndarray) -> np.ndarray | None:
    """The MinHash signature (``SLOTS`` uint64 values) of a file's shingles; None below ``MIN_SHINGLES``."""
    if len(hashes) < MIN_SHINGLES:
        return None
    bins = (hashes >> np.uint64(VALUE_BITS)).astype(np.int64)  # sorted, so each bin's minimum comes first
    first = np.searchsorted(bins, _SLOT_IDS)
    full = first < len(hashes)
    full[full] = bins[first[full]] == _SLOT_IDS[full]
    values = hashes[np.minimum(first, len(hashes) - 1)] & np.uint64((1 << VALUE_BITS) - 1)
    filled = np.flatnonzero(full)
    nxt = np.searchsorted(filled, _SLOT_IDS) % len(filled)  # next full bin, wrapping around
    distance = (filled[nxt] - _SLOT_IDS) % SLOTS
    return values[filled[nxt]] | (distance.astype(np.uint64) << np.uint64(VALUE_BITS))


def stack(signatures: list[np.ndarray]) -> np.ndarray:
    """(files, SLOTS) uint64."""
    return np.array(signatures, dtype=np.uint64).reshape(-1, SLOTS)


def band_keys(signatures: np.ndarray) -> np.ndarray:
    """(files, BANDS) uint64: one hash per band, equal when the band's slots are all equal."""
    rows = signatures.reshape(len(signatures), BANDS, ROWS)
    with np.errstate(over="ignore"):
        keys = np.zeros(rows.shape[:2], dtype=np.uint64)
        for r in range(ROWS):
            keys = _finalize(keys ^ rows[:, :, r] * _MIX[r])
    return keys


def similarity(one: np.ndarray, many: np.ndarray) -> np.ndarray:
    """Estimated Jaccard similarity of one signature with each row of ``many``."""
    return (many == one).mean(axis=-1)


def representatives(signatures: np.ndarray, threshold: float) -> np.ndarray:
    """For each file, the first file (by index) of its near-duplicate cluster; itself when alone.

    Within a bucket each file joins the first earlier representative it is similar enough to, or
    becomes one; clusters merge across buckets, so the result does not depend on bucket order.
    """
    parent = np.arange(len(signatures))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    keys = band_keys(signatures)
    for band in range(BANDS):
        order = np.argsort(keys[:, band], kind="stable")
        sorted_keys = keys[order, band]
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        sizes = np.diff(np.r_[starts, len(order)])
        for start, size in zip(starts[sizes > 1].tolist(), sizes[sizes > 1].tolist()):
            members = order[start:start + size].tolist()  # ascending: argsort is stable
            reps = [members[0]]
            for m in members[1:]:
                close = np.flatnonzero(similarity(signatures[m], signatures[reps]) >= threshold)
                if len(close):
                    a, b = find(m), find(reps[close[0]])
                    parent[max(a, b)] = min(a, b)
                else:
                    reps.append(m)
    return np.array([find(i) for i in range(len(signatures))], dtype=np.int64)
