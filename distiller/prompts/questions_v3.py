"""User questions for one intent, version 3; also its hard negatives and out-of-scope questions.

Changed from version 2: sends the topic's description and the neighbouring intents a question
must not belong to; "ambiguous" asks for vague wording that still belongs to the intent (not
for a question whose intent cannot be told); every piece of data (the existing questions, the
requested items) is sent once, in the request JSON the instructions refer to. `contrast` asks
for hard negatives against one neighbour; `out_of_scope` for questions near the topic that
belong to none of its intents."""

import json

from pydantic import BaseModel, Field

VERSION = "questions-v3"
EST_TOKENS_IN = 700
EST_TOKENS_OUT_PER_ITEM = 40
EXAMPLE = {"questions": [{"n": 1, "text": "where is my refund? it's been two weeks"},
                         {"n": 2, "text": "Could you tell me how long a refund usually takes to arrive?"}]}

EDGE_CASE_HINTS = {
    "typos": "with one or two natural typos",
    "very_short": "very short, two to four words",
    "very_long": "long and rambling, with background the user thinks matters",
    "ambiguous": "vague or indirect wording, yet it still clearly belongs to the intent",
    "mixed_language": "mixing in a few {other} words, as bilingual users do",
}


def edge_case_hint(edge_case: str, language: str) -> str:
    other = "Spanish" if language == "en" else "English"
    hint = EDGE_CASE_HINTS.get(edge_case, "" if edge_case == "none" else edge_case)
    return hint.format(other=other)


class GeneratedQuestion(BaseModel):
    n: int = Field(description="The number of the requested item this answers")
    text: str


class Answer(BaseModel):
    questions: list[GeneratedQuestion]


def messages(*, topic: str, intent_path: list[str], description: str, language: str, items: list[dict],
             existing: list[str], topic_description: str = "", neighbours: list[dict] = (),
             contrast: dict | None = None, out_of_scope: bool = False) -> list[dict]:
    """`items`: dicts with n, style, complexity, audience, edge_case; `neighbours`: {name, description} of
    the intents a question must not belong to; `contrast`: the neighbour hard negatives are written against."""
    from distiller.prompts import REQUEST_MARKER, language_name

    lang = language_name(language)
    neighbours = [n for n in neighbours if contrast is None or n["name"] != contrast["name"]]  # said once
    system = (
        "You write realistic messages that users send to a customer-facing assistant, to train an intent "
        f"classifier. Write in natural, idiomatic {lang}, as native speakers really type: no translations, "
        "no numbering inside the text, no quotes around it. Messages differ from each other in wording and "
        "structure, not just in one word."
    )
    if out_of_scope:
        task = ("Write one message for each entry of `items` in the request below: messages a user of this "
                "topic's assistant might plausibly send, but that belong to NONE of the intents listed in "
                "`neighbours` (the topic's intents): near the topic, outside every intent.")
    elif contrast is not None:
        task = ("Write hard negatives: one message for each entry of `items` in the request below that shares "
                "wording and vocabulary with the neighbouring intent `contrast`, yet clearly belongs to the "
                "intent at `intent_path` and not to `contrast`.")
    else:
        task = ("Write one message for each entry of `items` in the request below. Each must clearly belong to "
                "the intent at `intent_path` (its meaning is `description`) and to none of the `neighbours`.")
    codes = sorted({item["edge_case"] for item in items if edge_case_hint(item["edge_case"], language)})
    legend = "".join(f"\n- edge_case {code}: {edge_case_hint(code, language)}" for code in codes)
    user = (
        f"{task} Keep each entry's number `n` and follow its style, complexity and audience"
        + (f"; edge cases:{legend}" if legend else ".")
        + f"\nDo not repeat or paraphrase the `existing` messages. Write in {lang}.\n\n"
        + f"{REQUEST_MARKER} " + json.dumps({
            "task": "out_of_scope" if out_of_scope else "questions", "topic": topic,
            "topic_description": topic_description, "intent_path": intent_path, "description": description,
            "neighbours": list(neighbours), "contrast": contrast, "language": language,
            "items": items, "existing": existing,
        }, ensure_ascii=False)
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
