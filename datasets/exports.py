"""Exports: a topic's questions written as training files, streamed from the database.

A server-side cursor streams values_list tuples, ordered by intent in tree order, into one
writer per split; nothing holds the dataset. With a split, each intent's rows wait in memory
until the intent is complete and placed by the split planner (datasets.splits); all reads share
one snapshot. `export_create` records the request and queues the job (datasets.jobs.export_run),
`export_write` is the job's body, `export_stream` feeds the streaming API and the admin.

Files are written to a local folder (EXPORT_ROOT/<id>.partial/) and, once complete, put into the
exports storage (config/storage.py: EXPORT_ROOT itself by default, an S3-compatible bucket when
configured) as "<id>/<file>"; downloads read them back from the storage as streams.
"""

import itertools
import shutil
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.db import connection, transaction
from django.db.models import CharField
from django.db.models.functions import Cast

from config.input import id_parse
from config.storage import export_storage, storage_file_open, storage_file_put, storage_folder_delete
from datasets.formats import EXPORT_COLUMNS, WRITERS, ExportContext, ExportRow, FormatWriter
from datasets.formats.base import labels_json
from datasets.health.selectors import split_paraphrase_groups
from datasets.models import Export, IntentNode, Question, Topic
from datasets.normalize import near_duplicate_key
from datasets.selectors import (
    DEFAULT_EXPORT_STATUSES,
    export_generation_runs,
    export_generation_settings,
    export_intent_counts,
    export_questions,
    export_shared_near_keys,
    export_source_counts,
    intent_infos,
)
from datasets.services import DatasetError, question_near_keys_fill
from datasets.splits import ASSIGNED_SPLITS, SplitPlanner, export_split_validate, split_describe, split_is_assigned

CHUNK_ROWS = 10_000
# export id -> a callable taking the rows written so far, called between intents: the progress bar
# of an export written in this process (manage.py export without a live exports worker).
progress_listeners: dict = {}
# An intent with more questions than this is read twice when split rather than held in memory.
INTENT_BUFFER_ROWS = 50_000
FILE_BUFFER = 1024 * 1024
STREAM_CHUNK_CHARS = 64 * 1024
NO_SPLIT_NAME = "questions"


def export_statuses_validate(statuses) -> list[str]:
    if statuses in (None, "", []):
        return list(DEFAULT_EXPORT_STATUSES)
    if isinstance(statuses, str):
        statuses = [s.strip() for s in statuses.split(",") if s.strip()]
    allowed = Question.Status.values
    if not isinstance(statuses, list | tuple):
        raise DatasetError(f"Statuses must be a list such as [\"approved\"], got {statuses!r}.", code="invalid_status")
    unknown = [s for s in statuses if s not in allowed]
    if unknown:
        raise DatasetError(f"Unknown status {unknown[0]!r}: use {', '.join(allowed)}.", code="invalid_status")
    return list(dict.fromkeys(statuses))


def export_format_validate(name: str, *, single_file: bool = False) -> type[FormatWriter]:
    writer = WRITERS.get(name)
    if writer is not None and single_file and writer.binary and writer.single_file:
        raise DatasetError(f"The {name} format is written by export jobs only (POST /api/v1/exports/), not "
                           "streamed: use jsonl, csv or another text format here.", code="invalid_format")
    if writer is None or (single_file and not writer.streamable()):
        allowed = [n for n, w in WRITERS.items() if w.streamable() or not single_file]
        raise DatasetError(f"Unknown format {name!r}: use {', '.join(allowed)}.", code="invalid_format")
    return writer


def export_intent_validate(topic: Topic, intent) -> IntentNode | None:
    if intent in (None, ""):
        return None
    intent_id = intent.pk if isinstance(intent, IntentNode) else intent
    try:
        node = IntentNode.objects.filter(pk=id_parse(intent_id, "intent"), topic=topic).first()
    except DatasetError:
        node = None
    if node is None:
        raise DatasetError(f"Intent {intent_id} is not in topic {topic.name!r}.", code="invalid_intent")
    return node


def export_create(*, topic: Topic, format: str, statuses=None, intent=None, split=None, seed: int = 42,
                  system_prompt: str = "", instruction: str = "", include_out_of_scope: bool = False,
                  judge_passed: bool = False, agreed_only: bool = False, created_by=None,
                  enqueue_job: bool = True) -> Export:
    """Record an export request and queue the job that writes its files.

    Validates everything first (format, statuses, the intent subtree, the split: ratios or
    "assigned", see datasets.splits.export_split_validate) and raises DatasetError naming what to
    fix; the job is enqueued only once the row is committed. Questions of out-of-scope intents are
    left out unless `include_out_of_scope`; with `judge_passed`, only questions the LLM judge passed;
    with `agreed_only`, only questions k reviewers decided alike (labeling/overlap.py).
    Without `enqueue_job` the export waits, queued, for the caller to run datasets.jobs.export_run
    itself (the CLI does when no exports worker is alive).
    """
    from config.queues import enqueue
    from datasets.jobs import export_job_failed, export_run

    export_format_validate(format)
    node = export_intent_validate(topic, intent)
    filters = {"statuses": export_statuses_validate(statuses)}
    if node is not None:
        filters["intent"] = node.pk
    if include_out_of_scope:
        filters["include_out_of_scope"] = True
    if judge_passed:
        filters["judge_passed"] = True
    if agreed_only:
        filters["agreed_only"] = True
    split = export_split_validate(split)
    export_matches_validate(topic=topic, format=format, filters=filters, intent=node)
    with transaction.atomic():
        export = Export.objects.create(
            topic=topic, format=format, filters=filters, split=split, seed=seed,
            system_prompt=system_prompt, instruction=instruction, created_by=created_by,
        )
        if enqueue_job:
            export.job_id = enqueue(export_run, export.pk, queue="exports", job_id=f"export-{export.pk}",
                                    on_failure=export_job_failed)
            export.save(update_fields=["job_id"])
    return export


def export_matches_validate(*, topic: Topic, format: str, filters: dict, intent: IntentNode | None = None) -> None:
    """Refuse, before any job starts, an export that would write no row: DatasetError (code
    empty_export) saying which filters matched nothing and what to change."""
    writer_class = export_format_validate(format)
    questions = export_questions_of(Export(topic=topic, format=format, filters=filters))
    if writer_class.select(questions).exists():
        return
    wanted = [f"status {' or '.join(filters['statuses'])}"]
    if intent is not None:
        wanted.append(f"under {intent.intent_full_name!r}")
    if filters.get("judge_passed"):
        wanted.append("passed by the judge")
    if filters.get("agreed_only"):
        wanted.append("decided alike by the overlap's reviewers")
    if not filters.get("include_out_of_scope"):
        wanted.append("outside out-of-scope intents")
    if questions.exists():  # the filters match, the format takes none of them
        raise DatasetError(f"Nothing to export: the {format} format writes only the hard negatives (questions made "
                           f"against a neighbouring intent), and none of the questions of {topic.name!r} with "
                           f"{', '.join(wanted)} is one. Choose another format, or generate hard negatives first.",
                           code="empty_export")
    raise DatasetError(f"Nothing to export: no question of {topic.name!r} has {', '.join(wanted)}. Review "
                       "(approve) some questions first, or widen the filters.", code="empty_export")


@dataclass
class ExportOutcome:
    file_name: str
    counts: dict[str, int] = field(default_factory=dict)
    intent_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # Each part's size as one Arrow table, from the writers that count it (Hugging Face).
    num_bytes: dict[str, int] = field(default_factory=dict)
    # The stored files, [{"name": "train.jsonl", "size": 123}, ...] (Export.files).
    files: list[dict] = field(default_factory=list)


def _rows(questions) -> Iterator[ExportRow]:
    # created_at comes as text: parsing a million timestamps into datetimes only to format them
    # again took a third of an export's time.
    ordered = (questions.order_by("topic_id", "intent__sort_key", "id")
               .annotate(created_text=Cast("created_at", output_field=CharField()))
               .values_list(*EXPORT_COLUMNS))
    cursor_rows = ordered.iterator(chunk_size=CHUNK_ROWS)
    try:
        yield from map(ExportRow._make, cursor_rows)
    finally:
        cursor_rows.close()


@contextmanager
def _snapshot():
    """One transaction that sees one state of the database throughout: the split's planning pass
    and the writing pass must read the same rows in the same order, and the counts must match."""
    outermost = not connection.in_atomic_block  # inside a caller's transaction, that one decides
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


def export_context(*, topics: list[Topic], questions, system_prompt: str = "", instruction: str = "",
                   settings_summary: dict | None = None) -> ExportContext:
    """The intents, the label list (exported intents in tree order) and the prompts for writers."""
    infos = {}
    for topic in topics:
        infos.update(intent_infos(topic=topic))
    per_intent = export_intent_counts(questions=questions)
    labels = {intent_id: label for label, intent_id in enumerate(i for i in infos if per_intent.get(i))}
    return ExportContext(topic_name=", ".join(t.name for t in topics), intents=infos, labels=labels,
                         system_prompt=system_prompt, instruction=instruction, settings=settings_summary or {})


def _settings_summary(export: Export, questions) -> dict:
    topic = export.topic
    generation = export_generation_settings(questions=questions)
    return {
        "topic": topic.name,
        "language": topic.language,
        "statuses": export.filters.get("statuses"),
        "intent subtree": (IntentNode.objects.get(pk=export.filters["intent"]).intent_full_name
                           if export.filters.get("intent") else "all intents"),
        "split": split_describe(export.split),
        "out-of-scope questions": "included" if export.filters.get("include_out_of_scope") else "left out",
        "seed": export.seed,
        "system prompt": export.system_prompt or "none",
        "instruction": export.instruction or "default",
        # What the questions are and how they were made, from the questions and their runs: the
        # topic's taxonomy defaults say nothing about an imported topic, or about what a run changed.
        "sources": export_source_counts(questions=questions),
        "generation": generation,
        "runs": export_generation_runs(run_ids={g["run_id"] for g in generation}),
    }


def export_questions_of(export: Export):
    node = IntentNode.objects.filter(pk=export.filters.get("intent")).first() if export.filters.get("intent") else None
    questions = export_questions(topic=export.topic, statuses=export.filters.get("statuses") or DEFAULT_EXPORT_STATUSES,
                                 intent=node, include_out_of_scope=bool(export.filters.get("include_out_of_scope")))
    if export.filters.get("judge_passed"):
        questions = questions.filter(judge_verdict=Question.JudgeVerdict.PASS)
    if export.filters.get("agreed_only"):
        # Settled by the overlap's k agreeing votes: that event has the last voter as actor (a
        # disagreement's flag has none).
        questions = questions.filter(events__changes__has_key="overlap", events__actor__isnull=False).distinct()
    return questions


def export_folder(export: Export) -> Path:
    """Where a finished export's files are on this machine when exports are stored in the local
    folder (the default storage); with an object store, nothing is there."""
    return Path(settings.EXPORT_ROOT) / str(export.pk)


def export_work_folder(export_id: int) -> Path:
    """The local folder an export is written in before its files go to the storage."""
    return Path(settings.EXPORT_ROOT) / f"{export_id}.partial"


def export_stored_files_delete(*, export_ids) -> int:
    """Delete the stored files of the exports `export_ids` (and any half-written folder on this
    machine); returns how many stored files went. For callers that delete export rows in bulk
    (a topic's deletion): call it once their transaction commits."""
    storage = export_storage()
    deleted = 0
    for export_id in export_ids:
        deleted += storage_folder_delete(storage, str(export_id))
        shutil.rmtree(export_work_folder(export_id), ignore_errors=True)
    return deleted


def export_delete(*, export: Export) -> None:
    """Delete an export and, once that commits, its stored files and any half-written folder.

    A job still writing it notices the row is gone when it finishes and removes what it wrote
    (see datasets.jobs.export_run)."""
    export_id = export.pk
    with transaction.atomic():
        export.delete()
        transaction.on_commit(lambda: export_stored_files_delete(export_ids=[export_id]))


def export_write(*, export: Export) -> ExportOutcome:
    """Write the export's files and put them into the exports storage as <id>/<file>; returns counts,
    warnings and the stored files.

    Files are written to a local work folder and put into the storage only when complete, so a
    failed run never leaves a half-written export behind (what it had put is deleted again).
    """
    writer_class = export_format_validate(export.format)
    work = export_work_folder(export.pk)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    storage = export_storage()
    try:
        if export.split:
            question_near_keys_fill(questions=export_questions_of(export))
        with _snapshot():
            outcome, context = _export_files_write(export, writer_class, work)
        extras = writer_class.folder_files(context, outcome.counts, outcome.intent_counts, outcome.num_bytes)
        if export.split:  # the class ids of every part's file, named
            extras.setdefault("labels.json", labels_json(context))
        for extra, text in extras.items():
            (work / extra).write_text(text, encoding="utf-8")
        storage_folder_delete(storage, str(export.pk))  # what an earlier attempt left
        outcome.files = [{"name": path.name, "size": storage_file_put(storage, f"{export.pk}/{path.name}", path)}
                         for path in sorted(work.iterdir()) if path.is_file()]
    except BaseException:
        storage_folder_delete(storage, str(export.pk))
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    first = next(iter(outcome.counts))
    outcome.file_name = f"{export.pk}/{first}.{writer_class.extension}"
    return outcome


def _export_files_write(export: Export, writer_class, work: Path) -> tuple[ExportOutcome, ExportContext]:
    questions = writer_class.select(export_questions_of(export))
    context = export_context(topics=[export.topic], questions=questions, system_prompt=export.system_prompt,
                             instruction=export.instruction, settings_summary=_settings_summary(export, questions))
    planner, own_part, warnings = None, None, []
    intent_label = lambda i: repr(context.intents[i].intent_full_name)  # noqa: E731
    if split_is_assigned(export.split):
        planner, names, warnings = _assigned_planner(export, questions, intent_label)
        own_part = {name: planner.names.index(name) for name in ASSIGNED_SPLITS}
    elif export.split:
        # Paraphrase groups join near keys, so a paraphrase pair lands on one side like a near
        # duplicate. Not in the assigned mode: there the dataset's own membership decides.
        planner = SplitPlanner(ratios=export.split, seed=export.seed, shared=export_shared_near_keys(questions=questions),
                               intent_label=intent_label, groups=split_paraphrase_groups(questions=questions))
        names = planner.names
    else:
        names = ["train" if not writer_class.single_file else NO_SPLIT_NAME]
    # The planner's part -> the file it is written to (the assigned mode writes only parts that get rows).
    file_of = [names.index(name) if name in names else None for name in planner.names] if planner else [0]

    writers = [writer_class(context) for _ in names]
    with ExitStack() as cleanup:
        # Files close, and server-side cursors close inside the snapshot's transaction, even when
        # a writer fails half-way (a cursor closed after the rollback would break the connection).
        text_mode = {} if writer_class.binary else {"encoding": "utf-8", "newline": ""}
        files = [cleanup.enter_context(open(work / f"{name}.{writer_class.extension}",
                                            "wb" if writer_class.binary else "w", buffering=FILE_BUFFER, **text_mode))
                 for name in names]
        write = [f.write for f in files]
        render = [w.row for w in writers]
        for split in range(len(names)):
            write[split](writers[split].begin())
        tallies: dict[int, list[int]] = {}  # intent id -> rows per split
        all_rows = cleanup.enter_context(closing(_rows(questions)))
        listener = progress_listeners.get(export.pk)
        for intent_id, rows in itertools.groupby(all_rows, key=attrgetter("intent_id")):
            if listener is not None and tallies:
                listener(sum(map(sum, tallies.values())))
            intent = context.intents[intent_id]
            tally = tallies[intent_id] = [0] * len(names)
            index = [0] * len(names)
            for row, part in _placed(planner, intent_id, rows, questions, cleanup, own_part):
                split = file_of[part]
                index[split] += 1
                tally[split] += 1
                write[split](render[split](row, intent, index[split]))
        for split in range(len(names)):
            write[split](writers[split].end())
    outcome = ExportOutcome(file_name="", warnings=warnings + (planner.warnings if planner else []))
    outcome.counts = {name: sum(t[i] for t in tallies.values()) for i, name in enumerate(names)}
    outcome.num_bytes = {name: w.num_bytes for name, w in zip(names, writers, strict=True) if hasattr(w, "num_bytes")}
    outcome.intent_counts = {
        context.intents[intent_id].intent_full_name: {names[i]: n for i, n in enumerate(t) if n}
        for intent_id, t in tallies.items()
    }
    return outcome, context


def _assigned_planner(export: Export, questions, intent_label) -> tuple[SplitPlanner, list[str], list[str]]:
    """The planner of a split "assigned" export, the parts it writes and its warnings.

    Parts are train, validation and test; the questions without a split of their own are placed
    by the `unassigned` ratios (a part without a ratio takes none of them). Every near-duplicate
    group with an assigned question is remembered in that question's part before any row is
    placed, so an unassigned near duplicate joins it, in whichever intent it comes. A group the
    dataset itself put in two parts is counted in a warning; its unassigned near duplicates go to
    the first of them (train, then validation, then test)."""
    unassigned = export.split["unassigned"]
    planner = SplitPlanner(ratios={name: unassigned.get(name, 0.0) for name in ASSIGNED_SPLITS}, seed=export.seed,
                           shared=export_shared_near_keys(questions=questions), intent_label=intent_label)
    parts_of_group: dict[int, set[int]] = {}
    own = questions.exclude(split="").exclude(near_key=None).order_by().values_list("near_key", "split").distinct()
    for near_key, split in own.iterator(chunk_size=CHUNK_ROWS):
        parts_of_group.setdefault(near_key, set()).add(planner.names.index(split))
    planner.assignment.update((key, min(parts)) for key, parts in parts_of_group.items())
    present = {planner.names[part] for parts in parts_of_group.values() for part in parts}
    present |= set(questions.exclude(split="").filter(near_key=None).values_list("split", flat=True).distinct())
    if questions.filter(split="").exists():
        present |= {name for name, ratio in unassigned.items() if ratio > 0}
    names = [name for name in planner.names if name in present] or list(unassigned)
    warnings = []
    straddling = sum(len(parts) > 1 for parts in parts_of_group.values())
    if straddling:
        warnings.append(f"{straddling} near-duplicate group{'s' if straddling != 1 else ''} "
                        f"{'have' if straddling != 1 else 'has'} questions the dataset itself assigned to more than "
                        "one split; they stay where the dataset put them.")
    return planner, names, warnings


def _placed(planner: SplitPlanner | None, intent_id: int, rows: Iterator[ExportRow], questions,
            cleanup: ExitStack, own_part: dict[str, int] | None = None):
    """(row, part) for one intent's rows. With `own_part` (the assigned mode), a row with its own
    split goes to that part and only the others are placed. An intent is split only once all of
    it has been seen, so its rows wait in memory; one too big for that is read twice instead
    (keys on the first read), which the snapshot makes safe."""
    if planner is None:
        return zip(rows, itertools.repeat(0))
    own = own_part or {}
    own_counts, own_keys = [0] * len(planner.names), set()

    def unassigned_keys(rows) -> list[int]:
        if not own:
            return [_near_key(planner, row) for row in rows]
        keys = []
        for row in rows:
            part = own.get(row.split)
            if part is None:
                keys.append(_near_key(planner, row))
            else:  # counted, so an intent is not called too small for a part its own rows fill
                own_counts[part] += 1
                own_keys.add(row.near_key if row.near_key is not None else near_duplicate_key(row.text))
        return keys

    def placed(keys: list[int]) -> list[int]:
        return planner.place(intent_id, keys, own_counts=own_counts, own_keys=own_keys) if keys else []

    buffer = list(itertools.islice(rows, INTENT_BUFFER_ROWS))
    if len(buffer) < INTENT_BUFFER_ROWS:
        return _with_parts(buffer, placed(unassigned_keys(buffer)), own)
    keys = unassigned_keys(buffer)
    del buffer
    keys.extend(unassigned_keys(rows))
    again = cleanup.enter_context(closing(_rows(questions.filter(intent_id=intent_id))))
    return _with_parts(again, placed(keys), own)


def _with_parts(rows, placed: list[int], own: dict[str, int]):
    """Each row with its own part, or the next part the planner gave the rows without one."""
    placements = iter(placed)
    for row in rows:
        part = own.get(row.split)
        yield row, next(placements) if part is None else part


def _near_key(planner: SplitPlanner, row: ExportRow) -> int:
    return planner.group_of(row.near_key) if row.near_key is not None else planner.key(row.text)


@dataclass
class ExportFile:
    name: str
    size: int


def export_files(export: Export) -> list[ExportFile]:
    """The files of a finished export: one per split, and any extras (labels.json, README.md)."""
    if export.status != Export.Status.SUCCEEDED:
        return []
    if export.files:
        return [ExportFile(f["name"], f["size"]) for f in export.files]
    # Written before Export.files was recorded: ask the storage.
    storage = export_storage()
    try:
        _, names = storage.listdir(str(export.pk))
    except FileNotFoundError:
        return []
    return [ExportFile(name, storage.size(f"{export.pk}/{name}")) for name in sorted(names)]


class _ZipSink:
    """Where zipfile writes while the archive is being sent: bytes wait here until yielded. It has
    no tell() or seek(), so zipfile writes a streamable archive (sizes after each file's data)."""

    def __init__(self):
        self._parts: list[bytes] = []

    def write(self, data) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self):
        pass

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def export_archive_name(export: Export) -> str:
    return f"export-{export.pk}-{export.format}.zip"


def export_archive_stream(export: Export) -> Iterator[bytes]:
    """A zip of the export's files, compressed while it is sent: the job does not spend time on it
    and no second copy of the data sits on disk. Memory stays at about one 1 MiB read."""
    files = export_files(export)
    if not files:
        raise DatasetError(f"Export {export.pk} is {export.status}: there is nothing to download yet.",
                           code="not_found")
    storage = export_storage()

    def chunks():
        sink = _ZipSink()
        with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as bundle:
            for item in files:
                with closing(storage_file_open(storage, f"{export.pk}/{item.name}")) as source, \
                        bundle.open(item.name, "w", force_zip64=True) as target:
                    while block := source.read(1024 * 1024):
                        target.write(block)
                        yield sink.take()
        yield sink.take()

    return chunks()


def export_file_open(export: Export, name: str) -> tuple[ExportFile, BinaryIO]:
    """One of the export's files and a stream of it from the storage (the caller closes it); only
    names the export listed, so no path tricks."""
    for item in export_files(export):
        if item.name == name:
            return item, storage_file_open(export_storage(), f"{export.pk}/{name}")
    raise DatasetError(f"Export {export.pk} has no file {name!r}.", code="not_found")


def export_stream(*, questions, format: str, system_prompt: str = "", instruction: str = "") -> Iterator[str]:
    """`questions` (any queryset, of one topic or several) as one file in a single-file format, in
    text chunks of about 64 KB. Validates the format at once, raising DatasetError; everything else
    is read from the database as the chunks are consumed (for streaming responses and the admin's
    export), in one snapshot."""
    writer_class = export_format_validate(format, single_file=True)
    return _chunked(_pieces(writer_class, writer_class.select(questions), system_prompt=system_prompt,
                            instruction=instruction))


def _pieces(writer_class: type[FormatWriter], questions, *, system_prompt: str, instruction: str) -> Iterator[str]:
    # The topics, intents and labels are read in the snapshot the rows are read in: read earlier,
    # an intent added (or approved for the first time) before the cursor opened would be missing
    # from them and stop the download half-way with a KeyError.
    with _snapshot():
        topics = list(Topic.objects.filter(pk__in=questions.values("topic_id").distinct()).order_by("id"))
        context = export_context(topics=topics, questions=questions, system_prompt=system_prompt,
                                 instruction=instruction)
        writer = writer_class(context)
        yield writer.begin()
        last_intent, index = None, 0
        # Closed inside the snapshot even if the client goes away half-way (see _export_files_write).
        with closing(_rows(questions)) as rows:
            for row in rows:
                if row.intent_id != last_intent:
                    last_intent, index = row.intent_id, 0
                index += 1
                yield writer.row(row, context.intents[row.intent_id], index)
        yield writer.end()


def _chunked(pieces) -> Iterator[str]:
    buffer, size = [], 0
    for piece in pieces:
        buffer.append(piece)
        size += len(piece)
        if size >= STREAM_CHUNK_CHARS:
            yield "".join(buffer)
            buffer.clear()
            size = 0
    if buffer:
        yield "".join(buffer)
