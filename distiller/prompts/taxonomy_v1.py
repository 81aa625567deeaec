"""Child intents of one node (the seed tool's tag distiller), version 1."""

import json

from pydantic import BaseModel, Field

VERSION = "taxonomy-v1"
# For estimates: tokens of the prompt around the existing names, and per generated intent.
EST_TOKENS_IN = 420
EST_TOKENS_OUT_PER_ITEM = 45


class Intent(BaseModel):
    name: str = Field(description="Short intent name, 1-5 words, Title Case where the language has it")
    description: str = Field(description="One sentence: what users with this intent want")


class Answer(BaseModel):
    intents: list[Intent]


def messages(*, topic: str, parent_path: list[str], count: int, language: str, existing: list[str]) -> list[dict]:
    from distiller.prompts import REQUEST_MARKER, language_name

    lang = language_name(language)
    where = " -> ".join(parent_path) if parent_path else topic
    system = (
        "You design intent taxonomies for the assistants of real businesses. An intent is one thing a "
        "user wants to get done; sibling intents must not overlap, and together they should cover what "
        f"users actually ask about. Write every name and description in natural {lang}, the way a "
        f"native {lang} product team would label them."
    )
    avoid = "\n".join(f"- {name}" for name in existing) or "(none yet)"
    user = (
        f"Topic: {topic}\n"
        f"Propose {count} distinct sub-intents of: {where}\n"
        f"They must be more specific than their parent, and different from these existing siblings:\n{avoid}\n"
        f"Give each a short name and a one-sentence description, in {lang}.\n\n"
        f"{REQUEST_MARKER} " + json.dumps({
            "task": "taxonomy", "topic": topic, "parent_path": parent_path, "count": count,
            "language": language, "existing": existing,
        }, ensure_ascii=False)
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
