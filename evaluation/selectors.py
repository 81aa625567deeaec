"""Reads for evaluations: which questions an evaluation trains and tests on, visible evaluations, label issues."""

import heapq
import os
import socket
from array import array
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from django.db.models import Count, QuerySet

from datasets.models import IntentNode, Question, Topic
from datasets.permissions import topics_for_reviewer
from datasets.services import DatasetError
from datasets.splits import SplitPlanner
from evaluation.models import Evaluation, LabelIssue

QUEUE = "evaluation"
REVIEWED_STATUSES = (Question.Status.APPROVED, Question.Status.RELABELED)
# The default plan for questions without an assigned split: the export's stratified plan.
DEFAULT_RATIOS = {"train": 0.8, "test": 0.2}
SPLIT_VALUES = {"train": "train", "validation": "validation", "test": "test", "none": ""}
SPEC_KEYS = ("split", "status", "source")
READ_CHUNK = 20000


@dataclass(frozen=True)
class QuestionSpec:
    """A parsed SPEC: which splits, statuses and sources (empty = any split/source; statuses default reviewed)."""

    splits: tuple[str, ...] = ()
    statuses: tuple[str, ...] = REVIEWED_STATUSES
    sources: tuple[str, ...] = ()

    def apply(self, queryset: QuerySet) -> QuerySet:
        queryset = queryset.filter(status__in=self.statuses)
        if self.splits:
            queryset = queryset.filter(split__in=self.splits)
        if self.sources:
            queryset = queryset.filter(source__in=self.sources)
        return queryset


def spec_parse(raw: str, *, side: str = "train") -> QuestionSpec | None:
    """Parse a SPEC such as "split=train,validation" or "source=generated;status=approved".

    Parts are `key=value[,value...]`, separated by ";" or spaces; keys are split (train,
    validation, test, none = no assigned split), status and source. Blank means the default plan
    (None). Raises DatasetError naming an unknown key or value.
    """
    raw = (raw or "").strip()
    if not raw:
        return None
    chosen: dict[str, tuple[str, ...]] = {}
    for part in raw.replace(";", " ").split():
        key, sep, values = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in SPEC_KEYS:
            raise DatasetError(f"The {side} SPEC {raw!r} has {part!r}: write key=value[,value], with key one of "
                               f"{', '.join(SPEC_KEYS)} (e.g. split=train,validation).", code="invalid_spec")
        names = [v.strip().lower() for v in values.split(",") if v.strip()]
        if not names:
            raise DatasetError(f"The {side} SPEC gives no value for {key}.", code="invalid_spec")
        allowed = {"split": list(SPLIT_VALUES), "status": Question.Status.values,
                   "source": Question.Source.values}[key]
        unknown = [n for n in names if n not in allowed]
        if unknown:
            raise DatasetError(f"Unknown {key} {unknown[0]!r} in the {side} SPEC: use {', '.join(allowed)}.",
                               code="invalid_spec")
        if key == "split":
            names = [SPLIT_VALUES[n] for n in names]
        chosen[key] = tuple(dict.fromkeys([*chosen.get(key, ()), *names]))
    return QuestionSpec(splits=chosen.get("split", ()), statuses=chosen.get("status", REVIEWED_STATUSES),
                        sources=chosen.get("source", ()))


def topic_questions(*, topic: Topic, include_out_of_scope: bool) -> QuerySet:
    questions = Question.objects.filter(topic=topic, removed_at__isnull=True)  # removed ones train nothing
    if not include_out_of_scope:
        questions = questions.exclude(intent__out_of_scope=True)
    return questions


MASK64 = (1 << 64) - 1


def seeded_priority(pk: int, seed: int) -> int:
    """A seeded 64-bit hash of a question id (splitmix64): the order a per-intent sample draws rows in.
    A function of the id alone, so the sample does not depend on the order rows are read in."""
    z = (pk * 0x9E3779B97F4A7C15 + (seed + 1) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


class PerIntentSample:
    """At most `cap` rows of each intent, drawn while the rows stream past: the rows with the smallest
    seeded_priority of their id (bottom-k sampling: seeded, stratified, independent of the reading order).
    Memory is cap x intents whatever the number of rows; `cap=None` keeps every row."""

    def __init__(self, *, cap: int | None, seed: int):
        self.cap, self.seed = cap, seed
        self.heaps: dict[int, list] = {}
        self.seen: Counter = Counter()

    def offer(self, position: int, pk: int, text: str, intent_id: int) -> None:
        self.seen[intent_id] += 1
        heap = self.heaps.setdefault(intent_id, [])
        if self.cap is None:
            heap.append((0, position, text))
            return
        entry = (-seeded_priority(pk, self.seed), position, text)
        if len(heap) < self.cap:
            heapq.heappush(heap, entry)
        elif entry > heap[0]:  # a smaller priority than the largest kept one: it takes that one's place
            heapq.heapreplace(heap, entry)

    def kept(self) -> list[tuple[int, str]]:
        """(position, text) of the kept rows, in the order they were offered."""
        return sorted((position, text) for heap in self.heaps.values() for _, position, text in heap)

    def capped_intents(self) -> int:
        return sum(1 for n in self.seen.values() if self.cap is not None and n > self.cap)


@dataclass
class TrainTestData:
    """Which questions an evaluation trains and tests on, with memory bounded by the per-intent cap.

    Every row of both sides is kept as an id and an intent id (8 bytes each, in `array`s); texts
    are kept only for the training sample (at most `cap` per intent: what the model is fitted on)
    and for the learning curve's test sample (at most `cap` per intent of the test side). The other
    texts are read again by id, in chunks, when they are scored (evaluation.selectors.question_texts).
    """

    cap: int | None = None
    seed: int = 42
    train_ids: list[int] = field(default_factory=list)      # the training sample, in reading order
    train_texts: list[str] = field(default_factory=list)
    train_labels: list[int] = field(default_factory=list)
    capped_ids: array = field(default_factory=lambda: array("q"))   # training side, left out by the cap
    capped_labels: array = field(default_factory=lambda: array("q"))
    test_ids: array = field(default_factory=lambda: array("q"))     # the whole test side, in reading order
    test_labels: array = field(default_factory=lambda: array("q"))
    curve_test_positions: list[int] = field(default_factory=list)    # positions in test_ids
    curve_test_texts: list[str] = field(default_factory=list)
    capped_intents: int = 0
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self):
        self._train_ids, self._train_labels = array("q"), array("q")
        self._train_sample = PerIntentSample(cap=self.cap, seed=self.seed)
        self._test_sample = PerIntentSample(cap=self.cap, seed=self.seed)

    def add(self, side: str, pk: int, text: str, intent_id: int) -> None:
        if side == "train":
            self._train_sample.offer(len(self._train_ids), pk, text, intent_id)
            self._train_ids.append(pk)
            self._train_labels.append(intent_id)
        else:
            self._test_sample.offer(len(self.test_ids), pk, text, intent_id)
            self.test_ids.append(pk)
            self.test_labels.append(intent_id)

    def finish(self) -> "TrainTestData":
        """Settle the samples once every row was added."""
        kept = self._train_sample.kept()
        positions = [position for position, _ in kept]
        self.train_ids = [self._train_ids[p] for p in positions]
        self.train_labels = [self._train_labels[p] for p in positions]
        self.train_texts = [text for _, text in kept]
        left_out = np.ones(len(self._train_ids), dtype=bool)
        left_out[positions] = False
        all_ids = np.frombuffer(self._train_ids, dtype=np.int64) if self._train_ids else np.zeros(0, np.int64)
        all_labels = np.frombuffer(self._train_labels, dtype=np.int64) if self._train_ids else np.zeros(0, np.int64)
        self.capped_ids, self.capped_labels = array("q", all_ids[left_out]), array("q", all_labels[left_out])
        self.capped_intents = self._train_sample.capped_intents()
        curve = self._test_sample.kept()
        self.curve_test_positions = [position for position, _ in curve]
        self.curve_test_texts = [text for _, text in curve]
        self._train_ids = self._train_labels = None
        self._train_sample = self._test_sample = None
        if len(self.capped_ids):
            self.warnings.append(
                f"{self.capped_intents} intent(s) have more than {self.cap:,} training questions: the model is fitted "
                f"on a seeded sample of {self.cap:,} per intent; {len(self.capped_ids):,} training questions were "
                "left out of the fit (they are still checked for label errors).")
        return self


def question_texts(ids) -> list[str]:
    """The texts of `ids`, in that order (one query; a question deleted meanwhile reads as "")."""
    ids = [int(pk) for pk in ids]
    texts = dict(Question.objects.filter(pk__in=ids).values_list("pk", "text"))
    return [texts.get(pk, "") for pk in ids]


def _intent_label(topic: Topic):
    names = dict(IntentNode.objects.filter(topic=topic).values_list("pk", "name"))
    return lambda pk: repr(names.get(pk, pk))


def evaluation_data(*, topic: Topic, train: QuestionSpec | None, test: QuestionSpec | None,
                    include_out_of_scope: bool, seed: int, cap: int | None = None) -> TrainTestData:
    """Read the questions an evaluation uses, streamed from the database in intent order (server-side
    cursor, READ_CHUNK rows at a time), keeping texts only for at most `cap` training questions per
    intent (a seeded sample; see TrainTestData).

    With both SPECs, each side is what its SPEC selects; a question both select is tested on,
    not trained on. Without SPECs (the default plan): reviewed questions, their assigned split
    where they have one (train and validation are trained on, test is tested on) and the
    export's stratified plan (80/20, near duplicates kept on one side, seeded) otherwise.
    """
    questions = topic_questions(topic=topic, include_out_of_scope=include_out_of_scope)
    data = TrainTestData(cap=cap, seed=seed)
    columns = ("pk", "text", "intent_id", "split", "near_key")
    if train is not None and test is not None:
        test_ids = set(test.apply(questions).values_list("pk", flat=True))
        overlap = 0
        for pk, text, intent_id, _, _ in (train.apply(questions).order_by("intent_id", "pk")
                                          .values_list(*columns).iterator(chunk_size=READ_CHUNK)):
            if pk in test_ids:
                overlap += 1
            else:
                data.add("train", pk, text, intent_id)
        for pk, text, intent_id, _, _ in (test.apply(questions).order_by("intent_id", "pk")
                                          .values_list(*columns).iterator(chunk_size=READ_CHUNK)):
            data.add("test", pk, text, intent_id)
        if overlap:
            data.warnings.append(f"{overlap} question(s) matched both SPECs; they were tested on, not trained on.")
        return data.finish()
    planner = SplitPlanner(ratios=DEFAULT_RATIOS, seed=seed, intent_label=_intent_label(topic))
    rows = (questions.filter(status__in=REVIEWED_STATUSES).order_by("intent_id", "pk")
            .values_list(*columns).iterator(chunk_size=READ_CHUNK))
    unplaced: list[tuple[int, str, int, int]] = []
    current = None

    def place_unplaced():
        parts = planner.place(current, [key for *_, key in unplaced])
        for (pk, text, intent_id, _), part in zip(unplaced, parts, strict=True):
            data.add(planner.names[part], pk, text, intent_id)
        unplaced.clear()

    for pk, text, intent_id, split, near_key in rows:
        if intent_id != current:
            if unplaced:
                place_unplaced()
            current = intent_id
        if split:
            data.add("test" if split == Question.Split.TEST else "train", pk, text, intent_id)
        else:
            unplaced.append((pk, text, intent_id, near_key if near_key is not None else planner.key(text)))
    if unplaced:
        place_unplaced()
    data.warnings.extend(planner.warnings)
    return data.finish()


def evaluation_preflight(*, topic: Topic, train: QuestionSpec | None, test: QuestionSpec | None,
                         include_out_of_scope: bool) -> None:
    """Refuse, before anything is created, what cannot be evaluated: nothing reviewed, a single
    intent, an intent with fewer than two training examples, an empty test set. Counting queries
    only; the job checks the exact sets again (evaluation_data_check)."""
    questions = topic_questions(topic=topic, include_out_of_scope=include_out_of_scope)
    if not questions.filter(status__in=REVIEWED_STATUSES).exists():
        raise DatasetError(f"Topic {topic.name!r} has no approved or relabeled questions to evaluate on; review "
                           "some first.", code="nothing_to_evaluate")
    train_pool = (train or QuestionSpec()).apply(questions)
    if test is not None:
        train_pool = train_pool.exclude(pk__in=test.apply(questions).values("pk"))
    counts = dict(train_pool.values_list("intent_id").annotate(n=Count("pk")).order_by().values_list("intent_id", "n"))
    _check_intent_counts(topic, counts, side="training")
    if test is not None and not test.apply(questions).exists():
        raise DatasetError("The test SPEC selects no questions: the test set is empty.", code="empty_test_set")
    if test is None and train is None:
        assigned_test = questions.filter(status__in=REVIEWED_STATUSES, split=Question.Split.TEST).exists()
        if not assigned_test and not any(n >= 2 for n in counts.values()):
            raise DatasetError("No intent has enough questions to put some in the test set: the test set would be "
                               "empty.", code="empty_test_set")


def _check_intent_counts(topic: Topic, counts: dict[int, int], *, side: str) -> None:
    if len(counts) < 2:
        only = ""
        if counts:
            only = f" (only {IntentNode.objects.get(pk=next(iter(counts))).name!r})"
        raise DatasetError(f"An evaluation needs questions of at least two intents to train on; topic "
                           f"{topic.name!r} has {len(counts)}{only}.", code="single_intent")
    few = sorted(pk for pk, n in counts.items() if n < 2)
    if few:
        names = [n for _, n in sorted(IntentNode.objects.filter(pk__in=few).values_list("sort_key", "name"))]
        listed = ", ".join(repr(n) for n in names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        raise DatasetError(f"Intent{'s' if len(names) > 1 else ''} {listed} ha{'ve' if len(names) > 1 else 's'} "
                           f"fewer than two {side} examples: add or approve more, or leave "
                           f"{'them' if len(names) > 1 else 'it'} out.", code="too_few_examples",
                           details={"intents": few})


def evaluation_data_check(*, topic: Topic, data: TrainTestData) -> None:
    """The exact version of the preflight, on the sets the job read."""
    _check_intent_counts(topic, Counter(data.train_labels), side="training")
    if not data.test_ids:
        raise DatasetError("The test set is empty.", code="empty_test_set")


def evaluations_visible_to(user) -> QuerySet:
    """Evaluations of the topics `user` reviews (all for dataset admins)."""
    return Evaluation.objects.filter(topic__in=topics_for_reviewer(user)).select_related("topic", "created_by")


def evaluation_latest_with_issues(*, topic_id: int) -> Evaluation | None:
    """The topic's most recent succeeded evaluation that looked for label errors: its issues are the current ones."""
    return (Evaluation.objects.filter(topic_id=topic_id, status=Evaluation.Status.SUCCEEDED,
                                      metrics__label_issues__isnull=False)
            .order_by("-finished_at", "-id").first())


def label_issues_current(*, topic_id: int) -> QuerySet:
    """The current likely label errors of a topic (those of evaluation_latest_with_issues), by rank."""
    latest = evaluation_latest_with_issues(topic_id=topic_id)
    if latest is None:
        return LabelIssue.objects.none()
    return LabelIssue.objects.filter(evaluation=latest).order_by("rank")


def label_issue_for_question(*, question: Question) -> LabelIssue | None:
    """The current label issue of one question (for the review screen), or None."""
    return (label_issues_current(topic_id=question.topic_id).filter(question=question)
            .select_related("suggested_intent", "given_intent").first())


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def evaluation_worker_count() -> int:
    """How many live RQ workers listen on the evaluation queue (a dead local worker's stale key is not counted)."""
    import django_rq
    from rq import Worker

    try:
        workers = Worker.all(queue=django_rq.get_queue(QUEUE))
    except Exception:  # Redis unreachable: nothing runs there
        return 0
    here = socket.gethostname()
    return len([w for w in workers if not (w.hostname == here and w.pid and not _process_alive(w.pid))])
