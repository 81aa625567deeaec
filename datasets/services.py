"""Writes on topics, taxonomies and questions."""

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Max

from datasets.health.index import paraphrase_index_write_by_hash
from datasets.models import Augmentation, IntentNode, Question, Topic, TopicPreset
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


def topic_preset_apply(*, topic: Topic, preset: TopicPreset) -> Topic:
    """Start a new (unsaved) topic from a domain preset: the preset is kept (its runs ask for its
    styles and audiences), its description fills a blank one, its first language is the topic's."""
    topic.preset = preset
    if not topic.description:
        topic.description = preset.description
    if preset.languages:
        topic.language = preset.languages[0]
    return topic


def topic_preset_by_name(name: str) -> TopicPreset:
    """The preset named `name` (case-insensitive); DatasetError listing the presets otherwise."""
    preset = TopicPreset.objects.filter(name__iexact=name.strip()).first()
    if preset is None:
        names = ", ".join(TopicPreset.objects.order_by("name").values_list("name", flat=True))
        raise DatasetError(f"Unknown preset {name!r}; the presets are: {names}.", code="invalid_preset")
    return preset


# Offline augmentation (datasets/augment.py) -------------------------------------------------------

AUGMENT_SOURCE_STATUSES = (Question.Status.APPROVED, Question.Status.RELABELED)
AUGMENT_HASH_BATCH = 5000


def augmentation_budget(*, share: float, approved: int, existing: int) -> int:
    """How many new variants an intent may get: floor(share x approved) less the augmented
    questions it already has (a second run never takes an intent over its share). Rounded to 9
    places first, so 0.29 x 100 is 29, not the 28 of its binary float."""
    return max(math.floor(round(share * approved, 9)) - existing, 0)


def augmentation_create(*, topic: Topic, share, seed=1, kinds=None, requested_by=None,
                        enqueue_job: bool = True) -> Augmentation:
    """Check an augmentation request and queue the job that writes it (datasets.jobs.augmentation_run,
    after commit). Raises DatasetError naming what to fix (share not in (0, 1], unknown kind, a
    seed that is not a whole number, an archived topic); nothing is written then. Without
    `enqueue_job` the row waits, queued, for the caller to run the job itself (the CLI)."""
    from config.queues import enqueue
    from datasets.augment import kinds_validate
    from datasets.jobs import augmentation_job_failed, augmentation_run
    from datasets.lifecycle import topic_check_writable

    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 1:
        raise DatasetError(f"The share must be a number above 0 and at most 1 (0.2: up to a fifth of an intent's "
                           f"approved questions), got {share!r}.", code="invalid_share")
    if isinstance(seed, bool) or not isinstance(seed, int) or not -(2**31) <= seed < 2**31:
        raise DatasetError(f"The seed must be a whole number, got {seed!r}.", code="invalid_seed")
    try:
        kinds = kinds_validate(kinds)
    except ValueError as exc:
        raise DatasetError(str(exc), code="invalid_kind") from None
    topic = topic_check_writable(topic)
    with transaction.atomic():
        augmentation = Augmentation.objects.create(topic=topic, share=float(share), seed=seed, kinds=kinds,
                                                   requested_by=requested_by)
        if enqueue_job:
            augmentation.job_id = enqueue(augmentation_run, augmentation.pk, job_id=f"augmentation-{augmentation.pk}",
                                          on_failure=augmentation_job_failed)
            augmentation.save(update_fields=["job_id"])
    return augmentation


def topic_augment(*, augmentation: Augmentation) -> BulkResult:
    """Write the variants of `augmentation`: for each intent of its topic, up to its budget
    (augmentation_budget) of pending questions with source `augmented`, each the variant of one
    approved question (datasets.augment.variant_make) with its transformation and source recorded,
    its language and split copied (a variant stays on its source's side of an assigned split).

    Deterministic for a seed: an intent's approved questions are shuffled by a generator seeded
    with the seed and the intent's number, and taken in that order; a variant whose text the topic
    already has (the duplicate check's folded text) or longer than QUESTION_TEXT_MAX_CHARS is
    passed over. Planned intent by intent (progress in intents_done), then written in one
    transaction: a failure leaves no variant behind. Returns the rows created and skipped."""
    from datasets.augment import variant_make
    from datasets.models import QUESTION_TEXT_MAX_CHARS

    topic, share, kinds = augmentation.topic, augmentation.share, list(augmentation.kinds)
    live = Question.objects.filter(topic=topic, removed_at__isnull=True)
    originals = live.filter(status__in=AUGMENT_SOURCE_STATUSES).exclude(source=Question.Source.AUGMENTED)
    intents = list(IntentNode.objects.filter(pk__in=originals.values("intent_id")).order_by("sort_key")
                   .values_list("pk", "number"))
    Augmentation.objects.filter(pk=augmentation.pk).update(intents_total=len(intents), intents_done=0)
    planned: list[dict] = []
    per_kind: dict[str, int] = {}
    taken: set[str] = set()
    for done, (intent_id, number) in enumerate(intents, start=1):
        sources = list(originals.filter(intent_id=intent_id).order_by("id")
                       .values_list("id", "text", "language", "split"))
        existing = live.filter(intent_id=intent_id, source=Question.Source.AUGMENTED).count()
        budget = augmentation_budget(share=share, approved=len(sources), existing=existing)
        if budget:
            rng = random.Random(f"augment:{augmentation.seed}:{number}")
            rng.shuffle(sources)
            candidates = []
            for pk, text, language, split in sources:
                made = variant_make(text, kinds, rng)
                if made is not None and len(made[0]) <= QUESTION_TEXT_MAX_CHARS:
                    candidates.append((pk, language, split, *made, text_hash(made[0])))
            chosen = 0
            for start in range(0, len(candidates), AUGMENT_HASH_BATCH):
                batch = candidates[start:start + AUGMENT_HASH_BATCH]
                known = set(Question.objects.filter(topic=topic, text_hash__in=[c[-1] for c in batch])
                            .values_list("text_hash", flat=True))
                for pk, language, split, variant, kind, transformation, digest in batch:
                    if digest in known or digest in taken:
                        continue
                    taken.add(digest)
                    planned.append({"text": variant, "intent_id": intent_id, "language": language, "split": split,
                                    "status": Question.Status.PENDING, "source": Question.Source.AUGMENTED,
                                    "transformation": transformation, "augmented_from_id": pk})
                    per_kind[kind] = per_kind.get(kind, 0) + 1
                    chosen += 1
                    if chosen == budget:
                        break
                if chosen == budget:
                    break
        Augmentation.objects.filter(pk=augmentation.pk).update(intents_done=done)
    with transaction.atomic():
        result = question_bulk_create(topic=topic, rows=planned)
    Augmentation.objects.filter(pk=augmentation.pk).update(created=result.created, per_kind=per_kind)
    return result
