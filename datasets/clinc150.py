"""Import CLINC150 (vendored in datasets/demo_data/clinc150, CC BY 3.0) as a demo topic.

The taxonomy has two levels, domain -> intent (10 domains, 150 intents), plus one root intent
"Out Of Scope" (`oos`, marked out_of_scope, so exports and evaluations leave it out unless asked).
Every question is imported as approved with CLINC150's official split (train, val -> validation,
test). A text that occurs more than once (the topic keeps one question per text) keeps its first
occurrence, in the order train, val, test, then oos_train, oos_val, oos_test; the others are
counted per split in `duplicates_by_split`.
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
OOS_SPLITS = ("oos_train", "oos_val", "oos_test")
# CLINC150's split names as Question.split stores them.
SPLIT_OF = {"train": "train", "val": "validation", "test": "test",
            "oos_train": "train", "oos_val": "validation", "oos_test": "test"}
OOS_INTENT_NAME = "Out Of Scope"
CLINC150_PER_INTENT = 150  # queries per in-scope intent in data_full.json


@dataclass
class Clinc150Result:
    topic: Topic
    domains: int
    intents: int
    questions: int
    duplicates: int
    # Questions created and rows skipped as repeats, per CLINC150 list (train, val, ..., oos_test).
    created_by_split: dict[str, int]
    duplicates_by_split: dict[str, int]


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
            # CLINC150 has 150 queries per intent (100 train, 20 validation, 30 test): the review
            # target is what it has, not the default 200 no intent could reach.
            name=topic_name, owner=owner, levels=2, tags_per_level=15, questions_per_intent=150,
            target_per_intent=CLINC150_PER_INTENT,
            description="CLINC150 (Larson et al., EMNLP-IJCNLP 2019, CC BY 3.0): 150 intents in 10 domains.",
        )
        intent_ids: dict[str, int] = {}
        for domain, intents in domains.items():
            domain_node = intent_create(topic=topic, name=_title(domain), description=f"CLINC150 domain `{domain}`")
            for raw in intents:
                node = intent_create(topic=topic, parent=domain_node, name=_title(raw),
                                     description=f"CLINC150 intent `{raw}`")
                intent_ids[raw] = node.pk
        oos = intent_create(topic=topic, name=OOS_INTENT_NAME,
                            description="CLINC150 out-of-scope queries (`oos`): they belong to no intent.")
        IntentNode.objects.filter(pk=oos.pk).update(out_of_scope=True)
        intent_ids["oos"] = oos.pk
        created_by_split, duplicates_by_split = {}, {}
        for split in SPLITS + OOS_SPLITS:
            # One call per list, so each list's repeats (of itself or of an earlier list) are counted.
            result = question_bulk_create(topic=topic, rows=(
                dict(text=text, intent_id=intent_ids[label], source=Question.Source.IMPORTED,
                     status=Question.Status.APPROVED, reviewed_at=now, language="en", split=SPLIT_OF[split])
                for text, label in data[split]))
            created_by_split[split], duplicates_by_split[split] = result.created, result.duplicates
    return Clinc150Result(
        topic=topic, domains=len(domains), intents=IntentNode.objects.filter(topic=topic, depth=2).count(),
        questions=sum(created_by_split.values()), duplicates=sum(duplicates_by_split.values()),
        created_by_split=created_by_split, duplicates_by_split=duplicates_by_split,
    )
