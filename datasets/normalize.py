"""Text normalization for exact deduplication.

Two questions are exact duplicates when they are equal after folding case,
Unicode compatibility forms, punctuation and whitespace: "Reset my password!"
and "reset my  password" share one hash.
"""

import hashlib
import unicodedata


def normalize_text(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    kept = [" " if unicodedata.category(ch)[0] in "PZC" else ch for ch in folded]
    return " ".join("".join(kept).split())


def text_hash(text: str) -> str:
    """The 40-hex-digit SHA-1 of the normalized text (the per-topic dedup key)."""
    return hashlib.sha1(normalize_text(text).encode("utf-8")).hexdigest()
