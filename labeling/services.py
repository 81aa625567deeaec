"""Review decisions, the review queue and captured production queries.

Every change of a question's status, intent or text writes a ReviewEvent.
"""

from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Coalesce, Least
from django.utils import timezone

from datasets.models import (
    QUESTION_TEXT_MAX_CHARS,
    REVIEW_REASON_MAX_CHARS,
    IntentNode,
    Question,
    ReviewEvent,
    Topic,
)
from datasets.normalize import text_hash
from datasets.services import DatasetError
from labeling import overlap

STATUS_FOR_ACTION = {
    ReviewEvent.Action.APPROVE: Question.Status.APPROVED,
    ReviewEvent.Action.REJECT: Question.Status.REJECTED,
    ReviewEvent.Action.FLAG: Question.Status.FLAGGED,
    ReviewEvent.Action.RELABEL: Question.Status.RELABELED,
    ReviewEvent.Action.RESET: Question.Status.PENDING,
}
BULK_ACTIONS = ("approve", "reject", "flag", "relabel", "reset")
# The two queues of a topic: first reviews of pending questions, and the second opinion that
# topic leads and dataset admins give on flagged ones.
QUEUE_STATUS = {"review": Question.Status.PENDING, "second_opinion": Question.Status.FLAGGED}
# A flagged question waits for a lead: only these decisions close it, and only a lead takes them.
SECOND_OPINION_ACTIONS = (ReviewEvent.Action.APPROVE, ReviewEvent.Action.REJECT, ReviewEvent.Action.RELABEL,
                          ReviewEvent.Action.EDIT, ReviewEvent.Action.FLAG)


class ReviewConflict(DatasetError):
    """The question changed since the reviewer loaded it (stale version)."""

    code = "conflict"


def lease_seconds() -> int:
    return getattr(settings, "REVIEW_LEASE_SECONDS", 300)


def queue_status(queue: str) -> str:
    if queue not in QUEUE_STATUS:
        raise DatasetError(f"Unknown queue {queue!r}: use review or second_opinion.", code="invalid_parameter")
    return QUEUE_STATUS[queue]


def _reason_clean(reason: str | None) -> str:
    reason = " ".join((reason or "").split())
    if len(reason) > REVIEW_REASON_MAX_CHARS:
        raise DatasetError(f"The reason is {len(reason):,} characters long; at most {REVIEW_REASON_MAX_CHARS}.",
                           code="too_long")
    return reason


def _check_second_opinion(question: Question, actor, action: str) -> None:
    """A flagged question is decided by a topic lead or a dataset admin (its second opinion), not by
    another reviewer's first look."""
    from datasets.permissions import is_topic_lead

    if question.status == Question.Status.FLAGGED and action in SECOND_OPINION_ACTIONS \
            and not is_topic_lead(actor, question.topic_id):
        raise DatasetError("This question is flagged and waits for a second opinion: a topic lead or a dataset "
                           "admin decides it.", code="forbidden")


def _lock_question(question_id: int) -> Question:
    try:
        question = Question.objects.select_for_update().get(pk=question_id)
    except Question.DoesNotExist:
        raise DatasetError(f"Question {question_id} does not exist.", code="not_found") from None
    if question.removed_at is not None:
        raise DatasetError(f"Question {question_id} was removed: restore it first.", code="removed")
    from datasets.lifecycle import topic_check_writable

    topic_check_writable(question.topic_id)  # archived or being deleted: read-only
    return question


def _check_version(question: Question, version: int | None) -> None:
    if version is not None and question.version != version:
        last = question.events.select_related("actor").first()
        who = last.actor.get_username() if last and last.actor else "someone else"
        raise ReviewConflict(
            f"{who} changed this question since you loaded it (version {version}, now {question.version}).",
            details={"current_version": question.version, "changed_by": who},
        )


def _save_checking_text(question: Question) -> None:
    try:
        with transaction.atomic():
            question.save()
    except IntegrityError:
        raise DatasetError("Another question of this topic already has this text.", code="duplicate") from None


def _not_in_topic(intent_id) -> str:
    return f"Intent {intent_id} is not an intent of this topic."


def relabel_target(*, intent_id: int, topic_id: int) -> IntentNode:
    """The intent a question of `topic_id` may be relabeled to. Raises DatasetError with one
    message whether the intent belongs to another topic or does not exist at all, and refuses
    an intent with sub-intents on a topic that labels with leaf intents only."""
    target = IntentNode.objects.select_related("topic").filter(pk=intent_id, topic_id=topic_id).first()
    if target is None:
        raise DatasetError(_not_in_topic(intent_id))
    if target.topic.leaf_only and target.children.exists():
        raise DatasetError(f"Intent {target.intent_full_name} has sub-intents and {target.topic.name} labels "
                           "questions with leaf intents only: choose one of its sub-intents.", code="not_leaf")
    return target


def question_review(
    *,
    question_id: int,
    actor,
    action: str,
    intent_id: int | None = None,
    text: str | None = None,
    version: int | None = None,
    via: str = "ui",
    reason: str | None = None,
) -> Question:
    """Apply one review action (approve, reject, flag, relabel, edit, reset, undo) and audit it.

    When `version` is given and the question has moved on since, raises ReviewConflict naming
    who changed it; nothing is written. `undo` is handed to question_undo(). `reason` (why it was
    rejected or flagged, or a lead's note) is stored on the event. A flagged question is decided
    only by a topic lead or a dataset admin: that decision is its second opinion.
    """
    if action == ReviewEvent.Action.UNDO:
        return question_undo(question_id=question_id, actor=actor, version=version, via=via)
    if action not in ReviewEvent.Action.values:
        raise DatasetError(f"Unknown action {action!r}: use approve, reject, flag, relabel, edit, reset or undo.")
    reason = _reason_clean(reason)
    with transaction.atomic():
        question = _lock_question(question_id)
        _check_version(question, version)
        _check_second_opinion(question, actor, action)
        if question.status == Question.Status.PENDING and action != ReviewEvent.Action.RESET:
            topic = Topic.objects.get(pk=question.topic_id)
            if overlap.question_overlaps(question_id=question.pk, topic=topic):
                target_id = None
                if action == ReviewEvent.Action.RELABEL:
                    if intent_id is None:
                        raise DatasetError("Relabel needs the new intent.")
                    target_id = relabel_target(intent_id=intent_id, topic_id=question.topic_id).pk
                return overlap.overlap_vote(question=question, topic=topic, actor=actor, action=action,
                                            intent_id=target_id, reason=reason, via=via)
        event = ReviewEvent(
            question=question, actor=actor, action=action, from_status=question.status,
            from_intent_id=question.intent_id, via=via, reason=reason,
        )
        if action == ReviewEvent.Action.RELABEL:
            if intent_id is None:
                raise DatasetError("Relabel needs the new intent.")
            target = relabel_target(intent_id=intent_id, topic_id=question.topic_id)
            if question.original_intent_id is None:
                question.original_intent_id = question.intent_id
            question.intent = target
        if action == ReviewEvent.Action.EDIT:
            new_text = (text or "").strip()
            if not new_text:
                raise DatasetError("The edited text is empty.")
            if len(new_text) > QUESTION_TEXT_MAX_CHARS:
                # The one limit of question text (creation, captures, imports): the API, the review
                # screen and the admin all edit through here.
                raise DatasetError(f"The edited text is {len(new_text):,} characters long; a question holds at most "
                                   f"{QUESTION_TEXT_MAX_CHARS:,} characters.", code="too_long")
            if not question.original_text:
                question.original_text = question.text
            event.from_text, event.to_text = question.text, new_text
            question.text = new_text
            question.text_hash = text_hash(new_text)
        question.status = STATUS_FOR_ACTION.get(action, question.status)
        if action == ReviewEvent.Action.RESET:
            question.reviewed_by, question.reviewed_at = None, None
        else:
            question.reviewed_by, question.reviewed_at = actor, timezone.now()
        question.version += 1
        if action == ReviewEvent.Action.EDIT and question.status in QUEUE_STATUS.values():
            # Editing is not a decision: the editor keeps the item to decide on it next.
            question.leased_by, question.lease_expires_at = actor, timezone.now() + timedelta(seconds=lease_seconds())
        else:
            question.leased_by, question.lease_expires_at = None, None
        _save_checking_text(question)
        event.to_status = question.status
        event.to_intent_id = question.intent_id
        event.save()
    return question


def question_fields_update(*, question_id: int, actor, changes: dict, version: int | None = None,
                           via: str = "admin") -> Question:
    """Set fields of a question that are not review decisions (language, split) and audit them as
    one `update` event with the old and new values; refused like a review when `version` is stale."""
    with transaction.atomic():
        question = _lock_question(question_id)
        _check_version(question, version)
        before = {name: getattr(question, name) for name in changes}
        for name, value in changes.items():
            setattr(question, name, value)
        question.version += 1
        question.save(update_fields=[*changes, "version", "updated_at"])
        ReviewEvent.objects.create(
            question=question, actor=actor, action=ReviewEvent.Action.UPDATE, via=via,
            from_status=question.status, to_status=question.status, from_intent_id=question.intent_id,
            to_intent_id=question.intent_id, changes={name: [before[name], value] for name, value in changes.items()})
    return question


# Not review decisions: an admin's update of other fields, a removal or restore, and the relabels of
# an intent merge or deletion (datasets/lifecycle.py) are not undone by a reviewer's undo.
NOT_UNDONE = (ReviewEvent.Action.UPDATE, ReviewEvent.Action.REMOVE, ReviewEvent.Action.RESTORE)


def _undo_stack(question: Question) -> list[ReviewEvent]:
    """The question's events still in effect, oldest first: each undo cancels the latest one before it.
    An admin's `update` of other fields (language, split) is not a review decision to undo."""
    stack: list[ReviewEvent] = []
    for event in question.events.order_by("created_at", "id"):
        if event.action == ReviewEvent.Action.UNDO:
            if stack:
                stack.pop()
        elif event.action not in NOT_UNDONE and not (event.changes or {}).get("merged") \
                and not (event.changes or {}).get("intent_deleted"):
            stack.append(event)
    return stack


def question_undo(*, question_id: int, actor, version: int | None = None, via: str = "ui") -> Question:
    """Undo the last action still in effect on a question, restoring its status, intent and text.

    Only the reviewer who took that action (or a dataset admin) may undo it. Writes a ReviewEvent
    with action "undo" whose from/to fields describe the restoration. The restored question is
    leased to the actor so they can decide again without someone else picking it up.
    """
    from datasets.permissions import is_dataset_admin

    with transaction.atomic():
        question = _lock_question(question_id)
        _check_version(question, version)
        stack = _undo_stack(question)
        if not stack:
            raise DatasetError("There is nothing to undo on this question.", code="nothing_to_undo")
        last = stack.pop()
        if last.actor_id != getattr(actor, "pk", None) and not is_dataset_admin(actor):
            who = last.actor.get_username() if last.actor else "someone else"
            raise DatasetError(f"The last action on this question is {who}'s; only they can undo it.",
                               code="forbidden")
        event = ReviewEvent(
            question=question, actor=actor, action=ReviewEvent.Action.UNDO, via=via,
            from_status=question.status, from_intent_id=question.intent_id,
            to_status=last.from_status or Question.Status.PENDING,
            to_intent_id=last.from_intent_id or question.intent_id,
        )
        question.status = event.to_status
        question.intent_id = event.to_intent_id
        if question.intent_id == question.original_intent_id:
            question.original_intent_id = None  # back where it started: no longer relabeled
        if last.action == ReviewEvent.Action.EDIT and last.from_text:
            event.from_text, event.to_text = question.text, last.from_text
            question.text = last.from_text
            question.text_hash = text_hash(question.text)
            if question.text == question.original_text:
                question.original_text = ""
        # The decision in effect now is the previous one still on the stack, if any.
        previous = stack[-1] if stack else None
        if previous is not None and question.status != Question.Status.PENDING:
            question.reviewed_by_id, question.reviewed_at = previous.actor_id, previous.created_at
        else:
            question.reviewed_by, question.reviewed_at = None, None
        question.version += 1
        if question.status in QUEUE_STATUS.values():
            question.leased_by, question.lease_expires_at = actor, timezone.now() + timedelta(seconds=lease_seconds())
        else:
            question.leased_by, question.lease_expires_at = None, None
        _save_checking_text(question)
        event.save()
    return question


UNDO_LOOKBACK = 200


def reviewer_last_undoable(*, topic: Topic, actor) -> ReviewEvent | None:
    """The actor's latest action on `topic` that is still in effect and theirs to undo (the top of
    its question's stack): the server-side undo stack of a reviewer, so `u` works after a reload.
    Looks back over the actor's last UNDO_LOOKBACK actions."""
    recent = (ReviewEvent.objects.filter(actor=actor, question__topic=topic, question__removed_at__isnull=True)
              .exclude(action__in=[ReviewEvent.Action.UNDO, *NOT_UNDONE]).order_by("-created_at", "-id")
              .only("id", "question_id")[:UNDO_LOOKBACK])
    seen: set[int] = set()
    for event in recent:
        if event.question_id in seen:
            continue  # an older action of a question whose newer one is undone or someone else's
        seen.add(event.question_id)
        stack = _undo_stack(Question(pk=event.question_id))
        if stack and stack[-1].pk == event.pk:
            return event
    return None


def reviewer_undo_last(*, topic: Topic, actor, release_id: int | None = None, via: str = "ui") -> Question:
    """Undo the actor's latest action on `topic` still in effect (see reviewer_last_undoable).

    `release_id` is the question the reviewer had on screen: its lease is given back at once, so
    nobody waits for it to lapse while the reviewer decides the undone question again.
    """
    from datasets.models import ReviewVote

    event = reviewer_last_undoable(topic=topic, actor=actor)
    # An independent vote on an overlapping question not settled yet is undone by withdrawing it.
    vote = (ReviewVote.objects.filter(reviewer=actor, question__topic=topic, decided_at__isnull=False,
                                      question__status=Question.Status.PENDING)
            .order_by("-decided_at", "-id").first())
    if vote is not None and (event is None or vote.decided_at > event.created_at):
        question = overlap.overlap_vote_withdraw(vote=vote, seconds=lease_seconds())
    elif event is None:
        raise DatasetError("You have nothing left to undo on this topic.", code="nothing_to_undo")
    else:
        question = question_undo(question_id=event.question_id, actor=actor, via=via)
    if release_id is not None and release_id != question.pk:
        question_lease_release(question_id=release_id, actor=actor)
    return question


@dataclass
class BulkReviewResult:
    """What a bulk review did: how many questions changed, how many were left alone, and why."""

    changed: int
    skipped: int  # every question left alone, including the two kinds below
    held_for_lead: int = 0  # flagged: a topic lead's or dataset admin's second opinion decides them
    held_for_overlap: int = 0  # pending and set for double review: k reviewers' independent votes decide them

    @property
    def changed_meanwhile(self) -> int:
        """Matched when the bulk started, but changed (or stopped matching) before they were locked."""
        return self.skipped - self.held_for_lead - self.held_for_overlap

    def notes(self) -> list[str]:
        """What was left alone and why, one sentence per reason, for the page that started the bulk."""
        notes = []
        if self.held_for_overlap:
            notes.append(f"{self.held_for_overlap} pending question(s) set for double review were left alone: "
                         "several reviewers decide each one independently in the review queue, and a topic lead "
                         "adjudicates when they disagree.")
        if self.held_for_lead:
            notes.append(f"{self.held_for_lead} flagged question(s) were left alone: they wait for a topic lead's "
                         "or a dataset admin's second opinion.")
        if self.changed_meanwhile:
            notes.append(f"{self.changed_meanwhile} question(s) were left alone: someone else changed them "
                         "meanwhile, or they no longer match the filter.")
        return notes


def questions_review_matching(*, queryset: QuerySet, actor, action: str, intent_id: int | None = None,
                              via: str = "ui", chunk_size: int = 1000) -> BulkReviewResult:
    """Apply approve, reject, flag, relabel or reset to every question of `queryset`, set-wise.

    Rows are locked and changed in chunks of `chunk_size` (one statement per chunk, not one per
    question), each with its ReviewEvents, all in one transaction: a bulk decision over a whole
    filter either happens completely or not at all. Relabel targets must be in each question's
    topic. The ids (and versions) are listed before the rows are locked, so under the lock the
    queryset's own conditions are applied again and the version compared: a question someone
    else decided in between (no longer pending when the bulk was "of pending", or simply a newer
    version) is skipped, not overwritten. Returns how many changed and how many were skipped.

    Two kinds of question are left alone whoever asks, and counted apart: pending questions the
    topic sets for double review (labeling.overlap) are decided only by the k reviewers' independent
    votes, since a bulk decision would settle them without those votes and the agreement figures
    would count a decision nobody made independently; and, unless the actor leads the topic (a
    topic lead or a dataset admin), flagged questions, which wait for a lead's second opinion. A
    lead adjudicates double-reviewed questions the same way: once the reviewers disagree they are
    flagged, and a lead's bulk decision on flagged questions is that adjudication.
    """
    if action not in BULK_ACTIONS:
        raise DatasetError(f"Bulk review supports {', '.join(BULK_ACTIONS)}; not {action!r}.")
    target = None
    if action == ReviewEvent.Action.RELABEL:
        if intent_id is None:
            raise DatasetError("Relabel needs the new intent.")
        target = IntentNode.objects.filter(pk=intent_id).first()
        if target is None or queryset.exclude(topic_id=target.topic_id).exists():
            raise DatasetError(_not_in_topic(intent_id))
        relabel_target(intent_id=intent_id, topic_id=target.topic_id)  # the leaf-only rule
    new_status = STATUS_FOR_ACTION[action]
    now = timezone.now()
    queryset = queryset.filter(removed_at__isnull=True)
    from datasets.lifecycle import topic_check_writable
    from datasets.permissions import is_topic_lead

    held_for_lead = held_for_overlap = 0
    for topic_id in queryset.order_by().values_list("topic_id", flat=True).distinct():
        topic = topic_check_writable(topic_id)
        if not is_topic_lead(actor, topic_id):
            # Flagged questions wait for a lead's second opinion: left alone, and counted so.
            flagged = queryset.filter(topic_id=topic_id, status=Question.Status.FLAGGED)
            held_for_lead += flagged.count()
            queryset = queryset.exclude(pk__in=flagged.values("pk"))
        threshold = overlap.overlap_threshold(topic)
        if threshold and action != ReviewEvent.Action.RESET:  # reset, as in question_review, is no decision
            # Pending questions set for double review are decided by their k reviewers' votes only.
            double = overlap.with_overlap_bucket(queryset.filter(topic_id=topic_id, status=Question.Status.PENDING))
            double = double.filter(overlap_bucket__lt=threshold)
            held_for_overlap += double.count()
            queryset = queryset.exclude(pk__in=double.values("pk"))
    listed = dict(queryset.order_by("pk").values_list("pk", "version"))
    ids = list(listed)
    changed = 0
    with transaction.atomic():
        for start in range(0, len(ids), chunk_size):
            chunk = ids[start:start + chunk_size]
            # `of=self`: the caller's queryset may join nullable relations, which PostgreSQL cannot lock.
            locked = (queryset.filter(pk__in=chunk).select_for_update(of=("self",)).order_by("pk")
                      .values("pk", "status", "intent_id", "topic_id", "version"))
            rows = [row for row in locked if row["version"] == listed[row["pk"]]]
            if target is not None and any(row["topic_id"] != target.topic_id for row in rows):
                # The same words as for an id that does not exist: another topic's intent names
                # (and which ids exist) are not for this user to learn.
                raise DatasetError(_not_in_topic(intent_id))
            ReviewEvent.objects.bulk_create([
                ReviewEvent(question_id=row["pk"], actor=actor, action=action, via=via,
                            from_status=row["status"], to_status=new_status,
                            from_intent_id=row["intent_id"], to_intent_id=target.pk if target else row["intent_id"])
                for row in rows
            ])
            update = dict(status=new_status, version=F("version") + 1, leased_by=None, lease_expires_at=None,
                          updated_at=now)
            if action == ReviewEvent.Action.RESET:
                update.update(reviewed_by=None, reviewed_at=None)
            else:
                update.update(reviewed_by=actor, reviewed_at=now)
            if target is not None:
                update.update(intent=target, original_intent=Coalesce(F("original_intent"), F("intent")))
            changed += Question.objects.filter(pk__in=[row["pk"] for row in rows]).update(**update)
    return BulkReviewResult(changed=changed, skipped=len(ids) - changed + held_for_lead + held_for_overlap,
                            held_for_lead=held_for_lead, held_for_overlap=held_for_overlap)


# The review queue ---------------------------------------------------------------------------

def _queue_order(queryset: QuerySet | None = None):
    # Captured low-confidence queries first, lowest confidence first; everything else (no
    # confidence) after them, oldest first. Matches the question_queue_idx index. A queue of
    # likely label errors (QuestionFilter.label_issues) serves the most likely first.
    first = ["label_issue_rank"] if queryset is not None and "label_issue_rank" in queryset.query.annotations else []
    # "Judge disagrees first" (QuestionFilter.judge_disagrees_first): the LLM judge's disagreements,
    # then its passes, then the unjudged; on the question_judge_queue_idx index.
    if queryset is not None and "judge_disagrees_first" in queryset.query.annotations:
        first.append(F("judge_disagrees").desc(nulls_last=True))
    return [*first, F("confidence").asc(nulls_last=True), "id"]


def question_lease_next(*, topic: Topic, actor, queryset: QuerySet | None = None,
                        skip_ids: list[int] = (), queue: str = "review") -> Question | None:
    """Reserve the next pending question of `topic` for `actor` and return it (None when done).

    `queue` "second_opinion" serves the flagged questions instead, to a topic lead or a dataset
    admin (anyone else gets a DatasetError "forbidden"), with the same leases.

    A reviewer who still holds an unexpired lease gets that question back rather than a new one.
    Otherwise the first free pending question in queue order is leased for REVIEW_LEASE_SECONDS;
    a lease nobody renews simply expires and the question is free again. On PostgreSQL the row
    is picked with SELECT ... FOR UPDATE SKIP LOCKED, so concurrent reviewers never wait on or
    receive the same row; elsewhere (the SQLite demo) a conditional UPDATE claims it.
    `queryset` narrows the queue (a filter). `skip_ids` are questions the reviewer passed over
    (`j`), the one passed over longest ago first: their leases are released and they come after
    every other question, so they come back (in that order) only once nothing else is left.
    """
    now = timezone.now()
    status = queue_status(queue)
    if queue == "second_opinion":
        from datasets.permissions import is_topic_lead

        if not is_topic_lead(actor, topic.pk):
            raise DatasetError("Second opinions are given by the topic's leads and dataset admins.", code="forbidden")
    if topic.archived_at is not None or topic.deletion_started_at is not None:
        return None  # archived or being deleted: out of every queue
    pending = (queryset if queryset is not None else Question.objects.all()).filter(
        topic=topic, status=status, removed_at__isnull=True)
    if queue == "review" and overlap.overlap_threshold(topic) > 0:
        return _overlap_lease_next(topic=topic, actor=actor, pending=pending, skip_ids=skip_ids, now=now)
    with transaction.atomic():
        if skip_ids:
            Question.objects.filter(pk__in=skip_ids, leased_by=actor).update(leased_by=None, lease_expires_at=None)
        mine = (pending.filter(leased_by=actor, lease_expires_at__gt=now).exclude(pk__in=skip_ids)
                .order_by(*_queue_order(pending)).first())
        if mine is not None:
            return _renew_lease(mine, actor=actor, now=now)
    free = pending.filter(Q(leased_by__isnull=True) | Q(lease_expires_at__lte=now))
    question = _claim_first(free.exclude(pk__in=skip_ids), actor=actor, now=now)
    if question is None and skip_ids:
        still_free = set(free.filter(pk__in=skip_ids).values_list("pk", flat=True))
        for pk in dict.fromkeys(skip_ids):
            if pk in still_free and (question := _claim_first(free.filter(pk=pk), actor=actor, now=now)):
                break
    return question


def _overlap_lease_next(*, topic: Topic, actor, pending: QuerySet, skip_ids, now) -> Question | None:
    """question_lease_next on a topic with overlap: one pass in queue order over both kinds of
    question, single-review ones leased as usual, overlapping ones claimed (labeling.overlap)."""
    pending = overlap.annotate_taken(pending, now=now)
    free, held = overlap.queue_filters(topic=topic, actor=actor, now=now)
    with transaction.atomic():
        if skip_ids:
            Question.objects.filter(pk__in=skip_ids, leased_by=actor).update(leased_by=None, lease_expires_at=None)
            overlap.overlap_claims_release(question_ids=skip_ids, actor=actor)
        # What the actor holds, found from the actor's few leases and claims (their indexes), not by
        # testing every pending question of the topic: that walk grew with the topic (3.7x p95 at 1M).
        held_ids = overlap.held_question_ids(topic=topic, actor=actor, now=now)
        mine = (pending.filter(held, pk__in=held_ids).exclude(pk__in=skip_ids).order_by(*_queue_order(pending)).first()
                if held_ids else None)
        if mine is not None:
            if overlap.question_overlaps(question_id=mine.pk, topic=topic):
                overlap.overlap_claim_renew(question_id=mine.pk, actor=actor, seconds=lease_seconds())
                return mine
            return _renew_lease(mine, actor=actor, now=now)
    available = pending.filter(free)
    question = _overlap_claim_first(available.exclude(pk__in=skip_ids), topic=topic, actor=actor, now=now)
    if question is None and skip_ids:
        for pk in dict.fromkeys(skip_ids):
            if question := _overlap_claim_first(available.filter(pk=pk), topic=topic, actor=actor, now=now):
                break
    return question


def _overlap_claim_first(free: QuerySet, *, topic: Topic, actor, now) -> Question | None:
    """Take the first question of `free`: lease a single-review one, claim an overlapping one. The
    row is locked (SKIP LOCKED) while the claim is counted again, so a question whose last place
    was taken meanwhile is passed over for the next. When every free row is locked, the first is
    waited for: an overlapping question is locked only for a moment by another reviewer's claim
    or vote and may still have a place (skipping it would tell this reviewer the queue is done)."""
    passed: list[int] = []
    for _ in range(50):
        with transaction.atomic():
            candidates = free.exclude(pk__in=passed).order_by(*_queue_order(free))
            candidate = None
            if connection.features.has_select_for_update_skip_locked:
                candidate = candidates.select_for_update(skip_locked=True, of=("self",)).first()
            if candidate is None:
                candidate = candidates.select_for_update(of=("self",)).first()
            if candidate is None:
                return None
            if not overlap.question_overlaps(question_id=candidate.pk, topic=topic):
                return _renew_lease(candidate, actor=actor, now=now)
            if overlap.overlap_claim(question=candidate, topic=topic, actor=actor, now=now, seconds=lease_seconds()):
                return candidate
            passed.append(candidate.pk)
    return None


def _claim_first(free: QuerySet, *, actor, now) -> Question | None:
    """Lease the first question of `free` in queue order to `actor`, or None if there is none to take."""
    if connection.features.has_select_for_update_skip_locked:
        with transaction.atomic():
            candidate = free.order_by(*_queue_order(free)).select_for_update(skip_locked=True, of=("self",)).first()
            return _renew_lease(candidate, actor=actor, now=now) if candidate else None
    # Without SKIP LOCKED: try the first few free candidates, each claimed by a conditional UPDATE
    # that only succeeds if nobody claimed it in between.
    for _ in range(20):
        candidates = list(free.order_by(*_queue_order(free)).values_list("pk", flat=True)[:10])
        if not candidates:
            return None
        for pk in candidates:
            claimed = Question.objects.filter(pk=pk, status__in=QUEUE_STATUS.values()).filter(
                Q(leased_by__isnull=True) | Q(lease_expires_at__lte=now)).update(
                leased_by=actor, lease_expires_at=now + timedelta(seconds=lease_seconds()))
            if claimed:
                return Question.objects.get(pk=pk)
    return None


def _renew_lease(question: Question, *, actor, now) -> Question:
    question.leased_by = actor
    question.lease_expires_at = now + timedelta(seconds=lease_seconds())
    Question.objects.filter(pk=question.pk).update(leased_by=actor, lease_expires_at=question.lease_expires_at)
    return question


def question_lease_renew(*, question_id: int, actor) -> Question:
    """Extend the actor's reservation of a pending question by REVIEW_LEASE_SECONDS from now.

    The review screen calls this while the reviewer works on the question, so a slow decision
    does not hand it to someone else. Only a lease the actor holds is renewed (one that lapsed
    but nobody took is still theirs); otherwise raises ReviewConflict and changes nothing.
    """
    if overlap.overlap_claim_renew(question_id=question_id, actor=actor, seconds=lease_seconds()):
        # An overlapping question: the reviewer's claim is what holds it (its lease fields stay empty).
        return Question.objects.get(pk=question_id)
    expires = timezone.now() + timedelta(seconds=lease_seconds())
    renewed = Question.objects.filter(pk=question_id, leased_by=actor, status__in=QUEUE_STATUS.values()).update(
        lease_expires_at=expires)
    if not renewed:
        holder = Question.objects.filter(pk=question_id).values_list("leased_by__username", "status").first()
        if holder is None:
            raise DatasetError(f"Question {question_id} does not exist.", code="not_found")
        who, status = holder
        reason = f"{who} has it now" if who else (f"it is {status}" if status not in QUEUE_STATUS.values()
                                                   else "it went back to the queue")
        raise ReviewConflict(f"Question {question_id} is no longer reserved for you: {reason}.",
                             details={"leased_by": who, "status": status})
    return Question.objects.select_related("leased_by").get(pk=question_id)


def question_lease_release(*, question_id: int, actor) -> bool:
    """Give back a lease (or an overlap claim) the actor holds (nothing happens if they do not hold it)."""
    released = overlap.overlap_claims_release(question_ids=[question_id], actor=actor)
    return bool(released or Question.objects.filter(pk=question_id, leased_by=actor).update(
        leased_by=None, lease_expires_at=None))


# Captured production queries ----------------------------------------------------------------

@dataclass
class CaptureOutcome:
    """What happened to one captured query."""

    outcome: str  # queued, repeat, counted (above threshold), known (an existing non-captured question)
    question_id: int | None = None
    occurrences: int | None = None
    confidence: float | None = None


@dataclass
class CaptureBatchResult:
    outcomes: list[CaptureOutcome] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for o in self.outcomes if o.outcome == outcome)


def capture_record(*, topic: Topic, text: str, predicted_intent: IntentNode, confidence: float,
                   language: str | None = None) -> CaptureOutcome:
    """Record one production query the deployed model classified with `confidence`.

    Below the topic's confidence threshold it becomes a pending question with source "captured"
    (its intent is the model's prediction until a reviewer decides); at or above it is only
    counted. An exact repeat (same normalized text) of a captured question increments its
    `occurrences` and keeps the lowest confidence seen instead of making a new item.
    """
    text = text.strip()
    digest = text_hash(text)
    if not text or not digest:
        raise DatasetError("The captured text is empty.")
    if predicted_intent.topic_id != topic.pk:
        raise DatasetError("The predicted intent belongs to another topic.")
    from datasets.lifecycle import topic_check_writable

    topic_check_writable(topic)
    with transaction.atomic():
        existing = Question.objects.filter(topic=topic, text_hash=digest).first()
        if existing is None and confidence >= topic.confidence_threshold:
            return CaptureOutcome("counted", confidence=confidence)
        if existing is None:
            try:
                with transaction.atomic():
                    created = Question.objects.create(
                        topic=topic, intent=predicted_intent, predicted_intent=predicted_intent, text=text,
                        language=language or topic.language, source=Question.Source.CAPTURED,
                        confidence=confidence, occurrences=1,
                    )
                return CaptureOutcome("queued", created.pk, 1, confidence)
            except IntegrityError:
                # Someone posted the same query at the same moment: count it as a repeat.
                existing = Question.objects.get(topic=topic, text_hash=digest)
        if existing.source != Question.Source.CAPTURED:
            return CaptureOutcome("known", existing.pk, existing.occurrences, existing.confidence)
        Question.objects.filter(pk=existing.pk).update(
            occurrences=F("occurrences") + 1,
            confidence=Least(Coalesce(F("confidence"), confidence), confidence),
        )
        existing.refresh_from_db(fields=["occurrences", "confidence"])
        return CaptureOutcome("repeat", existing.pk, existing.occurrences, existing.confidence)


def captures_record(*, items: list[dict]) -> CaptureBatchResult:
    """Record a batch of validated captures (dicts with topic, text, predicted_intent, confidence) atomically.

    Rows are written in one fixed order (topic, text hash), not the request's: concurrent batches
    that share queries then wait for each other's row locks instead of deadlocking. Repeats
    within the batch keep their request order; outcomes come back in the request's order.
    """
    order = sorted(range(len(items)), key=lambda i: (items[i]["topic"].pk, text_hash(items[i]["text"].strip())))
    outcomes: list[CaptureOutcome | None] = [None] * len(items)
    with transaction.atomic():
        for index in order:
            outcomes[index] = capture_record(**items[index])
    return CaptureBatchResult(outcomes=outcomes)
