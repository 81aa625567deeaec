"""Overlap: questions a topic gives to k reviewers to decide independently before they count.

Which questions overlap is a pure function of the question's id and the topic's share: a
multiplicative hash of the id in 10,000 buckets, so the chosen ones are spread over the whole
queue, a new question needs no setup, and changing the share applies at once to what is pending.
Each of the k reviewers claims the question (a ReviewVote without an action) and then decides it
(the vote's action); the question itself stays pending, with no lease and no status change, so no
reviewer sees another's decision. When the k-th vote is in, the question is decided if all agree,
or flagged for a lead's adjudication (the second-opinion queue) if they do not.
"""

from datetime import timedelta

from django.db import transaction
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, Mod
from django.utils import timezone

from datasets.models import IntentNode, Question, ReviewEvent, ReviewVote, Topic
from datasets.services import DatasetError

HASH_MULTIPLIER = 2654435761  # Knuth's multiplicative hash: consecutive ids land far apart
HASH_BUCKETS = 10000
VOTE_ACTIONS = (ReviewEvent.Action.APPROVE, ReviewEvent.Action.REJECT, ReviewEvent.Action.FLAG,
                ReviewEvent.Action.RELABEL)


def overlap_threshold(topic: Topic) -> int:
    return round(max(0.0, min(1.0, topic.overlap_share or 0.0)) * HASH_BUCKETS)


def question_overlaps(*, question_id: int, topic: Topic) -> bool:
    """Whether the topic's overlap setting gives this question to several reviewers."""
    return (question_id * HASH_MULTIPLIER) % HASH_BUCKETS < overlap_threshold(topic)


def with_overlap_bucket(queryset: QuerySet) -> QuerySet:
    return queryset.annotate(overlap_bucket=Mod(F("id") * Value(HASH_MULTIPLIER), Value(HASH_BUCKETS)))


def _taken(now) -> Subquery:
    """How many reviewers have decided the outer question or hold a live claim on it."""
    rows = (ReviewVote.objects.filter(question=OuterRef("pk"))
            .filter(Q(decided_at__isnull=False) | Q(claim_expires_at__gt=now))
            .order_by().values("question").annotate(n=Count("id")).values("n"))
    return Coalesce(Subquery(rows, output_field=IntegerField()), 0)


def queue_filters(*, topic: Topic, actor, now) -> tuple[Q, Q]:
    """For a queryset annotated by annotate_taken(): the condition of a question the actor may
    claim, and of one they hold. Single-review questions follow the lease; overlapping ones the votes."""
    threshold = overlap_threshold(topic)
    single = Q(overlap_bucket__gte=threshold)
    mine_or_decided = ReviewVote.objects.filter(question=OuterRef("pk"), reviewer=actor).filter(
        Q(decided_at__isnull=False) | Q(claim_expires_at__gt=now))
    my_claim = ReviewVote.objects.filter(question=OuterRef("pk"), reviewer=actor, decided_at__isnull=True,
                                         claim_expires_at__gt=now)
    free = (single & (Q(leased_by__isnull=True) | Q(lease_expires_at__lte=now))) | (
        Q(overlap_bucket__lt=threshold) & ~Exists(mine_or_decided) & Q(overlap_taken__lt=topic.overlap_reviewers))
    held = (single & Q(leased_by=actor, lease_expires_at__gt=now)) | (Q(overlap_bucket__lt=threshold) & Exists(my_claim))
    return free, held


def held_question_ids(*, topic: Topic, actor, now) -> list[int]:
    """The questions of `topic` the actor may hold: a live lease (single review) or a live undecided
    claim (overlap). A handful at most; queue_filters()'s `held` says which of them still count."""
    leased = Question.objects.filter(leased_by=actor, lease_expires_at__gt=now, topic=topic).values_list("pk", flat=True)
    claimed = ReviewVote.objects.filter(reviewer=actor, decided_at__isnull=True, claim_expires_at__gt=now,
                                        question__topic=topic).values_list("question_id", flat=True)
    return [*leased, *claimed]


def annotate_taken(queryset: QuerySet, *, now) -> QuerySet:
    return with_overlap_bucket(queryset).annotate(overlap_taken=_taken(now))


def overlap_claim(*, question: Question, topic: Topic, actor, now, seconds: int) -> bool:
    """Claim an overlapping question for `actor` (its row is locked by the caller). Counted again
    here, in a statement of its own, so a claim committed since the caller's query is seen: never
    more than k reviewers, never the same reviewer twice (also a unique constraint)."""
    votes = list(ReviewVote.objects.filter(question=question).values("reviewer_id", "decided_at", "claim_expires_at"))
    if any(v["reviewer_id"] == actor.pk and v["decided_at"] is not None for v in votes):
        return False
    taken = sum(1 for v in votes if v["reviewer_id"] != actor.pk and (
        v["decided_at"] is not None or (v["claim_expires_at"] and v["claim_expires_at"] > now)))
    if taken >= topic.overlap_reviewers:
        return False
    ReviewVote.objects.update_or_create(question=question, reviewer=actor,
                                        defaults={"claim_expires_at": now + timedelta(seconds=seconds)})
    return True


def overlap_claims_release(*, question_ids, actor) -> int:
    """Give back the actor's undecided claims on these questions."""
    return ReviewVote.objects.filter(question_id__in=list(question_ids), reviewer=actor,
                                     decided_at__isnull=True).delete()[0]


def overlap_claim_renew(*, question_id: int, actor, seconds: int):
    """Extend the actor's claim; returns the new expiry, or None if they hold no claim on it."""
    expires = timezone.now() + timedelta(seconds=seconds)
    renewed = ReviewVote.objects.filter(question_id=question_id, reviewer=actor, decided_at__isnull=True,
                                        question__status=Question.Status.PENDING).update(claim_expires_at=expires)
    return expires if renewed else None


def vote_label(action: str, intent_id: int | None) -> str:
    """What a vote says, as one category: the intent for approve and relabel (approving under 1.2 and
    relabeling to 1.2 agree), else the action (reject, flag)."""
    if action in (ReviewEvent.Action.APPROVE, ReviewEvent.Action.RELABEL):
        return f"intent:{intent_id}"
    return action


def _label(vote: ReviewVote) -> str:
    return vote_label(vote.action, vote.intent_id)


def overlap_vote(*, question: Question, topic: Topic, actor, action: str, intent_id: int | None, reason: str,
                 via: str) -> Question:
    """Record `actor`'s independent decision on an overlapping pending question (locked by the
    caller) and, when it is the k-th, settle the question: the shared decision when all agree,
    else flagged for adjudication with the votes in the reason. Returns the question."""
    if action not in VOTE_ACTIONS:
        raise DatasetError("This question is decided independently by several reviewers: approve, reject, flag or "
                           "relabel it as it is (an edit would change it under the others).", code="overlap")
    now = timezone.now()
    votes = {v.reviewer_id: v for v in ReviewVote.objects.filter(question=question).select_related("reviewer")}
    mine = votes.get(actor.pk)
    if mine is not None and mine.decided_at is not None:
        raise DatasetError("You already decided this question; the other reviewers decide it independently.",
                           code="conflict")
    others = sum(1 for r, v in votes.items() if r != actor.pk and (
        v.decided_at is not None or (v.claim_expires_at and v.claim_expires_at > now)))
    if others >= topic.overlap_reviewers:
        raise DatasetError(f"{topic.overlap_reviewers} other reviewers are already deciding this question.",
                           code="conflict")
    mine = mine or ReviewVote(question=question, reviewer=actor)
    mine.action = action
    mine.intent_id = intent_id if action == ReviewEvent.Action.RELABEL else question.intent_id
    mine.reason, mine.decided_at, mine.claim_expires_at = reason, now, None
    mine.save()
    votes[actor.pk] = mine
    decided = [v for v in votes.values() if v.decided_at is not None]
    if len(decided) < topic.overlap_reviewers:
        return question
    return _overlap_settle(question=question, votes=decided, via=via, now=now)


def _overlap_settle(*, question: Question, votes: list[ReviewVote], via: str, now) -> Question:
    from labeling.services import STATUS_FOR_ACTION

    votes.sort(key=lambda v: (v.decided_at, v.pk))
    said = {v.reviewer.get_username(): _label(v) for v in votes}
    event = ReviewEvent(question=question, actor=votes[-1].reviewer, via=via, from_status=question.status,
                        from_intent_id=question.intent_id,
                        changes={"overlap": {v.reviewer.get_username(): [v.action, v.intent_id] for v in votes}})
    if len(set(said.values())) == 1:
        agreed = votes[-1]
        event.action = agreed.action
        event.reason = "; ".join(dict.fromkeys(v.reason for v in votes if v.reason))[:500]
        if agreed.action == ReviewEvent.Action.RELABEL:
            if question.original_intent_id is None:
                question.original_intent_id = question.intent_id
            question.intent_id = agreed.intent_id
        question.status = STATUS_FOR_ACTION[agreed.action]
        question.reviewed_by, question.reviewed_at = agreed.reviewer, now
    else:
        # Adjudication: the second-opinion queue of the topic's leads. Nobody's flag: no actor.
        event.action, event.actor = ReviewEvent.Action.FLAG, None
        numbers = dict(IntentNode.objects.filter(pk__in={v.intent_id for v in votes}).values_list("pk", "number"))
        event.reason = ("Reviewers disagree: " + ", ".join(
            f"{v.reviewer.get_username()} {v.action}" + (f" {numbers.get(v.intent_id, '')}" if v.action in (
                ReviewEvent.Action.APPROVE, ReviewEvent.Action.RELABEL) else "") for v in votes))[:500]
        question.status = Question.Status.FLAGGED
        question.reviewed_by, question.reviewed_at = None, None
    question.version += 1
    question.leased_by, question.lease_expires_at = None, None
    question.save(update_fields=["status", "intent", "original_intent", "reviewed_by", "reviewed_at", "version",
                                 "leased_by", "lease_expires_at", "updated_at"])
    event.to_status, event.to_intent_id = question.status, question.intent_id
    event.save()
    return question


def overlap_vote_withdraw(*, vote: ReviewVote, seconds: int) -> Question:
    """Undo a vote on a question not settled yet: it becomes the reviewer's claim again."""
    with transaction.atomic():
        question = Question.objects.select_for_update().get(pk=vote.question_id)
        if question.status != Question.Status.PENDING:
            raise DatasetError("The reviewers' votes settled this question already; ask a lead.", code="conflict")
        ReviewVote.objects.filter(pk=vote.pk).update(action="", intent=None, reason="", decided_at=None,
                                                     claim_expires_at=timezone.now() + timedelta(seconds=seconds))
    return question
