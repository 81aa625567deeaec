"""The data lifecycle: archive a topic, delete one (a job, in batches), remove and restore questions
without erasing their history, purge removed questions, merge and delete intents.

Every change to questions here is audited with ReviewEvents, except a deletion, which is recorded
as a DataDeletion row saying what went.
"""

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, QuerySet
from django.utils import timezone

from datasets.models import DataDeletion, Export, IntentNode, Question, QuestionBand, ReviewEvent, Topic
from datasets.question_counts import kept_counts
from datasets.selectors import intent_subtree_ids
from datasets.services import DatasetError, intent_renumber

# Questions deleted per transaction: each batch holds its row locks a few tens of milliseconds.
DELETE_BATCH = 1000
# After each batch the job rests settings.DELETION_REST_PERCENT of the time the batch took: on a
# small machine a deletion running flat out takes the CPU and the disk from the reviews of every
# other topic (bench/lifecycle.py measures the review queue's p95 during a deletion).
# A running deletion writes what it has deleted so far to its record at most this often.
PROGRESS_EVERY_SECONDS = 2.0
# A topic deletion may take a while on a million questions; the job's own timeout.
TOPIC_DELETE_TIMEOUT = 6 * 3600
CHANGE_CHUNK = 1000


# Archived and frozen topics -----------------------------------------------------------------

def topic_check_writable(topic: Topic | int) -> Topic:
    """The topic, re-read; raises DatasetError (code "frozen") when it is archived or being deleted:
    neither takes reviews, imports, runs, captures or taxonomy changes."""
    topic_id = topic if isinstance(topic, int) else topic.pk
    current = Topic.objects.filter(pk=topic_id).first()
    if current is None or current.is_deleting:
        name = topic.name if isinstance(topic, Topic) else f"Topic {topic_id}"
        raise DatasetError(f"{name} is being deleted.", code="frozen")
    if current.is_archived:
        raise DatasetError(f"{current.name} is archived and read-only: unarchive it first.", code="frozen")
    return current


def _active_runs(topic: Topic):
    DistillationRun = apps.get_model("distiller", "DistillationRun")
    return DistillationRun.objects.filter(topic=topic, status__in=DistillationRun.ACTIVE_STATUSES)


def _refuse_while_runs(topic: Topic, doing: str) -> None:
    active = list(_active_runs(topic).values_list("pk", flat=True))
    if active:
        runs = ", ".join(f"#{pk}" for pk in active)
        raise DatasetError(f"Cannot {doing} {topic.name} while distillation run {runs} is active: cancel it or "
                           "wait until it ends.", code="conflict")


def topic_archive(*, topic: Topic) -> Topic:
    """Make a topic read-only and take it out of every review queue and topic list (exports still
    work). Refused while one of its distillation runs is active. Archiving an archived topic is a no-op."""
    with transaction.atomic():
        topic = Topic.objects.select_for_update().get(pk=topic.pk)
        if topic.is_deleting:
            raise DatasetError(f"{topic.name} is being deleted.", code="frozen")
        if topic.is_archived:
            return topic
        _refuse_while_runs(topic, "archive")
        topic.archived_at = timezone.now()
        topic.save(update_fields=["archived_at", "updated_at"])
        # Leases on an archived topic would only block the questions once it is unarchived.
        Question.objects.filter(topic=topic, leased_by__isnull=False).update(leased_by=None, lease_expires_at=None)
    return topic


def topic_unarchive(*, topic: Topic) -> Topic:
    """Bring an archived topic back: writable, in queues and lists again."""
    with transaction.atomic():
        topic = Topic.objects.select_for_update().get(pk=topic.pk)
        if topic.is_deleting:
            raise DatasetError(f"{topic.name} is being deleted.", code="frozen")
        if topic.is_archived:
            topic.archived_at = None
            topic.save(update_fields=["archived_at", "updated_at"])
    return topic


# Deleting a topic ---------------------------------------------------------------------------

def _export_files_count(exports) -> int:
    """The stored files of `exports` (Export.files; older rows without that list: their local folder)."""
    root = Path(settings.EXPORT_ROOT)
    count = 0
    for pk, files in exports.values_list("pk", "files"):
        count += len(files) if files else _files_in([root / str(pk)])
    return count


def _files_in(folders: list[Path]) -> int:
    return sum(1 for folder in folders if folder.is_dir() for path in folder.rglob("*") if path.is_file())


# The evaluation app reads datasets, never the reverse, but a topic's deletion must remove its
# evaluations' files, and only that app knows where they are stored: imported here, when called.

def _evaluation_files_count(evaluation_ids: list[int]) -> int:
    from evaluation.services import evaluation_stored_files_count

    return evaluation_stored_files_count(evaluation_ids=evaluation_ids)


def _files_delete(evaluation_ids: list[int], export_ids: list[int]) -> None:
    """Delete the stored files (the exports storage: the local folder or a bucket) of the topic's
    evaluations and exports, once the rows are gone."""
    from datasets.exports import export_stored_files_delete
    from evaluation.services import evaluation_stored_files_delete

    evaluation_stored_files_delete(evaluation_ids=evaluation_ids)
    export_stored_files_delete(export_ids=export_ids)


def topic_deletion_plan(*, topic: Topic) -> dict[str, int]:
    """What deleting `topic` removes, counted: what the confirmation states and the job records.
    Counts over a join past EXACT_COUNT_LIMIT rows are the planner's estimate, their keys listed
    under "estimated" (the job's `deleted` is exact)."""
    Evaluation = apps.get_model("evaluation", "Evaluation")
    LabelIssue = apps.get_model("evaluation", "LabelIssue")
    DistillationRun = apps.get_model("distiller", "DistillationRun")
    LLMCall = apps.get_model("distiller", "LLMCall")
    evaluations = Evaluation.objects.filter(topic=topic)
    exports = Export.objects.filter(topic=topic)
    # Questions from the kept counts (exact, one small query), not a count of the topic's rows.
    kept = kept_counts(topic_ids=[topic.pk], include_removed=True)
    questions = sum(row.n for row in kept)
    estimated = []

    def joined_count(key: str, rows: QuerySet) -> int:
        # Rows reached through a join (a topic's 600,000 review events took 620 ms to count): exact
        # up to EXACT_COUNT_LIMIT, past it the planner's estimate, listed under "estimated".
        from datasets.admin_lists import EXACT_COUNT_LIMIT, planner_row_estimate

        counted = rows.order_by()[:EXACT_COUNT_LIMIT + 1].count()
        if counted <= EXACT_COUNT_LIMIT:
            return counted
        estimate = planner_row_estimate(rows)
        if estimate is None:  # not PostgreSQL: no estimate to give, so the exact count
            return rows.count()
        estimated.append(key)
        return max(counted, estimate)

    plan = {
        "intents": IntentNode.objects.filter(topic=topic).count(),
        "questions": questions,
        "removed_questions": questions - sum(row.n for row in kept_counts(topic_ids=[topic.pk])),
        "review_events": joined_count("review_events", ReviewEvent.objects.filter(question__topic=topic)),
        "distillation_runs": DistillationRun.objects.filter(topic=topic).count(),
        "llm_calls": joined_count("llm_calls", LLMCall.objects.filter(run__topic=topic)),
        "exports": exports.count(),
        "export_files": _export_files_count(exports),
        "evaluations": evaluations.count(),
        "evaluation_files": _evaluation_files_count(list(evaluations.values_list("pk", flat=True))),
        "label_issues": joined_count("label_issues", LabelIssue.objects.filter(evaluation__topic=topic)),
    }
    if estimated:
        plan["estimated"] = estimated
    return plan


def topic_deletion_start(*, topic: Topic, actor) -> DataDeletion:
    """Hide and freeze `topic` now, and queue the job that deletes it in batches (datasets.jobs.topic_delete_run).

    Its active distillation runs are cancelled. Raises DatasetError (conflict) when it is already
    being deleted. Returns the DataDeletion row the job reports on.
    """
    from config.queues import enqueue
    from datasets.jobs import topic_delete_job_failed, topic_delete_run

    with transaction.atomic():
        started = Topic.objects.filter(pk=topic.pk, deletion_started_at__isnull=True).update(
            deletion_started_at=timezone.now())
        if not started:
            raise DatasetError(f"{topic.name} is already being deleted.", code="conflict")
        DistillationRun = apps.get_model("distiller", "DistillationRun")
        # The same update as distiller's run_cancel: workers see the status and stop within a second.
        _active_runs(topic).update(status=DistillationRun.Status.CANCELLED, stage="cancelled",
                                   finished_at=timezone.now(), updated_at=timezone.now())
        deletion = DataDeletion.objects.create(
            kind=DataDeletion.Kind.TOPIC, topic_id=topic.pk, topic_name=topic.name,
            planned=topic_deletion_plan(topic=topic), requested_by=actor if getattr(actor, "pk", None) else None)
        deletion.job_id = enqueue(topic_delete_run, deletion.pk, queue="default", job_id=f"topic-delete-{deletion.pk}",
                                  job_timeout=TOPIC_DELETE_TIMEOUT, on_failure=topic_delete_job_failed)
        deletion.save(update_fields=["job_id"])
    return deletion


@dataclass
class BatchDeleteOutcome:
    deleted: Counter = field(default_factory=Counter)
    batches: int = 0
    longest_batch_ms: int = 0

    def add_batch(self, counts: dict[str, int], seconds: float) -> None:
        self.deleted.update(counts)
        self.batches += 1
        self.longest_batch_ms = max(self.longest_batch_ms, round(seconds * 1000))


def _questions_delete(ids: list[int]) -> dict[str, int]:
    """Delete these questions with their review events, paraphrase band keys and label issues
    (inside the caller's transaction); returns the rows deleted per kind."""
    LabelIssue = apps.get_model("evaluation", "LabelIssue")
    events, _ = ReviewEvent.objects.filter(question_id__in=ids).delete()
    bands, _ = QuestionBand.objects.filter(question_id__in=ids).delete()
    issues, _ = LabelIssue.objects.filter(question_id__in=ids).delete()
    # What references a question was deleted just above, so the rows go in one DELETE, without the
    # collector fetching every question to look for dependents.
    questions = Question.objects.filter(pk__in=ids)._raw_delete(Question.objects.db)
    return {"review_events": events, "paraphrase_bands": bands, "label_issues": issues, "questions": questions}


def _questions_delete_in_batches(questions: QuerySet, outcome: BatchDeleteOutcome, batch_size: int,
                                 rest_ratio: float = 0.0, on_progress=None) -> None:
    last, reported = 0, time.monotonic()
    while True:
        ids = list(questions.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not ids:
            return
        began = time.monotonic()
        with transaction.atomic():
            counts = _questions_delete(ids)
        took = time.monotonic() - began
        outcome.add_batch(counts, took)
        last = ids[-1]
        if on_progress is not None and time.monotonic() - reported >= PROGRESS_EVERY_SECONDS:
            on_progress(outcome)
            reported = time.monotonic()
        if rest_ratio:
            time.sleep(took * rest_ratio)


def _deletion_progress(deletion_id: int, outcome: BatchDeleteOutcome) -> None:
    """What a running deletion has deleted so far, on its record (the admin's progress bar, the API)."""
    DataDeletion.objects.filter(pk=deletion_id, status=DataDeletion.Status.RUNNING).update(
        deleted=dict(outcome.deleted), batches=outcome.batches, longest_batch_ms=outcome.longest_batch_ms)


def topic_delete_in_batches(*, deletion: DataDeletion, batch_size: int = DELETE_BATCH,
                            rest_ratio: float | None = None) -> BatchDeleteOutcome:
    """Delete the topic of `deletion`: its questions (with events, band keys, label issues) a batch
    per transaction, then, in one last short transaction under the topic's row lock, whatever was
    written meanwhile, its distillation runs and their LLM calls, evaluations, exports, intents and
    the topic itself. Export and evaluation files are removed once that commits."""
    Evaluation = apps.get_model("evaluation", "Evaluation")
    LabelIssue = apps.get_model("evaluation", "LabelIssue")
    DistillationRun = apps.get_model("distiller", "DistillationRun")
    LLMCall = apps.get_model("distiller", "LLMCall")
    outcome = BatchDeleteOutcome()
    topic_id = deletion.topic_id
    if rest_ratio is None:
        rest_ratio = settings.DELETION_REST_PERCENT / 100
    _questions_delete_in_batches(Question.objects.filter(topic_id=topic_id), outcome, batch_size, rest_ratio,
                                 on_progress=lambda done: _deletion_progress(deletion.pk, done))
    # LLM calls can be many (one per generated batch): in batches too.
    calls = LLMCall.objects.filter(run__topic_id=topic_id)
    while ids := list(calls.order_by("pk").values_list("pk", flat=True)[:batch_size * 5]):
        began = time.monotonic()
        with transaction.atomic():
            count = LLMCall.objects.filter(pk__in=ids)._raw_delete(LLMCall.objects.db)
        outcome.add_batch({"llm_calls": count}, time.monotonic() - began)
    began = time.monotonic()
    with transaction.atomic():
        if not Topic.objects.select_for_update().filter(pk=topic_id).exists():
            return outcome
        # Under the lock nothing new can reference the topic; stragglers a worker wrote before the
        # freeze reached it go now.
        leftover = list(Question.objects.filter(topic_id=topic_id).values_list("pk", flat=True))
        counts: Counter = Counter(_questions_delete(leftover)) if leftover else Counter()
        evaluations = Evaluation.objects.filter(topic_id=topic_id)
        exports = Export.objects.filter(topic_id=topic_id)
        evaluation_ids = list(evaluations.values_list("pk", flat=True))
        export_ids = list(exports.values_list("pk", flat=True))
        files = _evaluation_files_count(evaluation_ids) + _export_files_count(exports)
        counts["label_issues"] += LabelIssue.objects.filter(evaluation__topic_id=topic_id).delete()[0]
        counts["evaluations"] = evaluations.delete()[1].get(Evaluation._meta.label, 0)
        counts["exports"] = exports.delete()[1].get(Export._meta.label, 0)
        runs = DistillationRun.objects.filter(topic_id=topic_id)
        counts["llm_calls"] += LLMCall.objects.filter(run__in=runs).delete()[0]
        counts["intents"] = IntentNode.objects.filter(topic_id=topic_id).delete()[1].get(IntentNode._meta.label, 0)
        counts["distillation_runs"] = runs.delete()[1].get(DistillationRun._meta.label, 0)
        counts["topics"] = Topic.objects.filter(pk=topic_id).delete()[1].get(Topic._meta.label, 0)
        counts["files"] = files
        transaction.on_commit(lambda: _files_delete(evaluation_ids, export_ids))
    outcome.add_batch(counts, time.monotonic() - began)
    return outcome


# Removing, restoring and purging questions --------------------------------------------------

def _change_in_chunks(questions: QuerySet, *, removed: bool, actor, via: str) -> int:
    """Remove (or restore) the questions of `questions` not yet in that state, a chunk at a time,
    one ReviewEvent each, all in one transaction."""
    action = ReviewEvent.Action.RESTORE if removed else ReviewEvent.Action.REMOVE
    now = timezone.now()
    ids = list(questions.filter(removed_at__isnull=not removed).order_by("pk").values_list("pk", flat=True))
    changed = 0
    with transaction.atomic():
        for start in range(0, len(ids), CHANGE_CHUNK):
            rows = list(Question.objects.filter(pk__in=ids[start:start + CHANGE_CHUNK], removed_at__isnull=not removed)
                        .select_for_update().order_by("pk").values("pk", "status", "intent_id", "topic_id"))
            for topic_id in {row["topic_id"] for row in rows}:
                topic_check_writable(topic_id)
            ReviewEvent.objects.bulk_create([
                ReviewEvent(question_id=row["pk"], actor=actor, action=action, via=via,
                            from_status=row["status"], to_status=row["status"],
                            from_intent_id=row["intent_id"], to_intent_id=row["intent_id"])
                for row in rows])
            changed += Question.objects.filter(pk__in=[row["pk"] for row in rows]).update(
                removed_at=None if removed else now, version=F("version") + 1, leased_by=None,
                lease_expires_at=None, updated_at=now)
    return changed


def questions_remove(*, questions: QuerySet, actor, via: str = "admin") -> int:
    """Remove questions: hidden from review queues, lists and exports, their review events kept, a
    `remove` event each. Already removed ones are left alone. Returns how many were removed.
    Raises DatasetError for a question of an archived topic or one being deleted."""
    return _change_in_chunks(questions, removed=False, actor=actor, via=via)


def questions_restore(*, questions: QuerySet, actor, via: str = "admin") -> int:
    """Bring removed questions back as they were (status, intent, text), a `restore` event each."""
    return _change_in_chunks(questions, removed=True, actor=actor, via=via)


def questions_purge(*, older_than: timedelta, actor=None, topic: Topic | None = None, dry_run: bool = False,
                    batch_size: int = DELETE_BATCH) -> DataDeletion:
    """Really delete the questions removed more than `older_than` ago (of one topic, or all), with
    their review events, band keys and label issues, in batches. Returns the DataDeletion saying
    what went (with `dry_run`, an unsaved one whose `planned` says what would go)."""
    if older_than < timedelta(0):
        raise DatasetError("The age of removed questions to purge cannot be negative.")
    cutoff = timezone.now() - older_than
    questions = Question.objects.filter(removed_at__lt=cutoff)
    if topic is not None:
        questions = questions.filter(topic=topic)
    planned = {"questions": questions.count(),
               "review_events": ReviewEvent.objects.filter(question__in=questions).count()}
    deletion = DataDeletion(kind=DataDeletion.Kind.PURGE, topic_id=topic.pk if topic else None,
                            topic_name=topic.name if topic else "", planned=planned,
                            requested_by=actor if getattr(actor, "pk", None) else None)
    if dry_run:
        return deletion
    deletion.status, deletion.started_at = DataDeletion.Status.RUNNING, timezone.now()
    deletion.save()
    outcome = BatchDeleteOutcome()
    _questions_delete_in_batches(questions, outcome, batch_size)
    deletion.deleted = dict(outcome.deleted)
    deletion.batches, deletion.longest_batch_ms = outcome.batches, outcome.longest_batch_ms
    deletion.status, deletion.finished_at = DataDeletion.Status.SUCCEEDED, timezone.now()
    deletion.save()
    return deletion


# Merging and deleting intents ---------------------------------------------------------------

@dataclass
class IntentChangeResult:
    """What an intent merge or deletion did."""

    questions_moved: int = 0
    intents_moved: int = 0
    intents_merged: int = 0
    intents_deleted: int = 0
    renumbered: int = 0


def _questions_relabel(*, from_ids: list[int], target: IntentNode, actor, via: str, note: str) -> int:
    """Move every question of the intents `from_ids` to `target`, keeping its status, with a
    `relabel` event each whose `changes` records the intents by name (they may be deleted next)."""
    names = {node.pk: node.intent_full_name for node in IntentNode.objects.filter(pk__in=from_ids)}
    now = timezone.now()
    moved = 0
    ids = list(Question.objects.filter(intent_id__in=from_ids).order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(ids), CHANGE_CHUNK):
        rows = list(Question.objects.filter(pk__in=ids[start:start + CHANGE_CHUNK]).select_for_update()
                    .order_by("pk").values("pk", "status", "intent_id"))
        ReviewEvent.objects.bulk_create([
            ReviewEvent(question_id=row["pk"], actor=actor, action=ReviewEvent.Action.RELABEL, via=via,
                        from_status=row["status"], to_status=row["status"], from_intent_id=row["intent_id"],
                        to_intent_id=target.pk,
                        changes={"intent": [names[row["intent_id"]], target.intent_full_name], note: True})
            for row in rows])
        moved += Question.objects.filter(pk__in=[row["pk"] for row in rows]).update(
            intent=target, version=F("version") + 1, updated_at=now)
    return moved


def _intent_refs_remap(source: IntentNode, target: IntentNode) -> None:
    """What named `source` names `target`, into which it is merged: questions' original, predicted,
    judged and contrasted intents, review events' from and to intents, label issues."""
    for name in ("original_intent", "predicted_intent", "judge_intent", "contrastive_of"):
        Question.objects.filter(**{name: source}).update(**{name: target})
    ReviewEvent.objects.filter(from_intent=source).update(from_intent=target)
    ReviewEvent.objects.filter(to_intent=source).update(to_intent=target)
    LabelIssue = apps.get_model("evaluation", "LabelIssue")
    LabelIssue.objects.filter(given_intent=source).update(given_intent=target)
    LabelIssue.objects.filter(suggested_intent=source).update(suggested_intent=target)


def _intent_checks(node: IntentNode, doing: str) -> Topic:
    topic = topic_check_writable(node.topic_id)
    _refuse_while_runs(topic, doing)
    return topic


def intent_merge(*, source: IntentNode, target: IntentNode, actor, via: str = "admin") -> IntentChangeResult:
    """Merge intent `source` into `target`: its questions are relabeled to `target` (audited, status
    kept), each child moves under `target` or, when `target` has a child of the same name, is merged
    into it the same way; then `source` is deleted and the taxonomy renumbered.

    Refused (DatasetError) across topics, into itself or its own subtree, on an archived or frozen
    topic, while a distillation run of the topic is active, and when a leaf-only topic would get
    questions on an intent with sub-intents.
    """
    if source.topic_id != target.topic_id:
        raise DatasetError("Cannot merge intents of different topics.")
    if source.pk == target.pk:
        raise DatasetError("Cannot merge an intent into itself.")
    if target.pk in intent_subtree_ids(node=source):
        raise DatasetError(f"Cannot merge {source.intent_full_name} into its own sub-intent {target.intent_full_name}.")
    topic = _intent_checks(source, "merge intents of")
    result = IntentChangeResult()
    with transaction.atomic():
        Topic.objects.select_for_update().filter(pk=topic.pk).first()  # taxonomy edits of a topic in turn
        if topic.leaf_only and Question.objects.filter(intent=source).exists() and (
                target.children.exists() or source.children.exists()):
            raise DatasetError(f"{topic.name} labels questions with leaf intents only, and {target.intent_full_name} "
                               "would have sub-intents: merge into a leaf intent, or merge the sub-intents first.",
                               code="not_leaf")
        _merge_into(source, target, actor=actor, via=via, result=result)
        result.renumbered = intent_renumber(topic=topic)
    return result


def _merge_into(source: IntentNode, target: IntentNode, *, actor, via: str, result: IntentChangeResult) -> None:
    result.questions_moved += _questions_relabel(from_ids=[source.pk], target=target, actor=actor, via=via,
                                                 note="merged")
    for child in IntentNode.objects.filter(parent=source).order_by("position", "id"):
        twin = IntentNode.objects.filter(parent=target, name__iexact=child.name).first()
        if twin is not None:
            _merge_into(child, twin, actor=actor, via=via, result=result)
            continue
        last = IntentNode.objects.filter(parent=target).order_by("-position").values_list("position", flat=True).first()
        child.parent, child.position = target, (last or 0) + 1
        child.save(update_fields=["parent", "position"])
        result.intents_moved += 1
    _intent_refs_remap(source, target)
    IntentNode.objects.filter(pk=source.pk).delete()
    result.intents_merged += 1


def intent_question_counts(*, node: IntentNode) -> dict[str, int]:
    """The questions of `node` and its sub-intents by status (removed ones as "removed"), and how many sub-intents."""
    ids = intent_subtree_ids(node=node)
    # From the kept counts (exact: they commit with the questions), not a count of the subtree's
    # questions, which reads a top-level intent's hundred thousand rows at 1,000,000 questions.
    by_status: dict[str, int] = defaultdict(int)
    for row in kept_counts(intent_ids=ids):
        by_status[row.status] += row.n
    counts = {status: by_status[status] for status in Question.Status.values if by_status.get(status)}  # fixed order
    removed = sum(row.n for row in kept_counts(intent_ids=ids, include_removed=True)) - sum(by_status.values())
    if removed:
        counts["removed"] = removed
    return {"sub_intents": len(ids) - 1, "questions": sum(counts.values()), **counts}


def _intent_question_counts_counted(ids: list[int]) -> dict[str, int]:
    questions = Question.objects.filter(intent_id__in=ids)
    by_status = dict(questions.filter(removed_at__isnull=True).values_list("status").annotate(n=Count("pk")).order_by())
    counts = {status: by_status[status] for status in Question.Status.values if status in by_status}
    removed = questions.filter(removed_at__isnull=False).count()
    if removed:
        counts["removed"] = removed
    return {"sub_intents": len(ids) - 1, "questions": sum(counts.values()), **counts}


def intent_delete(*, node: IntentNode, actor, move_questions_to: IntentNode | None = None,
                  via: str = "admin") -> IntentChangeResult:
    """Delete an intent and its sub-intents. Their questions (removed ones too) are first moved to
    `move_questions_to` (audited relabels, status kept); without it, an intent that has questions
    is refused with the counts (DatasetError, code "has_questions")."""
    ids = intent_subtree_ids(node=node)
    topic = _intent_checks(node, "delete intents of")
    counts = intent_question_counts(node=node)
    if not counts["questions"] and Question.objects.filter(intent_id__in=ids).exists():
        # Kept counts behind the table (a data-only restore without `question_counts --rebuild`):
        # count the rows rather than let the delete meet their PROTECT.
        counts = _intent_question_counts_counted(ids)
    if counts["questions"] and move_questions_to is None:
        by_status = ", ".join(f"{n} {status}" for status, n in counts.items() if status not in ("questions", "sub_intents"))
        below = f" (with its {counts['sub_intents']} sub-intents)" if counts["sub_intents"] else ""
        raise DatasetError(f"{node.intent_full_name}{below} has {counts['questions']} questions ({by_status}): move "
                           "them to another intent first.", code="has_questions", details=counts)
    if move_questions_to is not None:
        if move_questions_to.topic_id != node.topic_id:
            raise DatasetError("The intent to move the questions to belongs to another topic.")
        if move_questions_to.pk in ids:
            raise DatasetError(f"Cannot move the questions to {move_questions_to.intent_full_name}: it is deleted too.")
        if topic.leaf_only and move_questions_to.children.exclude(pk__in=ids).exists():
            raise DatasetError(f"{topic.name} labels questions with leaf intents only: move them to a leaf intent, "
                               f"not {move_questions_to.intent_full_name}.", code="not_leaf")
    result = IntentChangeResult()
    with transaction.atomic():
        Topic.objects.select_for_update().filter(pk=topic.pk).first()
        if move_questions_to is not None:
            result.questions_moved = _questions_relabel(from_ids=ids, target=move_questions_to, actor=actor, via=via,
                                                        note="intent_deleted")
        result.intents_deleted = IntentNode.objects.filter(pk__in=ids).delete()[1].get(IntentNode._meta.label, 0)
        result.renumbered = intent_renumber(topic=topic)
    return result

