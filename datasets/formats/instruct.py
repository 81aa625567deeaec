"""Instruction-tuning formats: Alpaca, ShareGPT (LLaMA-Factory's `conversations` with `from` and
`value`) and OpenAI chat messages (`messages` with `role` and `content`). The answer is the
intent's numbered name ("2.1 Reset Password"), unique within a topic where bare names may repeat
across branches.

Each writes a LLaMA-Factory `dataset_info.json` beside its files, one entry per file, so the
export folder works as LLaMA-Factory's `dataset_dir` as is.
"""

import json
import re

from datasets.formats.base import ExportContext, FormatWriter, json_string, provenance_fields


def default_instruction(context: ExportContext) -> str:
    return (f"Classify the user's question into one intent of the {context.topic_name} taxonomy. "
            "Answer with the intent's number and name only.")


def llama_factory_dataset_name(topic_name: str) -> str:
    """"Customer Care" as a LLaMA-Factory dataset name: customer_care."""
    return re.sub(r"[^\w]+", "_", topic_name.lower()).strip("_") or "intents"


def llama_factory_dataset_info(context: ExportContext, file_names: dict[str, str], entry: dict) -> str:
    """dataset_info.json: one entry per file (`<topic>` alone, or `<topic>_<part>` per part of a
    split), each with the file name and `entry` (formatting, columns, tags)."""
    base = llama_factory_dataset_name(context.topic_name)
    single = len(file_names) == 1 and next(iter(file_names)) == "questions"
    info = {(base if single else f"{base}_{part}"): {"file_name": file_name, **entry}
            for part, file_name in file_names.items()}
    return json.dumps(info, ensure_ascii=False, indent=2) + "\n"


class InstructWriter(FormatWriter):
    """What the three formats share: the dataset_info.json entry beside the files."""

    @classmethod
    def llama_factory_entry(cls, context: ExportContext) -> dict:
        raise NotImplementedError

    @classmethod
    def folder_files(cls, context, counts, intent_counts, num_bytes=None):
        file_names = {part: f"{part}.{cls.extension}" for part in counts}
        return {"dataset_info.json": llama_factory_dataset_info(context, file_names, cls.llama_factory_entry(context))}


class AlpacaWriter(InstructWriter):
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
                f'"output": {json_string(intent.intent_full_name)}{self._system}{provenance_fields(row)}}}')
        self.separator = ",\n"
        return text

    def end(self):
        return "\n]\n"

    @classmethod
    def llama_factory_entry(cls, context):
        columns = {"prompt": "instruction", "query": "input", "response": "output"}
        if context.system_prompt:  # a column named here must exist in every record
            columns["system"] = "system"
        return {"formatting": "alpaca", "columns": columns}


def _user_turn(context: ExportContext) -> str:
    """What comes before the question in the user turn: the instruction and a blank line, if set."""
    return context.instruction + "\n\n" if context.instruction else ""


class ShareGptWriter(InstructWriter):
    """LLaMA-Factory's ShareGPT: one conversation per line, `conversations` with the question as the
    `human` turn (after the instruction, when one is set) and the intent as the `gpt` turn; the
    system prompt, when set, is the top-level `system` field (the place LLaMA-Factory reads it)."""

    name = "sharegpt"
    extension = "jsonl"
    content_type = "application/jsonl"
    title = "ShareGPT (conversations, from/value)"

    def __init__(self, context):
        super().__init__(context)
        self._system = f', "system": {json_string(context.system_prompt)}' if context.system_prompt else ""
        self._instruction = _user_turn(context)

    def row(self, row, intent, index):
        return (f'{{"conversations": [{{"from": "human", "value": {json_string(self._instruction + row.text)}}}, '
                f'{{"from": "gpt", "value": {json_string(intent.intent_full_name)}}}]{self._system}'
                f'{provenance_fields(row)}}}\n')

    @classmethod
    def llama_factory_entry(cls, context):
        columns = {"messages": "conversations"}
        if context.system_prompt:
            columns["system"] = "system"
        return {"formatting": "sharegpt", "columns": columns,
                "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"}}


class OpenAiWriter(InstructWriter):
    """OpenAI chat messages (the fine-tuning API's JSONL): `messages` with an optional system turn,
    the question as the user turn (after the instruction, when one is set) and the intent as the
    assistant turn. This is what the `sharegpt` format wrote before it took LLaMA-Factory's shape."""

    name = "openai"
    extension = "jsonl"
    content_type = "application/jsonl"
    title = "OpenAI messages (role/content)"

    def __init__(self, context):
        super().__init__(context)
        self._system = (json.dumps({"role": "system", "content": context.system_prompt}, ensure_ascii=False) + ", "
                        if context.system_prompt else "")
        self._instruction = _user_turn(context)

    def row(self, row, intent, index):
        return (f'{{"messages": [{self._system}{{"role": "user", "content": '
                f'{json_string(self._instruction + row.text)}}}, '
                f'{{"role": "assistant", "content": {json_string(intent.intent_full_name)}}}]}}\n')

    @classmethod
    def llama_factory_entry(cls, context):
        return {"formatting": "sharegpt", "columns": {"messages": "messages"},
                "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                         "assistant_tag": "assistant", "system_tag": "system"}}
