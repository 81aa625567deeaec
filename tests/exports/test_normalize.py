"""The ASCII fast path of normalize_text folds exactly like the general path (stored hashes depend on it)."""

import random
import unicodedata

from datasets.normalize import normalize_text


def reference(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join("".join(" " if unicodedata.category(c)[0] in "PZC" else c for c in folded).split())


def test_every_ascii_character_folds_as_in_the_general_path():
    for code in range(128):
        text = f"a{chr(code)}B {chr(code)}"
        assert normalize_text(text) == reference(text), code


def test_random_ascii_strings_fold_as_in_the_general_path():
    chance = random.Random(5)
    for _ in range(2000):
        text = "".join(chr(chance.randrange(128)) for _ in range(chance.randrange(40)))
        assert normalize_text(text) == reference(text)
