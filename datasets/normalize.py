"""Text normalization for exact deduplication, and the near-duplicate key of the split.

Two questions are exact duplicates when they are equal after folding case,
Unicode compatibility forms, punctuation and whitespace: "Reset my password!"
and "reset my  password" share one hash. They are near duplicates when they also
share their bag of words once numbers and filler words are left out: "Reset my
password!" and "please reset password 2" share one near-duplicate key.
"""

import hashlib
import re
import unicodedata

# The same folding for ASCII text, in C: NFKC leaves ASCII unchanged and casefold() is lower().
# Imports and split plans normalize every row, so this path matters (about 4x faster).
_ASCII_SEPARATORS = str.maketrans({i: " " for i in range(128) if unicodedata.category(chr(i))[0] in "PZC"})


def normalize_text(text: str) -> str:
    if text.isascii():
        return " ".join(text.lower().translate(_ASCII_SEPARATORS).split())
    folded = unicodedata.normalize("NFKC", text).casefold()
    kept = [" " if unicodedata.category(ch)[0] in "PZC" else ch for ch in folded]
    return " ".join("".join(kept).split())


def text_hash(text: str) -> str:
    """The 40-hex-digit SHA-1 of the normalized text (the per-topic dedup key)."""
    return hashlib.sha1(normalize_text(text).encode("utf-8")).hexdigest()


# Words whose presence or absence does not make two questions different questions.
FILLER_WORDS = frozenset(
    "a an the please pls plz kindly hi hello hey can could would will you i me my we our is are to for of "
    "just now thanks thank".split()
)
_NUMBER = re.compile(r"\d+")
_ASCII_NEAR_DUP = str.maketrans({
    **{i: " " for i in range(128) if unicodedata.category(chr(i))[0] in "PZC"},
    **{ord(d): None for d in "0123456789"},
})


def near_duplicate_key(text: str) -> int:
    """A signed 64-bit key (it fits a PostgreSQL bigint) shared by texts that differ only in case,
    punctuation, word order, numbers or filler words. Stored on every question (`near_key`)."""
    if text.isascii():  # the common case, folded in C: separators to spaces, digits dropped
        words = set(text.lower().translate(_ASCII_NEAR_DUP).split())
    else:
        words = set(_NUMBER.sub("", normalize_text(text)).split())
    kept = sorted(words - FILLER_WORDS) or sorted(words)
    digest = hashlib.blake2b(" ".join(kept).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
