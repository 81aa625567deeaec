"""The seed tool's files, written by `manage.py distill`: the dataset JSONL and the taxonomy JSON.

(Full exports, with filters and splits, are the datasets app's job; these mirror the seed CLI.)
"""

import json
from pathlib import Path

from datasets.models import Question, Topic
from datasets.selectors import intent_infos


def run_write_jsonl(*, run, path: Path) -> int:
    """One line per question of `run`, with the seed's intent fields. Returns the line count."""
    infos = intent_infos(topic=run.topic)
    count = 0
    with open(path, "w", encoding="utf-8") as out:
        for q in Question.objects.filter(run=run).order_by("intent__sort_key", "id").iterator(chunk_size=2000):
            info = infos[q.intent_id]
            out.write(json.dumps({
                "question": q.text, "intent": info.name, "intent_number": info.number,
                "intent_full_name": info.intent_full_name, "intent_hierarchy": info.intent_hierarchy,
                "intent_path": info.intent_path, "intent_numbered_path": info.intent_numbered_path,
                "topic": run.topic.name, "language": q.language, "style": q.style, "complexity": q.complexity,
                "audience": q.audience, "edge_case": q.edge_case, "provider": q.provider, "model": q.model,
                "prompt_version": q.prompt_version,
            }, ensure_ascii=False) + "\n")
            count += 1
    return count


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
