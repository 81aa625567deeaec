"""Offline augmentation: variants of a question that a production classifier meets, made without
any model (the synthetic data generator's template mode).

Each transformation is a pure function of a text and a seeded random.Random: it returns the
variant and what it did ("typo:swap", "chat:you>u,please>pls"), or None when it does not apply
(no punctuation to drop, no word with a chat spelling). The service (datasets.services.topic_augment)
chooses the questions, the kinds and the budget; nothing here touches the database.

A case-only or punctuation-only variant folds to the same text as its source (datasets.normalize:
the topic's duplicate check ignores case and punctuation), so `variant_make` stacks one of the
requested word-changing kinds on top of those; alone they make nothing.
"""

import random
import re

# The kinds a user picks from, in this order in messages and the admin form.
KINDS = ("typo", "punctuation", "case", "chat", "filler")
# Kinds that change the words, hence the folded text: enough on their own for a new question.
WORD_CHANGING_KINDS = ("typo", "chat", "filler")

# QWERTY neighbours of each letter (same row and the rows above and below).
KEYBOARD_NEIGHBOURS = {
    "q": "wa", "w": "qeas", "e": "wrsd", "r": "etdf", "t": "ryfg", "y": "tugh", "u": "yihj", "i": "uojk",
    "o": "ipkl", "p": "ol", "a": "qwsz", "s": "awedxz", "d": "serfcx", "f": "drtgvc", "g": "ftyhbv",
    "h": "gyujnb", "j": "huikmn", "k": "jiolm", "l": "kop", "z": "asx", "x": "zsdc", "c": "xdfv",
    "v": "cfgb", "b": "vghn", "n": "bhjm", "m": "njk",
}
TYPO_OPERATIONS = ("neighbour", "drop", "double", "swap")
# Chat spelling and common abbreviations, whole words (lowercase), longest phrases first.
CHAT_SPELLINGS = {
    "as soon as possible": "asap", "by the way": "btw", "i don't know": "idk", "thank you": "ty",
    "you": "u", "your": "ur", "you're": "ur", "are": "r", "please": "pls", "thanks": "thx", "okay": "ok",
    "because": "bc", "tomorrow": "tmrw", "tonight": "tonite", "message": "msg", "information": "info",
    "appointment": "appt", "account": "acct", "people": "ppl", "really": "rly", "before": "b4",
    "great": "gr8", "why": "y", "see": "c", "with": "w/", "without": "w/o", "something": "smth",
    "minutes": "mins", "number": "no.",
}
FILLERS = ("um", "uh", "hey,", "hi,", "so basically", "ok so", "quick question,", "hmm")
PUNCTUATION = re.compile(r"[.,!?;:\"'\u2019()\[\]-]")
_WORD = re.compile(r"[A-Za-z]{3,}")
_CHAT = re.compile(r"(?<![\w'])(" + "|".join(re.escape(k) for k in sorted(CHAT_SPELLINGS, key=len, reverse=True))
                   + r")(?![\w'])", re.IGNORECASE)


def typo(text: str, rng: random.Random) -> tuple[str, str] | None:
    """One keyboard slip in one word of three or more letters: a neighbouring key, a dropped,
    doubled or swapped letter."""
    words = list(_WORD.finditer(text))
    if not words:
        return None
    word = rng.choice(words)
    operation = rng.choice(TYPO_OPERATIONS)
    start, end = word.span()
    at = rng.randrange(start, end - 1)  # never the last letter for a swap; fine for the others
    letter = text[at]
    if operation == "neighbour":
        neighbours = KEYBOARD_NEIGHBOURS.get(letter.lower(), "")
        replacement = rng.choice(neighbours)
        slipped = text[:at] + (replacement.upper() if letter.isupper() else replacement) + text[at + 1:]
    elif operation == "drop":
        slipped = text[:at] + text[at + 1:]
    elif operation == "double":
        slipped = text[:at] + letter + text[at:]
    else:
        if text[at].lower() == text[at + 1].lower():
            return None
        slipped = text[:at] + text[at + 1] + text[at] + text[at + 2:]
    return (slipped, f"typo:{operation}") if slipped != text else None


def punctuation(text: str, rng: random.Random) -> tuple[str, str] | None:
    """The question without its punctuation (and apostrophes: "whats", "dont")."""
    bare = " ".join(PUNCTUATION.sub("", text).split())
    return (bare, "punctuation:none") if bare and bare != text else None


def case(text: str, rng: random.Random) -> tuple[str, str] | None:
    """All lower case, ALL UPPER CASE, or no capital at the start."""
    forms = {"lower": text.lower(), "upper": text.upper(), "no_capital": text[:1].lower() + text[1:]}
    changed = [(name, variant) for name, variant in forms.items() if variant != text]
    if not changed:
        return None
    name, variant = rng.choice(changed)
    return variant, f"case:{name}"


def chat(text: str, rng: random.Random) -> tuple[str, str] | None:
    """Every word or phrase with a common chat spelling or abbreviation written that way
    (you -> u, please -> pls, thanks -> thx, as soon as possible -> asap)."""
    replaced: list[str] = []

    def spell(match: re.Match) -> str:
        original = match.group(0)
        short = CHAT_SPELLINGS[original.lower()]
        replaced.append(f"{original.lower()}>{short}")
        return short.upper() if original.isupper() and len(original) > 1 else short  # "ACCOUNT" -> "ACCT"

    variant = _CHAT.sub(spell, text)
    return (variant, "chat:" + ",".join(replaced)) if replaced else None


def filler(text: str, rng: random.Random) -> tuple[str, str] | None:
    """A spoken-style opener: "um", "hey,", "so basically"... The question's capital goes when
    it only marked the start of the sentence ("I" and acronyms keep theirs)."""
    word = rng.choice(FILLERS)
    first = text.split(" ", 1)[0]
    body = text
    if first[:1].isupper() and first[1:].islower() and first != "I":
        body = text[:1].lower() + text[1:]
    return f"{word} {body}", f"filler:{word.rstrip(',').replace(' ', '_')}"


TRANSFORMATIONS = {"typo": typo, "punctuation": punctuation, "case": case, "chat": chat, "filler": filler}


def kinds_validate(raw) -> list[str]:
    """The requested kinds as a list in KINDS order; ValueError naming an unknown one. Accepts a
    list or a comma-separated string; empty means every kind."""
    if raw in (None, "", []):
        return list(KINDS)
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list | tuple) or not all(isinstance(k, str) for k in items):
        raise ValueError(f"Give the kinds as a list of names from {', '.join(KINDS)}.")
    wanted = {k.strip().lower() for k in items if k.strip()}
    unknown = sorted(wanted - set(KINDS))
    if unknown:
        raise ValueError(f"Unknown augmentation kind {unknown[0]!r}: use {', '.join(KINDS)}.")
    if not wanted:
        raise ValueError(f"Give at least one augmentation kind from {', '.join(KINDS)}.")
    return [k for k in KINDS if k in wanted]


def variant_make(text: str, kinds: list[str], rng: random.Random) -> tuple[str, str, str] | None:
    """One variant of `text`: (variant, its kind, the transformation recorded), the kinds tried in
    a seeded order until one applies. A case or punctuation variant gets one word-changing kind
    stacked on it (alone it would be the same question to the duplicate check); None when no
    requested kind can make a new text."""
    order = list(kinds)
    rng.shuffle(order)
    stackable = [k for k in order if k in WORD_CHANGING_KINDS]
    for kind in order:
        made = TRANSFORMATIONS[kind](text, rng)
        if made is None:
            continue
        variant, done = made
        if kind not in WORD_CHANGING_KINDS:
            for extra in stackable:
                more = TRANSFORMATIONS[extra](variant, rng)
                if more is not None:
                    variant, done = more[0], f"{done}+{more[1]}"
                    break
            else:
                continue
        return variant, kind, done
    return None
