"""Writes on topics, taxonomies and questions."""

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Max

from datasets.health.index import paraphrase_index_write_by_hash
from datasets.models import IntentNode, Question, Topic
from datasets.normalize import near_duplicate_key, text_hash


class DatasetError(Exception):
    """A user-facing error about datasets: the message says what to fix."""

    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, details=None):
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.details = details


def _child_number(parent: IntentNode | None, position: int) -> str:
    return f"{parent.number}.{position}" if parent else str(position)


def intent_create(*, topic: Topic, name: str, parent: IntentNode | None = None, description: str = "",
                  run_id: int | None = None, prompt_version: str = "") -> IntentNode:
    """Add an intent as the last child of `parent` (or as a root), numbered after its siblings.

    `run_id` and `prompt_version` record the distillation run and prompt that proposed it.

    Raises DatasetError when a sibling already has this name (case-insensitive).
    """
    name = " ".join(name.split())
    if not name:
        raise DatasetError("An intent needs a name.")
    if parent is not None and parent.topic_id != topic.pk:
        raise DatasetError("The parent intent belongs to another topic.")
    with transaction.atomic():
        siblings = IntentNode.objects.select_for_update().filter(topic=topic, parent=parent)
        if parent is None:
            # Roots have no parent row to lock; lock the topic so concurrent creators number in turn.
            Topic.objects.select_for_update().filter(pk=topic.pk).first()
        else:
            IntentNode.objects.select_for_update().filter(pk=parent.pk).first()
        if siblings.filter(name__iexact=name).exists():
            raise DatasetError(f"{name!r} already exists under {parent.intent_full_name if parent else topic.name}.",
                               code="duplicate")
        position = (siblings.aggregate(m=Max("position"))["m"] or 0) + 1
        try:
            with transaction.atomic():
                return IntentNode.objects.create(
                    topic=topic, parent=parent, name=name, description=description.strip(),
                    number=_child_number(parent, position), position=position,
                    run_id=run_id, prompt_version=prompt_version,
                )
        except IntegrityError as exc:
            raise DatasetError(f"{name!r} already exists at this level.", code="duplicate") from exc


def intent_renumber(*, topic: Topic) -> int:
    """Renumber the whole taxonomy from sibling positions; returns how many intents changed number.

    Used after a move or a deletion so numbers stay dense and consistent (1, 1.1, 1.2, 2, ...).
    """
    with transaction.atomic():
        nodes = list(IntentNode.objects.select_for_update().filter(topic=topic).order_by("position", "id"))
        children: dict[int | None, list[IntentNode]] = {}
        for node in nodes:
            children.setdefault(node.parent_id, []).append(node)
        wanted: dict[int, tuple[str, int]] = {}

        def walk(parent_id, prefix):
            for index, node in enumerate(children.get(parent_id, []), start=1):
                number = f"{prefix}.{index}" if prefix else str(index)
                wanted[node.pk] = (number, index)
                walk(node.pk, number)

        walk(None, "")
        changed = [n for n in nodes if (n.number, n.position) != wanted[n.pk]]
        # Two passes keep the unique (topic, number) constraint satisfied mid-way.
        for node in changed:
            node.number = f"tmp-{node.pk}"
            node.save(update_fields=["number", "sort_key", "depth"])
        for node in changed:
            node.number, node.position = wanted[node.pk]
            node.save(update_fields=["number", "position", "sort_key", "depth"])
        return len(changed)


def intent_move(*, node: IntentNode, new_parent: IntentNode | None) -> IntentNode:
    """Move `node` (and its subtree) to the end of `new_parent`'s children and renumber the taxonomy."""
    if new_parent is not None:
        if new_parent.topic_id != node.topic_id:
            raise DatasetError("Cannot move an intent to another topic.")
        if new_parent.pk == node.pk or node in new_parent.ancestors():
            raise DatasetError("Cannot move an intent under itself.")
    with transaction.atomic():
        clash = IntentNode.objects.filter(topic_id=node.topic_id, parent=new_parent, name__iexact=node.name)
        if clash.exclude(pk=node.pk).exists():
            raise DatasetError(f"{node.name!r} already exists under the new parent.", code="duplicate")
        last = IntentNode.objects.filter(topic_id=node.topic_id, parent=new_parent).aggregate(m=Max("position"))["m"]
        node.parent = new_parent
        node.position = (last or 0) + 1
        node.save(update_fields=["parent", "position"])
        intent_renumber(topic=node.topic)
    node.refresh_from_db()
    return node


@dataclass
class BulkResult:
    created: int = 0
    duplicates: int = 0


def question_near_keys_fill(*, questions, batch_size: int = 5000) -> int:
    """Store the near-duplicate key of `questions` that lack one (rows written by a path that
    bypassed the model, such as raw SQL); returns how many were filled."""
    filled = 0
    while batch := list(questions.filter(near_key=None).order_by("pk").only("pk", "text")[:batch_size]):
        for question in batch:
            question.near_key = near_duplicate_key(question.text)
        filled += Question.objects.bulk_update(batch, ["near_key"], batch_size=batch_size)
    return filled


def question_bulk_create(*, topic: Topic, rows: Iterable[dict], batch_size: int = 2000) -> BulkResult:
    """Insert questions, skipping exact duplicates (within the rows and against the topic).

    Each row holds Question fields (`text`, `intent` or `intent_id`, and optional metadata).
    """
    result = BulkResult()
    batch: list[Question] = []
    seen: set[str] = set()

    def flush():
        if not batch:
            return
        hashes = [q.text_hash for q in batch]
        existing = set(Question.objects.filter(topic=topic, text_hash__in=hashes).values_list("text_hash", flat=True))
        fresh = [q for q in batch if q.text_hash not in existing]
        Question.objects.bulk_create(fresh, batch_size=batch_size, ignore_conflicts=True)
        paraphrase_index_write_by_hash(topic_id=topic.pk, texts_by_hash={q.text_hash: q.text for q in fresh})
        result.created += len(fresh)
        result.duplicates += len(batch) - len(fresh)
        batch.clear()

    for row in rows:
        question = Question(topic=topic, **row)
        question.text = question.text.strip()
        question.text_hash = text_hash(question.text)
        question.near_key = near_duplicate_key(question.text)
        if not question.text_hash or question.text_hash in seen or not question.text:
            result.duplicates += 1
            continue
        seen.add(question.text_hash)
        batch.append(question)
        if len(batch) >= batch_size:
            flush()
    flush()
    return result
