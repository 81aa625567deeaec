"""Rasa NLU training data (YAML, format version 3.1): one `- intent:` block per intent."""

import re

from datasets.formats.base import FormatWriter

_NOT_NAME = re.compile(r"[^\w]+")


def rasa_intent_name(hierarchy_without_topic: list[str]) -> str:
    """`Banking -> Transfer Money` becomes `banking__transfer_money`: Rasa reserves `/` for
    retrieval intents, and the path keeps names unique where sibling names repeat elsewhere."""
    return "__".join(_NOT_NAME.sub("_", part.lower()).strip("_") or "intent" for part in hierarchy_without_topic)


class RasaWriter(FormatWriter):
    name = "rasa"
    extension = "yml"
    content_type = "application/yaml"
    title = "Rasa NLU YAML"

    def __init__(self, context):
        super().__init__(context)
        self._current = None

    def begin(self):
        return 'version: "3.1"\nnlu:\n'

    def row(self, row, intent, index):
        # A literal block keeps every character but a line break, which would start a new example.
        example = "    - " + " ".join(row.text.split()) + "\n"
        if intent.id == self._current:
            return example
        self._current = intent.id
        return f"- intent: {rasa_intent_name(intent.intent_hierarchy[1:])}\n  examples: |\n" + example
