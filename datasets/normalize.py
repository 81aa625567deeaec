"""Text normalization for exact deduplication, the near-duplicate key of the split, and the word
shingles of the paraphrase index.

Two questions are exact duplicates when they are equal after folding case,
Unicode compatibility forms, punctuation and whitespace: "Reset my password!"
and "reset my  password" share one hash. They are near duplicates when they also
share their bag of words once the forms a new user writes either way are folded:
contractions and their expansions ("what's", "whats", "what is"), split and joined
common words ("good bye", "goodbye"), symbols ("at&t" and "att", "&" and "and"),
numbers and amounts ("$5", "5 dollars", "five", "10%", "1st") and filler words:
"Reset my password!" and "please reset password 2" share one near-duplicate key.
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
# Numbers and amounts: a question about $5 and one about 12 dollars are the same question. Words
# that only name a quantity or a currency go, like the digits (a token with a digit goes whole:
# "5pm", "1st", "10k").
AMOUNT_WORDS = frozenset(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand "
    "million billion dollar dollars usd buck bucks cent cents euro euros eur pound pounds gbp yen percent "
    "pct".split()
)
# Contractions as users type them, with or without the apostrophe, to their expansion. Only forms
# that are not also ordinary words: "its", "ill", "id", "were", "wed", "well", "hell" stay as they are.
CONTRACTIONS = {
    "whats": "what is", "thats": "that is", "hows": "how is", "wheres": "where is", "whos": "who is",
    "whens": "when is", "whys": "why is", "theres": "there is", "heres": "here is", "isnt": "is not",
    "arent": "are not", "wasnt": "was not", "werent": "were not", "dont": "do not", "doesnt": "does not",
    "didnt": "did not", "cant": "can not", "cannot": "can not", "wont": "will not", "wouldnt": "would not",
    "couldnt": "could not", "shouldnt": "should not", "havent": "have not", "hasnt": "has not",
    "hadnt": "had not", "im": "i am", "ive": "i have", "youre": "you are", "youve": "you have",
    "youll": "you will", "youd": "you would", "theyre": "they are", "theyve": "they have",
    "weve": "we have", "itll": "it will", "lets": "let us", "aint": "is not",
}
# The suffixes of an apostrophe contraction, for words not listed above ("it's", "she'll").
_APOSTROPHE = re.compile(r"(\w)['\u2019\u02bc`]\s?(s|re|ve|ll|d|m|t)\b")
_APOSTROPHE_SUFFIXES = {"s": "is", "re": "are", "ve": "have", "ll": "will", "d": "would", "m": "am"}
# Common words users write joined or split ("good bye", "log in"): the split form joins.
COMPOUNDS = frozenset(
    "goodbye goodnight login logout signin signup signout setup username password email online offline "
    "wifi checkin checkout payday birthday weekend anytime someone anyone everyone nobody something "
    "anything everything nothing somewhere anywhere everywhere cannot into onto today tonight tomorrow "
    "voicemail smartphone cellphone passport website webpage homepage airport airline carpool paycheck "
    "touchscreen headphones bluetooth playlist photo takeout pickup dropoff lookup backup".split()
)
# Joined "&" between letters is one name (AT&T, A&W); elsewhere it is "and". Currency and percent
# signs go: they only mark an amount.
_JOINED_AMPERSAND = re.compile(r"(?<=\w)&(?=\w)")
_SYMBOLS = str.maketrans({"&": " and ", "$": " ", "\u20ac": " ", "\u00a3": " ", "\u00a5": " ", "%": " "})
_HAS_DIGIT = re.compile(r"\d")


def _contraction(match: re.Match) -> str:
    head, suffix = match.group(1), match.group(2)
    if suffix == "t":  # n't: "don't" is caught whole below; "haven't" -> "haven t" -> listed form
        return f"{head}t"
    return f"{head} {_APOSTROPHE_SUFFIXES[suffix]}"


def near_duplicate_words(text: str) -> list[str]:
    """The words of `text` in order, folded the way the near-duplicate key compares them: case,
    punctuation, contractions, split common words, symbols, numbers and amounts folded; filler
    words kept (the key drops them; the paraphrase shingles keep their place)."""
    lowered = text.lower() if text.isascii() else unicodedata.normalize("NFKC", text).casefold()
    if "'" in lowered or "\u2019" in lowered or "\u02bc" in lowered or "`" in lowered:
        lowered = _APOSTROPHE.sub(_contraction, lowered)
    if "&" in lowered:
        lowered = _JOINED_AMPERSAND.sub("", lowered)
    words = normalize_text(lowered.translate(_SYMBOLS)).split()
    folded: list[str] = []
    for word in words:
        if _HAS_DIGIT.search(word) or word in AMOUNT_WORDS:
            continue
        if folded and folded[-1] + word in COMPOUNDS:
            folded[-1] += word
            continue
        expansion = CONTRACTIONS.get(word)
        if expansion:
            folded.extend(expansion.split())
        else:
            folded.append(word)
    return folded


def near_duplicate_key(text: str) -> int:
    """A signed 64-bit key (it fits a PostgreSQL bigint) shared by texts that differ only in case,
    punctuation, word order, contractions, split common words, symbols, numbers and amounts, or
    filler words. Stored on every question (`near_key`)."""
    words = set(near_duplicate_words(text))
    kept = sorted(words - FILLER_WORDS) or sorted(words)
    digest = hashlib.blake2b(" ".join(kept).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
