"""Paraphrase detection at any size: MinHash over word shingles, and LSH band keys.

Two questions are paraphrases when the Jaccard similarity of their word shingles (the folded
words of the near-duplicate key without filler words, and their bigrams) is at least
PARAPHRASE_THRESHOLD. Comparing every pair costs n^2; instead every question stores
PARAPHRASE_BANDS band keys (QuestionBand rows, B-tree indexed by key, written in the transaction
that writes its text: model save, bulk create and the import's COPY; datasets/health/index.py). Two
questions whose MinHash signatures agree on all rows of one band share that band's key; the
index finds them in one lookup, whatever the size of the topic, and the exact Jaccard of the
candidates decides.

The MinHash is datasketch's (affine32 scheme, seed 1, SHA-1 32-bit hashes), computed for a batch
of texts at once with numpy: datasketch's per-object update costs about 60 us a text, the batch
about 10 us, with the same hash values (tests/health/test_paraphrase.py checks it).

With 8 bands of 3 rows, a pair at Jaccard 0.5 shares a band with probability 1 - (1 - 0.5^3)^8
= 0.66, at 0.6 0.86, at 0.7 0.97, at 0.8 0.998; a pair at 0.2 only 0.06 (few wasted candidates).
"""

from collections.abc import Iterable, Sequence

import numpy as np
from datasketch import MinHash
from datasketch.hashfunc import sha1_hash32
from datasketch.minhash import _fmix

from datasets.normalize import FILLER_WORDS, near_duplicate_words

PARAPHRASE_BANDS = 8
PARAPHRASE_ROWS = 3
NUM_PERM = PARAPHRASE_BANDS * PARAPHRASE_ROWS
MINHASH_SEED = 1
PARAPHRASE_THRESHOLD = 0.7

_TEMPLATE = MinHash(num_perm=NUM_PERM, seed=MINHASH_SEED, scheme="affine32")
_A, _B = (np.asarray(p, dtype=np.uint32) for p in _TEMPLATE.permutations)
_MAX = np.uint32(0xFFFFFFFF)
# Per-row multipliers folding a band's rows into one 64-bit key (odd, fixed: keys are stored).
_ROW_MIX = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9][:PARAPHRASE_ROWS], dtype=np.uint64)
_BAND_MIX = np.arange(1, PARAPHRASE_BANDS + 1, dtype=np.uint64) * np.uint64(0xD6E8FEB86659FD93)


def paraphrase_shingles(text: str) -> frozenset[str]:
    """The word shingles compared for paraphrases: the folded content words and their bigrams."""
    words = [w for w in near_duplicate_words(text) if w not in FILLER_WORDS] or near_duplicate_words(text)
    return frozenset([*words, *(f"{a} {b}" for a, b in zip(words, words[1:], strict=False))])


def paraphrase_similarity(a: frozenset[str], b: frozenset[str]) -> float:
    """The exact Jaccard similarity of two shingle sets."""
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def minhash_signatures(shingle_sets: Sequence[Iterable[str]]) -> np.ndarray:
    """The MinHash signature (NUM_PERM uint32 values) of each shingle set, as datasketch's
    MinHash(num_perm=NUM_PERM, seed=MINHASH_SEED).update_batch would compute it, one row a set."""
    lengths, hashes = [], []
    for shingles in shingle_sets:
        values = [sha1_hash32(s.encode("utf-8")) for s in shingles]
        lengths.append(len(values))
        hashes.extend(values)
    signatures = np.full((len(lengths), NUM_PERM), _MAX, dtype=np.uint32)
    if not hashes:
        return signatures
    mixed = _fmix(np.asarray(hashes, dtype=np.uint32), 32)
    permuted = mixed[:, None] * _A[None, :] + _B[None, :]  # uint32 arithmetic wraps, as datasketch's
    lengths_array = np.asarray(lengths)
    filled = lengths_array > 0
    starts = np.concatenate(([0], np.cumsum(lengths_array)[:-1]))[filled]
    signatures[filled] = np.minimum.reduceat(permuted, starts, axis=0)
    return signatures


def paraphrase_keys_batch(texts: Sequence[str], *, topic_id: int) -> list[list[int]]:
    """The PARAPHRASE_BANDS band keys of each text, as signed 64-bit ints (PostgreSQL bigint).
    The topic is mixed in so one index serves every topic without a topic column in it."""
    signatures = minhash_signatures([paraphrase_shingles(t) for t in texts]).astype(np.uint64)
    bands = signatures.reshape(len(texts), PARAPHRASE_BANDS, PARAPHRASE_ROWS)
    with np.errstate(over="ignore"):
        keys = (bands * _ROW_MIX).sum(axis=2, dtype=np.uint64) + _BAND_MIX
        keys ^= np.uint64(topic_id) * np.uint64(0xFF51AFD7ED558CCD)
        keys ^= keys >> np.uint64(33)
        keys *= np.uint64(0xC4CEB9FE1A85EC53)
        keys ^= keys >> np.uint64(29)
    return keys.view(np.int64).tolist()


def paraphrase_keys(text: str, *, topic_id: int) -> list[int]:
    """The band keys of one text (see paraphrase_keys_batch)."""
    return paraphrase_keys_batch([text], topic_id=topic_id)[0]
