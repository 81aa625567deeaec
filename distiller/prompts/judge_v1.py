"""The LLM judge: which of an intent and its neighbours each question belongs to, and how natural it is, version 1."""

import json

from pydantic import BaseModel, Field

VERSION = "judge-v1"
EST_TOKENS_IN = 500
EST_TOKENS_IN_PER_ITEM = 30
EST_TOKENS_OUT_PER_ITEM = 35
NONE = "none"
EXAMPLE = {"verdicts": [{"n": 1, "intent": "Billing -> Refund Status", "naturalness": 4,
                         "reason": "Asks where a refund is; natural wording."}]}


class Verdict(BaseModel):
    n: int = Field(description="The number of the question judged")
    intent: str = Field(description='The candidate\'s name exactly as given, or "none"')
    naturalness: int = Field(description="1 (nobody writes this) to 5 (a real user's message)")
    reason: str = Field(description="One line: why")


class Answer(BaseModel):
    verdicts: list[Verdict]


def messages(*, topic: str, topic_description: str, language: str, intent: str, candidates: list[dict],
             questions: list[dict]) -> list[dict]:
    """`candidates`: {name, description} of the intent and its neighbours; `questions`: {n, text}."""
    from distiller.prompts import REQUEST_MARKER, language_name

    system = (
        "You check training data for an intent classifier. For each user message, decide which one of the "
        "candidate intents it belongs to, judging by what the user wants to get done, not by shared words. "
        "Be strict: if the message fits another candidate better, say so; if it fits none, answer \"none\"."
    )
    user = (
        "Each entry of `questions` in the request below was written for the intent `intent`. For each, give "
        "its number `n`, the name of the candidate it belongs to (copied exactly from `candidates`, or "
        "\"none\"), its naturalness from 1 (no real user writes this) to 5 (indistinguishable from a real "
        f"{language_name(language)} user's message), and a one-line reason.\n\n"
        f"{REQUEST_MARKER} " + json.dumps({
            "task": "judge", "topic": topic, "topic_description": topic_description, "intent": intent,
            "candidates": candidates, "questions": questions,
        }, ensure_ascii=False)
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
