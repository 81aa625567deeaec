"""Imports of labeled questions into a topic: validate the whole file, then write all or nothing.

The first pass reads every row and collects every problem with its line number (bad JSON, a
missing field, an unknown intent, bad encoding, an overlong line or question, an intent too long
or too deep to create, an empty file), and decides each row: new, an exact duplicate (same text,
same intent) of an earlier row or of the topic, or a label conflict (same text, another intent).
If there is any problem, nothing is written and the problems are raised in one DatasetError (a
dry run returns them in its report instead). The second pass reads the file again inside one
transaction and writes the rows the first pass kept, in batches.

Memory: the first pass remembers, per distinct text of the file, one integer (a 64-bit key of its
hash to its first line, intent and split), about 100 bytes a row; the rows themselves are never
held.
"""

import enum
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from datasets.formats.readers import READERS, ImportProblem
from datasets.health.index import paraphrase_index_write_by_hash
from datasets.models import PATH_SEPARATOR, IntentNode, Question, Topic
from datasets.normalize import near_duplicate_key, text_hash
from datasets.selectors import intent_infos
from datasets.services import BulkResult, DatasetError, intent_create, question_bulk_create
from datasets.splits import ACCEPTED_SPLIT_NAMES, ASSIGNED_SPLITS, split_name_normalize

MAX_REPORTED_PROBLEMS = 100
STATUSES = frozenset(Question.Status.values)  # Django rebuilds .values on every access
COPY_BATCH = 5000


class ImportRejected(DatasetError):
    """The file has problems; `details` lists them with line numbers. Nothing was imported."""

    code = "invalid_file"


ON_CONFLICT_CHOICES = {
    "keep_first": "keep the first row of a text, drop the others under another intent",
    "flag": "keep the first row of a text with status flagged (a reviewer decides), drop the others",
    "skip": "drop every row of a text that is under two intents",
}
# The limits of an intent an import may create: IntentNode.name's length, Topic.levels' maximum.
MAX_INTENT_NAME_CHARS = IntentNode._meta.get_field("name").max_length
MAX_INTENT_DEPTH = Topic._meta.get_field("levels").validators[-1].limit_value
MAX_REPORTED_CONFLICTS = 100
SPLIT_CODES = ("", *ASSIGNED_SPLITS)  # a split as 2 bits of the first pass's packed value


@dataclass
class ImportReport:
    """What an import did, or would do (`dry_run`): the same report for the API, the admin and the CLI.

    `conflicts` counts the rows whose text an earlier row of the file, or a question of the topic,
    has under another intent (listed in `conflict_details` by line); `conflict_texts` counts those
    texts. `splits` counts the created rows by their split ("none": no split of their own).
    """

    rows: int = 0
    created: int = 0
    duplicates: int = 0
    conflicts: int = 0
    conflict_texts: int = 0
    flagged: int = 0
    intents_created: int = 0
    splits: dict[str, int] = field(default_factory=dict)
    split_overridden: int = 0
    on_conflict: str = "keep_first"
    dry_run: bool = False
    error_count: int = 0
    errors: list[dict] = field(default_factory=list)
    conflict_details: list[dict] = field(default_factory=list)
    intents_to_create: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


# The name the report had before dry runs and conflicts; callers that only read the counts keep working.
ImportResult = ImportReport


class IntentIndex:
    """Finds an intent of a topic by any name a file may use: a path (with or without the topic),
    a numbered path, a numbered name ("2.1 Refunds"), a number ("2.1") or a bare name when unique."""

    AMBIGUOUS = -1

    def __init__(self, topic: Topic):
        self.topic = topic
        self.by_key: dict[str, int] = {}
        self.by_path: dict[tuple[str, ...], int] = {}
        self.labels: dict[int, str] = {}
        names: dict[str, int] = {}
        for info in intent_infos(topic=topic).values():
            self.labels[info.id] = info.intent_full_name
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


def question_copy_defaults(now) -> tuple[list[str], dict[str, object]]:
    """Every column of a question with the value it gets when a row does not set it: the model's
    defaults, `now` for the auto timestamps. For COPY writers (imports, the benchmarks' loaders),
    so a column added to Question later is filled with its default instead of breaking them."""
    columns, defaults = [], {}
    for model_field in Question._meta.concrete_fields:
        if model_field.primary_key:
            continue
        value = now if getattr(model_field, "auto_now", False) or getattr(model_field, "auto_now_add", False) \
            else model_field.get_default()
        columns.append(model_field.column)
        defaults[model_field.attname] = value.value if isinstance(value, enum.Enum) else value
    return columns, defaults


def _questions_copy(*, topic: Topic, rows: Iterable[dict]) -> BulkResult:
    """question_bulk_create's rule (exact duplicates in the rows or the topic skipped), written
    with COPY on PostgreSQL: Django's bulk_create spends most of an import preparing model
    instances, COPY takes plain tuples. Other databases use question_bulk_create."""
    if connection.vendor != "postgresql":
        return question_bulk_create(topic=topic, rows=rows)
    columns, defaults = question_copy_defaults(timezone.now())
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
        # The paraphrase index, for the rows just copied (found again by their hash).
        paraphrase_index_write_by_hash(topic_id=topic.pk, texts_by_hash={
            row["text_hash"]: row["text"] for row in batch if row.get("near_key") is not None})
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




def _hash_key(full_hash: str) -> int:
    """64 bits of a text's SHA-1: what the first pass remembers per text (a collision among a
    million texts has odds of about 3 in 100 million, and the write is still checked against
    the full hash by the table's unique constraint)."""
    return int(full_hash[:16], 16)


def _pack(line: int, split: str, intent_ref: int) -> int:
    """A text's first row as one int: its line (0: a question already in the topic), its split and
    its intent (an id, or minus the position of an intent the import creates)."""
    return (line << 34) | (SPLIT_CODES.index(split) << 32) | (intent_ref + (1 << 31))


def _unpack(value: int) -> tuple[int, str, int]:
    return value >> 34, SPLIT_CODES[(value >> 32) & 3], (value & 0xFFFFFFFF) - (1 << 31)


def _path_problem(line: int, path: list[str]) -> ImportProblem | None:
    """An intent path the import could not create: too deep, a level without a name or too long a name."""
    if len(path) > MAX_INTENT_DEPTH:
        return ImportProblem(line, f"the intent path is {len(path)} levels deep, over the limit of {MAX_INTENT_DEPTH} "
                                   f"(a taxonomy has at most {MAX_INTENT_DEPTH} levels)")
    for name in path:
        name = " ".join(name.split())
        if not name:
            return ImportProblem(line, "the intent path has a level without a name")
        if len(name) > MAX_INTENT_NAME_CHARS:
            return ImportProblem(line, f"the intent name {name[:40] + '...'!r} is {len(name):,} characters long, over "
                                       f"the limit of {MAX_INTENT_NAME_CHARS}")
    return None


def questions_import(*, topic: Topic, stream, format: str, create_intents: bool = False,
                     status: str = Question.Status.PENDING, actor=None, split: str = "", text_column: str = "",
                     intent_column: str = "", on_conflict: str = "keep_first", dry_run: bool = False) -> ImportReport:
    """Import a JSONL, CSV or Alpaca file (a seekable binary stream) of labeled questions.

    Rows may carry their own `status` and `split`; others get `status` and no split. A file-wide
    `split` (train, validation or test) overrides the rows' own (counted in `split_overridden`).
    `text_column` and `intent_column` name the file's own columns. Unknown intents are an error
    unless `create_intents`, which creates them from the row's path (or plain name: a root intent).
    Exact duplicates (same text and intent, within the file or with the topic) are skipped and
    counted; label conflicts (same text, another intent) are reported by line and resolved by
    `on_conflict` (see ON_CONFLICT_CHOICES). Raises ImportRejected listing every problem with its
    line number; then nothing has been written. `dry_run` writes nothing and returns the report,
    problems included.
    """
    reader_class = READERS.get(format)
    if reader_class is None:
        raise DatasetError(f"Unknown import format {format!r}: use {', '.join(READERS)}.", code="invalid_format")
    if status not in Question.Status.values:
        raise DatasetError(f"Unknown status {status!r}: use {', '.join(Question.Status.values)}.")
    if on_conflict not in ON_CONFLICT_CHOICES:
        raise DatasetError(f"Unknown on_conflict {on_conflict!r}: use {', '.join(ON_CONFLICT_CHOICES)}.",
                           code="invalid_parameter")
    file_split = ""
    if split:
        file_split = split_name_normalize(split) or ""
        if not file_split:
            raise DatasetError(f"Unknown split {split!r}: use {ACCEPTED_SPLIT_NAMES}.", code="invalid_split")
    reader = reader_class(topic_name=topic.name, text_column=text_column, intent_column=intent_column)
    index = IntentIndex(topic)
    report = ImportReport(on_conflict=on_conflict, dry_run=dry_run)
    problems: list[ImportProblem] = []
    missing: dict[tuple[str, ...], tuple[list[str], int]] = {}  # casefolded path -> (path, intent ref)
    first: dict[int, int] = {}  # text key -> _pack(first line, split, intent ref)
    conflicted: set[int] = set()  # text keys under two intents
    pending: list[tuple] = []  # rows waiting for the batch query against the topic

    def problem(item: ImportProblem):
        report.error_count += 1
        if len(problems) < MAX_REPORTED_PROBLEMS:
            problems.append(item)

    def intent_label(ref: int) -> str:
        if ref > 0:
            return index.labels.get(ref, str(ref))
        return PATH_SEPARATOR.join(next(path for path, r in missing.values() if r == ref))

    def conflict(line: int, text: str, ref: int, other_ref: int, other_line: int):
        report.conflicts += 1
        if len(report.conflict_details) < MAX_REPORTED_CONFLICTS:
            report.conflict_details.append({
                "line": line, "text": text[:200], "intent": intent_label(ref), "other_intent": intent_label(other_ref),
                "other_line": other_line or None})

    def decide_batch():
        hashes = {full for full, *_ in pending}
        in_topic = dict(Question.objects.filter(topic=topic, text_hash__in=hashes).values_list("text_hash", "intent_id"))
        for full, line, text, ref, row_split in pending:
            key = _hash_key(full)
            if key not in first:
                if full in in_topic:
                    first[key] = _pack(0, "", in_topic[full])
                else:
                    first[key] = _pack(line, row_split, ref)
                    report.splits[row_split or "none"] = report.splits.get(row_split or "none", 0) + 1
                    continue
            other_line, other_split, other_ref = _unpack(first[key])
            if other_ref == ref:
                report.duplicates += 1
                continue
            conflict(line, text, ref, other_ref, other_line)
            if key not in conflicted:
                conflicted.add(key)
                if other_line and on_conflict == "skip":  # the first row goes too
                    report.splits[other_split or "none"] -= 1
                elif other_line and on_conflict == "flag":
                    report.flagged += 1
        pending.clear()

    for item in reader.read(stream):
        if isinstance(item, ImportProblem):
            problem(item)
            continue
        report.rows += 1
        if item.status is not None and item.status not in STATUSES:
            problem(ImportProblem(item.line, f"unknown status {item.status!r}"))
            continue
        ref = index.find(item.intent_names)
        if ref is None:
            if index.is_ambiguous(item.intent_names):
                problem(ImportProblem(item.line, f"intent name {item.intent_names[-1]!r} is ambiguous in topic "
                                                 f"{topic.name!r}: give its path or number"))
                continue
            if not (create_intents and item.intent_path):
                problem(ImportProblem(item.line, f"unknown intent {item.intent_names[0]!r} in topic {topic.name!r}: "
                                                 "create it first, or import with create_intents (API), "
                                                 "--create-intents (manage.py import) or Create intents (admin)"))
                continue
            if path_problem := _path_problem(item.line, item.intent_path):
                problem(path_problem)
                continue
            folded = tuple(" ".join(p.split()).casefold() for p in item.intent_path)
            if folded not in missing:
                missing[folded] = ([" ".join(p.split()) for p in item.intent_path], -(len(missing) + 1))
            ref = missing[folded][1]
        row_split = file_split or item.split or ""
        if file_split and item.split and item.split != file_split:
            report.split_overridden += 1
        pending.append((text_hash(item.text), item.line, item.text, ref, row_split))
        if len(pending) >= COPY_BATCH:
            decide_batch()
    if pending:
        decide_batch()
    if report.rows == 0 and report.error_count == 0:
        problem(ImportProblem(None, "the file is empty: it has no rows to import"))
    report.conflict_texts = len(conflicted)
    report.splits = {name: n for name, n in report.splits.items() if n}
    report.created = sum(report.splits.values())
    report.intents_to_create = _intents_to_create(index, [path for path, _ in missing.values()])
    report.intents_created = len(report.intents_to_create)
    report.intents_to_create = report.intents_to_create[:MAX_REPORTED_PROBLEMS]
    if dry_run:
        report.errors = [p.as_dict() for p in problems]
        return report
    if report.error_count:
        raise _problems_error(problems, report.error_count)

    stream.seek(0)
    now = timezone.now()
    try:
        with transaction.atomic():
            report.intents_created = _intents_create(topic, [path for path, _ in missing.values()]) if missing else 0
            if report.intents_created:
                index = IntentIndex(topic)

            def questions():
                for item in reader.read(stream):
                    if isinstance(item, ImportProblem):  # the file changed under us: refuse it all
                        raise _problems_error([item], 1)
                    key = _hash_key(text_hash(item.text))
                    first_line, row_split, _ = _unpack(first[key])
                    if first_line != item.line or (on_conflict == "skip" and key in conflicted):
                        continue
                    flagged = on_conflict == "flag" and key in conflicted
                    row_status = Question.Status.FLAGGED.value if flagged else str(item.status or status)
                    reviewed = row_status != Question.Status.PENDING and not flagged
                    # A created intent is found by the path it was created from: a numbered name
                    # ("1.1 Refunds", Alpaca's output) makes a root intent "Refunds" numbered anew.
                    intent_id = index.find(item.intent_names) or (
                        index.find([PATH_SEPARATOR.join(item.intent_path)]) if item.intent_path else None)
                    if intent_id is None:  # the first pass placed every row: a bug, not the file's fault
                        raise DatasetError(f"line {item.line}: its intent was not found after creating intents.")
                    # An augmented row of our own export stays augmented (its transformation kept), so
                    # it can still be filtered out of a test set; every other row is imported.
                    source = Question.Source.AUGMENTED.value if item.augmented else Question.Source.IMPORTED.value
                    yield dict(text=item.text, intent_id=intent_id, status=row_status, source=source,
                               transformation=item.transformation, language=topic.language, split=row_split,
                               reviewed_by_id=actor.pk if reviewed and actor else None,
                               reviewed_at=now if reviewed else None)

            result = _questions_copy(topic=topic, rows=questions())
    except IntegrityError as exc:
        raise DatasetError(f"Questions were added to {topic.name!r} during the import, so nothing was imported: "
                           "try again.", code="conflict") from exc
    # Rows the topic gained between the two passes are skipped by the write and counted here.
    report.created, report.duplicates = result.created, report.duplicates + result.duplicates
    return report


def _intents_to_create(index: IntentIndex, paths: list[list[str]]) -> list[str]:
    """The intents (paths below the topic) that creating `paths` adds, parents first, in file order."""
    new: dict[tuple[str, ...], str] = {}
    for path in paths:
        for depth in range(1, len(path) + 1):
            key = tuple(p.casefold() for p in path[:depth])
            if key not in index.by_path and key not in new:
                new[key] = PATH_SEPARATOR.join(path[:depth])
    return list(new.values())


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def import_report_lines(report: ImportReport) -> list[str]:
    """The report as sentences: what the CLI prints and the admin's preview and result show."""
    would = "would be " if report.dry_run else ""
    lines = []
    if report.dry_run:
        lines.append("Dry run: nothing was written.")
    lines.append(f"{_plural(report.rows, 'row')}: {report.created:,} {would}created, {report.duplicates:,} "
                 f"duplicate{'' if report.duplicates == 1 else 's'} skipped (same text, same intent), "
                 f"{_plural(report.conflicts, 'label conflict')}, {report.intents_created:,} "
                 f"intent{'' if report.intents_created == 1 else 's'} {would}created.")
    if report.splits:
        lines.append("Created rows by split: " + ", ".join(f"{name} {n:,}" for name, n in report.splits.items()) + ".")
    if report.split_overridden:
        lines.append(f"The file-wide split replaced the rows' own split on {_plural(report.split_overridden, 'row')}.")
    if report.conflicts:
        lines.append(f"Label conflicts: {_plural(report.conflict_texts, 'text')} under two intents; on_conflict="
                     f"{report.on_conflict}: {ON_CONFLICT_CHOICES[report.on_conflict]}"
                     + (f" ({report.flagged:,} flagged)." if report.on_conflict == "flag" else "."))
        for item in report.conflict_details:
            where = f"on line {item['other_line']}" if item["other_line"] else "in the topic"
            lines.append(f"line {item['line']}: conflict: {item['text']!r} is under {item['intent']!r} here and "
                         f"under {item['other_intent']!r} {where}")
    if report.dry_run and report.intents_to_create:
        lines.append("Intents to create: " + "; ".join(report.intents_to_create) + ".")
    if report.error_count:
        lines.append(f"{_plural(report.error_count, 'problem')}: nothing would be imported until "
                     f"{'it is' if report.error_count == 1 else 'they are'} fixed.")
        lines += [f"line {e['line']}: {e['message']}" if e["line"] else e["message"] for e in report.errors]
    return lines
