"""A folder `datasets.load_dataset` reads as is: one file per split (JSONL, or Parquet as the Hub
serves datasets), `labels.json`, and a dataset card `README.md` whose YAML header declares the
splits, their sizes and the class labels."""

import json

import pyarrow as pa
import yaml

from datasets.formats.base import FormatWriter, json_string, labels_json, provenance_fields
from datasets.formats.parquet import ParquetRowGroups

# Each row's share of a split held as one Arrow table by `datasets` (what its num_bytes counts):
# a 4-byte offset per string value (text, intent, source, transformation) and 8 bytes for the
# int64 label, plus the UTF-8 bytes of the four strings.
ARROW_ROW_OVERHEAD = 4 * 4 + 8
RUN_PARAMETERS = (("levels", "taxonomy levels"), ("tags_per_level", "tags per level"),
                  ("leaf_only", "leaf intents only"), ("questions_per_intent", "questions per intent"),
                  ("questions_per_call", "questions per call"), ("temperature", "temperature"), ("seed", "seed"),
                  ("near_duplicate_threshold", "near-duplicate threshold"), ("mix", "mix"))
TAXONOMY_PARAMETERS = {"levels", "tags_per_level"}  # what a questions-only run never used


class HuggingFaceWriter(FormatWriter):
    name = "huggingface"
    extension = "jsonl"
    content_type = "application/jsonl"
    title = "Hugging Face folder"
    single_file = False

    def __init__(self, context):
        super().__init__(context)
        self.num_bytes = 0
        self._intent_bytes: dict[int, int] = {}

    def _count(self, row, intent):
        size = self._intent_bytes.get(intent.id)
        if size is None:
            size = self._intent_bytes[intent.id] = len(intent.intent_full_name.encode()) + ARROW_ROW_OVERHEAD
        self.num_bytes += len(row.text.encode()) + len(row.source) + len(row.transformation.encode()) + size

    def row(self, row, intent, index):
        self._count(row, intent)
        return (f'{{"text": {json_string(row.text)}, "label": {self.context.labels[intent.id]}, '
                f'"intent": {json_string(intent.intent_full_name)}{provenance_fields(row)}}}\n')

    @classmethod
    def folder_files(cls, context, counts, intent_counts, num_bytes=None):
        return {
            "labels.json": labels_json(context),
            "README.md": dataset_card(context, counts, intent_counts, num_bytes or {}, extension=cls.extension),
        }


class HuggingFaceParquetWriter(HuggingFaceWriter):
    """The same folder with one Parquet file per split (`train.parquet`, ...), what the Hugging Face
    Hub serves; the `label` feature's class names are also in each file's schema metadata."""

    name = "huggingface_parquet"
    extension = "parquet"
    content_type = "application/vnd.apache.parquet"
    title = "Hugging Face folder (Parquet)"
    binary = True

    def __init__(self, context):
        super().__init__(context)
        self._file = ParquetRowGroups(context, {"text": pa.string(), "label": pa.int64(), "intent": pa.string(),
                                                "source": pa.string(), "transformation": pa.string()})

    def begin(self):
        return self._file.begin()

    def row(self, row, intent, index):
        self._count(row, intent)
        return self._file.add((row.text, self.context.labels[intent.id], intent.intent_full_name, row.source,
                               row.transformation))

    def end(self):
        return self._file.end()


def dataset_card(context, counts: dict[str, int], intent_counts: dict[str, dict[str, int]],
                 num_bytes: dict[str, int], *, extension: str = "jsonl") -> str:
    splits = list(counts)
    settings = context.settings
    split_infos = []
    for s in splits:
        info = {"name": s}
        if s in num_bytes:
            info["num_bytes"] = num_bytes[s]
        info["num_examples"] = counts[s]
        split_infos.append(info)
    header = {
        "pretty_name": f"{context.topic_name} intents",
        "language": [settings.get("language", "en")],
        "task_categories": ["text-classification"],
        "task_ids": ["intent-classification"],
        "size_categories": [_size_category(sum(counts.values()))],
        "configs": [{"config_name": "default",
                     "data_files": [{"split": s, "path": f"{s}.{extension}"} for s in splits]}],
        "dataset_info": {
            "features": [
                {"name": "text", "dtype": "string"},
                {"name": "label", "dtype": {"class_label": {"names": {str(i): n for i, n in enumerate(context.label_names)}}}},
                {"name": "intent", "dtype": "string"},
                # Where a question comes from; how an augmented one (source "augmented") was made,
                # blank for the others: what a user filters augmented rows out of a test set by.
                {"name": "source", "dtype": "string"},
                {"name": "transformation", "dtype": "string"},
            ],
            "splits": split_infos,
        },
    }
    if num_bytes:
        header["dataset_info"]["dataset_size"] = sum(num_bytes.values())
    lines = [
        "---",
        yaml.safe_dump(header, sort_keys=False, allow_unicode=True, width=1000).rstrip(),
        "---",
        "",
        f"# {context.topic_name} intents",
        "",
        f"An intent-classification dataset: {sum(counts.values())} questions in {len(context.labels)} intents, "
        "exported by Intent Distiller.",
        "",
        "```python",
        "from datasets import load_dataset",
        'dataset = load_dataset("path/to/this/folder")',
        "```",
        "",
        "## Splits",
        "",
        "| split | questions |",
        "| --- | ---: |",
        *[f"| {s} | {counts[s]} |" for s in splits],
        "",
        "## Questions per intent",
        "",
        "| label | intent | " + " | ".join(splits) + " | total |",
        "| ---: | --- | " + " | ".join("---:" for _ in splits) + " | ---: |",
    ]
    for label, intent_id in enumerate(context.labels):
        name = context.intents[intent_id].intent_full_name
        per_split = intent_counts.get(name, {})
        cells = [str(per_split.get(s, 0)) for s in splits]
        lines.append(f"| {label} | {_cell(context.intents[intent_id].intent_path)} | " + " | ".join(cells)
                     + f" | {sum(per_split.values())} |")
    lines += ["", "## Export settings", ""]
    lines += [f"- **{key}**: {_cell(_setting(value))}" for key, value in settings.items()
              if key not in ("sources", "generation", "runs")]
    sources = settings.get("sources") or {}
    if sources:
        lines += ["", "## Where the questions come from", "", "| source | questions |", "| --- | ---: |"]
        lines += [f"| {_cell(source)} | {n} |" for source, n in sources.items()]
    lines += _generation_lines(settings.get("generation") or [], settings.get("runs") or {})
    return "\n".join(lines) + "\n"


def _generation_lines(generation: list[dict], runs: dict) -> list[str]:
    """The generated questions' settings, from the questions and the runs that made them; nothing
    for questions a model did not generate here (imported, captured, written by hand)."""
    if not generation:
        return []
    lines = ["", "## Generation", "", "The generated questions, by the run, model and prompt that made them:", "",
             "| run | provider | model | temperature | prompt version | questions |",
             "| ---: | --- | --- | ---: | --- | ---: |"]
    lines += [f"| {g['run_id'] or '-'} | {_cell(g['provider'] or '-')} | {_cell(g['model'] or '-')} | "
              f"{'-' if g['temperature'] is None else g['temperature']} | {_cell(g['prompt_version'] or '-')} | "
              f"{g['n']} |" for g in generation]
    if runs:
        lines += ["", "Run parameters:", ""]
        for run_id, run in runs.items():
            parameters = run.get("parameters") or {}
            shown = [f"{label} {_setting(parameters[key])}" for key, label in RUN_PARAMETERS
                     if parameters.get(key) is not None
                     and (key not in TAXONOMY_PARAMETERS or run.get("kind") != "questions")]
            lines.append(f"- **run {run_id}** ({run.get('kind')}): {_cell(', '.join(shown)) or 'no parameters'}")
    return lines


def _setting(value) -> str:
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                        (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < limit:
            return name
    return "10M<n<100M"
