"""User questions for one intent, with a requested diversity mix per question, version 2.

Changed from version 1: the mixed-language hint names a language other than the run's own
(version 1 asked English runs to mix in "English words")."""

import json

from pydantic import BaseModel, Field

VERSION = "questions-v2"
EST_TOKENS_IN = 650
EST_TOKENS_OUT_PER_ITEM = 40

EDGE_CASE_HINTS = {
    "none": "",
    "typos": "with one or two natural typos",
    "very_short": "very short, two to four words",
    "very_long": "long and rambling, with background the user thinks matters",
    "ambiguous": "ambiguous, so the intent must be inferred",
    "mixed_language": "mixing in a few {other} words, as bilingual users do",
}


def edge_case_hint(edge_case: str, language: str) -> str:
    """The words asking for `edge_case`; a mixed-language message mixes in English, or Spanish for English runs."""
    other = "Spanish" if language == "en" else "English"
    hint = EDGE_CASE_HINTS.get(edge_case)
    return edge_case if hint is None else hint.format(other=other)  # a mix's own values are used as given


class GeneratedQuestion(BaseModel):
    n: int = Field(description="The number of the requested item this answers")
    text: str


class Answer(BaseModel):
    questions: list[GeneratedQuestion]


def messages(*, topic: str, intent_path: list[str], description: str, language: str, items: list[dict],
             existing: list[str]) -> list[dict]:
    """`items` are the requested questions: dicts with n, style, complexity, audience, edge_case."""
    from distiller.prompts import REQUEST_MARKER, language_name

    lang = language_name(language)
    system = (
        "You write realistic messages that users send to a customer-facing assistant, to train an intent "
        f"classifier. Write in natural, idiomatic {lang}, as native speakers really type: no translations, "
        "no numbering inside the text, no quotes around it. Each message must clearly belong to the given "
        "intent and differ from the others in wording and structure, not just in one word."
    )
    lines = []
    for item in items:
        hint = edge_case_hint(item["edge_case"], language)
        lines.append(f"{item['n']}. style: {item['style']}; complexity: {item['complexity']}; "
                     f"audience: {item['audience']}" + (f"; {hint}" if hint else ""))
    avoid = "\n".join(f"- {text}" for text in existing) or "(none yet)"
    user = (
        f"Topic: {topic}\nIntent: {' -> '.join(intent_path)}\n"
        + (f"Meaning: {description}\n" if description else "")
        + f"Write {len(items)} user messages in {lang}, one per line below, keeping each number:\n"
        + "\n".join(lines)
        + f"\nDo not repeat or paraphrase these existing messages:\n{avoid}\n\n"
        + f"{REQUEST_MARKER} " + json.dumps({
            "task": "questions", "topic": topic, "intent_path": intent_path, "language": language,
            "items": items, "existing": existing,
        }, ensure_ascii=False)
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
