"""Imports of labeled questions into a topic: validate the whole file, then write all or nothing.

The first pass reads every row and collects every problem with its line number (bad JSON, a
missing field, an unknown intent, bad encoding, an overlong line, an empty file); if there is
any, nothing is written and the problems are raised in one DatasetError. The second pass reads
the file again inside one transaction and writes in batches, so memory stays bounded by the
batch, not the file.
"""

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from datasets.formats.readers import READERS, ImportProblem
from datasets.models import PATH_SEPARATOR, IntentNode, Question, Topic
from datasets.normalize import near_duplicate_key, text_hash
from datasets.selectors import intent_infos
from datasets.services import BulkResult, DatasetError, intent_create, question_bulk_create

MAX_REPORTED_PROBLEMS = 100
STATUSES = frozenset(Question.Status.values)  # Django rebuilds .values on every access
COPY_BATCH = 5000


class ImportRejected(DatasetError):
    """The file has problems; `details` lists them with line numbers. Nothing was imported."""

    code = "invalid_file"


@dataclass
class ImportResult:
    rows: int
    created: int
    duplicates: int
    intents_created: int


class IntentIndex:
    """Finds an intent of a topic by any name a file may use: a path (with or without the topic),
    a numbered path, a numbered name ("2.1 Refunds"), a number ("2.1") or a bare name when unique."""

    AMBIGUOUS = -1

    def __init__(self, topic: Topic):
        self.topic = topic
        self.by_key: dict[str, int] = {}
        self.by_path: dict[tuple[str, ...], int] = {}
        names: dict[str, int] = {}
        for info in intent_infos(topic=topic).values():
            below_topic = info.intent_hierarchy[1:]
            self.by_path[tuple(n.casefold() for n in below_topic)] = info.id
            for key in (info.intent_path, PATH_SEPARATOR.join(below_topic), info.intent_numbered_path,
                        info.intent_numbered_path.split(PATH_SEPARATOR, 1)[1], info.intent_full_name, info.number):
                self.by_key[self._norm(key)] = info.id
            name = info.name.casefold()
            names[name] = self.AMBIGUOUS if name in names else info.id
        self.by_name = names

    @staticmethod
    def _norm(key: str) -> str:
        return " -> ".join(part.strip() for part in key.split("->")).casefold()

    def find(self, candidates: list[str]) -> int | None:
        for candidate in candidates:
            found = self.by_key.get(self._norm(candidate))
            if found is None and "->" not in candidate:
                found = self.by_name.get(candidate.strip().casefold())
            if found is not None and found != self.AMBIGUOUS:
                return found
        return None

    def is_ambiguous(self, candidates: list[str]) -> bool:
        return any(self.by_name.get(c.strip().casefold()) == self.AMBIGUOUS for c in candidates)


def _problems_error(problems: list[ImportProblem], total: int) -> ImportRejected:
    shown = problems[:MAX_REPORTED_PROBLEMS]
    first = shown[0]
    where = f"line {first.line}: " if first.line else ""
    more = f" (and {total - 1} more problem{'s' if total > 2 else ''})" if total > 1 else ""
    return ImportRejected(
        f"Nothing was imported: {where}{first.message}{more}.",
        details={"errors": [p.as_dict() for p in shown], "error_count": total},
    )


def _intents_create(topic: Topic, paths: list[tuple[str, ...]]) -> int:
    created = 0
    by_path = IntentIndex(topic).by_path
    nodes: dict[tuple[str, ...], IntentNode] = {}
    for path in paths:  # in the order the file first names them, so numbering follows the file
        parent = None
        for depth in range(1, len(path) + 1):
            key = tuple(p.casefold() for p in path[:depth])
            node = nodes.get(key)
            if node is None and key in by_path:
                node = IntentNode.objects.get(pk=by_path[key])
            if node is None:
                node = intent_create(topic=topic, name=path[depth - 1], parent=parent)
                created += 1
            nodes[key] = parent = node
    return created


def _question_columns(now) -> tuple[list[str], dict[str, object]]:
    """Every column of a question with the value it gets when a row does not set it: the model's
    defaults, `now` for the auto timestamps."""
    columns, defaults = [], {}
    for field in Question._meta.concrete_fields:
        if field.primary_key:
            continue
        value = now if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False) \
            else field.get_default()
        columns.append(field.column)
        defaults[field.attname] = value.value if isinstance(value, enum.Enum) else value
    return columns, defaults


def _questions_copy(*, topic: Topic, rows: Iterable[dict]) -> BulkResult:
    """question_bulk_create's rule (exact duplicates in the rows or the topic skipped), written
    with COPY on PostgreSQL: Django's bulk_create spends most of an import preparing model
    instances, COPY takes plain tuples. Other databases use question_bulk_create."""
    if connection.vendor != "postgresql":
        return question_bulk_create(topic=topic, rows=rows)
    columns, defaults = _question_columns(timezone.now())
    attnames = list(defaults)
    table = Question._meta.db_table
    result = BulkResult()
    batch: list[dict] = []

    def flush():
        # No set of every hash seen so far (it grew with the file): earlier batches are already in
        # the table, inside this transaction, so the query finds a repeat of any of them; a repeat
        # within this batch is caught by `written`, which the unique constraint would otherwise
        # turn into an IntegrityError failing the whole import.
        hashes = [row["text_hash"] for row in batch]
        written = set(Question.objects.filter(topic=topic, text_hash__in=hashes).values_list("text_hash", flat=True))
        created = 0
        with connection.cursor() as cursor, cursor.cursor.copy(
                f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in batch:
                if row["text_hash"] in written:
                    continue
                written.add(row["text_hash"])
                row["near_key"] = near_duplicate_key(row["text"])
                copy.write_row([row.get(name, defaults[name]) for name in attnames])
                created += 1
        result.created += created
        result.duplicates += len(batch) - created
        batch.clear()

    for row in rows:
        row["topic_id"] = topic.pk
        row["text_hash"] = text_hash(row["text"])
        batch.append(row)
        if len(batch) >= COPY_BATCH:
            flush()
    if batch:
        flush()
    return result


def questions_import(*, topic: Topic, stream, format: str, create_intents: bool = False,
                     status: str = Question.Status.PENDING, actor=None) -> ImportResult:
    """Import a JSONL, CSV or Alpaca file (a seekable binary stream) of labeled questions.

    Rows may carry their own `status`; others get `status`. Unknown intents are an error unless
    `create_intents`, which creates them from the row's path. Exact duplicates (within the file
    or of questions already in the topic) are skipped and counted. Raises ImportRejected listing
    every problem with its line number; then nothing has been written.
    """
    reader_class = READERS.get(format)
    if reader_class is None:
        raise DatasetError(f"Unknown import format {format!r}: use {', '.join(READERS)}.", code="invalid_format")
    if status not in Question.Status.values:
        raise DatasetError(f"Unknown status {status!r}: use {', '.join(Question.Status.values)}.")
    reader = reader_class(topic_name=topic.name)
    index = IntentIndex(topic)
    problems: list[ImportProblem] = []
    total_problems = 0
    missing: dict[tuple[str, ...], int] = {}
    rows = 0

    def problem(item: ImportProblem):
        nonlocal total_problems
        total_problems += 1
        if len(problems) < MAX_REPORTED_PROBLEMS:
            problems.append(item)

    for item in reader.read(stream):
        if isinstance(item, ImportProblem):
            problem(item)
            continue
        rows += 1
        if item.status is not None and item.status not in STATUSES:
            problem(ImportProblem(item.line, f"unknown status {item.status!r}"))
        if index.find(item.intent_names) is not None:
            continue
        if index.is_ambiguous(item.intent_names):
            problem(ImportProblem(item.line, f"intent name {item.intent_names[-1]!r} is ambiguous in topic "
                                             f"{topic.name!r}: give its path or number"))
        elif create_intents and item.intent_path:
            missing.setdefault(tuple(item.intent_path), item.line)
        else:
            problem(ImportProblem(item.line, f"unknown intent {item.intent_names[0]!r} in topic {topic.name!r}: "
                                             "create it first, or import with create_intents"))
    if rows == 0 and total_problems == 0:
        problem(ImportProblem(None, "the file is empty: it has no rows to import"))
    if total_problems:
        raise _problems_error(problems, total_problems)

    stream.seek(0)
    now = timezone.now()
    try:
        with transaction.atomic():
            intents_created = _intents_create(topic, list(missing)) if missing else 0
            if intents_created:
                index = IntentIndex(topic)

            def questions():
                for item in reader.read(stream):
                    if isinstance(item, ImportProblem):  # the file changed under us: refuse it all
                        raise _problems_error([item], 1)
                    row_status = str(item.status or status)  # a plain str: COPY would write an enum's name
                    reviewed = row_status != Question.Status.PENDING
                    yield dict(text=item.text, intent_id=index.find(item.intent_names), status=row_status,
                               source=Question.Source.IMPORTED.value, language=topic.language,
                               reviewed_by_id=actor.pk if reviewed and actor else None,
                               reviewed_at=now if reviewed else None)

            result = _questions_copy(topic=topic, rows=questions())
    except IntegrityError as exc:
        raise DatasetError(f"Questions were added to {topic.name!r} during the import, so nothing was imported: "
                           "try again.", code="conflict") from exc
    return ImportResult(rows=rows, created=result.created, duplicates=result.duplicates,
                        intents_created=intents_created)
