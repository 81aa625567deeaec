"""Reads for the review UI and API: filters, progress, possible duplicates, the taxonomy."""

import re
from dataclasses import dataclass, fields

from django.db import OperationalError, connection, transaction
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from config.input import id_parse, number_parse
from datasets.health.index import question_paraphrases
from datasets.models import PATH_SEPARATOR, IntentNode, Question, ReviewEvent, Topic
from datasets.normalize import near_duplicate_key, normalize_text
from datasets.question_counts import intent_status_counts, status_counts_by
from datasets.selectors import intent_infos, intent_subtree_ids
from datasets.services import DatasetError

APPROVED_STATUSES = (Question.Status.APPROVED, Question.Status.RELABELED)


@dataclass
class QuestionFilter:
    """The list view's filters; the same filter narrows the queue and bulk actions."""

    status: str = ""
    intent: int | None = None  # an intent and its whole subtree
    source: str = ""
    language: str = ""
    confidence_min: float | None = None
    confidence_max: float | None = None
    reviewer: int | None = None
    search: str = ""
    label_issues: bool = False  # only the current likely label errors (evaluation app), most likely first
    judge_verdict: str = ""  # the LLM judge's verdict (Question.JudgeVerdict), "unjudged" or "disagrees"
    judge_score_min: float | None = None
    judge_score_max: float | None = None
    judge_disagrees_first: bool = False  # the queue serves questions the judge put elsewhere first
    reason: str = ""  # questions a reviewer rejected or flagged with this reason (exact words)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_params(cls, params) -> "QuestionFilter":
        """Parse query parameters; raises DatasetError naming a parameter that makes no sense."""

        def number(name, parse):
            raw = (params.get(name) or "").strip()
            return parse(raw, name) if raw else None

        for name in cls.field_names():
            if "\x00" in str(params.get(name) or ""):
                raise DatasetError(f"{name} contains a NUL byte.", code="invalid_parameter")

        status = (params.get("status") or "").strip()
        if status and status not in Question.Status.values:
            raise DatasetError(f"Unknown status {status!r}: use one of {', '.join(Question.Status.values)}.")
        source = (params.get("source") or "").strip()
        if source and source not in Question.Source.values:
            raise DatasetError(f"Unknown source {source!r}: use one of {', '.join(Question.Source.values)}.")
        verdict = (params.get("judge_verdict") or "").strip()
        if verdict and verdict not in [*Question.JudgeVerdict.values, "unjudged", "disagrees"]:
            raise DatasetError(f"Unknown judge_verdict {verdict!r}: use one of "
                               f"{', '.join([*Question.JudgeVerdict.values, 'unjudged', 'disagrees'])}.")
        return cls(
            judge_verdict=verdict, judge_score_min=number("judge_score_min", number_parse),
            judge_score_max=number("judge_score_max", number_parse),
            judge_disagrees_first=str(params.get("judge_disagrees_first") or "").strip().lower() in (
                "1", "true", "yes", "on"),
            status=status, intent=number("intent", id_parse), source=source,
            reason=" ".join((params.get("reason") or "").split()),
            language=(params.get("language") or "").strip(),
            confidence_min=number("confidence_min", number_parse),
            confidence_max=number("confidence_max", number_parse), reviewer=number("reviewer", id_parse), search=(params.get("search") or "").strip(),
            label_issues=str(params.get("label_issues") or "").strip().lower() in ("1", "true", "yes", "on"),
        )

    @classmethod
    def for_queue(cls, params) -> "QuestionFilter":
        """The filter narrowing a review queue: any status filter is dropped, the queue is pending only."""
        question_filter = cls.from_params(params)
        question_filter.status = ""
        return question_filter

    def as_params(self) -> dict:
        """The non-empty filters, to put back in links and hidden form fields."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) not in (None, "", False)}

    def apply(self, queryset: QuerySet, *, topic: Topic) -> QuerySet:
        queryset = queryset.filter(topic=topic, removed_at__isnull=True)  # removed questions: in no list or queue
        if self.status:
            queryset = queryset.filter(status=self.status)
        if self.intent is not None:
            node = IntentNode.objects.filter(pk=self.intent, topic=topic).first()
            if node is None:
                raise DatasetError(f"Intent {self.intent} is not in topic {topic.name}.")
            queryset = queryset.filter(intent_id__in=intent_subtree_ids(node=node))
        if self.source:
            queryset = queryset.filter(source=self.source)
        if self.language:
            queryset = queryset.filter(language=self.language)
        if self.confidence_min is not None:
            queryset = queryset.filter(confidence__gte=self.confidence_min)
        if self.confidence_max is not None:
            queryset = queryset.filter(confidence__lte=self.confidence_max)
        if self.reviewer is not None:
            queryset = queryset.filter(reviewed_by_id=self.reviewer)
        if self.search:
            queryset = queryset.filter(text__icontains=self.search)
        if self.reason:
            queryset = queryset.filter(pk__in=ReviewEvent.objects.filter(
                question__topic=topic, reason=self.reason).values("question_id"))
        if self.judge_verdict == "unjudged":
            queryset = queryset.filter(judge_verdict="")
        elif self.judge_verdict == "disagrees":
            queryset = queryset.filter(judge_disagrees=True)
        elif self.judge_verdict:
            queryset = queryset.filter(judge_verdict=self.judge_verdict)
        if self.judge_score_min is not None:
            queryset = queryset.filter(judge_score__gte=self.judge_score_min)
        if self.judge_score_max is not None:
            queryset = queryset.filter(judge_score__lte=self.judge_score_max)
        if self.judge_disagrees_first:
            # A marker the queue orders by (labeling.services._queue_order), on question_judge_queue_idx.
            queryset = queryset.annotate(judge_disagrees_first=F("judge_disagrees"))
        if self.label_issues:
            from django.db.models import OuterRef, Subquery

            from evaluation.selectors import label_issues_current

            issues = label_issues_current(topic_id=topic.pk)
            queryset = queryset.filter(pk__in=issues.values("question_id")).annotate(
                label_issue_rank=Subquery(issues.filter(question_id=OuterRef("pk")).values("rank")[:1]))
        return queryset


def questions_filtered(*, topic: Topic, question_filter: QuestionFilter) -> QuerySet:
    """The topic's questions matching the filter, in list order (tree order of intents, then id)."""
    queryset = Question.objects.select_related("intent", "reviewed_by")
    return question_filter.apply(queryset, topic=topic).order_by("intent__sort_key", "id")


REMAINING_COUNT_CAP = 1000


def queue_remaining(*, queryset: QuerySet, actor, status: str = Question.Status.PENDING) -> int:
    """How many questions of a (filtered) queue `actor` can still get: free ones and their own.
    `status` is the queue's: pending for reviews, flagged for second opinions.

    Counted up to REMAINING_COUNT_CAP and no further (that number means "at least"), so the
    count costs the same on a queue of a thousand as of a million.
    """
    now = timezone.now()
    available = queryset.filter(status=status).filter(
        Q(leased_by__isnull=True) | Q(leased_by=actor) | Q(lease_expires_at__lte=now))
    if status == Question.Status.PENDING:
        # Overlapping questions the actor has already decided wait for others, not for them.
        from datasets.models import ReviewVote

        available = available.exclude(pk__in=ReviewVote.objects.filter(
            reviewer=actor, decided_at__isnull=False, question__status=Question.Status.PENDING).values("question_id"))
    return available.order_by()[:REMAINING_COUNT_CAP].count()


def questions_outside_topic(*, topic: Topic, question_ids: list[int]) -> list[int]:
    """Those of `question_ids` that are not questions of `topic` (another topic's, or none at all), sorted."""
    inside = set(Question.objects.filter(topic=topic, pk__in=question_ids).values_list("pk", flat=True))
    return sorted(set(question_ids) - inside)


@dataclass
class IntentProgress:
    id: int
    number: str
    name: str
    path: str
    approved: int
    pending: int
    flagged: int
    rejected: int
    target: int

    @property
    def shortfall(self) -> int:
        return max(self.target - self.approved, 0)

    @property
    def percent(self) -> int:
        return min(100, round(100 * self.approved / self.target)) if self.target else 100


def topic_progress(*, topic: Topic) -> list[IntentProgress]:
    """Per-intent review progress against the topic's target, the intents furthest from it first.

    Counts cover the intents questions are attached to: the leaves, or every intent when the
    topic generates for inner nodes too (`leaf_only` off). Relabeled questions count as approved
    (a reviewer confirmed them under their new intent).
    """
    infos = intent_infos(topic=topic)
    counts = intent_status_counts(topic_id=topic.pk)  # kept counts: no read of the whole topic
    rows = []
    for info in infos.values():
        if topic.leaf_only and not info.is_leaf and info.id not in counts:
            continue
        c = counts.get(info.id, {})
        rows.append(IntentProgress(
            id=info.id, number=info.number, name=info.name, path=info.intent_path,
            approved=c.get("approved", 0) + c.get("relabeled", 0), pending=c.get("pending", 0),
            flagged=c.get("flagged", 0), rejected=c.get("rejected", 0), target=topic.target_per_intent,
        ))
    order = {info_id: i for i, info_id in enumerate(infos)}
    rows.sort(key=lambda r: (r.approved >= r.target, r.approved / (r.target or 1), order[r.id]))
    return rows


def topics_overview(*, topics: QuerySet) -> list[dict]:
    """Each topic with its question counts by status, for the home page (kept counts: joining
    every topic with all its questions read them all)."""
    topics = list(topics.order_by("name"))
    counts = status_counts_by(field="topic_id", ids=[topic.pk for topic in topics], include_removed=False)
    overview = []
    for topic in topics:
        by_status = counts[topic.pk]
        overview.append({"topic": topic, "id": topic.pk, "total": sum(by_status.values()),
                         "pending": by_status.get(Question.Status.PENDING, 0),
                         "approved": sum(by_status.get(status, 0) for status in APPROVED_STATUSES),
                         "flagged": by_status.get(Question.Status.FLAGGED, 0)})
    return overview


def taxonomy_choices(*, topic: Topic) -> list[dict]:
    """The taxonomy for the relabel type-ahead: id, number, name, full path and description of every intent."""
    descriptions = dict(IntentNode.objects.filter(topic=topic).exclude(description="")
                        .values_list("pk", "description"))
    return [
        {"id": info.id, "number": info.number, "name": info.name, "path": info.intent_path, "leaf": info.is_leaf,
         "description": descriptions.get(info.id, "")}
        for info in intent_infos(topic=topic).values()
    ]


def guidelines_html(*, topic: Topic) -> str:
    """The topic's guidelines rendered from Markdown to HTML that is safe to put in a page as is.

    markdown-it-py with raw HTML off: a tag or a script in the Markdown comes out as escaped
    text, and links with a javascript:, vbscript:, file: or data: (other than images) address
    are not made links (markdown-it's validateLink).
    """
    from markdown_it import MarkdownIt

    if not topic.guidelines.strip():
        return ""
    return MarkdownIt("js-default", {"html": False, "linkify": False, "typographer": False}).render(topic.guidelines)


EXAMPLES_PER_INTENT = 5


def intent_examples(*, topic: Topic, intent_ids: list[int], limit: int = EXAMPLES_PER_INTENT) -> list[dict]:
    """A few approved questions of each intent (newest decisions first), for the review screen's
    examples pane: what the topic already accepted under the current and the suggested intent."""
    rows = []
    intents = IntentNode.objects.filter(topic=topic, pk__in=intent_ids).order_by("sort_key")
    for intent in intents:
        texts = list(Question.objects.filter(topic=topic, intent=intent, status__in=APPROVED_STATUSES,
                                             removed_at__isnull=True)
                     .order_by(F("reviewed_at").desc(nulls_last=True), "-id").values_list("text", flat=True)[:limit])
        rows.append({"id": intent.pk, "full_name": intent.intent_full_name, "description": intent.description,
                     "examples": texts})
    return rows


def reasons_by_intent(*, topic: Topic) -> list[dict]:
    """How often each reason was given, per intent (the question's intent when the reason was given)
    and reason, most frequent first. Every event with a reason counts, an undone one too: it was
    still a reviewer's judgement of the question."""
    rows = (ReviewEvent.objects.filter(question__topic=topic, question__removed_at__isnull=True)
            .exclude(reason="").values("from_intent_id", "reason").annotate(n=Count("id"))
            .order_by("-n", "from_intent_id", "reason"))
    names = {i.id: i.intent_full_name for i in intent_infos(topic=topic).values()}
    return [{"intent": row["from_intent_id"], "intent_name": names.get(row["from_intent_id"], ""),
             "reason": row["reason"], "count": row["n"]} for row in rows]


_WORD = re.compile(r"\w+")
SIMILARITY_FLOOR = 0.3
SIMILAR_TIMEOUT_MS = 2000


def questions_similar(*, question: Question, limit: int = 5) -> list[dict] | None:
    """The questions nearest in wording to `question` (possible duplicates), best first.

    First the near duplicates of the whole topic, under any intent: the same words once case,
    punctuation, order, numbers and filler words are folded (the stored `near_key`, an index
    lookup whatever the topic's size). One under another intent is a label conflict the reviewer
    should see. Then the paraphrases of the whole topic (datasets.health.index: word shingles
    with a Jaccard similarity of at least 0.7, found by MinHash LSH band keys), one per
    near-duplicate group, `near_copies` the number of its other members. Then, within the intent,
    PostgreSQL's trigram similarity (pg_trgm) of at least 0.3; elsewhere word overlap (Jaccard)
    against up to 2,000 questions of the intent. The trigram part is limited to the intent so its
    cost follows the intent's size, not the topic's; see docs/benchmarks.md. Returns None when the lookup ran past SIMILAR_TIMEOUT_MS.
    """
    near_key = question.near_key if question.near_key is not None else near_duplicate_key(question.text)
    same_words = [{**row, "score": 1.0} for row in
                  Question.objects.filter(topic_id=question.topic_id, near_key=near_key).exclude(pk=question.pk)
                  .order_by("id").values("id", "text", "status", "intent_id")[:limit]]
    # Then paraphrases anywhere in the topic (the MinHash LSH index: one lookup by band key).
    seen = {row["id"] for row in same_words}
    paraphrases = [row for row in question_paraphrases(question=question, limit=limit) if row["id"] not in seen]
    rows = _similar_in_intent(question=question, limit=limit)
    if rows is None:
        return None
    seen |= {row["id"] for row in paraphrases}
    rows = (same_words + paraphrases + [row for row in rows if row["id"] not in seen])[:limit]
    names = dict(IntentNode.objects.filter(pk__in={r["intent_id"] for r in rows}).values_list("pk", "number"))
    for row in rows:
        row.setdefault("near_copies", 0)  # set by the paraphrase rows: their group's other members
        row["intent_number"] = names.get(row["intent_id"], "")
        row["other_intent"] = row["intent_id"] != question.intent_id
        row["score"] = round(float(row["score"]), 3)
    return rows


def _similar_in_intent(*, question: Question, limit: int) -> list[dict] | None:
    if connection.vendor == "postgresql":
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                # A pathological intent must not tie up a worker: give up and say so instead.
                cursor.execute(f"SET LOCAL statement_timeout = {SIMILAR_TIMEOUT_MS}")
                cursor.execute(
                    """
                    SELECT q.id, q.text, q.status, q.intent_id, similarity(q.text, %s) AS score
                    FROM datasets_question q
                    WHERE q.intent_id = %s AND q.id <> %s AND similarity(q.text, %s) >= %s
                    ORDER BY score DESC, q.id
                    LIMIT %s
                    """,
                    [question.text, question.intent_id, question.pk, question.text, SIMILARITY_FLOOR, limit],
                )
                rows = [dict(zip(("id", "text", "status", "intent_id", "score"), r, strict=True))
                        for r in cursor.fetchall()]
        except OperationalError:
            return None
    else:
        words = set(_WORD.findall(normalize_text(question.text)))
        scored = []
        candidates = (Question.objects.filter(intent_id=question.intent_id).exclude(pk=question.pk)
                      .values("id", "text", "status", "intent_id")[:2000])
        for row in candidates:
            other = set(_WORD.findall(normalize_text(row["text"])))
            if words and other:
                score = len(words & other) / len(words | other)
                if score >= SIMILARITY_FLOOR:
                    scored.append({**row, "score": score})
        rows = sorted(scored, key=lambda r: (-r["score"], r["id"]))[:limit]
    return rows


def _ancestor_numbers(number: str) -> list[str]:
    parts = number.split(".")
    return [".".join(parts[:depth]) for depth in range(1, len(parts))]


def review_question(*, question_id: int, with_similar: bool = True) -> Question:
    """A question with what the review screen shows: intents with their paths, possible duplicates.

    Sets `intent_ref`, `original_intent_ref`, `predicted_intent_ref` (dicts with id, number,
    name, full_name and numbered path) and `similar`. Paths come from the intents' dotted
    numbers (ancestors of "2.1.3" are "2" and "2.1"), so this costs a fixed two or three
    queries whatever the size of the topic.
    """
    question = Question.objects.select_related("topic", "intent", "reviewed_by", "leased_by").get(pk=question_id)
    nodes = {question.intent_id: question.intent}
    extra = {question.original_intent_id, question.predicted_intent_id} - {None, question.intent_id}
    if extra:
        nodes.update({node.pk: node for node in IntentNode.objects.filter(pk__in=extra)})
    wanted = {n for node in nodes.values() for n in _ancestor_numbers(node.number)}
    by_number = {node.number: node for node in nodes.values()}
    if wanted - set(by_number):
        by_number.update({node.number: node for node in IntentNode.objects.filter(
            topic_id=question.topic_id, number__in=wanted - set(by_number))})

    def ref(intent_id):
        node = nodes.get(intent_id)
        if node is None:
            return None
        chain = [by_number[n] for n in _ancestor_numbers(node.number) if n in by_number] + [node]
        full_names = [f"{n.number} {n.name}" for n in chain]
        return {"id": node.pk, "number": node.number, "name": node.name, "full_name": full_names[-1],
                "path": PATH_SEPARATOR.join([question.topic.name, *full_names])}

    question.intent_ref = ref(question.intent_id)
    question.original_intent_ref = ref(question.original_intent_id)
    question.predicted_intent_ref = ref(question.predicted_intent_id)
    question.similar = (questions_similar(question=question) or []) if with_similar else []
    from labeling.overlap import question_overlaps

    # An overlapping question still open: say that others decide it too, never what they decided.
    question.overlap = ({"reviewers": question.topic.overlap_reviewers}
                        if question.status == Question.Status.PENDING
                        and question_overlaps(question_id=question.pk, topic=question.topic) else None)
    from evaluation.selectors import label_issue_for_question

    issue = label_issue_for_question(question=question)
    question.judge = question.judge_verdict and {
        "verdict": question.judge_verdict, "verdict_display": question.get_judge_verdict_display(),
        "score": question.judge_score, "reason": question.judge_reason, "model": question.judge_model,
        "prompt_version": question.judge_prompt_version,
        "intent": ({"id": question.judge_intent_id, "name": question.judge_intent.name,
                    "full_name": question.judge_intent.intent_full_name}
                   if question.judge_intent_id and question.judge_intent_id != question.intent_id else None),
        "disagrees": bool(question.judge_disagrees)}
    question.label_issue = issue and {
        "evaluation": issue.evaluation_id, "rank": issue.rank, "confidence": issue.confidence,
        "given_confidence": issue.given_confidence,
        "suggested_intent": {"id": issue.suggested_intent_id, "name": issue.suggested_intent.name,
                             "full_name": issue.suggested_intent.intent_full_name}}
    return question


REVIEW_HISTORY_COLUMNS = ["created_at", "question", "topic", "text", "actor", "action", "from_status", "to_status",
                          "from_intent", "to_intent", "reason", "via"]


def review_history_csv(*, events: QuerySet):
    """Review events as CSV lines (a header, then one line per event, oldest first), read in chunks
    so a long history streams instead of sitting in memory. Cells that a spreadsheet would run as
    a formula (=, +, -, @ first) are prefixed with a quote."""
    import csv
    import io

    def safe(value) -> str:
        value = "" if value is None else str(value)
        return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value

    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        data = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return data

    writer.writerow(REVIEW_HISTORY_COLUMNS)
    yield flush()
    rows = (events.order_by("created_at", "id")
            .values_list("created_at", "question_id", "question__topic__name", "question__text", "actor__username",
                         "action", "from_status", "to_status", "from_intent__number", "to_intent__number", "reason",
                         "via"))
    for row in rows.iterator(chunk_size=2000):
        writer.writerow([row[0].isoformat(), *(safe(v) for v in row[1:])])
        if buffer.tell() > 65536:
            yield flush()
    yield flush()
