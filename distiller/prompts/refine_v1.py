"""Rewrite questions the judge failed, with the judge's reason, version 1."""

import json

from distiller.prompts.questions_v3 import Answer, GeneratedQuestion  # noqa: F401 (the same answer shape)

VERSION = "refine-v1"
EST_TOKENS_IN = 450
EST_TOKENS_OUT_PER_ITEM = 40
EXAMPLE = {"questions": [{"n": 1, "text": "I returned the shoes two weeks ago, where is my money?"}]}


def messages(*, topic: str, intent_path: list[str], description: str, language: str, neighbours: list[dict],
             items: list[dict]) -> list[dict]:
    """`items`: {n, text, reason}: a question and why the judge failed it."""
    from distiller.prompts import REQUEST_MARKER, language_name

    lang = language_name(language)
    system = (
        "You fix training data for an intent classifier: you rewrite user messages so that they clearly "
        f"belong to their intent and read like a real {lang} user's message, keeping their style and length."
    )
    user = (
        "A reviewer rejected each entry of `items` in the request below for the reason given. Rewrite each so "
        "that it clearly belongs to the intent at `intent_path` (its meaning is `description`) and to none of "
        f"the `neighbours`, fixing what the reason says. Keep each number `n`. Write in {lang}.\n\n"
        f"{REQUEST_MARKER} " + json.dumps({
            "task": "refine", "topic": topic, "intent_path": intent_path, "description": description,
            "neighbours": neighbours, "language": language, "items": items,
        }, ensure_ascii=False)
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
