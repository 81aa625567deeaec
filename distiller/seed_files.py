"""The seed tool's files, written by `manage.py distill`: the dataset JSONL and the taxonomy JSON.

(Full exports, with filters and splits, are the datasets app's job; the JSONL is written by its
seed writer, so the CLI's file and the export API's are the same format.)
"""

import json
from pathlib import Path

from datasets.models import Question, Topic
from datasets.selectors import intent_infos


def run_write_jsonl(*, run, path: Path) -> int:
    """The run's questions in the seed JSONL the export API writes (datasets.formats.seed: the intent
    fields, `question_index`, `timestamp`, `label`, `status`, `source`), through the export's own
    writer. Returns the line count."""
    from datasets.exports import export_stream

    lines = 0
    with open(path, "w", encoding="utf-8") as out:
        for chunk in export_stream(questions=Question.objects.filter(run=run), format="jsonl"):
            out.write(chunk)
            lines += chunk.count("\n")
    return lines


def taxonomy_write_json(*, topic: Topic, path: Path) -> int:
    """The topic's taxonomy as a nested JSON tree. Returns the number of intents."""
    infos = intent_infos(topic=topic)
    nodes = {pk: {"number": i.number, "name": i.name, "intent_full_name": i.intent_full_name,
                  "intent_path": i.intent_path, "children": []} for pk, i in infos.items()}
    from datasets.models import IntentNode

    descriptions = dict(IntentNode.objects.filter(topic=topic).values_list("pk", "description"))
    roots = []
    for pk, info in infos.items():
        nodes[pk]["description"] = descriptions.get(pk, "")
        (nodes[info.parent_id]["children"] if info.parent_id else roots).append(nodes[pk])
    Path(path).write_text(json.dumps({"topic": topic.name, "intents": roots}, ensure_ascii=False, indent=2) + "\n",
                          encoding="utf-8")
    return len(infos)
