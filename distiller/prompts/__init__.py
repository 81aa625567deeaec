"""Prompts are data: one module per prompt and version. Each module has VERSION (stored on every
row it generates), the pydantic Answer it expects, and messages(...) that builds the chat.

A new wording is a new module (taxonomy_v2.py), never an edit of a released one, so every
question can be traced to the exact prompt that produced it.
"""

from distiller.prompts import judge_v1, questions_v3, refine_v1, taxonomy_v2

TAXONOMY = taxonomy_v2
QUESTIONS = questions_v3
JUDGE = judge_v1
REFINE = refine_v1

# Every prompt ends with its parameters as one JSON line after this marker: models read it as
# a precise restatement, and the test teacher reads it instead of parsing prose.
REQUEST_MARKER = "Request (JSON):"

LANGUAGE_NAMES = {
    "en": "English", "zh": "Simplified Chinese", "de": "German", "es": "Spanish", "fr": "French",
    "it": "Italian", "ja": "Japanese", "pt": "Portuguese", "ru": "Russian", "ko": "Korean",
}


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, code)
