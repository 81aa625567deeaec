"""The seed tool's record, one JSON object per line (JSONL) or as one JSON array (JSON)."""

import json

from datasets.formats.base import ExportRow, FormatWriter, iso_timestamp, json_string
from datasets.selectors import IntentInfo


class SeedRecord:
    """Builds the seed schema's object as text. The intent's fields are the same for every row of
    an intent, so they are encoded once per intent rather than once per row."""

    def __init__(self, context):
        self.context = context
        self._intent_fragments: dict[int, str] = {}

    def _intent_fragment(self, intent: IntentInfo) -> str:
        fragment = self._intent_fragments.get(intent.id)
        if fragment is None:
            fields = {
                "intent": intent.name,
                "intent_number": intent.number,
                "intent_full_name": intent.intent_full_name,
                "intent_path": intent.intent_path,
                "intent_numbered_path": intent.intent_numbered_path,
                "intent_hierarchy": intent.intent_hierarchy,
            }
            fragment = ", " + json.dumps(fields, ensure_ascii=False)[1:-1]
            self._intent_fragments[intent.id] = fragment
        return fragment

    def text(self, row: ExportRow, intent: IntentInfo, index: int) -> str:
        return (
            f'{{"question": {json_string(row.text)}{self._intent_fragment(intent)}, "question_index": {index}, '
            f'"timestamp": "{iso_timestamp(row.created_at)}", '
            f'"label": {self.context.labels[intent.id]}, "status": "{row.status}", "source": "{row.source}"'
            # Only augmented rows carry it: the other rows stay as the seed schema writes them.
            + (f', "transformation": {json_string(row.transformation)}}}' if row.transformation else "}")
        )


class SeedJsonlWriter(FormatWriter):
    """JSONL in the seed tool's schema, plus `label` (class id), `status` and `source`."""

    name = "jsonl"
    extension = "jsonl"
    content_type = "application/jsonl"
    title = "JSONL (seed schema)"

    def __init__(self, context):
        super().__init__(context)
        self.record = SeedRecord(context)

    def row(self, row, intent, index):
        return self.record.text(row, intent, index) + "\n"


class SeedJsonWriter(FormatWriter):
    """The same records as JSONL, as one JSON array (written element by element)."""

    name = "json"
    extension = "json"
    content_type = "application/json"
    title = "JSON"

    def __init__(self, context):
        super().__init__(context)
        self.record = SeedRecord(context)
        self.separator = "\n"

    def begin(self):
        return "["

    def row(self, row, intent, index):
        text = self.separator + self.record.text(row, intent, index)
        self.separator = ",\n"
        return text

    def end(self):
        return "\n]\n"
