"""Import CLINC150 (vendored in datasets/demo_data/clinc150, CC BY 3.0) as a demo topic.

The taxonomy has two levels, domain -> intent (10 domains, 150 intents); the in-scope
questions of the train, val and test splits are imported as approved. Out-of-scope
(`oos`) rows are left out: they belong to no intent of the taxonomy.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from datasets.models import IntentNode, Question, Topic
from datasets.services import DatasetError, intent_create, question_bulk_create

DEFAULT_PATH = Path(__file__).resolve().parent / "demo_data" / "clinc150"
SPLITS = ("train", "val", "test")


@dataclass
class Clinc150Result:
    topic: Topic
    domains: int
    intents: int
    questions: int
    duplicates: int


def _title(raw: str) -> str:
    return raw.replace("_", " ").title()


def clinc150_import(*, path: Path = DEFAULT_PATH, topic_name: str = "CLINC150", owner=None) -> Clinc150Result:
    """Create the topic with its taxonomy and approved questions; refuses if the topic exists."""
    try:
        domains = json.loads((path / "domains.json").read_text())
        data = json.loads((path / "data_full.json").read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError(f"Cannot read CLINC150 from {path}: {exc}") from exc
    if Topic.objects.filter(name=topic_name).exists():
        raise DatasetError(f"Topic {topic_name!r} already exists; delete it first or choose another name.",
                           code="exists")
    now = timezone.now()
    with transaction.atomic():
        topic = Topic.objects.create(
            name=topic_name, owner=owner, levels=2, tags_per_level=15, questions_per_intent=150,
            description="CLINC150 (Larson et al., EMNLP-IJCNLP 2019, CC BY 3.0): 150 intents in 10 domains.",
        )
        intent_ids: dict[str, int] = {}
        for domain, intents in domains.items():
            domain_node = intent_create(topic=topic, name=_title(domain), description=f"CLINC150 domain `{domain}`")
            for raw in intents:
                node = intent_create(topic=topic, parent=domain_node, name=_title(raw),
                                     description=f"CLINC150 intent `{raw}`")
                intent_ids[raw] = node.pk
        rows = (
            dict(text=text, intent_id=intent_ids[label], source=Question.Source.IMPORTED,
                 status=Question.Status.APPROVED, reviewed_at=now, language="en")
            for split in SPLITS
            for text, label in data[split]
            if label in intent_ids
        )
        result = question_bulk_create(topic=topic, rows=rows)
    return Clinc150Result(
        topic=topic, domains=len(domains), intents=IntentNode.objects.filter(topic=topic, depth=2).count(),
        questions=result.created, duplicates=result.duplicates,
    )
