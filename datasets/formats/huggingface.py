"""A folder `datasets.load_dataset` reads as is: one JSONL file per split, `labels.json`, and a
dataset card `README.md` whose YAML header declares the splits and the class labels."""

import json

import yaml

from datasets.formats.base import FormatWriter, json_string


class HuggingFaceWriter(FormatWriter):
    name = "huggingface"
    extension = "jsonl"
    content_type = "application/jsonl"
    title = "Hugging Face folder"
    single_file = False

    def row(self, row, intent, index):
        return (f'{{"text": {json_string(row.text)}, "label": {self.context.labels[intent.id]}, '
                f'"intent": {json_string(intent.intent_full_name)}}}\n')

    @classmethod
    def folder_files(cls, context, counts, intent_counts):
        names = context.label_names
        return {
            "labels.json": json.dumps(names, ensure_ascii=False, indent=2) + "\n",
            "README.md": dataset_card(context, counts, intent_counts),
        }


def dataset_card(context, counts: dict[str, int], intent_counts: dict[str, dict[str, int]]) -> str:
    splits = list(counts)
    settings = context.settings
    header = {
        "pretty_name": f"{context.topic_name} intents",
        "language": [settings.get("language", "en")],
        "task_categories": ["text-classification"],
        "task_ids": ["intent-classification"],
        "size_categories": [_size_category(sum(counts.values()))],
        "configs": [{"config_name": "default",
                     "data_files": [{"split": s, "path": f"{s}.jsonl"} for s in splits]}],
        "dataset_info": {
            "features": [
                {"name": "text", "dtype": "string"},
                {"name": "label", "dtype": {"class_label": {"names": {str(i): n for i, n in enumerate(context.label_names)}}}},
                {"name": "intent", "dtype": "string"},
            ],
            "splits": [{"name": s, "num_examples": counts[s]} for s in splits],
        },
    }
    lines = [
        "---",
        yaml.safe_dump(header, sort_keys=False, allow_unicode=True, width=1000).rstrip(),
        "---",
        "",
        f"# {context.topic_name} intents",
        "",
        f"An intent-classification dataset: {sum(counts.values())} questions in {len(context.labels)} intents, "
        "distilled from LLMs and reviewed by people with Intent Distiller.",
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
    lines += ["", "## Generation settings", ""]
    lines += [f"- **{key}**: {_cell(_setting(value))}" for key, value in settings.items() if key != "generation"]
    generation = settings.get("generation") or []
    if generation:
        lines += ["", "| provider | model | temperature | prompt version | questions |",
                  "| --- | --- | ---: | --- | ---: |"]
        lines += [f"| {_cell(g['provider'] or '-')} | {_cell(g['model'] or '-')} | "
                  f"{'-' if g['temperature'] is None else g['temperature']} | {_cell(g['prompt_version'] or '-')} | "
                  f"{g['n']} |" for g in generation]
    return "\n".join(lines) + "\n"


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
