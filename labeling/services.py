"""Review decisions on questions. Every change writes a ReviewEvent."""

from django.db import IntegrityError, transaction
from django.utils import timezone

from datasets.models import IntentNode, Question, ReviewEvent
from datasets.normalize import text_hash
from datasets.services import DatasetError

STATUS_FOR_ACTION = {
    ReviewEvent.Action.APPROVE: Question.Status.APPROVED,
    ReviewEvent.Action.REJECT: Question.Status.REJECTED,
    ReviewEvent.Action.FLAG: Question.Status.FLAGGED,
    ReviewEvent.Action.RELABEL: Question.Status.RELABELED,
    ReviewEvent.Action.RESET: Question.Status.PENDING,
}


class ReviewConflict(DatasetError):
    """The question changed since the reviewer loaded it (stale version)."""

    code = "conflict"


def question_review(
    *,
    question_id: int,
    actor,
    action: str,
    intent_id: int | None = None,
    text: str | None = None,
    version: int | None = None,
    via: str = "ui",
) -> Question:
    """Apply one review action (approve, reject, flag, relabel, edit, reset) and audit it.

    When `version` is given and the question has moved on since, raises ReviewConflict naming
    who changed it; nothing is written.
    """
    if action not in ReviewEvent.Action.values or action == ReviewEvent.Action.UNDO:
        raise DatasetError(f"Unknown action {action!r}: use approve, reject, flag, relabel, edit or reset.")
    with transaction.atomic():
        try:
            question = Question.objects.select_for_update().get(pk=question_id)
        except Question.DoesNotExist:
            raise DatasetError(f"Question {question_id} does not exist.", code="not_found") from None
        if version is not None and question.version != version:
            last = question.events.select_related("actor").first()
            who = last.actor.get_username() if last and last.actor else "someone else"
            raise ReviewConflict(
                f"{who} changed this question since you loaded it (version {version}, now {question.version}).",
                details={"current_version": question.version, "changed_by": who},
            )
        event = ReviewEvent(
            question=question, actor=actor, action=action, from_status=question.status,
            from_intent_id=question.intent_id, via=via,
        )
        if action == ReviewEvent.Action.RELABEL:
            if intent_id is None:
                raise DatasetError("Relabel needs the new intent.")
            target = IntentNode.objects.filter(pk=intent_id, topic_id=question.topic_id).first()
            if target is None:
                raise DatasetError(f"Intent {intent_id} is not in this question's topic.")
            if question.original_intent_id is None:
                question.original_intent_id = question.intent_id
            question.intent = target
        if action == ReviewEvent.Action.EDIT:
            new_text = (text or "").strip()
            if not new_text:
                raise DatasetError("The edited text is empty.")
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
        question.leased_by, question.lease_expires_at = None, None
        try:
            with transaction.atomic():
                question.save()
        except IntegrityError:
            raise DatasetError("Another question of this topic already has this text.", code="duplicate") from None
        event.to_status = question.status
        event.to_intent_id = question.intent_id
        event.save()
    return question


def questions_review_bulk(*, question_ids, actor, action: str, intent_id: int | None = None, via: str = "admin") -> int:
    """Apply one action to many questions (admin actions, bulk review); returns how many changed."""
    changed = 0
    for question_id in question_ids:
        question_review(question_id=question_id, actor=actor, action=action, intent_id=intent_id, via=via)
        changed += 1
    return changed
