"""Agreement between reviewers and each reviewer's figures (reads only).

Agreement is measured on the overlapping questions (labeling/overlap.py) whose k independent
votes are all in. A vote is one category: the intent it gives (approve or relabel) or the action
(reject, flag). Per reviewer pair: Cohen's kappa over the questions both decided. Per intent and
for the topic: Fleiss' kappa (each question has the same k raters' worth of votes) and the
observed share of questions all agreed on.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import combinations
from statistics import median

from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from datasets.models import Question, ReviewEvent, ReviewVote, Topic
from datasets.selectors import intent_infos
from labeling.overlap import vote_label

DECISIONS = (ReviewEvent.Action.APPROVE, ReviewEvent.Action.REJECT, ReviewEvent.Action.FLAG,
             ReviewEvent.Action.RELABEL)
PACE_PAUSE_SECONDS = 300  # a longer gap between two decisions is a break, left out of the pace


def cohen_kappa(first: list, second: list) -> float | None:
    """Cohen's kappa of two raters' labels on the same items (None when chance agreement is total:
    both gave one and the same label to everything, where kappa is undefined)."""
    n = len(first)
    if n == 0 or n != len(second):
        return None
    observed = sum(a == b for a, b in zip(first, second, strict=True)) / n
    count_a, count_b = Counter(first), Counter(second)
    expected = sum(count_a[label] * count_b[label] for label in count_a) / (n * n)
    if expected == 1:
        return None
    return (observed - expected) / (1 - expected)


def fleiss_kappa(items: list[list]) -> float | None:
    """Fleiss' kappa of items each rated by the same number of raters (who need not be the same people)."""
    items = [item for item in items if item]
    if not items or len({len(item) for item in items}) != 1 or len(items[0]) < 2:
        return None
    n_items, raters = len(items), len(items[0])
    totals: Counter = Counter()
    agreement = 0.0
    for item in items:
        counts = Counter(item)
        totals.update(counts)
        agreement += (sum(c * c for c in counts.values()) - raters) / (raters * (raters - 1))
    p_bar = agreement / n_items
    p_e = sum((c / (n_items * raters)) ** 2 for c in totals.values())
    if p_e == 1:
        return None
    return (p_bar - p_e) / (1 - p_e)


def _complete_votes(topic: Topic, since=None) -> dict[int, dict]:
    """The overlapping questions of `topic` with all k votes in: question id -> {"intent": the intent
    the reviewers saw, "votes": {reviewer username: label}}."""
    votes = (ReviewVote.objects.filter(question__topic=topic, question__removed_at__isnull=True,
                                       decided_at__isnull=False)
             .values("question_id", "reviewer__username", "action", "intent_id", "decided_at",
                     served_intent=Coalesce(F("question__original_intent_id"), F("question__intent_id"))))
    if since is not None:
        votes = votes.filter(decided_at__gte=since)
    questions: dict[int, dict] = {}
    for vote in votes.order_by("question_id", "decided_at"):
        entry = questions.setdefault(vote["question_id"], {"intent": vote["served_intent"], "votes": {}})
        entry["votes"][vote["reviewer__username"]] = vote_label(vote["action"], vote["intent_id"])
    return {pk: q for pk, q in questions.items() if len(q["votes"]) >= topic.overlap_reviewers}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def topic_agreement(*, topic: Topic) -> dict:
    """Agreement on the topic's overlapping questions: overall, per reviewer pair and per intent."""
    complete = _complete_votes(topic)
    pairs: dict[tuple, tuple[list, list]] = defaultdict(lambda: ([], []))
    by_intent: dict[int, list[list]] = defaultdict(list)
    for entry in complete.values():
        names = sorted(entry["votes"])
        for a, b in combinations(names, 2):
            pairs[(a, b)][0].append(entry["votes"][a])
            pairs[(a, b)][1].append(entry["votes"][b])
        by_intent[entry["intent"]].append([entry["votes"][name] for name in names])
    infos = intent_infos(topic=topic)

    def summary(items: list[list]) -> dict:
        agreed = sum(len(set(item)) == 1 for item in items)
        return {"questions": len(items), "agreed": agreed,
                "observed": _rounded(agreed / len(items)) if items else None,
                "fleiss_kappa": _rounded(fleiss_kappa(items))}

    return {
        "reviewers_per_question": topic.overlap_reviewers, "share": topic.overlap_share,
        "overall": summary([[label for _, label in sorted(e["votes"].items())] for e in complete.values()]),
        "pairs": [{"reviewers": list(pair), "questions": len(a),
                   "observed": _rounded(sum(x == y for x, y in zip(a, b, strict=True)) / len(a)),
                   "cohen_kappa": _rounded(cohen_kappa(a, b))}
                  for pair, (a, b) in sorted(pairs.items())],
        "intents": [{"intent": intent_id, "intent_name": infos[intent_id].intent_full_name
                     if intent_id in infos else "", **summary(items)}
                    for intent_id, items in sorted(by_intent.items(), key=lambda kv: infos[kv[0]].number
                                                   if kv[0] in infos else "")],
    }


@dataclass
class ReviewerDay:
    """One reviewer's work on one day."""

    reviewer: str
    day: str
    decisions: int = 0
    actions: dict = field(default_factory=dict)  # action -> share of the day's decisions
    seconds_per_decision: float | None = None  # median gap between decisions, breaks left out
    undos: int = 0
    undo_rate: float | None = None
    agreement_with_others: float | None = None  # share of their overlap votes the others' votes matched
    compared: int = 0
    agreement_with_adjudication: float | None = None  # share of their disputed votes the lead's decision upheld
    adjudicated: int = 0


def reviewer_figures(*, topic: Topic, reviewers: list | None = None, days: int = 30) -> list[ReviewerDay]:
    """Per reviewer and per day over the last `days` days: decisions (review events and overlap
    votes), the share of each action, the pace (median seconds between two decisions, pauses over
    five minutes left out), undos and the undo rate (undos / decisions), agreement with the other
    reviewers of the same overlapping questions and with the lead who adjudicated a disagreement.
    `reviewers` (user objects) limits the rows to them: a reviewer sees only their own."""
    since = timezone.now() - timedelta(days=days)
    events = ReviewEvent.objects.filter(question__topic=topic, created_at__gte=since, actor__isnull=False)
    votes = ReviewVote.objects.filter(question__topic=topic, decided_at__gte=since)
    if reviewers is not None:
        events = events.filter(actor__in=reviewers)
        votes = votes.filter(reviewer__in=reviewers)
    times: dict[tuple, list] = defaultdict(list)
    actions: dict[tuple, Counter] = defaultdict(Counter)
    undos: Counter = Counter()
    for row in events.values("actor__username", "action", "created_at", "changes").order_by("created_at"):
        key = (row["actor__username"], timezone.localdate(row["created_at"]).isoformat())
        if row["action"] == ReviewEvent.Action.UNDO:
            undos[key] += 1
        elif row["action"] in DECISIONS and not (row["changes"] or {}).get("overlap"):
            # (A settled overlap's event is the votes' outcome, counted as the votes themselves.)
            times[key].append(row["created_at"])
            actions[key][row["action"]] += 1
    my_votes = list(votes.values("question_id", "reviewer__username", "action", "intent_id", "decided_at"))
    for vote in my_votes:
        key = (vote["reviewer__username"], timezone.localdate(vote["decided_at"]).isoformat())
        times[key].append(vote["decided_at"])
        actions[key][vote["action"]] += 1

    complete = _complete_votes(topic, since=None)
    adjudications = _adjudications(topic, question_ids=[v["question_id"] for v in my_votes])
    compared: dict[tuple, list[bool]] = defaultdict(list)
    upheld: dict[tuple, list[bool]] = defaultdict(list)
    for vote in my_votes:
        key = (vote["reviewer__username"], timezone.localdate(vote["decided_at"]).isoformat())
        label = vote_label(vote["action"], vote["intent_id"])
        entry = complete.get(vote["question_id"])
        if entry:
            compared[key].extend(other == label for name, other in entry["votes"].items()
                                 if name != vote["reviewer__username"])
        if vote["question_id"] in adjudications:
            upheld[key].append(adjudications[vote["question_id"]] == label)

    rows = []
    for key in sorted(set(times) | set(undos)):
        stamps = sorted(times.get(key, []))
        gaps = [(b - a).total_seconds() for a, b in zip(stamps, stamps[1:], strict=False)]
        gaps = [g for g in gaps if g <= PACE_PAUSE_SECONDS]
        n = len(stamps)
        row = ReviewerDay(reviewer=key[0], day=key[1], decisions=n,
                          actions={a: round(c / n, 4) for a, c in sorted(actions[key].items())} if n else {},
                          seconds_per_decision=round(median(gaps), 2) if gaps else None,
                          undos=undos[key], undo_rate=round(undos[key] / n, 4) if n else None)
        if compared.get(key):
            row.compared = len(compared[key])
            row.agreement_with_others = round(sum(compared[key]) / len(compared[key]), 4)
        if upheld.get(key):
            row.adjudicated = len(upheld[key])
            row.agreement_with_adjudication = round(sum(upheld[key]) / len(upheld[key]), 4)
        rows.append(row)
    return rows


def _adjudications(topic: Topic, *, question_ids: list[int]) -> dict[int, str]:
    """The lead's decision (as a vote label) on each of these questions that the votes flagged for
    adjudication, when one was taken: the first decision after the flag the overlap made."""
    flagged = dict(ReviewEvent.objects.filter(
        question_id__in=question_ids, action=ReviewEvent.Action.FLAG, actor__isnull=True,
        changes__has_key="overlap").values_list("question_id", "created_at"))
    if not flagged:
        return {}
    decided: dict[int, str] = {}
    for row in (ReviewEvent.objects.filter(question_id__in=list(flagged), action__in=DECISIONS,
                                           from_status=Question.Status.FLAGGED, actor__isnull=False)
                .order_by("created_at", "id").values("question_id", "action", "to_intent_id", "created_at")):
        if row["question_id"] not in decided and row["created_at"] >= flagged[row["question_id"]]:
            decided[row["question_id"]] = vote_label(row["action"], row["to_intent_id"])
    return decided


