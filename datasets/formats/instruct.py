"""Instruction-tuning formats: Alpaca and ShareGPT. The answer is the intent's numbered name
("2.1 Reset Password"), unique within a topic where bare names may repeat across branches."""

import json

from datasets.formats.base import ExportContext, FormatWriter, json_string


def default_instruction(context: ExportContext) -> str:
    return (f"Classify the user's question into one intent of the {context.topic_name} taxonomy. "
            "Answer with the intent's number and name only.")


class AlpacaWriter(FormatWriter):
    """`instruction`, `input`, `output` and, when a system prompt is set, `system`; one JSON array
    (the layout of alpaca_data.json)."""

    name = "alpaca"
    extension = "json"
    content_type = "application/json"
    title = "Alpaca"

    def __init__(self, context):
        super().__init__(context)
        instruction = context.instruction or default_instruction(context)
        self._head = '{"instruction": ' + json_string(instruction) + ', "input": '
        self._system = (', "system": ' + json_string(context.system_prompt)) if context.system_prompt else ""
        self.separator = "\n"

    def begin(self):
        return "["

    def row(self, row, intent, index):
        text = (f'{self.separator}{self._head}{json_string(row.text)}, '
                f'"output": {json_string(intent.intent_full_name)}{self._system}}}')
        self.separator = ",\n"
        return text

    def end(self):
        return "\n]\n"


class ShareGptWriter(FormatWriter):
    """One conversation per line: `messages` with an optional system turn, the question as the
    user turn (after the instruction, when one is set) and the intent as the assistant turn."""

    name = "sharegpt"
    extension = "jsonl"
    content_type = "application/jsonl"
    title = "ShareGPT"

    def __init__(self, context):
        super().__init__(context)
        self._system = (json.dumps({"role": "system", "content": context.system_prompt}, ensure_ascii=False) + ", "
                        if context.system_prompt else "")
        self._instruction = context.instruction + "\n\n" if context.instruction else ""

    def row(self, row, intent, index):
        return (f'{{"messages": [{self._system}{{"role": "user", "content": '
                f'{json_string(self._instruction + row.text)}}}, '
                f'{{"role": "assistant", "content": {json_string(intent.intent_full_name)}}}]}}\n')
